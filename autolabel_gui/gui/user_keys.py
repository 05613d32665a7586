"""The user's own keys: ``keys.json`` in the user config folder overrides rows of ``KEYMAP``.

The file maps action names (F1's Name column, the README key table's last column) to key
lists, as labelme's config does::

    {"zoom_to_box": ["Z", "Ctrl+0"], "draw": "E", "rerun": []}

It is hand-edited, so it is read as untrusted input: a file that does not parse or nests too
deep (``core.shallow_json``), an unknown action, a key that is not a key or a key two actions
would share never stops the window. Each bad entry is reported (file and reason) and its
action keeps its default keys; the good entries still apply. ``merge_keymap`` holds that
logic and takes the key parser as an argument, so it runs without a display.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtGui import QKeySequence

from autolabel_gui.core.safe_read import SMALL_FILE_LIMIT, read_limited
from autolabel_gui.core.shallow_json import loads_shallow
from autolabel_gui.core.userdirs import user_config_dir
from autolabel_gui.gui.keymap import KEYMAP, KeyBinding

KEYS_FILE = "keys.json"
MAX_DEPTH = 8
"""An entry is an object of lists of key names (depth 2); anything much deeper is no key file."""

Normalize = Callable[[str], str]
"""A key's text -> its one canonical spelling; raises ValueError (the reason) for a non-key."""


@dataclass(frozen=True, slots=True)
class UserKeymap:
    """The keymap in force and what was wrong with the user's file (empty: nothing)."""

    keymap: tuple[KeyBinding, ...]
    problems: tuple[str, ...]
    path: Path

    def message(self) -> str:
        """One status-bar line naming the file, then one line per problem (the tooltip)."""
        if not self.problems:
            return ""
        head = f"{self.path}: {len(self.problems)} problem(s), default keys kept for those: {self.problems[0]}"
        return "\n".join([head, *self.problems[1:]])


def keys_path() -> Path:
    """Where the user's key overrides live (next to the user's other settings)."""
    return user_config_dir() / KEYS_FILE


def normalize_key(text: str) -> str:
    """``text`` as Qt's portable key name (``ctrl+k`` -> ``Ctrl+K``); one key combination only."""
    if not text.strip():
        raise ValueError("an empty key name")
    seq = QKeySequence.fromString(text, QKeySequence.SequenceFormat.PortableText)
    if seq.count() != 1:
        raise ValueError(f"{text!r} is a sequence of keys; give one key combination such as \"Ctrl+K\"")
    normalized = seq.toString(QKeySequence.SequenceFormat.PortableText)
    if not normalized:  # Qt's unknown key prints as nothing
        raise ValueError(f"{text!r} is not a key Qt knows (examples: \"Z\", \"Ctrl+K\", \"Shift+F2\")")
    return normalized


def read_overrides(path: Path) -> tuple[dict[str, object], list[str]]:
    """The raw entries of the overrides file and why it could not be used (no file: neither)."""
    try:
        data = read_limited(path, SMALL_FILE_LIMIT)
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [f"not read ({exc.strerror or exc}); all default keys"]
    try:
        parsed = loads_shallow(data.decode("utf-8"), MAX_DEPTH)
    except (UnicodeDecodeError, ValueError) as exc:
        return {}, [f"not valid JSON ({exc}); all default keys"]
    if not isinstance(parsed, dict):
        return {}, ['must be a JSON object such as {"zoom_to_box": ["Z"]}; all default keys']
    return parsed, []


def merge_keymap(defaults: tuple[KeyBinding, ...], overrides: Mapping[str, object],
                 normalize: Normalize = normalize_key) -> tuple[tuple[KeyBinding, ...], list[str]]:
    """``defaults`` with the valid ``overrides`` applied, and one problem line per bad entry.

    An entry is bad when its action is unknown, its value is not a list of key names, one of
    its keys does not parse, or it gives a key another action has after the merge. A bad
    entry is dropped whole (its action keeps its default keys), so the result never has two
    actions on one key as long as ``defaults`` has none.
    """
    problems: list[str] = []
    known = {b.action: b for b in defaults}
    wanted: dict[str, tuple[str, ...]] = {}
    for action, value in overrides.items():
        if action not in known:
            close = difflib.get_close_matches(action, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else " (the names are the actions of the keymap)"
            problems.append(f"unknown action {action!r}{hint}")
            continue
        keys = [value] if isinstance(value, str) else value
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            problems.append(f"{action!r}: expected a list of key names such as [\"Z\"], got {json.dumps(value)}")
            continue
        try:
            wanted[action] = tuple(dict.fromkeys(normalize(k) for k in keys))
        except ValueError as exc:
            problems.append(f"{action!r}: {exc}")
    while clash := _first_overridden_clash(_apply(defaults, wanted), wanted, normalize):
        key, actions, overridden = clash
        for action in overridden:
            del wanted[action]
        problems.append(f"{key!r} would belong to {' and '.join(actions)}; "
                        f"{' and '.join(overridden)} keep(s) the default keys")
    return _apply(defaults, wanted), problems


def conflicts(keymap: tuple[KeyBinding, ...], normalize: Normalize = normalize_key) -> list[tuple[str, list[str]]]:
    """(key, actions) for every key that more than one action has, in keymap order."""
    owners: dict[str, list[str]] = {}
    for b in keymap:
        for key in dict.fromkeys(normalize(k) for k in b.keys):
            owners.setdefault(key, []).append(b.action)
    return [(key, actions) for key, actions in owners.items() if len(actions) > 1]


def _first_overridden_clash(keymap: tuple[KeyBinding, ...], wanted: Mapping[str, object],
                            normalize: Normalize) -> tuple[str, list[str], list[str]] | None:
    """The first shared key that involves an override: (key, its actions, the overridden ones).
    A clash among default keys alone is not the user's doing (``test_keymap`` keeps them apart)."""
    for key, actions in conflicts(keymap, normalize):
        overridden = [a for a in actions if a in wanted]
        if overridden:
            return key, actions, overridden
    return None


def _apply(defaults: tuple[KeyBinding, ...], wanted: Mapping[str, tuple[str, ...]]) -> tuple[KeyBinding, ...]:
    return tuple(replace(b, keys=wanted[b.action]) if b.action in wanted else b for b in defaults)


def load_user_keymap(path: Path | None = None, defaults: tuple[KeyBinding, ...] = KEYMAP) -> UserKeymap:
    """The keymap in force for this user: ``defaults`` and the valid entries of ``path``
    (default: ``keys.json`` in the user config folder)."""
    path = keys_path() if path is None else path
    overrides, problems = read_overrides(path)
    keymap, merge_problems = merge_keymap(defaults, overrides)
    return UserKeymap(keymap, tuple(problems + merge_problems), path)
