"""How sure the model was about each image: bands, a review order and a score filter, without Qt.

Reviewing by exception starts with the images the model was unsure of. An image's proposals
are read once (``ConfidenceIndex``, scores only, so a rule's match count is recomputed in memory
as the user types); what an image is worth looking at is its ``Band``:

- AMBIGUOUS: a proposal scores strictly between ``low`` and ``high`` (the model hesitated);
- CONFIDENT: every proposal scores ``>= high`` (surely there) or ``<= low`` (surely not);
- EMPTY: the model proposed nothing; WAITING: it has not seen the image yet.

The confidence order puts AMBIGUOUS images first (the most hesitant proposals first), then the
rest by their lowest shown score, folder order breaking ties; "next unverified" and the grid's
pages follow it (``FolderReview.set_order``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from autolabel_gui.core.boxes import Box

DEFAULT_LOW = 0.3
DEFAULT_HIGH = 0.8
"""The ambiguous band's edges by default: the issue's example rule (">= 0.8 or <= 0.3")."""


class Band(enum.Enum):
    """What the model's scores say about one image (the file list's and grid's words)."""

    AMBIGUOUS = "unsure"
    CONFIDENT = "sure"
    EMPTY = "nothing proposed"
    WAITING = "waiting for the model"


@dataclass(frozen=True, slots=True)
class Scores:
    """One image's proposal scores, highest first (None: the model has not seen it yet)."""

    rel: str
    scores: tuple[float, ...] | None

    def shown(self, threshold: float) -> tuple[float, ...]:
        """The scores of the boxes shown at ``threshold`` (``Box.passes``: ``>=``)."""
        return () if self.scores is None else tuple(s for s in self.scores if s >= threshold)

    def band(self, low: float, high: float) -> Band:
        if self.scores is None:
            return Band.WAITING
        if not self.scores:
            return Band.EMPTY
        return Band.AMBIGUOUS if any(low < s < high for s in self.scores) else Band.CONFIDENT

    def hesitation(self, low: float, high: float) -> float:
        """How close the most hesitant proposal is to the middle of the band: 0 at an edge,
        1 in the middle; images are reviewed most hesitant first."""
        middle, half = (low + high) / 2, max((high - low) / 2, 1e-9)
        inside = [s for s in self.scores or () if low < s < high]
        return max((1 - abs(s - middle) / half for s in inside), default=0.0)

    def caption(self, threshold: float) -> str:
        """The grid tile's line: boxes shown and the lowest score among them."""
        if self.scores is None:
            return "waiting"
        shown = self.shown(threshold)
        if not shown:
            return "0 boxes"
        return f"{len(shown)} box{'es' if len(shown) != 1 else ''}, min {min(shown):.2f}"


def scores_of(rel: str, boxes: Iterable[Box] | None) -> Scores:
    """The ``Scores`` of ``rel`` from its proposals (a box with no score counts as sure: it came
    from a file, not from the model)."""
    if boxes is None:
        return Scores(rel, None)
    return Scores(rel, tuple(sorted((1.0 if b.score is None else b.score for b in boxes), reverse=True)))


class ConfidenceIndex:
    """Every image's scores, in folder order, read once through ``lookup`` (the cache)."""

    def __init__(self, images: Sequence[str], lookup: Callable[[str], list[Box] | None]) -> None:
        self.images = images
        self.scores = {rel: scores_of(rel, lookup(rel)) for rel in images}

    def update(self, rel: str, boxes: Iterable[Box] | None) -> None:
        """``rel``'s proposals arrived (or were detected again)."""
        if rel in self.scores:
            self.scores[rel] = scores_of(rel, boxes)

    def counts(self, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH) -> dict[Band, int]:
        """Images per band: "12 unsure, 30 sure, 3 with nothing proposed"."""
        out = dict.fromkeys(Band, 0)
        for s in self.scores.values():
            out[s.band(low, high)] += 1
        return out

    def order(self, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH) -> list[str]:
        """The confidence order: unsure images first (most hesitant first), then the others by
        lowest score, the images still waiting for the model last; ties in folder order."""
        rank = {Band.AMBIGUOUS: 0, Band.EMPTY: 1, Band.CONFIDENT: 1, Band.WAITING: 2}

        def key(item: tuple[int, str]) -> tuple[int, float, int]:
            row, rel = item
            s = self.scores[rel]
            band = s.band(low, high)
            if band is Band.AMBIGUOUS:
                return 0, -s.hesitation(low, high), row
            lowest = min(s.scores) if s.scores else 1.0
            return rank[band], lowest, row

        return [rel for _, rel in sorted(enumerate(self.images), key=key)]

    def in_range(self, lo: float, hi: float) -> list[str]:
        """The images (folder order) with a proposal scoring in ``[lo, hi]``: the score filter."""
        return [rel for rel in self.images if any(lo <= s <= hi for s in self.scores[rel].scores or ())]

    def counts_text(self, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH) -> str:
        counts = self.counts(low, high)
        return ", ".join(f"{n} {band.value}" for band, n in counts.items() if n)
