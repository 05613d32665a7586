"""One folder, many hands (issue 19): two annotators saving one image, several processes on one
cache, and the network file system mode. Outcomes are bytes on disk and parsed boxes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from autolabel_gui.app.conflicts import ABSENT, CONFLICTS_DIR, NOT_THIS_TOOL, ConflictChoice, flat_name
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.core.atomic import new_file_mode
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import ReviewRecord
from autolabel_gui.core.save_notes import SaveNote, note_path, read_note, write_note
from autolabel_gui.core.sharedfs import SHARED_FS_ENV, is_network_type, is_shared_filesystem, mount_of
from autolabel_gui.formats.voc import read_voc, voc_bytes, write_voc

from tests.fixtures.window import write_image

ROOT = Path(__file__).resolve().parent.parent
WORKERS = Path(__file__).resolve().parent / "shared_workers.py"
CLASSES = ["person", "cat", "cup", "vehicle"]


def _box(x0: float, y0: float, x1: float, y1: float, label: str = "person") -> Box:
    return Box(x0, y0, x1, y1, label, None, BoxState.ACCEPTED)


def _folder(tmp_path: Path, images=("rocket.png",)) -> ImageFolder:
    for i, rel in enumerate(images):
        write_image(tmp_path / rel, seed=i)
    return ImageFolder(tmp_path)


def _session(folder: ImageFolder, user: str, cache: ProposalCache | None = None) -> ReviewSession:
    return ReviewSession(folder, cache, CLASSES, None, 0.35, user=user)


def _boxes(path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    return [(b.label, b.xyxy) for b in read_voc(path).boxes]


def _conflict_files(root: Path) -> list[Path]:
    folder = root / ".autolabel" / CONFLICTS_DIR
    return sorted(folder.glob("*.xml")) if folder.is_dir() else []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


A_BOX = ("person", (32.0, 10.0, 80.0, 60.0))  # xmin 33 in the file
B_BOX = ("cat", (100.0, 40.0, 150.0, 90.0))


def _two_saves(tmp_path: Path):
    """A and B open rocket.png; A saves a box at xmin 33, then B saves its own box."""
    return _two_saves_in(_folder(tmp_path))


def _two_saves_in(folder: ImageFolder):
    a, b = _session(folder, "alice"), _session(folder, "bob")
    a.open("rocket.png").state.add_box(_box(32, 10, 80, 60))
    b.open("rocket.png").state.add_box(_box(100, 40, 150, 90, "cat"))
    assert a.save("rocket.png", verify=True).written
    saved = b.save("rocket.png", verify=True)
    return folder, a, b, saved


# ---------------------------------------------------------------------------- the defect


def test_second_save_of_an_image_does_not_replace_the_first(tmp_path):
    folder, _a, b, saved = _two_saves(tmp_path)
    voc = folder.voc_path("rocket.png")
    assert not saved.written and saved.error is None
    conflict = saved.conflict
    assert conflict is not None
    assert _boxes(voc) == [A_BOX]  # A's save is still the file
    assert 'xmin>33<' in voc.read_text().replace(" ", "").replace("\n", "")
    # B's version is kept whole and parses
    [copy] = _conflict_files(tmp_path)
    assert copy == conflict.mine_copy
    assert copy.name.startswith(f"{flat_name('rocket.png')}.") and copy.name.endswith(".bob.xml")
    assert _boxes(copy) == [B_BOX] and read_voc(copy).verified
    assert copy.stat().st_mode & 0o777 == new_file_mode()  # teammates can read it
    # who and when: the save note matches the file on disk
    assert conflict.saved_by is not None and conflict.saved_by.startswith("alice@")
    assert conflict.saved_at is not None
    assert [(x.label, x.xyxy) for x in conflict.theirs.boxes] == [A_BOX]
    assert "alice@" in conflict.text and str(copy) in conflict.text
    assert b.conflict("rocket.png") is conflict
    assert b.unsaved() == {}  # not retried blindly: the copy is on disk, the question is asked


def test_a_file_created_meanwhile_is_a_conflict_too(tmp_path):
    folder = _folder(tmp_path)
    b = _session(folder, "bob")
    b.open("rocket.png").state.add_box(_box(100, 40, 150, 90, "cat"))
    assert b.identity("rocket.png") == ABSENT
    labels = ImageLabels.for_image(folder.image_path("rocket.png"), 200, 150, [_box(32, 10, 80, 60)])
    write_voc(folder.voc_path("rocket.png"), labels)  # another tool, no save note
    saved = b.save("rocket.png")
    assert saved.conflict is not None and not saved.written
    assert _boxes(folder.voc_path("rocket.png")) == [A_BOX]
    assert saved.conflict.saved_by is None and saved.conflict.who == NOT_THIS_TOOL
    assert saved.conflict.saved_at == pytest.approx(folder.voc_path("rocket.png").stat().st_mtime)
    assert NOT_THIS_TOOL in saved.conflict.text


def test_a_stale_or_hostile_save_note_names_nobody(tmp_path):
    folder, _a, b, saved = _two_saves(tmp_path)
    note = note_path(folder.state_dir, "rocket.png")
    for text in ('{"relpath": "rocket.png", "sha256": "00", "user": "x", "host": "y", "saved_at": 1}',
                 "[1, 2]", "\x00\xff not json", json.dumps({"relpath": "other.png"})):
        note.write_bytes(text.encode("latin-1"))
        assert read_note(folder.state_dir, "rocket.png") is None
    write_note(folder.state_dir, SaveNote("rocket.png", "a" * 64, "mallory", "h", 5.0))  # valid, but stale
    resolved = b.resolve("rocket.png", ConflictChoice.THEIRS)
    assert resolved.error is None
    b.open("rocket.png").state.add_box(_box(5, 5, 20, 20, "cup"))
    other = _session(folder, "carol")
    other.open("rocket.png").state.add_box(_box(150, 100, 190, 140, "cup"))
    assert other.save("rocket.png").written
    note.write_bytes(b"{broken")
    conflict = b.save("rocket.png").conflict
    assert conflict is not None and conflict.who == NOT_THIS_TOOL


def test_unverified_prelabel_output_is_replaced_without_a_conflict(tmp_path):
    folder = _folder(tmp_path)
    cache = ProposalCache.for_folder(tmp_path)
    b = _session(folder, "bob", cache)
    b.open("rocket.png").state.add_box(_box(100, 40, 150, 90, "cat"))
    voc = folder.voc_path("rocket.png")
    labels = ImageLabels.for_image(folder.image_path("rocket.png"), 200, 150, [_box(32, 10, 80, 60)])
    write_voc(voc, labels)  # what label --voc-dir does
    cache.put_output(voc, _sha(voc))
    saved = b.save("rocket.png", verify=True)
    assert saved.written and saved.conflict is None
    assert _boxes(voc) == [B_BOX] and _conflict_files(tmp_path) == []
    # once verified (or edited by hand) it is someone's work again
    labels.verified = True
    write_voc(voc, labels)
    cache.put_output(voc, _sha(voc))
    b.open("rocket.png").state.add_box(_box(5, 5, 20, 20, "cup"))
    assert b.save("rocket.png").conflict is not None
    cache.close()


def test_a_change_between_the_check_and_the_rename_is_caught(tmp_path, monkeypatch):
    """The ``expected`` hook runs after the temporary file is complete, just before the rename."""
    from autolabel_gui.core import atomic

    folder, _a, b, _ = _two_saves(tmp_path)
    b.resolve("rocket.png", ConflictChoice.THEIRS)
    b.open("rocket.png").state.add_box(_box(5, 5, 20, 20, "cup"))
    voc = folder.voc_path("rocket.png")
    sneaky = voc_bytes(ImageLabels.for_image(folder.image_path("rocket.png"), 200, 150, [_box(0, 0, 9, 9, "cat")]))
    real_fsync = atomic.os.fsync
    done = []

    def fsync_then_someone_saves(fd):
        real_fsync(fd)
        if not done and not os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            done.append(1)
            voc.write_bytes(sneaky)  # someone saves while our temporary file is being written

    monkeypatch.setattr(atomic.os, "fsync", fsync_then_someone_saves)
    saved = b.save("rocket.png")
    monkeypatch.undo()
    assert done and saved.conflict is not None and not saved.written
    assert voc.read_bytes() == sneaky
    assert [p.name for p in voc.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert ("cup", (5.0, 5.0, 20.0, 20.0)) in _boxes(saved.conflict.mine_copy)


# ---------------------------------------------------------------------------- resolving


def test_keep_theirs_reloads_their_file_and_keeps_mine_aside(tmp_path):
    folder, _a, b, saved = _two_saves(tmp_path)
    voc = folder.voc_path("rocket.png")
    theirs = voc.read_bytes()
    resolved = b.resolve("rocket.png", ConflictChoice.THEIRS)
    assert resolved.error is None and not resolved.written
    assert voc.read_bytes() == theirs
    assert [(x.label, x.xyxy) for x in b.get("rocket.png").accepted_boxes()] == [A_BOX]
    assert _boxes(saved.conflict.mine_copy) == [B_BOX]
    assert str(saved.conflict.mine_copy) in resolved.text
    # from now on B edits on top of A's file: no conflict
    b.open("rocket.png").state.add_box(_box(5, 5, 20, 20, "cup"))
    assert b.save("rocket.png").written
    assert _boxes(voc) == [A_BOX, ("cup", (5.0, 5.0, 20.0, 20.0))]


def test_keep_mine_writes_mine_and_keeps_theirs_aside(tmp_path):
    folder, _a, b, saved = _two_saves(tmp_path)
    voc = folder.voc_path("rocket.png")
    theirs = voc.read_bytes()
    resolved = b.resolve("rocket.png", ConflictChoice.MINE)
    assert resolved.written and resolved.error is None
    assert _boxes(voc) == [B_BOX] and read_voc(voc).verified
    copies = _conflict_files(tmp_path)
    assert theirs in [p.read_bytes() for p in copies]  # A's version, byte for byte
    assert saved.conflict.mine_copy in copies
    assert not b.get("rocket.png").boxes_changed
    assert b.save("rocket.png").conflict is None


@pytest.mark.parametrize(("a_verifies", "verify_now", "verified"),
                         [(True, False, True), (False, False, False), (False, True, True)])
def test_merge_keeps_both_sets_of_boxes_once(tmp_path, a_verifies, verify_now, verified):
    folder = _folder(tmp_path)
    a, b = _session(folder, "alice"), _session(folder, "bob")
    a.open("rocket.png").state.add_box(_box(32, 10, 80, 60))
    sb = b.open("rocket.png").state
    sb.add_box(_box(33, 11, 80, 61))  # A's object again: counted once
    sb.add_box(_box(100, 40, 150, 90, "cat"))
    sb.add_box(_box(32, 10, 80, 60, "cup"))  # same place, another class: kept
    assert a.save("rocket.png", verify=a_verifies).written
    saved = b.save("rocket.png", verify=True)
    assert saved.conflict is not None
    voc = folder.voc_path("rocket.png")
    theirs = voc.read_bytes()
    resolved = b.resolve("rocket.png", ConflictChoice.MERGE, verify=verify_now)
    assert resolved.written, resolved.text
    assert _boxes(voc) == [A_BOX, B_BOX, ("cup", (32.0, 10.0, 80.0, 60.0))]
    assert read_voc(voc).verified is verified
    copies = [p.read_bytes() for p in _conflict_files(tmp_path)]
    assert theirs in copies and saved.conflict.mine_copy.read_bytes() in copies
    assert len(b.get("rocket.png").accepted_boxes()) == 3 and not b.get("rocket.png").boxes_changed


def test_resolving_while_they_save_again_asks_again(tmp_path):
    folder, a, b, saved = _two_saves(tmp_path)
    a.open("rocket.png").state.add_box(_box(5, 5, 20, 20, "cup"))
    assert a.save("rocket.png").written
    third = folder.voc_path("rocket.png").read_bytes()
    resolved = b.resolve("rocket.png", ConflictChoice.MINE)
    assert not resolved.written and resolved.conflict is not None
    assert folder.voc_path("rocket.png").read_bytes() == third
    assert b.conflict("rocket.png") is resolved.conflict


# ---------------------------------------------------------------------------- two windows


def test_ctrl_s_in_a_second_window_asks_and_keeps_both(open_review):
    from autolabel_gui.core.leases import lease_name
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from tests.fixtures.window import proposal

    proposals = {"rocket.png": [proposal(32, 10, 80, 60, "person", 0.9), proposal(100, 40, 150, 90, "cat", 0.8)]}
    a = open_review(["rocket.png", "other.png"], proposals)
    b = open_review(["rocket.png", "other.png"], proposals, root=a.root)
    # A's laptop slept past its lease (it expired; A does not know yet): B takes the image.
    a.controller.review.go_to("rocket.png")
    (a.root / ".autolabel" / "leases" / lease_name("rocket.png")).unlink(missing_ok=True)
    b.controller.review.go_to("rocket.png")
    assert not b.state.read_only
    a.controller.review.session.voc.user = "alice"
    b.controller.review.session.voc.user = "bob"
    b.conflict_answers.append(ConflictChoice.MERGE)
    asked = b.conflicts

    def press_in(h, key, modifier=Qt.KeyboardModifier.NoModifier):
        h.window.activateWindow()
        h.window.canvas.setFocus()
        QApplication.processEvents()
        h.press(key, modifier)

    # A accepts the person (xmin 33) and saves; B, who had the image open, rejects it,
    # accepts the cat and presses Ctrl+S
    press_in(a, Qt.Key.Key_Tab)
    press_in(a, Qt.Key.Key_Return)
    press_in(a, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert a.saved("rocket.png") == [A_BOX]
    assert b.state.items and not asked and not a.conflicts
    b.controller.review.edit(lambda s: (s.select(0), s.delete_selected(), s.select(1), s.accept_selected()))
    press_in(b, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    [conflict] = asked
    assert conflict.saved_by is not None and conflict.saved_by.startswith("alice@")
    assert _boxes(conflict.mine_copy) == [B_BOX]
    assert b.saved("rocket.png") == [A_BOX, B_BOX]  # merged: nobody's box lost
    assert b.voc("rocket.png").verified
    text = b.window.message_label.toolTip()
    assert "merged" in text and "Saved rocket.xml (verified)" not in text
    assert [(x.label, x.xyxy) for x in b.state.accepted_boxes()] == [A_BOX, B_BOX]


# ---------------------------------------------------------------------------- processes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop(SHARED_FS_ENV, None)
    return env


def test_two_processes_saving_at_random_never_lose_a_save(tmp_path):
    images = ["a.png", "sub/b.png", "c.png"]
    _folder(tmp_path, images)
    logs = [tmp_path / f"log-{user}.jsonl" for user in ("alice", "bob")]
    procs = [subprocess.Popen([sys.executable, str(WORKERS), "review", str(tmp_path), str(seed), "200", user,
                               str(log)], env=_env(), stderr=subprocess.PIPE, text=True)
             for seed, user, log in ((1, "alice", logs[0]), (2, "bob", logs[1]))]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    entries = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    written = [e for e in entries if "written" in e]
    assert len(written) > 50 and any("copy" in e for e in entries)  # both things happened
    folder = ImageFolder(tmp_path)
    current = {}
    for rel in images:
        voc = folder.voc_path(rel)
        read_voc(voc)  # every file parses
        current[rel] = _sha(voc)
    kept = set()
    for copy in _conflict_files(tmp_path):
        read_voc(copy)
        kept.add(_sha(copy))
    replaced_knowingly = {(e["rel"], e["expected"]) for e in written}
    lost = [e for e in written if e["written"] != current[e["rel"]] and e["written"] not in kept
            and (e["rel"], e["written"]) not in replaced_knowingly]
    assert lost == []
    assert all(Path(e["copy"]).is_file() for e in entries if "copy" in e)


def _check_cache(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = 0
        for (boxes,) in conn.execute("SELECT boxes FROM proposals"):
            assert isinstance(json.loads(boxes), list)
            rows += 1
    finally:
        conn.close()
    with ProposalCache(path) as cache:
        rows += sum(1 for _ in cache.iter_reviews())
        for (rel,) in cache._conn.execute("SELECT relpath FROM proposals").fetchall():
            assert cache.get_review(rel) is None or cache.get_review(rel).run_id == "run-1"
        for (digest,) in cache._conn.execute("SELECT sha256 FROM outputs").fetchall():
            assert len(digest) == 64
    return rows


@pytest.mark.parametrize("shared", ["0", "1"])
def test_three_processes_write_one_cache_while_one_is_killed(tmp_path, shared, monkeypatch):
    path = tmp_path / ".autolabel" / "cache.sqlite"
    env = _env()
    env[SHARED_FS_ENV] = shared
    procs = [subprocess.Popen([sys.executable, str(WORKERS), "cache", str(path), str(seed), "300"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2, 3)]
    victim = procs[1]
    assert victim.stdout is not None
    for line in victim.stdout:  # mid-way through its writes, between or inside transactions
        if line.strip() == "committed 60":
            break
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    for p in (procs[0], procs[2]):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.splitlines()[-1] == "committed 300"
    conn = sqlite3.connect(path)  # the mode the file was left in (WAL is recorded in the file)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == ("delete" if shared == "1" else "wal")
    conn.close()
    monkeypatch.setenv(SHARED_FS_ENV, shared)
    assert _check_cache(path) > 0


# ---------------------------------------------------------------------------- network file systems


MOUNTS = """\
sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /mnt/share nfs4 rw,vers=4.2 0 0
//nas/team /mnt/share/smb\\040drive cifs rw 0 0
/dev/sdb1 /mnt/share/local ext4 rw 0 0
alice@h:/data /home/u/sshfs fuse.sshfs rw 0 0
"""


@pytest.mark.parametrize(("path", "fstype"), [
    ("/home/u/x", "ext4"), ("/mnt/share", "nfs4"), ("/mnt/share/imgs/a", "nfs4"),
    ("/mnt/share/smb drive/imgs", "cifs"), ("/mnt/share/local/imgs", "ext4"), ("/mnt/shared", "ext4"),
    ("/home/u/sshfs/set", "fuse.sshfs"),
])
def test_the_longest_mount_point_names_the_file_system(path, fstype):
    found = mount_of(path, MOUNTS)
    assert found is not None and found[1] == fstype
    assert is_network_type(fstype) is (fstype not in ("ext4",))


def test_the_override_decides(tmp_path, monkeypatch):
    monkeypatch.setenv(SHARED_FS_ENV, "1")
    assert is_shared_filesystem(tmp_path)
    monkeypatch.setenv(SHARED_FS_ENV, "0")
    assert not is_shared_filesystem(tmp_path)


def test_on_a_network_file_system_the_cache_uses_a_rollback_journal(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(SHARED_FS_ENV, "1")
    with caplog.at_level("INFO", logger="autolabel_gui.core.cache"), ProposalCache.for_folder(tmp_path) as cache:
        assert cache.shared and cache.journal_mode == "delete"
        assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert any("journal_mode=delete" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / ".autolabel" / "cache.sqlite-wal").exists()


def test_the_conflict_question_names_who_and_gives_each_answer(qtbot, tmp_path):
    from autolabel_gui.gui.conflict_dialog import ask_conflict
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    _folder, _a, _b, saved = _two_saves(tmp_path)
    conflict = saved.conflict
    assert conflict is not None
    seen: dict[str, object] = {}

    def answer(button: str | None) -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen["text"] = box.text() + "\n" + box.informativeText()
        buttons = {b.text(): b for b in box.buttons()}
        seen["buttons"] = sorted(buttons)
        if button is None:
            qtbot.keyClick(box, Qt.Key.Key_Escape)
        else:
            buttons[button].click()

    for button, choice in (("Keep theirs", ConflictChoice.THEIRS), ("Keep mine", ConflictChoice.MINE),
                           ("Merge both", ConflictChoice.MERGE), (None, ConflictChoice.THEIRS)):
        QTimer.singleShot(0, lambda b=button: answer(b))
        assert ask_conflict(None, conflict) is choice
    assert seen["buttons"] == ["Keep mine", "Keep theirs", "Merge both"]
    assert conflict.who in str(seen["text"]) and str(conflict.mine_copy) in str(seen["text"])


@pytest.mark.parametrize("state_mode", [0o777, 0o2770, 0o700])
def test_folders_made_in_autolabel_take_its_mode_not_the_umask(tmp_path, state_mode):
    """Seen with two Unix users: under umask 022 the first annotator's leases/ and saves/ were
    0755 in a .autolabel the team had made 0777, and the second reviewed without leases."""
    from autolabel_gui.core.leases import Holder, LeaseBook

    folder = _folder(tmp_path)
    folder.state_dir.mkdir()
    os.chmod(folder.state_dir, state_mode)
    old = os.umask(0o022)
    try:
        LeaseBook(folder.state_dir, Holder.current(), root=folder.root).acquire("rocket.png")
        _two_saves_in(folder)
    finally:
        os.umask(old)
    for name in ("leases", "saves", "conflicts"):
        assert stat.S_IMODE((folder.state_dir / name).stat().st_mode) == state_mode, name


@pytest.mark.parametrize("folder_mode", [0o777, 0o755, 0o700])
def test_the_cache_every_annotator_writes_takes_the_folders_mode(tmp_path, folder_mode):
    """Seen as a second Unix user under Xvfb: root's cache.sqlite was 0644 in a folder the team
    had made 0777, and bob's window said "the rejected proposals … are not remembered"."""
    root = tmp_path / "team"
    root.mkdir()
    os.chmod(root, folder_mode)
    old = os.umask(0o022)
    state = root / ".autolabel"
    try:
        ProjectSettings(classes=["cat"]).save(root)  # the window saves the settings first: it makes .autolabel
        with ProposalCache.for_folder(root) as cache:
            cache.put_review("a.png", ReviewRecord("run"))
            modes = {name: stat.S_IMODE((state / name).stat().st_mode)
                     for name in ("cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm")}
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == folder_mode
    assert modes == dict.fromkeys(modes, folder_mode & 0o666)


@pytest.mark.parametrize("link", ["saves", "conflicts", ".autolabel"])
def test_a_link_in_autolabel_never_makes_a_save_write_elsewhere(tmp_path, link):
    """Seen on a folder someone handed over: .autolabel/saves -> /elsewhere received the save
    notes and the commit lock."""
    from autolabel_gui.core.leases import Holder, LeaseBook, LeasesUnavailable

    root, elsewhere = tmp_path / "folder", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    folder = _folder(root)
    if link == ".autolabel":
        (root / ".autolabel").symlink_to(elsewhere)
    else:
        folder.state_dir.mkdir()
        (folder.state_dir / link).symlink_to(elsewhere)
    _folder_saves = _two_saves_in(folder)[3]
    assert list(elsewhere.iterdir()) == [], "nothing written through the link"
    assert _boxes(folder.voc_path("rocket.png")) == [A_BOX], "the first save stands"
    assert _folder_saves.conflict is not None or _folder_saves.error is not None, "the second is not written over it"
    if link == ".autolabel":
        with pytest.raises(LeasesUnavailable):
            LeaseBook(folder.state_dir, Holder.current(), root=folder.root)
        assert list(elsewhere.iterdir()) == []
