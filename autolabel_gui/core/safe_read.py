"""Reading the small files around the images (labels, settings, class lists) as untrusted input.

A folder someone else made may hold, under an annotation file's name, a FIFO (``read`` blocks
forever), a link to ``/dev/zero`` (``read`` never ends) or a 1 GB file. Every such file is
opened without blocking, checked to be a regular file on the open descriptor (no race between
check and read), and read up to a limit; anything else raises ``UnsafeFileError`` naming the
file and the reason, which callers report for the images the file concerns.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MB = 1 << 20

SMALL_FILE_LIMIT = 1 * MB
"""Settings, class lists, model configs: a real one is a few kilobytes."""
LABEL_FILE_LIMIT = 64 * MB
"""One image's VOC or YOLO file: 64 MB is several hundred thousand boxes."""
INDEX_FILE_LIMIT = 32 * MB
"""A file describing a whole folder (COCO JSON). Parsed JSON costs up to 27 times its bytes (a
150 MB file of ``{}`` took 4.1 GB; image entries with distinct names 19 times), so the limit is
what one folder's file needs (COCO's val2017, 5,000 images, is 25 MB), not a whole dataset's
(train2017 is 450 MB and would take gigabytes). It was 128 MB: three 60 MB files under it kept
the window 98 s and 2 GB; with ``formats.coco.MAX_JSON_VALUES`` a file parses to at most
about 300 MB."""


class UnsafeFileError(OSError):
    """A file that is not read: not a regular file, or larger than its limit."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, str(path))
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def open_regular(path: Path | str, *, follow_links: bool = True) -> int:
    """A read-only descriptor of ``path``, which is a regular file: ``UnsafeFileError`` otherwise.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a writer; the
    type is then checked with ``fstat`` on the same descriptor (no race between check and
    read). ``follow_links=False`` refuses a link too (``O_NOFOLLOW``: ELOOP). The caller closes it.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(path, f"not read: it is {_kind(st.st_mode)}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_limited(path: Path | str, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Opened by ``open_regular`` (never blocks). Raises ``UnsafeFileError`` for a file that is
    not read, and the usual ``OSError`` (FileNotFoundError...) otherwise.
    """
    fd = open_regular(path)
    try:
        st = os.fstat(fd)
        if st.st_size > limit:
            raise UnsafeFileError(path, f"not read: {st.st_size:,} bytes, more than the {limit:,} bytes "
                                        "such a file may have")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(MB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew while we read it
                raise UnsafeFileError(path, f"not read: more than the {limit:,} bytes such a file may have")
        return b"".join(chunks)
    finally:
        os.close(fd)
