"""Fit boxes to their objects with a promptable segmenter, without Qt (F and Shift+F).

Three steps, so that the model never runs on the UI thread and a late answer never lands on a
box the user did not ask about:

1. ``plan_fit`` (UI thread): which boxes. F takes the selected box; Shift+F every accepted box
   shown. Each target remembers the box as it was asked for.
2. ``BoxFitter.fit`` (a worker thread): the image embedding, computed once per image and model
   and kept in a small LRU (``EmbeddingCache``), then one prompt decode for all the targets.
3. ``apply_fit`` (UI thread): one undo step with the fitted boxes; a target that changed
   meanwhile (moved, deleted, undone, or for F no longer selected) is left alone and said so,
   as is a box whose mask came back empty.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.review import ReviewState

XYXY = tuple[float, float, float, float]
EMBEDDINGS_KEPT = 4
"""Images whose embedding is kept: going back and forth between neighbours costs no encoder run."""
SELECT_FIRST = "Select a box first (Tab, or a click on it), then F fits it to its object."


class BoxSegmenter(Protocol):
    """What the fit needs of a segmenter (``detection.segmenter.Segmenter``)."""

    @property
    def model_id(self) -> str: ...

    def embed(self, image: np.ndarray) -> Any: ...

    def fit(self, embedding: Any, boxes: Sequence[XYXY]) -> list[tuple[int, int, int, int] | None]: ...


@dataclass(frozen=True, slots=True)
class FitTarget:
    index: int
    box: Box


@dataclass(frozen=True, slots=True)
class FitRequest:
    """Boxes of image ``rel`` (the file ``path``) to fit with ``segmenter`` (None: the default);
    ``image_key`` names the file's version (the embedding cache's key)."""

    rel: str
    path: Path
    image_key: Hashable
    targets: tuple[FitTarget, ...]
    selected_only: bool
    segmenter: str | None = None


@dataclass(frozen=True, slots=True)
class FitResult:
    """The fitted boxes of a request, one per target (None: empty mask), or why there are none;
    ``thread``: the thread that ran the model (the UI thread never does)."""

    request: FitRequest
    fitted: tuple[tuple[int, int, int, int] | None, ...] = ()
    error: str | None = None
    thread: int = 0


def plan_fit(state: ReviewState | None, rel: str | None, path: Path, image_key: Hashable, all_accepted: bool,
             segmenter: str | None = None) -> FitRequest | str:
    """The boxes F (``all_accepted`` False) or Shift+F would fit, or why nothing is fitted."""
    if state is None or rel is None:
        return "Open a folder first (Ctrl+O)."
    if state.read_only:
        return f"{rel} is read-only: its boxes cannot be changed."
    if all_accepted:
        indices = [i for i in state.visible_indices() if state.items[i].accepted]
        if not indices:
            return "No accepted box shown on this image: Shift+F fits accepted boxes only."
    else:
        if state.selected < 0:
            return SELECT_FIRST
        indices = [state.selected]
    targets = tuple(FitTarget(i, state.items[i].box) for i in indices)
    return FitRequest(rel, path, image_key, targets, selected_only=not all_accepted, segmenter=segmenter)


class EmbeddingCache:
    """The last few image embeddings by (image version, model id), least recently used out first."""

    def __init__(self, size: int = EMBEDDINGS_KEPT) -> None:
        self._size = size
        self._items: OrderedDict[tuple[Hashable, str], Any] = OrderedDict()

    def get(self, key: tuple[Hashable, str], compute: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = compute()
        self._items[key] = value
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


class BoxFitter:
    """Runs fits on the thread that calls ``fit``: the segmenter is loaded there on first use
    (and again when a request names another one)."""

    def __init__(self, load_segmenter: Callable[[str | None], BoxSegmenter], load_image: Callable[[Path], np.ndarray],
                 cache_size: int = EMBEDDINGS_KEPT) -> None:
        self._load_segmenter = load_segmenter
        self._load_image = load_image
        self._segmenter: tuple[str | None, BoxSegmenter] | None = None
        self.embeddings = EmbeddingCache(cache_size)

    def fit(self, request: FitRequest) -> FitResult:
        """The fitted boxes of ``request``; a segmenter or image that cannot be used is an error
        result whose message says what to do (the caller shows it)."""
        thread = threading.get_ident()
        try:
            if self._segmenter is None or self._segmenter[0] != request.segmenter:
                self._segmenter = None  # the old model's memory goes before the new one loads
                self._segmenter = (request.segmenter, self._load_segmenter(request.segmenter))
            segmenter = self._segmenter[1]
            embedding = self.embeddings.get((request.image_key, segmenter.model_id),
                                            lambda: segmenter.embed(self._load_image(request.path)))
            fitted = segmenter.fit(embedding, [t.box.xyxy for t in request.targets])
        except Exception as exc:  # no weights, an unreadable image, a model error: said, never fatal
            return FitResult(request, error=str(exc) or type(exc).__name__, thread=thread)
        return FitResult(request, tuple(fitted), thread=thread)


def _size(box: Box | XYXY) -> str:
    x0, y0, x1, y1 = box.xyxy if isinstance(box, Box) else box
    return f"{x1 - x0:.0f}x{y1 - y0:.0f}"


def apply_fit(state: ReviewState, result: FitResult) -> tuple[str, bool]:
    """Put the fitted boxes of ``result`` on ``state`` as one undo step; (message, is an error).

    Only targets still as they were asked for are changed (and for F, still selected); a box
    whose mask is empty keeps its place.
    """
    if result.error is not None:
        return f"Fit: {result.error}", True
    changes: dict[int, XYXY] = {}
    empty = changed = 0
    for target, fitted in zip(result.request.targets, result.fitted, strict=True):
        i = target.index
        still = i < len(state.items) and state.items[i].box == target.box
        if not still or (result.request.selected_only and state.selected != i):
            changed += 1
        elif fitted is None:
            empty += 1
        else:
            changes[i] = tuple(float(v) for v in fitted)  # type: ignore[assignment]
    moved = state.set_geometry(changes) if changes else 0
    notes = []
    if empty:
        notes.append(f"{empty} without an object found, left as {'it is' if empty == 1 else 'they are'}")
    if changed:
        notes.append(f"{changed} changed or unselected meanwhile, left alone")
    if len(result.request.targets) == 1:
        target = result.request.targets[0]
        if moved:
            return f"fitted: {_size(target.box)} → {_size(changes[target.index])}", False
        if empty:
            return "fit: no object found in the box; it is left as it is", True
        if changed:
            return "fit: the box changed or was unselected meanwhile; it is left alone", True
        return f"fit: the box already fits its object ({_size(target.box)})", False
    text = f"fitted {moved} of {len(result.request.targets)} boxes" + (f" ({'; '.join(notes)})" if notes else "")
    return text, not moved
