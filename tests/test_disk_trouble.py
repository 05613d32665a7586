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
