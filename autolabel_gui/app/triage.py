"""Grid triage: judging a page of images at a glance instead of one image and one key at a time.

Qt-free, so the rules are tested without a window (``gui/grid_triage.py`` is the glue,
``gui/grid_view.py`` draws the tiles):

- A page holds the next images in folder order, from the image on screen (wrapping), that the
  caller calls eligible: not verified, readable, and finished by the model with proposals, so a
  page never holds an image still waiting for it. Images set aside on an earlier page are left
  out: they wait for the single-image view.
- The annotator marks the images that need work (a click, or digits 1-9 in reading order); a
  mark toggles. An image whose picture cannot be decoded is marked by itself.
- Space verifies every unmarked image exactly as Space does on one image (the caller's
  ``verify``: ``FolderReview.accept_and_verify``, the same gate and save), and sets the marked
  ones aside. It is refused while a tile's picture has not been drawn: nobody verifies what
  they have not seen. An image whose save fails is set aside too, so no page repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

GRID_SIZES = (2, 3, 4)
"""Columns (and rows) a page may have; digits reach the first nine tiles, a click any."""
DEFAULT_COLUMNS = 3


@dataclass(slots=True)
class Tile:
    """One image of the page: marked as needing work, its picture drawn, or why it cannot be."""

    rel: str
    marked: bool = False
    shown: bool = False
    failed: str | None = None


@dataclass(slots=True)
class PageResult:
    """What Space did to a page: images verified, proposals accepted, images it could not
    verify (-> why), images set aside for the single-image view."""

    verified: list[str] = field(default_factory=list)
    accepted: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    set_aside: list[str] = field(default_factory=list)


class Triage:
    """The grid pages over ``images`` (folder order) and what the annotator marked on them."""

    def __init__(self, images: Sequence[str], columns: int = DEFAULT_COLUMNS) -> None:
        self.images = images
        self._row = {rel: i for i, rel in enumerate(images)}
        self.columns = columns if columns in GRID_SIZES else DEFAULT_COLUMNS
        self.tiles: list[Tile] = []
        self.set_aside: list[str] = []
        """Images marked on pages already turned, in the order they were set aside."""

    def reorder(self, images: Sequence[str]) -> None:
        """Pages follow ``images`` from now on (the review order: folder or confidence order)."""
        if images is not self.images:
            self.images = images
            self._row = {rel: i for i, rel in enumerate(images)}

    @property
    def size(self) -> int:
        return self.columns * self.columns

    @property
    def page(self) -> list[str]:
        return [t.rel for t in self.tiles]

    def select(self, start: str | None, eligible: Callable[[str], bool], *, after: bool = False,
               skip: Collection[str] = ()) -> list[str]:
        """Up to ``size`` eligible images from ``start`` (itself included unless ``after``),
        in folder order and wrapping, leaving out ``skip`` and the images set aside."""
        n = len(self.images)
        first = self._row.get(start, -1) if start is not None else -1
        if first < 0:
            first, after = 0, False
        first += 1 if after else 0
        aside = set(self.set_aside)
        chosen: list[str] = []
        for k in range(n):
            rel = self.images[(first + k) % n]
            if rel in aside or rel in skip or not eligible(rel):
                continue
            chosen.append(rel)
            if len(chosen) == self.size:
                break
        return chosen

    def open(self, rels: Sequence[str], marked: Collection[str] = ()) -> None:
        """Show ``rels`` as the page; ``marked``: those that keep a mark (a new grid size)."""
        self.tiles = [Tile(rel, marked=rel in marked) for rel in rels]

    def close(self) -> None:
        self.tiles = []

    def index_of(self, rel: str) -> int:
        return next((i for i, t in enumerate(self.tiles) if t.rel == rel), -1)

    def toggle(self, index: int) -> bool:
        """A digit or a click on tile ``index``: mark it, or take its mark back. False when
        there is no such tile or its picture cannot be shown (it stays marked)."""
        if not 0 <= index < len(self.tiles) or self.tiles[index].failed is not None:
            return False
        self.tiles[index].marked = not self.tiles[index].marked
        return True

    def picture_shown(self, rel: str) -> int:
        """The picture of ``rel`` is drawn; returns its tile (-1: not on this page)."""
        index = self.index_of(rel)
        if index >= 0:
            self.tiles[index].shown = True
        return index

    def picture_failed(self, rel: str, reason: str) -> int:
        """The picture of ``rel`` cannot be decoded: marked, it goes to the single view (which
        says why) instead of being verified unseen. Returns its tile (-1: not on this page)."""
        index = self.index_of(rel)
        if index >= 0:
            tile = self.tiles[index]
            tile.failed, tile.marked = reason, True
        return index

    def marked(self) -> list[str]:
        return [t.rel for t in self.tiles if t.marked]

    def unmarked(self) -> list[str]:
        return [t.rel for t in self.tiles if not t.marked]

    def loading(self) -> list[str]:
        return [t.rel for t in self.tiles if not t.shown and t.failed is None]

    def blocker(self) -> str | None:
        """Why Space cannot verify this page now, or None."""
        if not self.tiles:
            return "no page is shown"
        waiting = len(self.loading())
        if waiting:
            return f"{waiting} image{'s are' if waiting != 1 else ' is'} still loading; look at them first"
        return None

    def verify_page(self, verify: Callable[[str], tuple[int, str | None]]) -> PageResult:
        """Space: verify the unmarked images (``verify(rel)``: proposals accepted, why it was not
        verified or None); set aside the marked ones and those that could not be verified (a
        failed save: the single view says why).

        The caller checks ``blocker`` first. The page stays open so the caller can show the next
        one (``select(..., after=True)`` from ``page[-1]``).
        """
        result = PageResult()
        for rel in self.unmarked():
            count, error = verify(rel)
            if error is None:
                result.verified.append(rel)
                result.accepted += count
            else:
                result.errors[rel] = error
        result.set_aside = [rel for rel in (*self.marked(), *result.errors) if rel not in self.set_aside]
        self.set_aside += result.set_aside
        return result

    def back_to(self, still_unverified: Callable[[str], bool]) -> str | None:
        """Where the single view goes on leaving the grid: the first marked image of the page,
        else the first image set aside earlier that is still unverified, else None."""
        for rel in (*self.marked(), *self.set_aside):
            if still_unverified(rel):
                return rel
        return None
