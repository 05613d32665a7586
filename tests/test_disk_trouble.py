"""A full disk or a read-only annotation folder: a clear message naming the file, nothing
half-written, the work kept (in the cache, in memory) and saved once the problem is fixed.

Root ignores permission bits and this machine's disks are not full, so the faults are
injected where the operating system would report them: ``fsync`` of a file in the annotation
folder fails with ENOSPC (what a full disk reports on delayed allocation), or creating the
temporary file there fails with EROFS; the SQLite cache is given a page limit, which makes
SQLite itself report SQLITE_FULL.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from autolabel_gui.cli import main
from autolabel_gui.core.atomic import atomic_write_bytes
from autolabel_gui.formats.voc import read_voc

from tests.fixtures.hostile import label_args, small_model_settings, voc_files
from tests.fixtures.pipeline import write_images


class DiskTrouble:
    """Makes writes under ``folder`` fail the way a full or read-only file system does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.folder = folder.resolve()
        self.monkeypatch = monkeypatch
        self.failures = 0

    def _inside(self, path: str | os.PathLike) -> bool:
        p = Path(path).resolve()
        return p == self.folder or self.folder in p.parents

    def full(self) -> None:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if self._inside(os.readlink(f"/proc/self/fd/{fd}")):
                self.failures += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        self.monkeypatch.setattr(os, "fsync", fsync)

    def read_only(self) -> None:
        import tempfile

        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and self._inside(dir):
                self.failures += 1
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        self.monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    def fixed(self) -> None:
        self.monkeypatch.undo()


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "ann" / "a.xml"
    atomic_write_bytes(target, b"old work")
    trouble = DiskTrouble(monkeypatch, tmp_path / "ann")
    trouble.full()
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"new work" * 1000)
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old work"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.xml"], "the temporary file was not removed"
    trouble.fixed()
    atomic_write_bytes(target, b"new work")
    assert target.read_bytes() == b"new work"


@pytest.mark.model
def test_label_on_a_full_then_read_only_voc_folder_says_so_and_finishes_once_fixed(
        tmp_path, monkeypatch, tiny_gdino, capsys):
    folder, voc = tmp_path / "photos", tmp_path / "voc"
    names = write_images(folder, [f"p{i}.png" for i in range(5)], size=(64, 48))
    small_model_settings(folder)
    voc.mkdir()
    args = ["label", str(folder), "--voc-dir", str(voc), *label_args(tiny_gdino, batch=2)]
    trouble = DiskTrouble(monkeypatch, voc)

    trouble.full()
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    for name in names:
        line = next(ln for ln in err.splitlines() if f"{Path(name).stem}.xml" in ln)
        assert "No space left on device" in line, line
    assert "5 detected" in out and "0 written" in out and "5 could not be written" in out
    assert list(voc.iterdir()) == [], "nothing half-written, no temporary file left"

    trouble.fixed()
    trouble.read_only()
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert err.count("Read-only file system") == len(names) and "5 from cache" in out
    assert list(voc.iterdir()) == []

    trouble.fixed()
    assert main(args) == 0
    out, _ = capsys.readouterr()
    assert "0 detected" in out and "5 from cache" in out and "5 written" in out
    assert sorted(p.name for p in voc_files(voc)) == sorted(f"{Path(n).stem}.xml" for n in names)
    assert all(read_voc(p).width == 64 for p in voc_files(voc))


def _cache_disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cache connection may not grow: SQLite reports SQLITE_FULL as on a full disk."""
    from autolabel_gui.core.cache import ProposalCache

    real_connect = ProposalCache._connect

    def connect(self):
        conn = real_connect(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={max(pages, 1)}")
        return conn

    monkeypatch.setattr(ProposalCache, "_connect", connect)


class _FullDiskConnection:
    """A cache connection on a disk with no room left (while ``full``): reads work, every write
    fails as SQLite's does."""

    full = True

    def __init__(self, conn) -> None:
        self._conn = conn

    def execute(self, sql: str, *args):
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
            import sqlite3

            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


def _cache_writes_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    from autolabel_gui.core.cache import ProposalCache

    real_connect = ProposalCache._connect
    monkeypatch.setattr(_FullDiskConnection, "full", True)
    monkeypatch.setattr(ProposalCache, "_connect", lambda self: _FullDiskConnection(real_connect(self)))


@pytest.mark.model
def test_label_with_a_full_cache_disk_stops_with_a_message_and_resumes_once_fixed(
        tmp_path, monkeypatch, tiny_gdino, capsys):
    folder = tmp_path / "photos"
    names = write_images(folder, [f"p{i}.png" for i in range(3)], size=(64, 48))
    small_model_settings(folder)
    args = ["label", str(folder), *label_args(tiny_gdino, batch=1)]
    from autolabel_gui.core.cache import ProposalCache

    ProposalCache.for_folder(folder).close()  # the cache exists, but the disk is full now
    _cache_disk_full(monkeypatch)
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc != 0 and "Traceback" not in err
    assert "database or disk is full" in err and str(folder / ".autolabel" / "cache.sqlite") in err
    monkeypatch.undo()
    assert main(args) == 0
    assert f"{len(names)} detected" in capsys.readouterr().out


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_window_save_on_a_full_or_read_only_disk_keeps_the_edits_and_saves_once_fixed(
        open_review, monkeypatch, qtbot, fault):
    from PySide6.QtCore import Qt

    from tests.fixtures.window import proposal

    proposals = {"a.png": [proposal(10, 10, 50, 60, "person", 0.9)], "b.png": [proposal(30, 30, 90, 100, "cat", 0.8)],
                 "c.png": [proposal(5, 5, 25, 25, "cup", 0.7)]}
    h = open_review(["a.png", "b.png", "c.png"], proposals)
    trouble = DiskTrouble(monkeypatch, h.root)
    getattr(trouble, fault)()
    reason = "No space left on device" if fault == "full" else "Read-only file system"

    h.press(Qt.Key.Key_Space)  # accept and verify a.png: the save fails
    assert trouble.failures >= 1 and h.controller.current == "a.png", "a failed save must not move on"
    assert reason in h.window.message_label.toolTip() and "a.xml" in h.window.message_label.toolTip()
    assert [b.label for b in h.state.accepted_boxes()] == ["person"], "the edit is kept in memory"
    h.press(Qt.Key.Key_Tab)
    h.press(Qt.Key.Key_Right)  # another edit, then D: leaving saves, and fails again
    h.press(Qt.Key.Key_D)
    h.wait_shown("b.png")
    assert reason in h.window.message_label.toolTip()
    assert list(h.root.glob("*.xml")) == [] and not list(h.root.glob(".*.tmp"))

    trouble.fixed()
    h.press(Qt.Key.Key_Space)  # b.png saves; a.png's edits, kept in memory, are saved with it
    assert h.saved("b.png") == [("cat", (30, 30, 90, 100))]
    assert h.saved("a.png") == [("person", (11, 10, 51, 60))], "the edits made while the disk was full"
    assert h.voc("a.png").verified


def test_window_with_a_full_cache_disk_saves_the_voc_file_and_says_what_was_not_kept(
        open_review, monkeypatch, tmp_path):
    from autolabel_gui.app.project import ProjectSettings
    from autolabel_gui.core.boxes import BoxState
    from PySide6.QtCore import Qt

    from tests.fixtures.window import WINDOW_CLASSES, proposal, put_proposals, write_image

    root = tmp_path / "images"
    for i, name in enumerate(["a.png", "b.png"]):
        write_image(root / name, seed=i)
    put_proposals(root, ProjectSettings(classes=list(WINDOW_CLASSES)),
                  {"a.png": [proposal(10, 10, 50, 60, "person", 0.9), proposal(60, 60, 90, 90, "cat", 0.8)]})
    _cache_writes_fail(monkeypatch)
    h = open_review([], root=root)
    h.wait_shown("a.png")
    h.press(Qt.Key.Key_Tab)
    h.press(Qt.Key.Key_Delete)  # a rejection: remembered in the cache, which cannot grow
    h.press(Qt.Key.Key_Space)
    assert h.saved("a.png") == [("cat", (60, 60, 90, 90))] and h.voc("a.png").verified
    assert "disk is full" in h.window.message_label.toolTip() and "a.png" in h.window.message_label.toolTip()
    assert h.controller.current == "a.png", "stays until the rejection is remembered too"

    _FullDiskConnection.full = False  # space freed: the next save writes the record too
    h.press(Qt.Key.Key_Space)
    h.wait_shown("b.png")
    record = h.controller.review.cache.get_review("a.png")
    assert [b.label for b in record.rejected if b.state is BoxState.REJECTED] == ["person"]


def _an_edit_that_cannot_be_saved(open_review, monkeypatch):
    """a.png accepted with Space and then moved 1 px, on a full disk: the edits exist only in memory."""
    from PySide6.QtCore import Qt

    from tests.fixtures.window import proposal

    h = open_review(["a.png", "b.png"], {"a.png": [proposal(10, 10, 50, 60, "person", 0.9)]})
    trouble = DiskTrouble(monkeypatch, h.root)
    trouble.full()
    for key in (Qt.Key.Key_Space, Qt.Key.Key_Tab, Qt.Key.Key_Right):
        h.press(key)
    assert trouble.failures >= 1 and h.controller.current == "a.png"
    assert [b.xyxy for b in h.state.accepted_boxes()] == [(11, 10, 51, 60)]
    return h, trouble


def _quit(h) -> None:
    from PySide6.QtCore import Qt

    h.press(Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)


def _asked_about_a(h, question) -> None:
    failed, action = question
    assert action == "Quit" and list(failed) == ["a.png"]
    assert "a.xml" in failed["a.png"] and "No space left on device" in failed["a.png"]


def test_quitting_while_a_save_fails_asks_and_retry_saves_once_the_disk_is_fixed(open_review, monkeypatch):
    from autolabel_gui.gui.unsaved_dialog import UnsavedChoice

    h, trouble = _an_edit_that_cannot_be_saved(open_review, monkeypatch)

    def ask(failed, action):
        h.questions.append((failed, action))
        if len(h.questions) == 2:  # the first Retry failed too; now the user frees some space
            trouble.fixed()
        return UnsavedChoice.RETRY

    h.window.ask_unsaved = ask
    _quit(h)
    assert len(h.questions) == 2, "a Retry that fails again asks again"
    for question in h.questions:
        _asked_about_a(h, question)
    assert not h.window.isVisible()
    assert h.saved("a.png") == [("person", (11, 10, 51, 60))] and h.voc("a.png").verified
    assert not list(h.root.glob(".*.tmp"))


def test_quitting_while_a_save_fails_cancel_keeps_the_window_and_the_edits(open_review, monkeypatch, tmp_path):
    from autolabel_gui.app.project import ProjectSettings
    from autolabel_gui.gui.unsaved_dialog import UnsavedChoice

    from tests.fixtures.window import write_image

    h, trouble = _an_edit_that_cannot_be_saved(open_review, monkeypatch)
    h.answers = [UnsavedChoice.CANCEL, UnsavedChoice.CANCEL]
    _quit(h)
    _asked_about_a(h, h.questions[0])
    assert h.window.isVisible() and h.controller.current == "a.png"
    assert [b.xyxy for b in h.state.accepted_boxes()] == [(11, 10, 51, 60)]
    assert "not saved" in h.window.message_label.text() and "a.xml" in h.window.message_label.text()
    other = tmp_path / "other"
    write_image(other / "x.png")
    assert not h.window.open_folder(other, ProjectSettings()), "opening another folder asks the same"
    assert h.questions[1][1] == "Close the folder" and h.controller.review.folder.root == h.root
    assert list(h.root.glob("*.xml")) == []

    trouble.fixed()
    h.close()  # space freed: closing saves without asking
    assert len(h.questions) == 2 and not h.window.isVisible()
    assert h.saved("a.png") == [("person", (11, 10, 51, 60))] and h.voc("a.png").verified


def test_quitting_while_a_save_fails_can_quit_without_those_images(open_review, monkeypatch):
    from autolabel_gui.gui.unsaved_dialog import UnsavedChoice

    h, _ = _an_edit_that_cannot_be_saved(open_review, monkeypatch)
    h.answers = [UnsavedChoice.DISCARD]
    _quit(h)
    assert len(h.questions) == 1
    _asked_about_a(h, h.questions[0])
    assert not h.window.isVisible() and h.window.controller is None
    assert sorted(p.name for p in h.root.iterdir()) == [".autolabel", "a.png", "b.png"]


def test_ctrl_c_in_the_terminal_closes_through_the_same_question(open_review, monkeypatch):
    import signal

    from autolabel_gui.gui.app import close_on_interrupt
    from autolabel_gui.gui.unsaved_dialog import UnsavedChoice
    from PySide6.QtWidgets import QApplication

    h, trouble = _an_edit_that_cannot_be_saved(open_review, monkeypatch)
    h.answers = [UnsavedChoice.CANCEL]
    previous = signal.getsignal(signal.SIGINT)
    try:
        close_on_interrupt(h.window)
        signal.raise_signal(signal.SIGINT)
        QApplication.processEvents()
        assert len(h.questions) == 1 and h.window.isVisible()
        trouble.fixed()
        signal.raise_signal(signal.SIGINT)
        QApplication.processEvents()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not h.window.isVisible() and len(h.questions) == 1
    assert h.saved("a.png") == [("person", (11, 10, 51, 60))] and h.voc("a.png").verified


def test_the_unsaved_question_names_the_files_and_the_reason(qtbot):
    from autolabel_gui.gui.unsaved_dialog import UnsavedChoice, ask_unsaved
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    failed = {f"f{i}.png": f"/data/f{i}.xml: not saved ([Errno 28] No space left on device)" for i in range(12)}
    seen = {}

    def answer(button: str) -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen["text"] = box.text() + "\n" + box.informativeText()
        seen["details"] = box.detailedText()
        buttons = {b.text(): b for b in box.buttons()}
        seen["buttons"] = sorted(buttons)
        buttons[button].click()

    QTimer.singleShot(0, lambda: answer("Quit without saving those 12 images"))
    assert ask_unsaved(None, failed, "Quit") is UnsavedChoice.DISCARD
    assert "12 images" in seen["text"] and "/data/f0.xml: not saved" in seen["text"]
    assert "No space left on device" in seen["text"] and "4 more" in seen["text"]
    assert all(reason in seen["details"] for reason in failed.values())
    assert "Retry" in seen["buttons"] and "Cancel" in seen["buttons"]
    QTimer.singleShot(0, lambda: answer("Retry"))
    assert ask_unsaved(None, {"a.png": failed["f1.png"]}, "Quit") is UnsavedChoice.RETRY
    assert "Quit without saving that image" in seen["buttons"]
