"""Is a folder on a network file system? (NFS, SMB/CIFS, sshfs, 9p, Ceph, GlusterFS...)

SQLite's WAL mode needs shared memory between the processes that open the database, which
processes on different machines do not have; POSIX locks on such file systems are often
emulated, or broken. ``core.cache`` opens its SQLite file differently there, and
``app.conflicts`` does not take its local lock there. See docs/decisions/0012-shared-folders.md.

On Linux, the answer is the file system type of the mount point that is the longest prefix of
the folder's real path in ``/proc/self/mounts``; elsewhere (or when that cannot be read) the
folder is taken as local. ``AUTOLABEL_SHARED_FS=1`` / ``=0`` overrides the guess (tests, and
file systems this list does not know).
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_FS_ENV = "AUTOLABEL_SHARED_FS"
MOUNTS = Path("/proc/self/mounts")
NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "smb2", "ncpfs", "afs", "9p", "ceph", "glusterfs",
    "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "davfs", "fuse.sshfs", "fuse.glusterfs",
    "fuse.ceph", "fuse.cephfs", "fuse.s3fs", "fuse.rclone", "fuse.davfs", "fuse.gcsfuse",
    "fuse.juicefs", "fuse.beegfs",
})


def _unescape(field: str) -> str:
    """``/proc/self/mounts`` writes space, tab, newline and backslash as ``\\ooo`` octal."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_of(path: str, mounts_text: str) -> tuple[str, str] | None:
    """(mount point, fs type) of the longest mount point containing ``path`` (absolute)."""
    best: tuple[str, str] | None = None
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point, fstype = _unescape(parts[1]), parts[2]
        inside = path == point or point == "/" or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):  # later mounts hide earlier ones
            best = (point, fstype)
    return best


def filesystem_type(folder: Path | str) -> str | None:
    """The Linux file system type of ``folder`` (the nearest existing parent), None if unknown."""
    path = Path(folder)
    try:
        path = Path(os.path.realpath(path))
        text = MOUNTS.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    found = mount_of(str(path), text)
    return None if found is None else found[1]


def is_network_type(fstype: str | None) -> bool:
    return fstype is not None and (fstype in NETWORK_FS_TYPES or fstype.split(".")[0] in NETWORK_FS_TYPES)


def is_shared_filesystem(folder: Path | str) -> bool:
    """Whether ``folder`` is on a network file system (``AUTOLABEL_SHARED_FS`` decides first)."""
    override = os.environ.get(SHARED_FS_ENV, "").strip()
    if override in ("1", "0"):
        return override == "1"
    return is_network_type(filesystem_type(folder))
