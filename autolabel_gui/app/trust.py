"""Model files the user chose on this machine, remembered in the user's own settings.

A folder's ``project.json`` comes with the folder: whoever made the dataset wrote it. A model
file it names (weights, config, text encoder) is therefore used only when the user chose that
same file on this machine (``--weights``/``--config``/``--text-encoder`` or the Settings
dialog) and it lies outside the folder, where the folder's author cannot have put it. Anything
else is ignored with a reason (``FolderSettingIgnored``) and the default lookup is used.
"""

from __future__ import annotations

import json
from pathlib import Path

from autolabel_gui.core.atomic import atomic_write_text
from autolabel_gui.core.safe_read import SMALL_FILE_LIMIT, read_limited
from autolabel_gui.core.userdirs import user_config_dir

MODEL_FIELDS: tuple[str, ...] = ("weights", "config", "text_encoder")
TRUST_FILE = "chosen_model_files.json"
_MAX_ENTRIES = 200


def trust_file() -> Path:
    return user_config_dir() / TRUST_FILE


def _key(value: str) -> str:
    """A path by where it really is (links resolved); a name such as ``bert-base-uncased`` as is."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        try:
            return str(path.resolve())
        except (OSError, RuntimeError):
            return str(path.absolute())
    return value


def chosen_files() -> list[str]:
    """The model files the user chose, newest last; an unreadable list counts as empty."""
    try:
        data = json.loads(read_limited(trust_file(), SMALL_FILE_LIMIT))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(data, list):
        return []
    return [v for v in data if isinstance(v, str)]


def remember_chosen(values: list[str]) -> None:
    """Record model files the user chose themselves (best effort: a read-only home is no error)."""
    keys = [_key(v) for v in values if v]
    if not keys:
        return
    known = [k for k in chosen_files() if k not in keys] + keys
    try:
        atomic_write_text(trust_file(), json.dumps(known[-_MAX_ENTRIES:], indent=1, ensure_ascii=False) + "\n")
    except OSError:
        pass


def folder_model_problem(value: str, root: Path) -> str | None:
    """Why a model file named in ``root``'s settings may not be used, or None when it may."""
    key = _key(value)
    if key not in chosen_files():
        return "you have not chosen this file on this machine"
    try:
        inside = Path(key).is_absolute() and Path(root).resolve() in Path(key).parents
    except (OSError, RuntimeError):
        inside = True
    if inside:
        return "it lies inside the image folder, which anyone who shares the folder can change"
    return None
