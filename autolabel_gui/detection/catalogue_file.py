"""A catalogue shipped as JSON beside the code: ``{"default": NAME, "models": [{...}, ...]}``.

The detectors (``models.json``) and the segmenters (``segmenters.json``) are both read this way:
once, into frozen entries, with the same lookup by name and the same error naming the known ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)


class CatalogueFile(Generic[E]):
    """The entries of one catalogue file (``make(**entry)`` each), read on first use."""

    def __init__(self, path: Path, make: Callable[..., E], kind: str) -> None:
        self.path = path
        self._make = make
        self._kind = kind

    @functools.cached_property
    def _data(self) -> tuple[str, tuple[E, ...]]:
        data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return data["default"], tuple(self._make(**entry) for entry in data["models"])

    def entries(self) -> tuple[E, ...]:
        return self._data[1]

    def default(self) -> E:
        return self.named(self._data[0])

    def named(self, name: str) -> E:
        """The entry called ``name``; ValueError naming the known ones otherwise."""
        for entry in self.entries():
            if entry.name == name:
                return entry
        raise ValueError(f"unknown {self._kind} {name!r}; known: {', '.join(e.name for e in self.entries())}")
