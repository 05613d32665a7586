"""Who is at this window, and how a name from someone else's file is shown.

The lease of an image (``core.leases``) and the note of a save (``core.save_notes``) both name
a user and a machine; both read such names back from files other people (or a hostile folder)
wrote. One place for each, so a lease and a save note of the same person name them alike.
"""

from __future__ import annotations

import getpass
import os
import socket

USER_ENV = "AUTOLABEL_USER"
"""Overrides the user name leases and saves are recorded under (tests run two annotators in one process)."""
NAME_LIMIT = 64
"""Characters of a user or host name that are shown."""


def current_user() -> str:
    """``AUTOLABEL_USER``, else the login name, else ``uid-N`` (a container without a passwd entry)."""
    name = os.environ.get(USER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError, ImportError):
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def current_host() -> str:
    try:
        return socket.gethostname() or "unknown-host"
    except OSError:
        return "unknown-host"


def shown_name(text: str, limit: int = NAME_LIMIT) -> str:
    """A name from someone else's file, safe to show in a dialog or a tooltip: printable (no
    fake lines), no markup characters, bounded."""
    return "".join(c if c.isprintable() and c not in "<>&" else "?" for c in text[:limit])
