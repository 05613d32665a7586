"""Where a box's class tag goes and which tags are shown: pure rules, in screen pixels.

Tags keep their screen size at any zoom, so both rules work in screen pixels measured from the
image's top-left corner (the view's scroll offset moves everything alike and does not matter):

- placement: above the box's top-left corner; inside the box when that would leave the image at
  the top; shifted left when it would run past the image's right edge (seen: tags of boxes at the
  edges were clipped or ran off the picture);
- crowding: tags never overlap. The selected box's tag always shows, then the others in the
  review order (file boxes, proposals by score, drawn boxes); a tag that would cover one already
  shown is hidden, its box keeps its outline (seen: 30+ boxes made an illegible pile of tags).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Rect = tuple[float, float, float, float]
"""x, y, width, height in screen pixels from the image's top-left corner."""

_CELL = 64.0  # grid cell (screen pixels) for the overlap test: a tag meets only its neighbours


def label_offset(box: tuple[float, float, float, float], size: tuple[float, float],
                 image: tuple[float, float]) -> tuple[float, float]:
    """The tag's top-left relative to the box's top-left corner, in screen pixels.

    ``box`` is (x0, y0, x1, y1) and ``image`` (width, height), both in screen pixels;
    ``size`` is the tag's (width, height)."""
    x0, y0, _x1, _y1 = box
    width, height = size
    image_w, image_h = image
    dy = -height if y0 - height >= 0 else 0.0  # above the box, or inside its top edge
    dy = min(dy, image_h - height - y0)  # a box at the very bottom of a tiny image
    dx = min(0.0, image_w - width - x0)  # flush with the image's right edge when it would pass it
    return max(dx, -x0), max(dy, -y0)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _cells(rect: Rect) -> Iterable[tuple[int, int]]:
    x, y, w, h = rect
    for cx in range(int(x // _CELL), int((x + w) // _CELL) + 1):
        for cy in range(int(y // _CELL), int((y + h) // _CELL) + 1):
            yield cx, cy


def shown_labels(rects: Sequence[Rect | None], selected: int = -1) -> set[int]:
    """Indices of the tags to show: no two overlap; the selected one always shows.

    ``rects[i]`` is tag i's rectangle, None for a box that is not drawn."""
    order = [selected] if 0 <= selected < len(rects) and rects[selected] is not None else []
    order += [i for i, r in enumerate(rects) if r is not None and i != selected]
    grid: dict[tuple[int, int], list[Rect]] = {}
    shown: set[int] = set()
    for i in order:
        rect = rects[i]
        assert rect is not None
        cells = list(_cells(rect))
        if any(_overlaps(rect, other) for cell in cells for other in grid.get(cell, ())):
            continue
        shown.add(i)
        for cell in cells:
            grid.setdefault(cell, []).append(rect)
    return shown
