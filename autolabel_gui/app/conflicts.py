"""Saving a VOC file that someone else may have saved meanwhile (one folder, many hands).

Two annotators (two windows, two machines on one share) may have the same image open. A save
must never silently replace what the other saved since this session loaded the file, so every
write of the window goes through ``SharedVocWriter``:

- ``identity(path)``: what a session loaded, the sha256 of the file's bytes, or ``ABSENT``.
- ``write(rel, labels, expected)``: reads the file again; if it is no longer ``expected`` it
  does not write. Our version goes to ``<state>/conflicts/<relpath, / as __>.<time>.<user>.xml``
  (theirs stays in place) and a ``Conflict`` says whose file is there and since when. The file
  is checked again after the temporary file is complete, just before the rename (the
  ``expected`` hook of ``core.atomic``), and processes of one machine take a short
  ``flock`` around check and rename, so on a local disk no save is lost. Across machines on a
  network share (no reliable locks there) the window left is that between the last check and
  the rename, microseconds, and ADR 0012 says so.
- Not a conflict: a file byte-for-byte what ``label --voc-dir`` wrote (its digest among
  ``ProposalCache.wrote``'s) and unverified is the model's pre-labelling, not someone's work;
  a file deleted meanwhile (nothing to keep).
- After each write a save note (``core.save_notes``) records who wrote which bytes and when; a
  conflict names that person only when the note's sha256 is the file's, otherwise "someone (not
  this tool)" with the file's modification time.

``ReviewSession`` (``app.session``) keeps the identities and resolves a conflict
(``ConflictChoice``); the window only asks which choice and shows ``Resolved.text``.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import logging
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from autolabel_gui.core.atomic import atomic_write_bytes, make_dir_like_parent
from autolabel_gui.core.boxes import ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import STATE_DIR, ImageFolder
from autolabel_gui.core.safe_read import LABEL_FILE_LIMIT, UnsafeFileError, read_limited
from autolabel_gui.core.save_notes import SAVES_DIR, SaveNote, read_note, write_note
from autolabel_gui.core.sharedfs import is_shared_filesystem
from autolabel_gui.core.whoami import current_host, current_user
from autolabel_gui.formats.voc import AnnotationError, parse_voc, voc_bytes, write_voc

log = logging.getLogger(__name__)

ABSENT = "absent"
"""The identity of a VOC file that does not exist."""
CONFLICTS_DIR = "conflicts"
NOT_THIS_TOOL = "someone (not this tool)"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.@-]+")


class ConflictChoice(enum.Enum):
    THEIRS = "theirs"
    """Reload their file; my edits are dropped (my copy stays in the conflicts folder)."""
    MINE = "mine"
    """Write mine over theirs; their version is first copied into the conflicts folder."""
    MERGE = "merge"
    """Their boxes plus mine (same class and IoU >= 0.7 counted once); both versions are kept."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """A save that was not written because the file changed since it was loaded."""

    rel: str
    theirs: ImageLabels
    """What the file on disk holds now."""
    theirs_sha256: str
    saved_by: str | None
    """``user@host`` from the save note; None when the file is not what the tool last wrote."""
    saved_at: float | None
    """The note's wall time, else the file's modification time (None: unknown)."""
    mine: ImageLabels
    """What this session meant to write (``mine.verified``: whether it meant to verify)."""
    mine_copy: Path
    """Where ``mine`` was written instead."""

    @property
    def who(self) -> str:
        return self.saved_by or NOT_THIS_TOOL

    @property
    def when(self) -> str:
        return "at an unknown time" if self.saved_at is None else time.strftime(
            "on %Y-%m-%d at %H:%M:%S", time.localtime(self.saved_at))

    @property
    def text(self) -> str:
        """For the question: who saved, when, and where our version is."""
        return (f"{self.rel}: {self.who} saved this image {self.when}, after you opened it "
                f"({len(self.theirs.boxes)} box(es){', verified' if self.theirs.verified else ''}). "
                f"Your version ({len(self.mine.boxes)} box(es)) was not written over theirs; it is kept in "
                f"{self.mine_copy}.")


@dataclass(slots=True)
class Resolved:
    """What ``ReviewSession.resolve`` did: the file written (or not), the versions kept aside."""

    rel: str
    choice: ConflictChoice
    written: bool = False
    kept: list[Path] = field(default_factory=list)
    error: str | None = None
    conflict: Conflict | None = None
    """Someone saved yet again while we resolved: asked again."""
    boxes: int = 0
    verified: bool = False

    @property
    def text(self) -> str:
        if self.error:
            return self.error
        if self.conflict is not None:
            return self.conflict.text
        kept = ", ".join(str(p) for p in self.kept) or "nowhere"
        flag = " (verified)" if self.verified else ""
        if self.choice is ConflictChoice.THEIRS:
            return f"{self.rel}: kept their version{flag}; yours is in {kept}."
        if self.choice is ConflictChoice.MINE:
            return f"{self.rel}: saved your version{flag} over theirs; theirs is in {kept}."
        return f"{self.rel}: saved both merged, {self.boxes} box(es){flag}; the two versions are in {kept}."


class ChangedMeanwhile(Exception):
    """The file changed between the check and the rename (raised by the ``expected`` hook)."""


def identity_of(data: bytes | None) -> str:
    return ABSENT if data is None else hashlib.sha256(data).hexdigest()


def read_current(path: Path) -> bytes | None:
    """The file's bytes (read as untrusted input), None when there is no file."""
    try:
        return read_limited(path, LABEL_FILE_LIMIT)
    except FileNotFoundError:
        return None


def flat_name(rel: str) -> str:
    """``sub/rocket.png`` -> ``sub__rocket``: one file name per image, in one folder."""
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    return _UNSAFE_NAME.sub("_", stem.replace("/", "__")) or "_"


class SharedVocWriter:
    """Writes one folder's VOC files without replacing a save it did not see (module doc)."""

    def __init__(self, folder: ImageFolder, cache: ProposalCache | None, user: str | None = None,
                 host: str | None = None) -> None:
        self.folder = folder
        self.cache = cache
        self.user = user or current_user()
        self.host = host or current_host()
        self._local = not is_shared_filesystem(folder.root)
        """A local disk: processes of this machine take ``_commit_lock`` (decided once, not per save)."""

    @property
    def state_dir(self) -> Path:
        """Where notes and conflict copies go: beside the VOC files (``.autolabel``)."""
        return self.folder.state_dir if self.folder.annotations is None else self.folder.annotations / STATE_DIR

    def identity(self, rel: str) -> str | None:
        """The identity of ``rel``'s VOC file now; None when it cannot be read (never a match)."""
        try:
            return identity_of(read_current(self.folder.voc_path(rel)))
        except OSError:
            return None

    def write(self, rel: str, labels: ImageLabels, expected: str | None) -> str | Conflict:
        """Write ``labels`` if the file is still ``expected`` (or replaceable); returns the sha256
        written, or the ``Conflict`` (ours kept aside). Raises AnnotationError (their file cannot
        be parsed: never replaced), OSError, ValueError."""
        path = self.folder.checked_voc_path(rel)  # a link out of the folder is never written through
        data = voc_bytes(labels)
        with self._commit_lock():
            current = read_current(path)
            found = identity_of(current)
            if not self._may_replace(path, current, found, expected):
                return self._conflict(rel, labels, data, current)

            def still_there() -> None:
                if self.identity(rel) != found:
                    raise ChangedMeanwhile(rel)

            try:
                write_voc(path, labels, expected=still_there)
            except ChangedMeanwhile:
                return self._conflict(rel, labels, data, read_current(path))
        digest = hashlib.sha256(data).hexdigest()
        try:
            self.folder.checked_voc_root()  # not swapped for a link out of the folder meanwhile
            write_note(self.state_dir, SaveNote(rel, digest, self.user, self.host, time.time()))
        except OSError as exc:  # the file is saved; a later conflict only says "not this tool"
            log.warning("%s: save note not written (%s)", rel, exc)
        return digest

    def keep_copy(self, rel: str, data: bytes, user: str | None) -> Path:
        """Put ``data`` (a version of ``rel``) into the conflicts folder; returns its path.
        ``LeadsOutside`` when the annotation folder now leads out of the folder (a link)."""
        self.folder.checked_voc_root()
        folder = make_dir_like_parent(self.state_dir / CONFLICTS_DIR, within=self.state_dir.parent)
        stamp = time.strftime("%Y%m%d-%H%M%S") + f".{time.time_ns() // 1000 % 1_000_000:06d}"
        name = _UNSAFE_NAME.sub("_", user or "unknown")
        target = folder / f"{flat_name(rel)}.{stamp}.{name}.xml"
        n = 1
        while target.exists():
            n += 1
            target = folder / f"{flat_name(rel)}.{stamp}-{n}.{name}.xml"
        atomic_write_bytes(target, data)
        return target

    def _may_replace(self, path: Path, current: bytes | None, found: str, expected: str | None) -> bool:
        if found == expected or current is None:  # unchanged, or deleted meanwhile: nothing to keep
            return True
        if self.cache is None:
            return False
        try:
            if not self.cache.wrote(found):
                return False
            return not parse_voc(current, path).verified  # label's own, untouched pre-labelling
        except (AnnotationError, OSError, sqlite3.Error):  # not sure: it is theirs
            return False

    def _conflict(self, rel: str, labels: ImageLabels, data: bytes, current: bytes | None) -> Conflict:
        """Keep ours aside and describe theirs. Their file gone by now: an empty version."""
        path = self.folder.voc_path(rel)
        if current is None:
            theirs = ImageLabels(labels.filename, labels.width, labels.height, labels.depth, [],
                                 folder=labels.folder, path=labels.path)
        else:  # AnnotationError: unreadable, never replaced; the save fails and is retried
            theirs = parse_voc(current, path)
        mine_copy = self.keep_copy(rel, data, self.user)
        found = identity_of(current)
        note = read_note(self.state_dir, rel)
        if note is not None and note.sha256 == found:
            saved_by: str | None = note.who
            saved_at: float | None = note.saved_at
        else:
            saved_by = None
            try:
                saved_at = path.stat().st_mtime
            except OSError:
                saved_at = None
        return Conflict(rel, theirs, found, saved_by, saved_at, labels, mine_copy)

    @contextlib.contextmanager
    def _commit_lock(self) -> Iterator[None]:
        """One check-and-rename at a time among this machine's processes (``flock``; nothing on
        a network file system, where such locks are not to be trusted, nor where it fails)."""
        try:
            import fcntl
        except ImportError:  # Windows: the check just before the rename only
            yield
            return
        fd = -1
        saves = self.state_dir / SAVES_DIR
        try:
            if self._local:
                make_dir_like_parent(saves, within=self.state_dir.parent)
                fd = _open_lock_file(saves / COMMIT_LOCK)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except UnsafeFileError as exc:  # a FIFO, device or link put there: never waited on or followed
            log.warning("%s; saving without the commit lock", exc)
        except OSError as exc:
            log.debug("%s: saving without the commit lock (%s)", self.state_dir, exc)
            if fd >= 0:
                os.close(fd)
                fd = -1
        try:
            yield
        finally:
            if fd >= 0:
                os.close(fd)


COMMIT_LOCK = ".commit.lock"


def _open_lock_file(path: Path) -> int:
    """A read-only descriptor of the lock file ``path``, created if missing; ``UnsafeFileError``
    naming it when it is anything but a regular file. Read-only is enough for ``flock``, so
    another annotator's lock file serves too. ``O_NONBLOCK``: a FIFO there is opened at once
    (not waited on); ``O_NOFOLLOW``: a link there, even dangling, is refused, never followed
    (``O_CREAT`` would create its target, anywhere the user may write)."""
    flags = (os.O_RDONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(path, "not used as the commit lock: it is a link") from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFileError(path, "not used as the commit lock: it is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd
