"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from autolabel_gui.core.folder import require_inside

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\A\..+\.[a-z0-9_]{8}\.tmp\Z")
"""The name ``atomic_write_bytes`` gives its temporary file: ``.`` + target name + ``.``, then
the 8 characters ``tempfile.mkstemp`` draws (lower-case letters, digits, ``_``), then ``.tmp``.
Should Python ever draw other characters, nothing matches and nothing is removed."""


def atomic_write_bytes(path: Path | str, data: bytes, *, expected: Callable[[], None] | None = None) -> None:
    """Write to a temporary file in the same folder, fsync it, then rename it over ``path``.

    The folder is fsynced too, so the rename itself survives a power cut. Missing folders are
    made like their parent (``make_dir_like_parent``): ``.autolabel`` and annotation sub-folders
    in a folder a team made writable for all of them stay writable for all of them. ``expected`` is
    called just before the rename (the temporary file is complete): it raises to refuse the
    rename (the target is then untouched and the temporary file removed), so a caller can check
    that ``path`` still holds what it expects as late as possible (``app.conflicts``).
    """
    path = Path(path)
    make_dir_like_parent(path.parent)
    mode = _target_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            # mkstemp's private 0600 would carry over the rename: teammates could not read the file
            _set_mode(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if expected is not None:
            expected()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def current_umask() -> int:
    """The process umask (reading it means setting it; set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_dir_like_parent(path: Path | str, within: Path | str | None = None) -> Path:
    """Create folder ``path`` (and missing parents, as ``mkdir -p``); each folder created takes
    the permission bits of the folder it is made in, not those the umask would give. With
    ``within``, ``path`` must resolve inside it (a symbolic link in a folder someone handed over
    must not make the tool write elsewhere): OSError, before anything is created, otherwise.

    For the folders the tool makes in ``.autolabel/`` (leases, save notes, conflict copies): a
    team that made ``.autolabel`` writable for its group gets sub-folders every annotator can
    write (under the usual umask 022 the first annotator's ``leases/`` was 0755, and the second
    reviewed without leases); a private folder gives private sub-folders, as the umask would.
    """
    path = Path(path)
    if within is not None:
        require_inside(path, within)
    if path.is_dir():
        return path
    parent = make_dir_like_parent(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return path
    os.chmod(path, stat.S_IMODE(parent.stat().st_mode))  # mkdir's mode is masked by the umask
    return path


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the umask (0644 under the usual 022)."""
    return 0o666 & ~current_umask()


def new_dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder: 0777 less the umask (0755 under 022)."""
    return 0o777 & ~current_umask()


def _target_mode(path: Path) -> int:
    """A replaced file keeps its own permission bits; a new one gets what the umask allows."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return new_file_mode()


def _set_mode(fd: int, mode: int) -> None:
    if hasattr(os, "fchmod"):
        try:
            os.fchmod(fd, mode)
        except OSError:  # a file system without permission bits (FAT, some shares)
            pass


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


STAGE_SUFFIX = ".partial"
"""A staging folder is ``.OUT.PID.RANDOM.partial``: the id of the process building it tells a
later build of the same target whether it was abandoned (the process was killed)."""


def sweep_stale_stages(out: Path) -> list[Path]:
    """Remove the staging folders of earlier builds of ``out`` whose process is gone (killed).

    Only folders named as ``staged_folder`` and ``export_dataset`` name them whose process no
    longer runs on this machine; anything else beside ``out`` is left alone.
    """
    removed: list[Path] = []
    prefix = f".{out.name}."
    try:
        entries = list(os.scandir(out.parent))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(STAGE_SUFFIX)):
            continue
        if entry.is_symlink() or not entry.is_dir():
            continue
        try:
            pid = int(entry.name[len(prefix):].split(".", 1)[0])
        except ValueError:
            continue
        if _process_alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


@contextlib.contextmanager
def staged_folder(target: Path | str) -> Iterator[Path]:
    """A hidden folder beside ``target`` to build it in: renamed to ``target`` when the block
    ends, removed when it raises, so a build that fails half way leaves nothing behind and no
    reader sees half a folder. ``target`` may be missing or an empty folder (FileExistsError
    otherwise, before anything is made). Every file built gets the umask's mode, every folder
    too: a library that writes private files (safetensors: 0600) would lock teammates out.
    """
    target = Path(target).absolute()
    _check_empty(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_stages(target)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=STAGE_SUFFIX, dir=target.parent))
    try:
        yield stage
        for folder, _, files in os.walk(stage):
            os.chmod(folder, new_dir_mode())
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):  # chmod would change what it leads to
                    os.chmod(path, new_file_mode())
        _check_empty(target)
        if target.is_dir():
            target.rmdir()
        os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _check_empty(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()) or (target.is_dir() and any(target.iterdir())):
        raise FileExistsError(errno.EEXIST, "exists and is not an empty folder; choose a new one", str(target))


def sweep_stale_temp_files(folder: Path | str, older_than_s: float = 600) -> list[Path]:
    """Remove the temporary files a process killed inside ``atomic_write_bytes`` left in
    ``folder`` (not its sub-folders); returns what was removed.

    Only regular files named exactly as ``atomic_write_bytes`` names them, and unchanged for
    ``older_than_s``: a write still going on in another process (``label`` while the window is
    open) is never pulled away. A file that cannot be removed is left; that is no harm.
    """
    cutoff = time.time() - older_than_s
    removed: list[Path] = []
    try:
        entries = os.scandir(folder)
    except OSError:
        return removed
    with entries:
        for entry in entries:
            if not _TEMP_NAME.match(entry.name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
