"""Grid triage in the window: G shows a page of images, digits mark, Space verifies the rest.

Glue between ``app.triage`` (the rules), ``gui.grid_view`` (the tiles) and the folder's
``FolderReview`` (its verify rule, statuses and model progress). Pictures are thumbnails
decoded off the UI thread by an ``ImageCache`` of their own, kept in a bounded LRU, the next
page decoded while the annotator looks at this one, so turning a page waits for no decode.

Keys stay in the one keymap: ``route_by_mode`` gives Space, Esc and the digits to the grid
while it is shown, and leaves the keys that edit the single image (nobody sees it then) idle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QSettings, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QStackedWidget, QWidget

from autolabel_gui.app.confidence import scores_of
from autolabel_gui.app.folder_review import FolderReview
from autolabel_gui.app.status import Status
from autolabel_gui.app.triage import DEFAULT_COLUMNS, GRID_SIZES, PageResult, Triage
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.images import load_thumbnail
from autolabel_gui.gui.colors import class_colors
from autolabel_gui.gui.grid_view import GridView, TileContent
from autolabel_gui.gui.image_cache import ImageCache
from autolabel_gui.gui.keymap import KEYMAP
from autolabel_gui.gui.review_controller import ReviewController

THUMB_SIDE = 512
"""Thumbnail pixels a side: sharp in a 2x2 tile of a large window, 0.6 MB each."""
THUMB_CAPACITY = 4 * max(GRID_SIZES) ** 2
"""Thumbnails kept: four pages of the largest grid (~40 MB)."""
GRID_SIZE_KEY = "grid/columns"
SINGLE_IMAGE_GROUPS = ("Images", "Boxes")
"""Keymap groups whose keys act on the single image: idle while the grid is shown."""


class GridTriage(QObject):
    """The grid for the window's folder: ``stack`` shows either the canvas or the grid."""

    message = Signal(str, bool)  # text, is an error
    shown = Signal(bool)  # the grid replaced the single image (True), or gave way to it

    def __init__(self, canvas: QWidget, qsettings: QSettings, parent: QWidget) -> None:
        super().__init__(parent)
        self.qsettings = qsettings
        self.view = GridView(parent)
        self.stack = QStackedWidget(parent)
        self.stack.addWidget(canvas)
        self.stack.addWidget(self.view)
        self._canvas = canvas
        self._columns = _columns_setting(qsettings)
        self.view.set_columns(self._columns)
        self._controller: ReviewController | None = None
        self._review: FolderReview | None = None
        self._thumbs: ImageCache | None = None
        self.triage: Triage | None = None
        self._size_actions: dict[int, QAction] = {}
        self._upcoming: list[str] = []
        self._grid_line = False  # the status bar holds a line about the grid (wrong in the single view)
        self.view.tile_clicked.connect(self.mark)

    @property
    def active(self) -> bool:
        """The grid is shown (instead of the single image)."""
        return self.stack.currentWidget() is self.view

    # ------------------------------------------------------------------ folder life cycle

    def attach(self, controller: ReviewController) -> None:
        """Triage ``controller``'s folder from now on (a new folder starts a new triage)."""
        self.detach()
        self._controller = controller
        review = self._review = controller.review
        self.triage = Triage(review.folder.images, self._columns)
        self._thumbs = ImageCache(review.folder, THUMB_CAPACITY,
                                  functools.partial(load_thumbnail, max_side=THUMB_SIDE), parent=self)
        self._thumbs.loaded.connect(self._thumb_loaded)
        self._thumbs.failed.connect(self._thumb_failed)
        controller.current_changed.connect(self._image_opened)
        controller.message.connect(self._other_message)
        self.view.set_class_colors(class_colors(review.settings.classes))

    def detach(self) -> None:
        """The folder closes: back to the single view, the decode threads stopped."""
        self._show_single()
        if self._controller is not None:
            self._controller.current_changed.disconnect(self._image_opened)
            self._controller.message.disconnect(self._other_message)
        if self._thumbs is not None:
            self._thumbs.close()
            self._thumbs.deleteLater()
        self._thumbs = None
        self._controller = None
        self._review = None
        self.triage = None

    # ------------------------------------------------------------------ keys

    def toggle(self) -> None:
        """G: show the grid, or go back to the single image."""
        if self.active:
            self.leave()
        else:
            self.enter()

    def enter(self) -> None:
        """A page of the next images whose proposals are ready, from the one on screen."""
        r, triage = self._review, self.triage
        if r is None or triage is None or r.current is None:
            return
        r.save_current()
        triage.reorder(r.order if r.order is not None else r.folder.images)
        rels = triage.select(r.current, self._eligible)
        if not rels:
            self.message.emit(self._nothing_ready("No image for the grid"), False)
            return
        self._show_page(rels)
        self.stack.setCurrentWidget(self.view)
        self.view.setFocus()
        self.shown.emit(True)

    def leave(self, note: str = "") -> None:
        """Esc or G: the single image, at the first image marked as needing work if any."""
        c, r, triage = self._controller, self._review, self.triage
        if not self.active or c is None or r is None or triage is None:
            return
        verified = lambda rel: r.statuses.status_of(rel) is Status.VERIFIED  # noqa: E731
        target = triage.back_to(lambda rel: not verified(rel))
        triage.close()
        self._show_single()
        if target is not None:
            r.go_to(target)
        elif r.current is not None and verified(r.current):
            r.next_unverified()
        c.refresh()
        if note:
            self.message.emit(note, False)

    def mark(self, index: int) -> None:
        """A digit or a click: mark tile ``index`` as needing work, or take the mark back."""
        triage = self.triage
        if triage is None or not self.active or not triage.toggle(index):
            return
        self.view.set_marked(index, triage.tiles[index].marked)
        self._say_page()

    def verify_page(self) -> None:
        """Space: verify the unmarked images as Space does on one, set the marked aside, turn."""
        r, triage = self._review, self.triage
        if r is None or triage is None:
            return
        blocker = triage.blocker()
        if blocker is not None:
            self._say(f"Not verified: {blocker}.", True)
            return
        last = triage.page[-1]
        result = triage.verify_page(r.accept_and_verify)
        r.grid_done()
        said = _result_text(result)
        rels = triage.select(last, self._eligible, after=True)
        if rels:
            self._show_page(rels, note=said)
        else:
            self.leave(self._nothing_ready(said + ". No more images for the grid"))
        if result.errors:  # said last, so that nothing covers it
            rel, why = next(iter(result.errors.items()))
            self.message.emit(f"{len(result.errors)} image(s) not verified: {rel}: {why}", True)

    def ignored(self) -> None:
        """A key for the single image pressed while the grid is shown."""
        self._say("In the grid: digits or a click mark, Space verifies the rest; G or Esc for the single image.")

    def set_columns(self, columns: int) -> None:
        """View ▸ Grid: 2x2, 3x3 or 4x4 images a page (remembered); the page shown is redone."""
        if columns not in GRID_SIZES:
            return
        self._columns = columns
        self.qsettings.setValue(GRID_SIZE_KEY, columns)
        self.view.set_columns(columns)
        if columns in self._size_actions:
            self._size_actions[columns].setChecked(True)
        triage = self.triage
        if triage is None:
            return
        triage.columns = columns
        if self.active and triage.tiles:
            first, marked = triage.page[0], triage.marked()
            rels = triage.select(first, self._eligible)
            if rels:
                self._show_page(rels, marked=marked)
            else:
                self.leave()

    def refresh(self) -> None:
        """The threshold changed: every tile shows the boxes now in view."""
        r, triage = self._review, self.triage
        if r is None or triage is None or not self.active:
            return
        for i, rel in enumerate(triage.page):
            self.view.set_boxes(i, _boxes_in_view(r, rel))

    def handlers(self) -> dict[str, Callable[[], object]]:
        """The grid's own keymap rows."""
        own: dict[str, Callable[[], object]] = {"grid": self.toggle}
        for n in GRID_SIZES:
            own[f"grid_{n}"] = functools.partial(self.set_columns, n)
        return own

    def bind_size_actions(self, actions: dict[str, QAction]) -> None:
        """The View menu's grid sizes as one checkable choice."""
        group = QActionGroup(self)
        for n in GRID_SIZES:
            action = actions[f"grid_{n}"]
            action.setCheckable(True)
            action.setChecked(n == self._columns)
            group.addAction(action)
            self._size_actions[n] = action

    def upcoming(self) -> list[str]:
        """The images of the next page if Space is pressed now (prefetched while this one shows)."""
        triage = self.triage
        if triage is None or not triage.tiles:
            return []
        return triage.select(triage.page[-1], self._eligible, after=True, skip=set(triage.page))

    def decoded(self, rels: list[str]) -> bool:
        """Every one of ``rels`` has its thumbnail decoded and cached."""
        return self._thumbs is not None and all(self._thumbs.get(rel) is not None for rel in rels)

    # ------------------------------------------------------------------ internals

    def _show_single(self) -> None:
        if self.active:
            self.stack.setCurrentWidget(self._canvas)
            self._canvas.setFocus()
            self.shown.emit(False)
            if self._grid_line:
                self._grid_line = False
                self.message.emit("", False)

    def _eligible(self, rel: str) -> bool:
        return self._review is not None and self._review.eligible_for_grid(rel)

    def _show_page(self, rels: list[str], *, marked: list[str] | None = None, note: str = "") -> None:
        r, triage, thumbs = self._review, self.triage, self._thumbs
        assert r is not None and triage is not None and thumbs is not None
        triage.open(rels, marked or ())
        tiles = []
        for tile in triage.tiles:
            state = r.open_state(tile.rel)
            picture = thumbs.get(tile.rel)
            caption = scores_of(tile.rel, r.session.cached_proposals(tile.rel)).caption(r.settings.box_threshold)
            tiles.append(TileContent(tile.rel, state.width, state.height, _boxes_in_view(r, tile.rel),
                                     tile.marked, picture, note=caption))
            if picture is not None:
                triage.picture_shown(tile.rel)
        self.view.set_tiles(tiles)
        for rel in triage.loading():
            thumbs.request(rel)
        self._say_page(note)
        QTimer.singleShot(0, self._prefetch_upcoming)  # after this page is painted

    @Slot()
    def _prefetch_upcoming(self) -> None:
        """Decode (and scale) the next page's pictures while the annotator looks at this one."""
        r, triage, thumbs = self._review, self.triage, self._thumbs
        if r is None or triage is None or thumbs is None or not triage.tiles:
            return
        self._upcoming = self.upcoming()
        thumbs.prefetch(triage.page[0], [*triage.page[1:], *self._upcoming])
        for rel in self._upcoming:
            picture = thumbs.get(rel)
            if picture is not None:
                self._prepare(r, rel, picture)

    def _prepare(self, r: FolderReview, rel: str, picture: np.ndarray) -> None:
        state = r.open_state(rel)
        self.view.prepare(rel, picture, state.width, state.height)

    def _say_page(self, note: str = "") -> None:
        triage = self.triage
        if triage is None:
            return
        marked = len(triage.marked())
        rest = len(triage.tiles) - marked
        text = (f"Grid: {marked} of {len(triage.tiles)} marked as needing work · Space verifies the other {rest} · "
                f"G or Esc: single image")
        self._say(f"{note}. {text}" if note else text)

    def _say(self, text: str, error: bool = False) -> None:
        """A line about the grid itself: taken back when the single view comes (``_show_single``)."""
        self.message.emit(text, error)
        self._grid_line = True

    @Slot(str, bool)
    def _other_message(self, text: str, error: bool) -> None:
        self._grid_line = False  # the controller spoke since: its line is kept

    def _nothing_ready(self, prefix: str) -> str:
        r = self._review
        if r is None:
            return prefix
        waiting = r.progress.total - len(r.progress.done) - len(r.progress.failed)
        if waiting and r.model_runs:
            return f"{prefix}: {waiting} image(s) still waiting for the model's proposals."
        return f"{prefix}: no unverified image has proposals ready."

    @Slot(str, int, int)
    def _image_opened(self, rel: str, row: int, total: int) -> None:
        """An image was opened in the single view while the grid showed (a click in the file
        list): the annotator wants that image, so the grid gives way, its marks dropped."""
        if self.active and self.triage is not None:
            self.triage.close()
            self._show_single()

    @Slot(str, object)
    def _thumb_loaded(self, rel: str, picture: np.ndarray) -> None:
        triage = self.triage
        if triage is None:
            return
        index = triage.picture_shown(rel)
        if index >= 0:
            self.view.set_picture(index, picture)
        elif rel in self._upcoming and self.active and self._review is not None:
            self._prepare(self._review, rel, picture)

    @Slot(str, str)
    def _thumb_failed(self, rel: str, reason: str) -> None:
        r, triage = self._review, self.triage
        if r is None or triage is None:
            return
        r.image_unreadable(rel, reason)
        index = triage.picture_failed(rel, reason)
        if index >= 0:
            self.view.set_failed(index, reason)
            self._say_page()


def _boxes_in_view(r: FolderReview, rel: str) -> list[Box]:
    """The boxes Space would keep: accepted ones and the proposals at the threshold."""
    state = r.open_state(rel)
    return [state.items[i].box for i in state.visible_indices()]


def _result_text(result: PageResult) -> str:
    text = f"{len(result.verified)} image(s) verified, {result.accepted} proposal(s) accepted"
    if result.set_aside:
        text += f", {len(result.set_aside)} set aside for the single view"
    return text


def _columns_setting(qsettings: QSettings) -> int:
    try:
        columns = int(str(qsettings.value(GRID_SIZE_KEY, DEFAULT_COLUMNS)))
    except (TypeError, ValueError):
        return DEFAULT_COLUMNS
    return columns if columns in GRID_SIZES else DEFAULT_COLUMNS


def route_by_mode(handlers: dict[str, Callable[[], object]], grid: GridTriage) -> dict[str, Callable[[], object]]:
    """The window's handlers with the grid's rows added, and each key sent by mode: Space,
    Esc and the digits to the grid while it is shown; the other keys of the single image idle."""
    in_grid: dict[str, Callable[[], object]] = {"accept_all_next": grid.verify_page, "escape": grid.leave}
    for n in range(1, 10):
        in_grid[f"class_{n}"] = functools.partial(grid.mark, n - 1)
    routed = {**handlers, **grid.handlers()}
    for b in KEYMAP:
        if b.action in in_grid:
            routed[b.action] = _by_mode(grid, in_grid[b.action], routed[b.action])
        elif b.group in SINGLE_IMAGE_GROUPS and b.action in routed:
            routed[b.action] = _by_mode(grid, grid.ignored, routed[b.action])
    return routed


def _by_mode(grid: GridTriage, in_grid: Callable[[], object], single: Callable[[], object]) -> Callable[[], None]:
    def handler() -> None:
        if grid.active:
            in_grid()
        else:
            single()
    return handler
