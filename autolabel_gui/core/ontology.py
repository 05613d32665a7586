"""Class names and the text prompts that find them.

The annotator thinks in classes ("vehicle"); the model reads prompts ("car . truck . bus").
Keeping the two apart means every box gets a class from the user's list, whatever the prompt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """One class and the prompt used to detect it (the class name when none is given)."""

    name: str
    prompt: str = ""

    @property
    def text(self) -> str:
        return (self.prompt or self.name).strip()


@dataclass(frozen=True, slots=True)
class Ontology:
    """An ordered class list; the order is the digit-key order and the export order."""

    classes: tuple[ClassSpec, ...]
    group_starts: tuple[int, ...] = ()
    """Indices where a new prompt group starts: a caption never holds classes of two groups, so
    each group's proposals are the same whether it is detected alone or with the others
    (docs/decisions/0013-prompt-groups.md). Not part of ``fingerprint``: a group's own id is."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.classes]
        if any(not n.strip() for n in names):
            raise ValueError("class names must not be empty")
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique: {names}")

    @classmethod
    def from_names(cls, names: list[str] | str, prompts: dict[str, str] | None = None) -> Ontology:
        """Build from a list or a comma-separated string, with optional per-class prompts."""
        if isinstance(names, str):
            names = split_class_names(names)
        prompts = prompts or {}
        unknown = set(prompts) - set(names)
        if unknown:
            raise ValueError(f"prompt given for unknown class(es): {sorted(unknown)}")
        return cls(tuple(ClassSpec(n, prompts.get(n, "")) for n in names))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    def fingerprint(self) -> str:
        """A stable id of the prompt set, so cached proposals are tied to the prompts that made them."""
        data = json.dumps([[c.name, c.text] for c in self.classes], ensure_ascii=False)
        return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def split_class_names(text: str) -> list[str]:
    """``"car, dog,,"`` -> ``["car", "dog"]``: the comma-separated class list of ``--classes``."""
    return [n for n in (p.strip() for p in text.split(",")) if n]


def parse_prompt_args(items: list[str] | None) -> dict[str, str]:
    """Parse repeated ``CLASS=TEXT`` command-line values."""
    prompts: dict[str, str] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise ValueError(f"--prompt expects CLASS=TEXT, got {item!r}")
        prompts[name.strip()] = text.strip()
    return prompts
