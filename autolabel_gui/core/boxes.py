"""Boxes and per-image labels: the Qt-free value types every layer shares.

Coordinates are continuous pixel coordinates in the EXIF-oriented image: (x0, y0) is the
top-left corner of the first covered pixel and (x1, y1) the far edge, so a box covering
pixel columns 0..9 has x0=0, x1=10. Pascal VOC's 1-based inclusive integers are a file-format
detail handled in ``formats.voc``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path


class BoxState(str, enum.Enum):
    """Where a box is in review: proposed by the model, accepted, or rejected by the human."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Box:
    """One axis-aligned box. Immutable so that undo snapshots can share instances."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str
    score: float | None = None
    state: BoxState = BoxState.ACCEPTED
    difficult: bool = False
    truncated: bool = False
    occluded: bool = False
    pose: str = "Unspecified"

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def passes(self, threshold: float) -> bool:
        """Whether the box clears a score threshold: the one rule for the window, ``label`` and
        its count. A box without a score was drawn or loaded, not proposed, and always passes."""
        return self.score is None or self.score >= threshold

    def normalized(self) -> Box:
        """Return the box with x0 <= x1 and y0 <= y1 (a drag can go either way)."""
        return replace(
            self,
            x0=min(self.x0, self.x1),
            x1=max(self.x0, self.x1),
            y0=min(self.y0, self.y1),
            y1=max(self.y0, self.y1),
        )

    def clamped(self, width: float, height: float) -> Box:
        """Return the box clipped to the image so that nothing is ever written outside it."""
        b = self.normalized()
        return replace(
            b,
            x0=min(max(b.x0, 0.0), width),
            y0=min(max(b.y0, 0.0), height),
            x1=min(max(b.x1, 0.0), width),
            y1=min(max(b.y1, 0.0), height),
        )

    def moved(self, dx: float, dy: float, width: float, height: float) -> Box:
        """Translate without resizing; the move stops at the image border."""
        dx = min(max(dx, -self.x0), width - self.x1)
        dy = min(max(dy, -self.y0), height - self.y1)
        return replace(self, x0=self.x0 + dx, x1=self.x1 + dx, y0=self.y0 + dy, y1=self.y1 + dy)

    def with_state(self, state: BoxState) -> Box:
        return replace(self, state=state)

    def with_label(self, label: str) -> Box:
        return replace(self, label=label)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(slots=True)
class ImageLabels:
    """What one annotation file says about one image."""

    filename: str
    width: int
    height: int
    depth: int = 3
    boxes: list[Box] = field(default_factory=list)
    verified: bool = False
    folder: str = ""
    path: str = ""
    accepted_by_rule: str | None = None
    """Accepted by a rule, unseen (``app.accept_rule.Provenance.text``); never with ``verified``."""

    @classmethod
    def for_image(cls, image: Path, width: int, height: int, boxes: list[Box] | None = None,
                  verified: bool = False, accepted_by_rule: str | None = None) -> ImageLabels:
        """Labels of the image file ``image``, whose name, folder name and path fill the header."""
        return cls(filename=image.name, width=width, height=height, boxes=[] if boxes is None else boxes,
                   verified=verified, folder=image.parent.name, path=str(image),
                   accepted_by_rule=None if verified else accepted_by_rule)
