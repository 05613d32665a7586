"""What travels with a folder (its .autolabel: settings, cache) is untrusted: found by running
``label`` and ``stats`` on folders built as someone hostile would (the closing note's table)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from autolabel_gui.app.conflicts import SharedVocWriter
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.stats import compute_stats
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import ImageKey, ReviewRecord
from autolabel_gui.core.save_notes import note_path, read_note

from tests.fixtures.images import ImageSpec, write_image


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return tmp_path / "user-cache"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _victim(tmp_path: Path) -> Path:
    """Another project's .autolabel, with settings and a cache of its own."""
    victim = tmp_path / "victim" / ".autolabel"
    ProjectSettings(classes=["dog"]).save(victim.parent)
    with ProposalCache(victim / "cache.sqlite") as cache:
        cache.put(ImageKey("x.jpg", 1, 1), "run", [Box(1, 2, 3, 4, "dog", 0.9, BoxState.PROPOSED)])
    return victim


def test_a_linked_autolabel_is_neither_read_nor_written(tmp_path: Path, user_cache: Path) -> None:
    victim = _victim(tmp_path)
    before = {p.name: _digest(p) for p in victim.iterdir()}
    root = tmp_path / "handed"
    root.mkdir()
    (root / ".autolabel").symlink_to(victim)

    with pytest.raises(ValueError, match="leads outside the folder"):
        ProjectSettings.load(root)
    with pytest.raises(ValueError, match="leads outside the folder"):
        ProjectSettings(classes=["cat"]).save(root)
    with ProposalCache.for_folder(root) as cache:
        cache.put(ImageKey("a.jpg", 1, 1), "run", [])
        assert cache.path.is_relative_to(user_cache)
    assert {p.name: _digest(p) for p in victim.iterdir()} == before


def test_a_cache_linked_to_another_database_is_never_opened(tmp_path: Path, user_cache: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE secrets (v TEXT)")
        conn.execute("INSERT INTO secrets VALUES ('keep me')")
    conn.close()
    before = _digest(other)
    root = tmp_path / "handed"
    (root / ".autolabel").mkdir(parents=True)
    (root / ".autolabel" / "cache.sqlite").symlink_to(other)
    with ProposalCache.for_folder(root) as cache:
        assert cache.path.is_relative_to(user_cache)
    assert _digest(other) == before and not other.with_name("other.db-wal").exists()


ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
DOCTORED = {
    "view": ["DROP TABLE reviews", f"CREATE VIEW reviews(relpath, record, updated_ns) AS SELECT x, '{{}}', 0 FROM "
                                   f"({ENDLESS})"],
    "trigger": [f"CREATE TRIGGER t AFTER INSERT ON proposals BEGIN SELECT count(*) FROM ({ENDLESS}); END"],
}


@pytest.mark.parametrize("attack", sorted(DOCTORED))
def test_a_doctored_cache_is_set_aside_instead_of_hanging(tmp_path: Path, attack: str) -> None:
    """A view over an endless query (every read hung) or a trigger running one (label hung after
    its first image): the file is moved aside and a fresh cache started, within seconds."""
    path = tmp_path / ".autolabel" / "cache.sqlite"
    ProposalCache(path).close()
    with sqlite3.connect(path) as conn:
        for statement in DOCTORED[attack]:
            conn.execute(statement)
    conn.close()
    script = (f"from autolabel_gui.core.cache import ProposalCache\n"
              f"from autolabel_gui.core.records import ImageKey, ReviewRecord\n"
              f"c = ProposalCache.for_folder({str(tmp_path)!r})\n"
              f"c.put(ImageKey('a.jpg', 1, 1), 'run', [])\n"
              f"c.put_review('a.jpg', ReviewRecord('run'))\n"
              f"print(len(list(c.iter_reviews())), c.moved_aside is not None)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True"]
    assert "not a cache of this tool" in done.stderr
    with pytest.raises(sqlite3.DatabaseError):  # stats opens it read-only: says "not read", never hangs
        aside = next(tmp_path.joinpath(".autolabel").glob("cache.sqlite.corrupt-*"))
        ProposalCache(aside, read_only=True)


BAD_RECORDS = {
    "wrong shape": '{"run_id": 1, "rejected": "x", "outcomes": 5}',
    "deep": '{"run_id": "r", "rejected": ' + "[" * 100_000 + "]" * 100_000 + ', "outcomes": []}',
    "short outcome": '{"run_id": "r", "rejected": [], "outcomes": [["dog", 0.5]]}',
    "bad state": '{"run_id": "r", "rejected": [{"xyxy": [1, 2, 3, 4], "label": "dog", "state": "bogus"}], '
                 '"outcomes": []}',
    "text corners": '{"run_id": "r", "rejected": [{"xyxy": ["a", 2, 3, 4], "label": "dog"}], "outcomes": []}',
    "not json": "not json",
}


def test_doctored_rows_are_left_out_with_a_warning_never_a_traceback(tmp_path: Path, caplog) -> None:
    write_image(tmp_path / "a.png", ImageSpec(size=(64, 48)))
    cache = ProposalCache.for_folder(tmp_path)
    key = ImageKey.from_path(tmp_path, "a.png")
    cache.put_review("good.png", ReviewRecord("r"))
    with sqlite3.connect(cache.path) as conn:
        for rel, text in BAD_RECORDS.items():
            conn.execute("INSERT INTO reviews VALUES (?, ?, 0)", (rel, text))
        rows = (("short", "[[1, 2, 3]]"), ("text", '[["a", 2, 3, 4, "dog", 0.5]]'), ("label", "[[1, 2, 3, 4, 5, 0.5]]"))
        for run, boxes in rows:
            conn.execute("INSERT INTO proposals VALUES (?, ?, ?, ?, ?, 0)",
                         (key.relpath, run, key.size, key.mtime_ns, boxes))
    conn.close()
    assert [rel for rel, _ in cache.iter_reviews()] == ["good.png"]
    assert all(cache.get_review(rel) is None for rel in BAD_RECORDS)
    assert all(cache.get(key, run) is None for run in ("short", "text", "label")), "detected again"
    stats = compute_stats(ImageFolder(tmp_path), ["dog"], cache, "short")
    assert stats.images == 1
    assert "review record of wrong shape not read" in caplog.text


def _tables_of_this_tool_but(reviews: str) -> str:
    return f"""
        CREATE TABLE proposals (relpath TEXT NOT NULL, run_id TEXT NOT NULL, size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL, boxes TEXT NOT NULL, created_ns INTEGER NOT NULL,
            PRIMARY KEY (relpath, run_id)) WITHOUT ROWID;
        {reviews};
        CREATE TABLE outputs (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL) WITHOUT ROWID;
        PRAGMA user_version=2;
    """


OTHER_REVIEWS = {
    # a GENERATED column runs its expression on every read: 20 MB per row hung stats and the
    # window (verified_classes) for minutes; 900 MB per row ended stats in a MemoryError
    "generated": "CREATE TABLE reviews (relpath TEXT PRIMARY KEY, updated_ns INTEGER NOT NULL, record TEXT "
                 "GENERATED ALWAYS AS (printf('%.*c', 1000 + length(relpath), 'x')) VIRTUAL) WITHOUT ROWID",
    "check": "CREATE TABLE reviews (relpath TEXT PRIMARY KEY, record TEXT NOT NULL CHECK (length(record) > 0), "
             "updated_ns INTEGER NOT NULL) WITHOUT ROWID",
    "default": "CREATE TABLE reviews (relpath TEXT PRIMARY KEY, record TEXT NOT NULL DEFAULT (zeroblob(9)), "
               "updated_ns INTEGER NOT NULL) WITHOUT ROWID",
}


@pytest.mark.parametrize("kind", sorted(OTHER_REVIEWS))
def test_a_reviews_table_with_a_generated_column_is_not_trusted(tmp_path: Path, kind: str) -> None:
    """Only the names and types of the file's objects were checked: a ``reviews`` table of other
    columns (a GENERATED one, a CHECK, a DEFAULT expression) passed. Each table's SQL must be the
    very statement this tool makes (whitespace aside), or the file is set aside."""
    write_image(tmp_path / "a.png", ImageSpec(size=(64, 48)))
    path = tmp_path / ".autolabel" / "cache.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.executescript(_tables_of_this_tool_but(OTHER_REVIEWS[kind]))
    if kind == "generated":
        conn.execute("INSERT INTO reviews(relpath, updated_ns) VALUES ('a.png', 1)")
    conn.close()
    with ProposalCache.for_folder(tmp_path) as cache:
        assert cache.moved_aside is not None, "a cache whose table runs SQL of the folder's on reads was opened"
        assert cache.verified_classes() == {}
    aside = next(path.parent.glob("cache.sqlite.corrupt-*"))
    with pytest.raises(sqlite3.DatabaseError, match="not a cache of this tool"):
        ProposalCache(aside, read_only=True)


def test_this_tools_own_tables_and_an_older_version_are_trusted(tmp_path: Path) -> None:
    """The exact statements pass however they are spaced, and a version 1 file (no ``outputs``)
    opens and is upgraded, nothing set aside."""
    path = tmp_path / ".autolabel" / "cache.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.executescript("""CREATE TABLE proposals (relpath TEXT NOT NULL, run_id TEXT NOT NULL,
        size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, boxes TEXT NOT NULL, created_ns INTEGER NOT NULL,
        PRIMARY KEY (relpath, run_id)) WITHOUT ROWID;
        CREATE TABLE reviews (relpath TEXT PRIMARY KEY,   record TEXT NOT NULL,
                              updated_ns INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO reviews VALUES ('a.png', '{"run_id": "r", "rejected": [], "outcomes": []}', 1);
        PRAGMA user_version=1;""")
    conn.close()
    with ProposalCache.for_folder(tmp_path) as cache:
        assert cache.moved_aside is None and cache.path == path
        assert [rel for rel, _ in cache.iter_reviews()] == ["a.png"]
        cache.put_output(tmp_path / "a.xml", "0" * 64)
    with ProposalCache(path) as cache:
        assert cache.moved_aside is None and cache.wrote("0" * 64)


def test_an_over_long_row_is_skipped_before_it_reaches_python(tmp_path: Path, caplog) -> None:
    """A review record of 300,000 rejected boxes (62 MB of cache) took the window 14 s to open;
    a value over ``MAX_ROW_TEXT`` is left out by the query, with the doctored row's warning."""
    from autolabel_gui.core.cache import MAX_ROW_TEXT

    write_image(tmp_path / "a.png", ImageSpec(size=(64, 48)))
    key = ImageKey.from_path(tmp_path, "a.png")
    box = '{"xyxy": [1, 2, 3, 4], "label": "dog", "state": "rejected"}'
    huge = ('{"run_id": "r", "verified_classes": ["dog"], "outcomes": [], "rejected": ['
            + ", ".join([box] * (MAX_ROW_TEXT // len(box) + 1)) + "]}")
    with ProposalCache.for_folder(tmp_path) as cache:
        cache.put_review("good.png", ReviewRecord("r", verified_classes=["dog"]))
        with sqlite3.connect(cache.path) as conn:
            conn.execute("INSERT INTO reviews VALUES ('a.png', ?, 0)", (huge,))
            conn.execute("INSERT INTO proposals VALUES (?, 'run', ?, ?, ?, 0)",
                         (key.relpath, key.size, key.mtime_ns, "[" + ", ".join(['[1, 2, 3, 4, "dog", 0.5]'] * 50_000)
                          + "]"))
        conn.close()
        assert cache.verified_classes() == {"good.png": ["dog"]}
        assert [rel for rel, _ in cache.iter_reviews()] == ["good.png"]
        assert cache.get_review("a.png") is None
        assert cache.get(key, "run") is None, "detected again"
    assert f"review record of a.png not read (longer than {MAX_ROW_TEXT:,} characters)" in caplog.text
    assert "proposals of a.png not read" in caplog.text

# -- round two (adversarial pass): the commit lock, a swapped annotation folder, a deep save note ------

def _folder_of(root: Path, *names: str) -> Path:
    for name in names:
        write_image(root / name, ImageSpec(size=(64, 48)))
    ProjectSettings(classes=["cat", "dog"]).save(root)
    return root


def _labels_of(root: Path, rel: str) -> ImageLabels:
    return ImageLabels.for_image((root / rel).absolute(), 64, 48, [Box(2, 2, 30, 30, "cat", None, BoxState.ACCEPTED)])


def test_a_commit_lock_that_is_a_fifo_never_hangs_a_save(tmp_path: Path) -> None:
    """A FIFO named ``.commit.lock`` is opened without blocking and refused (not a regular file):
    the save goes on without the lock instead of waiting for ever."""
    root = _folder_of(tmp_path / "f", "a.png")
    saves = root / ".autolabel" / "saves"
    saves.mkdir(parents=True)
    os.mkfifo(saves / ".commit.lock")
    writer = SharedVocWriter(ImageFolder(root), None)
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(writer.write("a.png", _labels_of(root, "a.png"), None)),
                              daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the thread so the test run can end
        fd = os.open(saves / ".commit.lock", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
        pytest.fail("a save waited on a FIFO named .commit.lock")
    assert (root / "a.xml").is_file()


def test_a_commit_lock_link_out_of_the_folder_creates_nothing_there(tmp_path: Path) -> None:
    """A dangling link ``saves/.commit.lock -> /elsewhere/x`` is never followed (``O_NOFOLLOW``)."""
    root = _folder_of(tmp_path / "f", "a.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    saves = root / ".autolabel" / "saves"
    saves.mkdir(parents=True)
    (saves / ".commit.lock").symlink_to(elsewhere / "pwned")
    SharedVocWriter(ImageFolder(root), None).write("a.png", _labels_of(root, "a.png"), None)
    assert not (elsewhere / "pwned").exists(), "a save created a file outside the folder"


def test_an_annotation_folder_swapped_for_a_link_after_opening_is_never_written(tmp_path: Path) -> None:
    """``ann`` inside the folder, swapped for a link out of it after opening: every write checks
    the annotation root itself, not only its sub-folders."""
    root = _folder_of(tmp_path / "f", "a.png")
    (root / "ann").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = ImageFolder(root, root / "ann")
    (root / "ann").rename(root / "ann.old")
    (root / "ann").symlink_to(elsewhere)
    try:
        SharedVocWriter(folder, None).write("a.png", _labels_of(root, "a.png"), None)
    except OSError:
        pass
    assert list(elsewhere.iterdir()) == [], f"written outside the folder: {sorted(elsewhere.rglob('*'))}"


def test_an_annotation_folder_chosen_outside_is_still_written(tmp_path: Path) -> None:
    """The check of the annotation root keeps one chosen outside the image folder working."""
    root = _folder_of(tmp_path / "f", "a.png")
    outside = tmp_path / "voc"
    outside.mkdir()
    SharedVocWriter(ImageFolder(root, outside), None).write("a.png", _labels_of(root, "a.png"), None)
    assert (outside / "a.xml").is_file()


def test_a_deeply_nested_save_note_is_ignored_not_raised(tmp_path: Path) -> None:
    """16,000 ``[`` would raise RecursionError out of ``json.loads``: the note is ignored."""
    state = tmp_path / ".autolabel"
    path = note_path(state, "a.png")
    path.parent.mkdir(parents=True)
    path.write_text("[" * 16000)
    assert read_note(state, "a.png") is None
