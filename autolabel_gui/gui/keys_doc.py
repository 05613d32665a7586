"""README's key table, generated from ``KEYMAP`` so the README cannot drift from the window.

Regenerate after adding or changing a key (``tests/test_keys_doc.py`` fails until then)::

    python -m autolabel_gui.gui.keys_doc        # rewrites the table in README.md
    python -m autolabel_gui.gui.keys_doc --check

Keys are written in Qt's portable spelling (``Ctrl+S``, never macOS's ``⌘S``), so the table is
the same on every platform; the F1 dialog shows the platform's own spelling.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from PySide6.QtGui import QKeySequence

from autolabel_gui.gui.keymap import KEYMAP, KeyBinding

START = "<!-- keys:start -->"
END = "<!-- keys:end -->"
README = Path(__file__).resolve().parents[2] / "README.md"
REGENERATE = "python -m autolabel_gui.gui.keys_doc"
# Qt's second name for Shift+Tab: a key the user presses once, listed once.
_ALIASES = frozenset({"Shift+Backtab"})


def portable(key: str) -> str:
    """``key`` in Qt's portable spelling, the same on every platform."""
    return QKeySequence.fromString(key, QKeySequence.SequenceFormat.PortableText).toString(
        QKeySequence.SequenceFormat.PortableText)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _keys_cell(b: KeyBinding) -> str:
    shown = [f"`{portable(k)}`" for k in b.keys if k not in _ALIASES]
    return ", ".join(shown) or "menu only"


def _digit_row(b: KeyBinding) -> str | None:
    """The description with its digit as N, for a row whose one key is that digit (class_1..9)."""
    if len(b.keys) == 1 and b.keys[0].isdigit() and len(b.keys[0]) == 1 and b.keys[0] in b.description:
        return b.description.replace(b.keys[0], "N")
    return None


def markdown_table(keymap: tuple[KeyBinding, ...] = KEYMAP) -> str:
    """The keymap as a Markdown table, one row per action with its name (what a user's
    ``keys.json`` calls it); runs of digit rows that differ only in their digit (the nine
    class keys) share one row."""
    lines = ["| key | action | group | name |", "|---|---|---|---|"]
    i = 0
    while i < len(keymap):
        b = keymap[i]
        template = _digit_row(b)
        j = i + 1
        while template is not None and j < len(keymap) and _digit_row(keymap[j]) == template:
            j += 1
        if template is not None and j - i > 1:
            keys, description = f"`{b.keys[0]}` … `{keymap[j - 1].keys[0]}`", template
            name = f"`{b.action}` … `{keymap[j - 1].action}`"
        else:
            keys, description, name = _keys_cell(b), b.description, f"`{b.action}`"
        lines.append(f"| {keys} | {_cell(description)} | {b.group} | {name} |")
        i = j
    return "\n".join(lines)


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README has no {START} ... {END} section")
    return pattern.sub(lambda _m: f"{START}\n{table}\n{END}", readme, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description="Write KEYMAP's table into the README.")
    parser.add_argument("readme", nargs="?", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table is out of date")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new = with_table(text, markdown_table())
    if new == text:
        print(f"{args.readme}: key table up to date")
        return 0
    if args.check:
        print(f"{args.readme}: key table out of date; run `{REGENERATE}`", file=sys.stderr)
        return 1
    args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme}: key table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
