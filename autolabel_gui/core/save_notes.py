"""Who saved an image's VOC file, and when: one small JSON file per image.

``FOLDER/.autolabel/saves/<sha1 of the relpath>.json`` holds the last save the window made of
that image: relpath, sha256 of the bytes written, user, host and wall time. One file per image,
replaced atomically, so it works on a network share without locks: two annotators saving
different images never touch the same note, and two saving the same image leave one whole note
(the last), never a mix. A note is only a hint: it names the saver only while its sha256 matches
the file on disk (``app.conflicts``), so a stale or lost note never names the wrong person.

Notes are read as untrusted input (someone else's folder): size-limited, type-checked; a note
that is not what this module writes is ignored (None), never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from autolabel_gui.core.atomic import atomic_write_text, make_dir_like_parent
from autolabel_gui.core.safe_read import read_limited
from autolabel_gui.core.shallow_json import loads_shallow
from autolabel_gui.core.whoami import shown_name

log = logging.getLogger(__name__)

SAVES_DIR = "saves"
NOTE_LIMIT = 16 * 1024
"""A real note is about 200 bytes."""
_FIELD_LIMIT = 1024
_NOTE_DEPTH = 4
"""A note is one flat object; deeper nesting is refused before ``json.loads`` recurses."""
_SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")

@dataclass(frozen=True, slots=True)
class SaveNote:
    relpath: str
    sha256: str
    user: str
    host: str
    saved_at: float
    """Wall time (seconds since the epoch) of the save."""

    @property
    def who(self) -> str:
        return f"{self.user}@{self.host}"


def note_path(state_dir: Path, relpath: str) -> Path:
    digest = hashlib.sha1(relpath.encode("utf-8", "surrogateescape")).hexdigest()
    return Path(state_dir) / SAVES_DIR / f"{digest}.json"


def write_note(state_dir: Path, note: SaveNote) -> None:
    """Replace the image's note (atomically; raises OSError when it cannot be written)."""
    path = note_path(state_dir, note.relpath)
    make_dir_like_parent(path.parent, within=Path(state_dir).parent)
    atomic_write_text(path, json.dumps(asdict(note), ensure_ascii=False))


def read_note(state_dir: Path, relpath: str) -> SaveNote | None:
    """The image's last note, or None (none, unreadable, or not a note for ``relpath``)."""
    path = note_path(state_dir, relpath)
    try:
        # a note is flat: anything nested deeper is not one (and 16,000 ``[`` would raise
        # RecursionError out of json.loads)
        data = loads_shallow(read_limited(path, NOTE_LIMIT).decode("utf-8"), _NOTE_DEPTH)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        log.info("%s: save note ignored (%s)", path, exc)
        return None
    note = _validated(data, relpath)
    if note is None:
        log.info("%s: save note ignored (not a note for %s)", path, relpath)
    return note


def _validated(data: object, relpath: str) -> SaveNote | None:
    if not isinstance(data, dict):
        return None
    texts = [data.get(k) for k in ("relpath", "sha256", "user", "host")]
    if not all(isinstance(t, str) and 0 < len(t) <= _FIELD_LIMIT for t in texts):
        return None
    saved_at = data.get("saved_at")
    if isinstance(saved_at, bool) or not isinstance(saved_at, int | float) or not math.isfinite(saved_at):
        return None
    rel, sha, user, host = (str(t) for t in texts)
    if rel != relpath or not _SHA256.match(sha):
        return None
    return SaveNote(rel, sha, shown_name(user), shown_name(host), float(saved_at))
