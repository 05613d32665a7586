"""The proposal server's access token: made once, kept readable by its owner only, never logged.

``autolabel-gui serve`` answers only requests that carry this token (``Authorization: Bearer``).
It lives in the user's config folder (``server-token``, mode 0600), where a client of the same
user on the same machine finds it without being told; a reviewer on another machine gets it
from ``AUTOLABEL_SERVER_TOKEN`` or a copy of the file in their own config folder. The server
keeps only its SHA-256 and compares digests in constant time (``matches``), so the token itself
is in no deployment config, process list or log.

Stdlib only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from autolabel_gui.core.userdirs import user_config_dir

TOKEN_FILE = "server-token"
TOKEN_ENV = "AUTOLABEL_SERVER_TOKEN"
_MAX_TOKEN = 512
_MIN_TOKEN = 16


class TokenError(OSError):
    """The token file cannot be made or read, or others may read it; the message says what to do."""


def token_path() -> Path:
    return user_config_dir() / TOKEN_FILE


def digest(token: str) -> str:
    """What the server keeps of a token (hex SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matches(given: str | None, expected_digest: str) -> bool:
    """Whether ``given`` is the token of ``expected_digest``; constant time in the token's content."""
    if not given or len(given) > _MAX_TOKEN:
        return False
    return hmac.compare_digest(digest(given), expected_digest)


def _valid(token: str) -> bool:
    return _MIN_TOKEN <= len(token) <= _MAX_TOKEN and token.isascii() and token.isprintable() and " " not in token


def read_token(path: Path | None = None) -> str | None:
    """The token in ``path`` (default: the user's token file), None when there is none.

    TokenError when the file is not a small regular file, may be read by others (group or world
    bits: someone could have copied it), or holds no valid token.
    """
    path = path or token_path()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokenError(f"{path}: cannot read the server token: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise TokenError(f"{path}: the server token must be a regular file")
        if os.name == "posix" and st.st_mode & 0o077:
            raise TokenError(f"{path}: others may read the server token (mode {stat.S_IMODE(st.st_mode):o}); "
                             f"run `chmod 600 {path}`, or delete it to make a new one")
        raw = fh.read(_MAX_TOKEN + 2)
    token = raw.decode("ascii", errors="replace").strip()
    if not _valid(token):
        raise TokenError(f"{path}: not a server token; delete it to make a new one")
    return token


def load_or_create_token(path: Path | None = None) -> tuple[str, bool]:
    """The token in ``path``, made (random, 256 bits, mode 0600) when there is none; and whether
    it was made now."""
    path = path or token_path()
    token = read_token(path)
    if token is not None:
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:  # another server made it a moment ago
        made = read_token(path)
        if made is None:
            raise TokenError(f"{path}: cannot make the server token") from None
        return made, False
    except OSError as exc:
        raise TokenError(f"{path}: cannot make the server token: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    return token, True


def client_token(path: Path | None = None) -> str | None:
    """The token a client sends: ``AUTOLABEL_SERVER_TOKEN``, else the token file (None: neither)."""
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given:
        return given
    return read_token(path)
