"""The class picker's list (L): the project's classes that match what was typed, without Qt.

Names that start with the typed text come first, then names that contain it, each group in the
project's order (the order of the digit keys), case ignored. Typed text that names no class is
offered as a new class for the project: a typo, then, costs one extra look, never a silent
new class (the picker shows the matches above the offer).
"""

from __future__ import annotations


def matching_classes(names: list[str], typed: str) -> list[str]:
    query = typed.strip().casefold()
    if not query:
        return list(names)
    starts = [n for n in names if n.casefold().startswith(query)]
    contains = [n for n in names if query in n.casefold() and n not in starts]
    return starts + contains


def new_class_name(names: list[str], typed: str) -> str | None:
    """The typed name when it is not a class of the project yet (case ignored), else None."""
    name = " ".join(typed.split())
    if not name or name.casefold() in {n.casefold() for n in names}:
        return None
    return name
