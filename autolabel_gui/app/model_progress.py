"""Where the model is in a folder: what it has done, what it does next, what to tell the reviewer.

Qt-free so the rules are tested without a window. The reviewer is faster than a CPU model (1-2 s
an image against 7-12 s), so the window must always say how far the model is, with one figure
whose denominator never moves (images the model has finished / all images), and must keep the
model busy on the whole folder, the image on screen first.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ModelState(enum.Enum):
    """Where the folder's detector is; the window words it (``gui.main_window.model_text``)."""

    LOADING = "loading"
    READY = "ready"
    UNAVAILABLE = "unavailable"
    """It cannot run here (no weights, no classes, a bad setting): cached proposals still come."""
    ERROR = "error"
    """It ran and failed; the next image tries again."""


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """The detector's state and what to say about it; ``download_fixes``: its files are
    missing and ``autolabel-gui weights download`` fetches them."""

    state: ModelState
    message: str = ""
    download_fixes: bool = False


def detection_order(images: Sequence[str], row: int, skip: Container[str]) -> list[str]:
    """What the model should do after the image at ``row``: the rest of the folder in navigation
    order, then from the start, leaving out ``skip`` (finished images)."""
    after = images[row + 1:] if row >= 0 else images
    before = images[:row] if row > 0 else []
    return [rel for seq in (after, before) for rel in seq if rel not in skip]


@dataclass(slots=True)
class ModelProgress:
    """Images of one folder the model has finished: with proposals, or failed with a reason."""

    total: int
    done: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, images: Sequence[str], cached: Iterable[str]) -> ModelProgress:
        """Start from the images the cache already holds proposals for (of those listed)."""
        listed = set(images)
        return cls(len(images), {rel for rel in cached if rel in listed})

    def finished(self, rel: str) -> bool:
        return rel in self.done or rel in self.failed

    def __contains__(self, rel: object) -> bool:
        return isinstance(rel, str) and self.finished(rel)

    def add(self, rel: str) -> bool:
        """Proposals for ``rel`` arrived; True when that changes the figure."""
        self.failed.pop(rel, None)
        if rel in self.done:
            return False
        self.done.add(rel)
        return True

    def fail(self, rel: str, reason: str) -> bool:
        """The model could not process ``rel``; True when that changes the figure."""
        new = rel not in self.failed
        self.failed[rel] = reason
        self.done.discard(rel)
        return new

    def text(self, model_runs: bool) -> str:
        """The status-bar figure: "Proposals 12/43", with failures and a stopped model said."""
        figure = f"Proposals {len(self.done)}/{self.total}"
        if self.failed:
            figure += f" · {len(self.failed)} failed"
        if not model_runs and len(self.done) + len(self.failed) < self.total:
            figure += " (model off)"
        return figure


def waiting_text(model_state: ModelState, position: int | None, progress: ModelProgress) -> str:
    """What the canvas says while the image on screen waits for its proposals.

    ``position``: images the model does before this one (0: detecting it now; None: not queued yet).
    """
    count = len(progress.done) + len(progress.failed)
    # Once every image is done, only a rerun (R) waits: "44 of 44 done" would read as a contradiction.
    finished = f" (model: {count} of {progress.total} images done)" if count < progress.total else ""
    if model_state is ModelState.LOADING:
        return f"Loading the model… proposals for this image come first{finished}"
    if model_state is ModelState.ERROR:  # a proposal server away, a model that failed: it is tried again
        return f"The model is not working right now (see the status bar); it is tried again{finished}"
    if position == 0:
        return f"Detecting… proposals for this image are coming{finished}"
    if position is not None:
        ahead = f"{position} image{'s' if position != 1 else ''}"
        return f"Queued for the model: {ahead} ahead{finished}"
    return f"Waiting for the model{finished}"


def refused_text(waiting: str) -> str:
    """Space or Ctrl+S pressed before the proposals arrived: nothing was saved, say why."""
    return f"Not verified: the model has not seen this image yet. {waiting}"


def folder_writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (the nearest existing parent when it does not
    exist yet): a read-only share or file system is said when the folder opens, not on the
    first failed save."""
    path = Path(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.access(path, os.W_OK | os.X_OK)
