"""Image leases (issue 19, "one folder, many hands"): who has which image of a shared folder open.

Unit tests of ``core/leases.py`` with a fake clock, real processes contending for one lease
and a real holder killed with SIGKILL, hostile lease files, the Qt-free rules of
``app/shared_folder.py``, and two windows on one folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from autolabel_gui.app.folder_review import FolderReview
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.app.shared_folder import FolderLeases
from autolabel_gui.app.triage import Triage
from autolabel_gui.core.atomic import current_umask
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.leases import (
    SKEW_MARGIN_S,
    Holder,
    LeaseBook,
    LeasesUnavailable,
    lease_name,
    parse_lease,
)
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.fixtures.review import review_of
from tests.fixtures.window import proposal, write_image

TTL = 60.0
REPO = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def holder(user: str = "alice", host: str | None = None, pid: int | None = None) -> Holder:
    me = Holder.current()
    return Holder(user, host or me.host, pid or os.getpid(), Holder.current().session, time.time())


def book(root: Path, who: Holder, clock: FakeClock | None = None, **kw) -> LeaseBook:
    return LeaseBook(root / ".autolabel", who, TTL, clock or FakeClock(), **kw)


def lease_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".autolabel/leases").iterdir())


# ------------------------------------------------------------------ one process, fake clock


def test_one_holder_at_a_time_and_release_frees_it(tmp_path):
    alice, bob = book(tmp_path, holder("alice")), book(tmp_path, holder("bob"))
    assert alice.acquire("a.png") is None
    assert alice.acquire("a.png") is None, "acquiring what we hold is fine"
    held = bob.acquire("a.png")
    assert held is not None and held.user == "alice" and held.session == alice.me.session
    assert bob.holder("a.png") == alice.me and alice.holder("a.png") is None
    assert bob.others() == {"a.png": alice.me} and alice.others() == {}
    assert lease_files(tmp_path) == [lease_name("a.png")]
    doc = json.loads((tmp_path / ".autolabel/leases" / lease_name("a.png")).read_text())
    assert (doc["relpath"], doc["user"], doc["host"], doc["pid"], doc["session"], doc["count"]) == (
        "a.png", "alice", alice.me.host, os.getpid(), alice.me.session, 0)
    alice.release("a.png")
    assert lease_files(tmp_path) == []
    assert bob.acquire("a.png") is None and alice.acquire("a.png") == bob.me
    bob.release_all()
    assert lease_files(tmp_path) == [] and bob.mine() == set()


def test_renewal_keeps_a_lease_alive_past_ttl_and_its_absence_lets_it_expire(tmp_path):
    clock = FakeClock()
    alice = book(tmp_path, holder("alice", host="laptop-2", pid=1))  # another host: no pid check
    bob = book(tmp_path, holder("bob"), clock)
    assert alice.acquire("a.png") is None and bob.acquire("a.png") == alice.me
    for _ in range(5):  # 5 x 0.8 ttl = 4 ttl, renewed every step
        clock.advance(0.8 * TTL)
        assert alice.renew() == []
        assert bob.acquire("a.png") == alice.me
    doc = json.loads((tmp_path / ".autolabel/leases" / lease_name("a.png")).read_text())
    assert doc["count"] == 5
    clock.advance(0.8 * TTL)
    assert bob.holder("a.png") == alice.me, "unchanged for less than ttl: alive"
    clock.advance(0.3 * TTL)
    assert bob.holder("a.png") is None and bob.others() == {}, "unchanged for more than ttl: dead"
    assert bob.acquire("a.png") is None
    assert alice.renew() == ["a.png"], "alice learns she lost it"
    assert alice.mine() == set() and alice.holder("a.png") == bob.me
    doc = json.loads((tmp_path / ".autolabel/leases" / lease_name("a.png")).read_text())
    assert doc["session"] == bob.me.session, "alice's renewal did not write over bob's lease"


def test_another_hosts_lease_expires_only_by_unchanged_content_whatever_its_clock(tmp_path):
    clock = FakeClock()
    future = lambda: time.time() + 3 * 3600  # noqa: E731 - a laptop whose clock is 3 hours ahead
    alice = book(tmp_path, holder("alice", host="laptop-2", pid=999_999), wall=future)
    assert alice.acquire("a.png") is None
    past = lambda: time.time() - 3 * 3600  # noqa: E731 - bob's clock 3 hours behind
    bob = book(tmp_path, holder("bob"), clock, wall=past)
    assert bob.acquire("a.png") == alice.me, "a dead pid on another host means nothing here"
    clock.advance(TTL - 1)
    assert bob.acquire("a.png") == alice.me
    clock.advance(2)
    assert bob.acquire("a.png") is None


def test_a_lease_not_renewed_for_longer_than_ttl_plus_skew_is_dead_at_once(tmp_path):
    long_ago = lambda: time.time() - 2 * (TTL + SKEW_MARGIN_S)  # noqa: E731
    alice = book(tmp_path, holder("alice", host="laptop-2"), wall=long_ago)
    assert alice.acquire("a.png") is None
    bob = book(tmp_path, holder("bob"))
    assert bob.holder("a.png") is None and bob.acquire("a.png") is None


def test_two_windows_of_one_process_are_two_holders(tmp_path):
    one, two = book(tmp_path, Holder.current()), book(tmp_path, Holder.current())
    assert one.acquire("x/y.png") is None
    assert two.acquire("x/y.png") == one.me, "same host and pid, another session: alive"


def test_take_over_gives_up_when_a_fresh_lease_took_the_place_of_the_dead_one(tmp_path):
    clock = FakeClock()
    dead = book(tmp_path, holder("dead", host="gone"), wall=lambda: time.time() - 10 * SKEW_MARGIN_S)
    assert dead.acquire("a.png") is None
    bob = book(tmp_path, holder("bob"), clock)
    path = bob.dir / lease_name("a.png")
    judged = bob._read(path)
    path.unlink()
    carol = book(tmp_path, holder("carol"))
    assert carol.acquire("a.png") is None  # fresh, between bob's judgement and his take-over
    assert bob._take_over(path, lease_name("a.png"), judged) is False
    assert parse_lease(path.read_bytes(), path.name).holder == carol.me, "carol's lease is put back"
    assert lease_files(tmp_path) == [path.name], "no graveyard file left"
    assert bob.acquire("a.png") == carol.me


def test_lease_files_follow_the_umask_also_after_renewal(tmp_path):
    old = os.umask(0o002)
    try:
        alice = book(tmp_path, holder("alice"))
        alice.acquire("a.png")
        path = alice.dir / lease_name("a.png")
        assert path.stat().st_mode & 0o777 == 0o664
        alice.renew()
        assert path.stat().st_mode & 0o777 == 0o664
        assert current_umask() == 0o002
    finally:
        os.umask(old)


# ------------------------------------------------------------------ hostile lease files


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _huge(path: Path) -> None:
    path.write_bytes(b'{"relpath": "' + b"x" * (2 << 20) + b'"}')


def _to_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _folder(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize("make", [
    lambda p: p.write_bytes(b"\x00\xff garbage"),
    lambda p: p.write_text('{"relpath": "a.png", "user": 7, "host": [], "pid": -1}'),
    lambda p: p.write_text(json.dumps({"relpath": "other.png", "user": "eve", "host": "h", "pid": 5,
                                       "session": "s", "since": 1.0, "count": 0, "renewed": time.time()})),
    lambda p: p.write_text(json.dumps({"relpath": "a.png", "user": "eve", "host": "h", "pid": True,
                                       "session": "s", "since": 1.0, "count": 0, "renewed": float("nan")})),
    lambda p: p.write_text("[" * 100_000),
    _huge, _fifo, _to_zero, _folder,
], ids=["binary", "wrong-types", "other-image", "bool-pid-nan", "deep", "huge", "fifo", "dev-zero", "folder"])
def test_a_malformed_lease_is_dead_and_reported_once(tmp_path, make):
    bob = book(tmp_path, holder("bob"))
    path = bob.dir / lease_name("a.png")
    make(path)
    started = time.monotonic()
    assert bob.others() == {}
    assert bob.holder("a.png") is None
    reports = bob.take_reports()
    assert len(reports) == 1 and path.name in reports[0] and "not a valid lease" in reports[0]
    assert bob.others() == {} and bob.take_reports() == [], "said once"
    assert bob.acquire("a.png") is None, "taken over"
    assert parse_lease((bob.dir / path.name).read_bytes(), path.name).holder == bob.me
    assert lease_files(tmp_path) == [path.name]
    assert time.monotonic() - started < 30, "never hangs"


def test_a_lease_folder_leading_outside_the_image_folder_is_refused(tmp_path):
    root, outside = tmp_path / "images", tmp_path / "elsewhere"
    (root / ".autolabel").mkdir(parents=True)
    outside.mkdir()
    (root / ".autolabel/leases").symlink_to(outside)
    with pytest.raises(LeasesUnavailable, match="outside"):
        LeaseBook(root / ".autolabel", holder())
    write_image(root / "a.png")
    leases = FolderLeases.for_folder(ImageFolder(root))
    assert leases.book is None and leases.problem and "without image leases" in leases.problem
    assert list(outside.iterdir()) == []


def test_a_file_named_like_the_lease_folder_is_said_to_be_in_the_way_not_outside(tmp_path):
    root = tmp_path / "images"
    (root / ".autolabel").mkdir(parents=True)
    (root / ".autolabel/leases").write_bytes(b"not a folder")
    with pytest.raises(LeasesUnavailable) as caught:
        LeaseBook(root / ".autolabel", holder())
    assert "not a folder" in str(caught.value) and "outside" not in str(caught.value)
    assert (root / ".autolabel/leases").read_bytes() == b"not a folder"


def test_a_folder_where_no_lease_can_be_written_is_reviewed_without_leases(tmp_path, monkeypatch):
    write_image(tmp_path / "a.png")
    folder = ImageFolder(tmp_path)
    session = ReviewSession(folder, None, ["person"], None, 0.35)
    leases = FolderLeases.for_folder(folder)

    def read_only(*_args, **_kw):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(LeaseBook, "_create", read_only)
    opened = leases.open(session, "a.png")
    assert not opened.state.read_only and leases.book is None
    assert leases.problem is not None and "Read-only file system" in leases.problem
    assert leases.open(session, "a.png").state is opened.state


# ------------------------------------------------------------------ real processes

_HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from autolabel_gui.core.leases import Holder, LeaseBook
    state, go, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    me = Holder.current()
    book = LeaseBook(state, me, 60.0)
    while not go.exists():
        time.sleep(0.001)
    print("won" if book.acquire("a.png") is None else "lost", me.pid, flush=True)
    while not stop.exists():
        time.sleep(0.01)
""")


def _holders(tmp_path: Path, n: int, tag: str) -> tuple[list[subprocess.Popen], Path, Path]:
    go, stop = tmp_path / f"go-{tag}", tmp_path / f"stop-{tag}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path / ".autolabel"), str(go), str(stop)],
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    return procs, go, stop


def test_processes_contending_for_one_lease_exactly_one_wins(tmp_path):
    for round_ in range(3):
        procs, go, stop = _holders(tmp_path, 4, str(round_))
        try:
            time.sleep(0.5)  # let them import; all wait for the same file
            go.touch()
            lines = [p.stdout.readline().split() for p in procs]  # type: ignore[union-attr]
        finally:
            stop.touch()
            for p in procs:
                p.wait(timeout=30)
        assert sorted(word for word, _ in lines) == ["lost", "lost", "lost", "won"], lines
        assert lease_files(tmp_path) in ([], [lease_name("a.png")])
        for f in (tmp_path / ".autolabel/leases").glob("*.json"):
            f.unlink()  # the winner's lease, left by a process that ended without releasing


def test_the_lease_of_a_killed_process_on_this_host_is_taken_over_at_once(tmp_path):
    procs, go, stop = _holders(tmp_path, 1, "kill")
    go.touch()
    try:
        word, pid = procs[0].stdout.readline().split()  # type: ignore[union-attr]
        assert word == "won"
        clock = FakeClock()
        bob = book(tmp_path, holder("bob"), clock)
        held = bob.acquire("a.png")
        assert held is not None and held.pid == int(pid)
        os.kill(int(pid), signal.SIGKILL)
        procs[0].wait(timeout=30)
    finally:
        stop.touch()
        procs[0].wait(timeout=30)
    assert bob.holder("a.png") is None, "no clock advanced: the dead pid alone frees it"
    assert bob.acquire("a.png") is None
    assert parse_lease((bob.dir / lease_name("a.png")).read_bytes()).holder == bob.me


# ------------------------------------------------------------------ the review's rules, without a window


def _grid_review(session: ReviewSession, leases: FolderLeases) -> FolderReview:
    """Bob's review with ``session`` and ``leases``, no model: what his grid verifies through."""
    return review_of(session.folder, ProjectSettings(classes=["person"]), model_runs=False, session=session,
                     leases=leases)


def _shared(tmp_path: Path, names=("a.png", "b.png", "c.png")):
    for i, name in enumerate(names):
        write_image(tmp_path / name, seed=i)
    folder = ImageFolder(tmp_path)
    sessions = [ReviewSession(ImageFolder(tmp_path), None, ["person"], None, 0.35) for _ in range(2)]
    leases = [FolderLeases.for_folder(folder, holder(user)) for user in ("alice", "bob")]
    return sessions, leases


def test_an_image_held_elsewhere_opens_read_only_and_writable_once_freed_with_its_new_file(tmp_path):
    (sa, sb), (la, lb) = _shared(tmp_path)
    a = la.open(sa, "a.png")
    b = lb.open(sb, "a.png")
    assert not a.state.read_only and b.state.read_only
    assert b.problem is not None and "held by alice on" in b.problem and "opened read-only" in b.problem
    assert lb.note("a.png") == b.problem and lb.held_by_other("a.png")
    b.state.add_box(proposal(1, 1, 20, 20, "person", 0.9))  # refused: read-only
    assert sb.save("a.png", verify=True).error is not None and not (tmp_path / "a.xml").exists()
    a.state.add_box(proposal(10, 10, 50, 50, "person", 0.9))
    assert sa.save("a.png", verify=True).error is None
    la.leave(sa, "a.png")
    assert lb.scan() == {"a.png"} and not lb.held_by_other("a.png")
    again = lb.open(sb, "a.png")
    assert not again.state.read_only and again.state.verified, "read again: alice's verified file"
    assert [b.xyxy for b in again.state.accepted_boxes()] == [(10, 10, 50, 50)]


def test_the_grid_never_verifies_an_image_held_elsewhere(tmp_path):
    (sa, sb), (la, lb) = _shared(tmp_path)
    la.open(sa, "b.png")
    lb.open(sb, "a.png")
    lb.scan()
    triage = Triage(["a.png", "b.png", "c.png"], 2)
    eligible = lambda rel: not lb.held_by_other(rel)  # noqa: E731 - what grid_triage adds
    assert triage.select("a.png", eligible) == ["a.png", "c.png"]
    triage.open(["a.png", "b.png", "c.png"])  # b.png taken by alice after the page was chosen
    result = triage.verify_page(_grid_review(sb, lb).accept_and_verify)
    lb.drop_claims(keep="a.png")
    assert sorted(result.verified) == ["a.png", "c.png"] and "held by alice" in result.errors["b.png"]
    assert not (tmp_path / "b.xml").exists() and (tmp_path / "c.xml").exists()
    assert lb.book is not None and lb.book.mine() == {"a.png"}, "the grid's claim on c.png is given back"


def test_an_image_whose_save_failed_keeps_its_lease_until_the_save_works(tmp_path, monkeypatch):
    import autolabel_gui.app.conflicts as session_module  # the module that writes VOC files

    (sa, sb), (la, lb) = _shared(tmp_path)
    opened = la.open(sa, "a.png")
    opened.state.add_box(proposal(10, 10, 50, 50, "person", 0.9))
    real = session_module.write_voc

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session_module, "write_voc", full)
    assert sa.save("a.png").error is not None
    la.leave(sa, "a.png")
    la.open(sa, "b.png")
    assert lb.open(sb, "a.png").state.read_only, "the edits still to be written keep a.png"
    assert la.renew(sa, "b.png") == [] and lb.book is not None and lb.book.holder("a.png") == la.book.me
    monkeypatch.setattr(session_module, "write_voc", real)
    assert sa.retry_unsaved() == []
    assert la.renew(sa, "b.png") == []
    assert lb.scan() == {"a.png", "b.png"} and not lb.held_by_other("a.png") and lb.held_by_other("b.png")
    again = lb.open(sb, "a.png")
    assert not again.state.read_only and [b.xyxy for b in again.state.accepted_boxes()] == [(10, 10, 50, 50)]


def test_the_grid_never_writes_an_image_changed_on_disk_since_its_page_was_shown(tmp_path):
    (sa, sb), (la, lb) = _shared(tmp_path)
    shown = sb.open("c.png").state  # on bob's grid page, no lease yet
    opened = la.open(sa, "c.png")
    opened.state.add_box(proposal(5, 5, 30, 30, "person", 0.9))
    assert sa.save("c.png", verify=True).error is None
    la.leave(sa, "c.png")
    written = (tmp_path / "c.xml").read_bytes()
    triage = Triage(["c.png"], 2)
    triage.open(["c.png"])
    result = triage.verify_page(_grid_review(sb, lb).accept_and_verify)
    assert result.verified == [] and "changed on disk" in result.errors["c.png"]
    assert (tmp_path / "c.xml").read_bytes() == written, "alice's file is left as she saved it"
    assert sb.get("c.png") is not shown, "the single view reads the new file"


# ------------------------------------------------------------------ two windows on one folder

THREE = ["a.png", "b.png", "c.png"]
PROPOSALS = {rel: [proposal(10, 10, 50, 60, "person", 0.9)] for rel in THREE}


def _activate(h) -> None:
    h.window.activateWindow()
    h.window.raise_()
    h.qtbot.waitUntil(lambda: QApplication.activeWindow() is h.window, timeout=5000)
    h.window.canvas.setFocus()


def _press(h, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    _activate(h)
    QTest.keyClick(h.window.canvas, key, modifier)
    QApplication.processEvents()


def test_two_windows_on_one_folder_never_write_the_same_image(open_review):
    a = open_review(THREE, PROPOSALS)
    assert a.controller.current == "a.png" and not a.state.read_only
    b = open_review([], PROPOSALS, root=a.root)
    b.controller.review.go_to("a.png")
    b.wait_shown("a.png")
    assert b.state.read_only
    said = b.window.message_label.text()
    assert "held by" in said and "opened read-only" in said and a.controller.review.leases.book.me.user in said
    assert "held by" in b.controller.banner.text() and b.controller.banner.isVisible()
    files = b.controller.files
    row = files.index(files.row_of("a.png"))
    assert "held by" in files.data(row, Qt.ItemDataRole.ToolTipRole)
    assert files.data(row, Qt.ItemDataRole.DisplayRole) != "a.png", "a lock mark on the name"

    _press(b, Qt.Key.Key_Space)
    assert b.controller.current == "a.png" and not (a.root / "a.xml").exists()
    assert "not saved" in b.window.message_label.text()

    b.controller.review.go_to("c.png")
    b.wait_shown("c.png")
    _press(b, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)  # next unverified, wrapping
    assert b.controller.current == "b.png", "a.png, held by window A, is skipped"

    _press(a, Qt.Key.Key_D)  # A moves on, onto b.png, which B holds: read-only there
    a.wait_shown("b.png")
    assert a.state.read_only and "held by" in a.window.message_label.text()
    b.controller.review.scan_leases()
    b.controller.review.go_to("a.png")
    b.wait_shown("a.png")
    assert not b.state.read_only
    _press(b, Qt.Key.Key_Space)
    assert b.voc("a.png").verified and b.saved("a.png") == [("person", (10, 10, 50, 60))]
    a.close()
    b.close()
    assert list((a.root / ".autolabel/leases").glob("*.json")) == [], "closing gives every lease back"


def test_the_image_on_screen_becomes_writable_once_its_holder_moves_on(open_review):
    a = open_review(THREE, PROPOSALS)
    b = open_review([], PROPOSALS, root=a.root)
    b.controller.review.go_to("a.png")
    b.wait_shown("a.png")
    assert b.state.read_only
    _press(a, Qt.Key.Key_Space)  # A verifies a.png and moves on
    assert a.voc("a.png").verified and a.controller.current != "a.png"
    b.controller.review.scan_leases()  # what B's timer does every few seconds
    assert b.controller.current == "a.png" and not b.state.read_only and b.state.verified
    assert "yours" in b.window.message_label.text() and "held by" not in b.controller.banner.text()
