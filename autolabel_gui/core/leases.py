"""Image leases: who has which image of a shared folder open, with no server and no locks.

Several annotators may review one folder on a network share (NFS, SMB). POSIX locks and
SQLite are not trusted over such shares, so each image open in a window gets a small JSON
file, its lease, in ``FOLDER/.autolabel/leases/<sha1 of relpath>.json``: relpath, user, host,
pid, a random session id, ``since`` (wall time), a renewal counter and the time of the last
renewal. The holder renews its leases every ``ttl/4`` or so; everybody else reads them.

- Creating is atomic on NFS: the content goes to a unique temporary file, which is then
  hard-linked to the lease name (``link`` fails when the name exists, also over NFS; a lost
  reply is recognised by the temporary file's link count). A share without hard links gets
  ``O_CREAT | O_EXCL`` instead, and the result is read back.
- A lease is dead when (a) it names this host and its pid is gone, or (b) this reader has seen
  its content unchanged for longer than ``ttl`` on its own monotonic clock (no clock is shared
  between machines, so a skewed clock never kills a live lease), or (c) its renewal time is
  older than ``ttl`` plus a generous skew margin (a lease left by a laptop that died long ago).
- Taking a dead lease over: it is renamed to a unique graveyard name (one rename wins), read
  again to check that it is the content judged dead (a fresh holder's lease is put back with
  ``link`` and the take-over is abandoned), then deleted, and a new lease created as above.
- Lease files are untrusted: read with ``core.safe_read`` (regular file, bounded, no blocking
  on a FIFO), every field type-checked. A malformed lease is dead, reported once.

Qt-free and stdlib only.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autolabel_gui.core.atomic import atomic_write_bytes, make_dir_like_parent, new_file_mode, sweep_stale_temp_files
from autolabel_gui.core.folder import is_inside
from autolabel_gui.core.safe_read import UnsafeFileError, read_limited
from autolabel_gui.core.whoami import current_host, current_user, shown_name

LEASES_DIR = "leases"
LEASE_SUFFIX = ".json"
LEASE_FILE_LIMIT = 16 * 1024
"""A lease is about 300 bytes; anything over this is not a lease."""
DEFAULT_TTL_S = 60.0
SKEW_MARGIN_S = 600.0
"""How far apart two machines' wall clocks may be before (c) could kill a live lease."""
_TEMP_TAIL = ".lease-tmp"
_GRAVE_TAIL = ".dead"
_MAX_TEXT = 256
_MAX_RELPATH = 4096
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}


class LeasesUnavailable(OSError):
    """Leases cannot be kept in this folder (read-only, or the lease folder leads outside it)."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a lease: one window (``session``) of one process on one machine."""

    user: str
    host: str
    pid: int
    session: str
    since: float
    """Wall time the lease was taken (the holder's clock: only shown, never compared)."""

    @classmethod
    def current(cls) -> Holder:
        """This process, with a new random session id."""
        return cls(current_user(), current_host(), os.getpid(), secrets.token_hex(8), time.time())

    @property
    def who(self) -> str:
        return f"{shown_name(self.user)}@{shown_name(self.host)}"

    def since_text(self) -> str:
        """``since`` as local hours and minutes ("14:02")."""
        try:
            return time.strftime("%H:%M", time.localtime(self.since))
        except (OverflowError, OSError, ValueError):
            return "?"

    def describe(self) -> str:
        """"alice on laptop-2 since 14:02"."""
        return f"{shown_name(self.user)} on {shown_name(self.host)} since {self.since_text()}"


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease file's content."""

    relpath: str
    holder: Holder
    count: int
    renewed: float

    def to_bytes(self) -> bytes:
        h = self.holder
        return json.dumps({"version": 1, "relpath": self.relpath, "user": h.user, "host": h.host, "pid": h.pid,
                           "session": h.session, "since": h.since, "count": self.count,
                           "renewed": self.renewed}).encode("utf-8")


def lease_name(rel: str) -> str:
    """The lease file's name for image ``rel`` (no path from the folder in a file name)."""
    return hashlib.sha1(rel.encode("utf-8")).hexdigest() + LEASE_SUFFIX


def parse_lease(data: bytes, name: str | None = None) -> Lease:
    """The lease in ``data``; ValueError says what is wrong. ``name``: the file's name, which
    must be the one ``lease_name`` gives its relpath (a lease cannot speak for another image)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")

    def text(key: str, limit: int = _MAX_TEXT) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise ValueError(f"{key!r} is not a name")
        return value

    def number(key: str) -> float:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{key!r} is not a number")
        return float(value)

    def integer(key: str, low: int) -> int:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**62:
            raise ValueError(f"{key!r} is not a whole number from {low}")
        return value

    relpath = text("relpath", _MAX_RELPATH)
    if name is not None and lease_name(relpath) != name:
        raise ValueError("its relpath is not the image its name is for")
    holder = Holder(text("user"), text("host"), integer("pid", 1), text("session"), number("since"))
    return Lease(relpath, holder, integer("count", 0), number("renewed"))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists (True when it cannot be told)."""
    if os.name != "posix":  # os.kill on Windows would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


@dataclass(slots=True)
class _Seen:
    """A lease file's content as this reader last read it, and since when (monotonic)."""

    snapshot: tuple[bytes | None, str | None]
    first: float


class LeaseBook:
    """The leases of one folder (``state_dir``: its ``.autolabel``) as one session ``me`` sees them.

    ``acquire(rel)`` returns None when ``me`` holds the lease now, else the other live holder.
    ``clock`` (monotonic, for expiry by unchanged content) and ``wall`` (for renewal times) can
    be replaced in tests. Raises ``LeasesUnavailable`` when leases cannot be kept there.
    """

    def __init__(self, state_dir: Path | str, me: Holder, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.monotonic, *, wall: Callable[[], float] = time.time,
                 skew_s: float = SKEW_MARGIN_S, root: Path | str | None = None) -> None:
        self.me = me
        self.ttl_s = ttl_s
        self.skew_s = skew_s
        self._clock = clock
        self._wall = wall
        state_dir = Path(state_dir)
        root = Path(root) if root is not None else state_dir.parent
        self.dir = state_dir / LEASES_DIR
        try:
            inside = is_inside(self.dir, root)
            if inside:  # never created outside, where a link in the folder may lead
                make_dir_like_parent(self.dir)
        except OSError as exc:
            raise LeasesUnavailable(exc.errno or errno.EIO, f"cannot create the lease folder ({exc.strerror or exc})",
                                    str(self.dir)) from None
        if not inside:
            raise LeasesUnavailable(errno.EACCES, "the lease folder leads outside the image folder", str(self.dir))
        if not self.dir.is_dir():
            raise LeasesUnavailable(errno.ENOTDIR, "the lease folder is not a folder (a file of that name is in "
                                    "the way)", str(self.dir))
        if not os.access(self.dir, os.W_OK | os.X_OK):
            raise LeasesUnavailable(errno.EACCES, "the lease folder is read-only", str(self.dir))
        self._mine: dict[str, Lease] = {}
        self._seen: dict[str, _Seen] = {}
        self._reported: set[str] = set()
        self.reports: list[str] = []
        """Malformed lease files, each said once (``take_reports`` hands them out)."""
        self._sweep()

    # ------------------------------------------------------------------ public

    def mine(self) -> set[str]:
        """The images whose lease this session holds (as far as it knows)."""
        return set(self._mine)

    def acquire(self, rel: str) -> Holder | None:
        """Take the lease of ``rel``: None when this session holds it now, else its live holder.

        OSError when the lease file cannot be written (the folder became read-only)."""
        name = lease_name(rel)
        path = self.dir / name
        for _ in range(4):
            if rel not in self._mine:
                new = Lease(rel, self.me, 0, self._wall())
                if self._create(path, new.to_bytes()):
                    self._mine[rel] = new
                    self._seen.pop(name, None)
                    return None
            snapshot = self._read(path)
            if snapshot[0] is None and snapshot[1] == "missing":
                self._mine.pop(rel, None)
                continue  # released meanwhile: try again
            lease = self._parse(name, snapshot)
            if lease is not None and lease.holder.session == self.me.session:
                self._mine.setdefault(rel, lease)
                return None
            self._mine.pop(rel, None)  # someone took it over (we looked dead to them)
            if lease is not None and self._alive(name, lease, snapshot):
                return lease.holder
            if not self._take_over(path, name, snapshot):
                again = self._parse(name, self._read(path))
                if again is not None and again.holder.session != self.me.session:
                    return again.holder
        held = self._parse(name, self._read(path))
        if held is not None and held.holder.session != self.me.session:
            return held.holder
        return None if rel in self._mine else self.me  # pragma: no cover - four lost races in a row

    def release(self, rel: str) -> None:
        """Give the lease of ``rel`` back (only if it is still ours)."""
        if self._mine.pop(rel, None) is None:
            return
        name = lease_name(rel)
        grave = self._grave(name)
        try:
            os.rename(self.dir / name, grave)
        except OSError:
            return
        lease = self._parse(name, self._read(grave), report=False)
        if lease is None or lease.holder.session != self.me.session:
            self._put_back(grave, self.dir / name)  # someone else's since: not ours to remove
        else:
            _unlink(grave)

    def release_all(self) -> None:
        for rel in list(self._mine):
            self.release(rel)

    def renew(self) -> list[str]:
        """Renew every lease this session holds; returns the images whose lease was lost
        (taken over by someone who judged it dead: this session slept or lost the share)."""
        lost: list[str] = []
        for rel, lease in list(self._mine.items()):
            name = lease_name(rel)
            path = self.dir / name
            now = self._parse(name, self._read(path), report=False)
            if now is None or now.holder.session != self.me.session:
                del self._mine[rel]
                if now is not None:
                    lost.append(rel)
                elif self.acquire(rel) is not None:  # gone (someone swept it): take it again
                    lost.append(rel)
                continue
            renewed = Lease(rel, self.me, lease.count + 1, self._wall())
            try:
                atomic_write_bytes(path, renewed.to_bytes())
            except OSError:
                continue  # tried again next time; others see it unchanged and may take it after ttl
            self._mine[rel] = renewed
        return lost

    def holder(self, rel: str) -> Holder | None:
        """The live holder of ``rel`` other than this session, or None."""
        name = lease_name(rel)
        snapshot = self._read(self.dir / name)
        lease = self._parse(name, snapshot)
        if lease is None or lease.holder.session == self.me.session or not self._alive(name, lease, snapshot):
            return None
        return lease.holder

    def others(self) -> dict[str, Holder]:
        """Every image held by another live session: one scan of the lease folder."""
        held: dict[str, Holder] = {}
        names: set[str] = set()
        try:
            entries = list(os.scandir(self.dir))
        except OSError:
            return held
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(LEASE_SUFFIX):
                continue
            names.add(entry.name)
            snapshot = self._read(Path(entry.path))
            lease = self._parse(entry.name, snapshot)
            if lease is not None and lease.holder.session != self.me.session and self._alive(entry.name, lease,
                                                                                            snapshot):
                held[lease.relpath] = lease.holder
        for gone in set(self._seen) - names:
            del self._seen[gone]
        return held

    def take_reports(self) -> list[str]:
        """The malformed leases found since the last call (each file said once)."""
        reports, self.reports = self.reports, []
        return reports

    # ------------------------------------------------------------------ internals

    def _alive(self, name: str, lease: Lease, snapshot: tuple[bytes | None, str | None]) -> bool:
        h = lease.holder
        if h.host == self.me.host and not pid_alive(h.pid):
            return False  # (a) its process is gone
        if self._wall() - lease.renewed > self.ttl_s + self.skew_s:
            return False  # (c) not renewed for a very long time, even allowing for clock skew
        now = self._clock()
        seen = self._seen.get(name)
        if seen is None or seen.snapshot != snapshot:
            self._seen[name] = _Seen(snapshot, now)
            return True
        return now - seen.first <= self.ttl_s  # (b) unchanged for longer than ttl on our clock

    def _read(self, path: Path) -> tuple[bytes | None, str | None]:
        """(content, None), or (None, why it is not read): "missing", or a reason without the path."""
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                return None, "not a regular file"
            return read_limited(path, LEASE_FILE_LIMIT), None
        except FileNotFoundError:
            return None, "missing"
        except UnsafeFileError as exc:
            return None, exc.reason
        except OSError as exc:
            return None, f"unreadable ({exc.strerror or exc})"

    def _parse(self, name: str, snapshot: tuple[bytes | None, str | None], report: bool = True) -> Lease | None:
        data, why = snapshot
        if data is None and why == "missing":
            return None
        try:
            if data is None:
                raise ValueError(why)
            return parse_lease(data, name)
        except ValueError as exc:
            if report and name not in self._reported:
                self._reported.add(name)
                self.reports.append(f"{self.dir / name}: not a valid lease ({exc}); treated as expired")
            return None

    def _create(self, path: Path, data: bytes) -> bool:
        """Create ``path`` holding ``data`` only if it does not exist; True when we made it."""
        tmp = self.dir / f".{path.name}.{self.me.session}.{secrets.token_hex(4)}{_TEMP_TAIL}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), new_file_mode())
        try:
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return self._linked(tmp)
            except OSError as exc:
                if self._linked(tmp):
                    return True  # the link was made; its reply was lost (NFS retransmission)
                if exc.errno not in _NO_LINK:
                    raise
            return self._create_exclusive(path, data)  # a share without hard links (SMB)
        finally:
            _unlink(tmp)

    @staticmethod
    def _linked(tmp: Path) -> bool:
        try:
            return os.stat(tmp).st_nlink == 2
        except OSError:
            return False

    def _create_exclusive(self, path: Path, data: bytes) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), new_file_mode())
        except FileExistsError:
            return False
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return self._read(path) == (data, None)  # taken over while half-written: not ours

    def _take_over(self, path: Path, name: str, judged: tuple[bytes | None, str | None]) -> bool:
        """Move the dead lease at ``path`` out of the way if it is still what was judged dead.
        False when a fresh lease had taken its place (it is put back)."""
        grave = self._grave(name)
        try:
            os.rename(path, grave)
        except FileNotFoundError:
            return True
        now = self._read(grave)
        if now != judged:
            self._put_back(grave, path)
            return False
        _unlink(grave)
        self._seen.pop(name, None)
        return True

    def _put_back(self, grave: Path, path: Path) -> None:
        try:
            os.link(grave, path)
        except OSError:
            pass  # yet another lease is there now, or no links on this share: it was not ours anyway
        _unlink(grave)

    def _grave(self, name: str) -> Path:
        return self.dir / f".{name}.{self.me.session}.{secrets.token_hex(4)}{_GRAVE_TAIL}"

    def _sweep(self, older_than_s: float = SKEW_MARGIN_S) -> None:
        """Temporary and graveyard files a killed process left behind (old ones only)."""
        sweep_stale_temp_files(self.dir, older_than_s)  # renewals' temporary files
        cutoff = time.time() - older_than_s
        try:
            entries = list(os.scandir(self.dir))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith((_TEMP_TAIL, _GRAVE_TAIL)):
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                except OSError:
                    continue


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except (IsADirectoryError, PermissionError):  # a folder put where a lease belongs (macOS: EPERM)
        try:
            os.rmdir(path)
        except OSError:
            pass
    except OSError:
        pass
