"""The image view: shows one image and its boxes, lets the mouse move, resize and draw boxes.

The canvas holds pictures, not decisions: it reports what the user did (``box_edited``,
``box_drawn``, ``selection_changed``) and the window decides what that means for the review.

Mouse:
- left-drag a handle of the selected box: resize that corner or edge only;
- left-drag inside a box: select it and move it; a click selects it; a double-click selects it
  and asks for its class (``box_double_clicked``);
- left-click on empty space: deselect; left-drag on empty space or middle-drag anywhere: pan;
- wheel: scroll (Shift+wheel sideways); Ctrl+wheel: zoom around the cursor;
- after ``start_drawing()``: left-drag draws a box; Esc or ``cancel_drawing()`` cancels.

Keys belong to the window's keymap: the canvas handles only Esc while drawing and passes every
other key on to its parent untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QGraphicsRectItem, QGraphicsScene, QGraphicsView, QWidget

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.gui.box_item import HANDLE_SIZE, RESIZE_HANDLES, BoxItem, Handle, dragged_box, handle_point
from autolabel_gui.gui.colors import fallback_color
from autolabel_gui.gui.image_item import ImageItem, rgb_from_qimage
from autolabel_gui.gui.label_layout import Rect, label_offset, shown_labels

# Screen pixels kept free around the fitted image, so the handles of a box at an edge show.
FIT_MARGIN = 24
MAX_SCALE = 40.0
# A press has to travel this far (screen pixels) before it edits anything, so a click that
# only selects a box never nudges it by a jittery pixel.
DRAG_THRESHOLD = 3
# A drawn box smaller than this on screen (screen pixels, at any zoom), either way, was a click
# or a jittery hand, not a drag: seen, a 3x2-pixel jitter made a 2x1 box nobody wanted.
MIN_DRAWN_SIZE = 4
# How close (screen pixels) the pointer must be to the selected box's edge to grab that edge.
EDGE_GRAB = 4
WHEEL_ZOOM_BASE = 1.0015  # per eighth of a degree: one 15-degree notch zooms by about 1.2x
# Z leaves this fraction of the box's larger side free around it, so its edges and handles show.
BOX_ZOOM_PADDING = 0.15

_BACKGROUND = QColor("#2b2b2b")


def is_drawn_drag(width: float, height: float) -> bool:
    """Whether a draw-mode drag of this many screen pixels, each way, means a box (the sizes
    come back from image coordinates, so a hair of rounding is forgiven)."""
    return min(width, height) >= MIN_DRAWN_SIZE - 1e-6


@dataclass(slots=True)
class _Drag:
    """A move or resize in progress."""

    index: int
    handle: Handle
    start: Box
    press_scene: QPointF
    press_view: QPointF
    current: Box
    active: bool = False
    click: int = -1
    """What a click (a press with no drag) selects instead: the smallest box under the pointer
    when the press landed inside the selected box (-1: the dragged box itself)."""


class Canvas(QGraphicsView):
    """Image plus boxes; indices are positions in the list last given to ``set_boxes``."""

    selection_changed = Signal(int)  # user clicked a box (its index) or empty space (-1)
    box_edited = Signal(int, object)  # index, new Box; once, when a move/resize drag ends
    box_drawn = Signal(object)  # Box with label "" after a drawing drag
    drawing_changed = Signal(bool)  # draw mode entered (True) or left (False)
    zoom_changed = Signal(float)  # screen pixels per image pixel, after every fit or zoom
    box_double_clicked = Signal(int)  # index of the box double-clicked (after selecting it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._image = ImageItem()
        self._image.setZValue(-10)
        self._scene.addItem(self._image)
        self._boxes: list[Box] = []
        self._items: dict[int, BoxItem] = {}
        self._selected = -1
        self._colors: dict[str, QColor] = {}
        self._drag: _Drag | None = None
        self._pan_from: QPointF | None = None
        self._drawing = False
        self._draw_from: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None
        self._auto_fit = True
        self._labels_visible = True
        self._label_timer = QTimer(self)
        self._label_timer.setSingleShot(True)
        self._label_timer.setInterval(0)
        self._label_timer.timeout.connect(self._layout_labels)
        self._configure_view()

    # ------------------------------------------------------------------ public interface

    def set_image(self, image: np.ndarray | QImage | None) -> None:
        """Show an RGB uint8 (H, W, 3) array or a QImage; removes the boxes, fits the view."""
        self.cancel_drawing()
        self.set_boxes([])
        if isinstance(image, QImage):
            image = rgb_from_qimage(image)
        self._image.set_array(image)
        width, height = self._image.size
        self._scene.setSceneRect(QRectF(0, 0, width, height))
        self._auto_fit = True
        self.fit()

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the shown image, (0, 0) when none."""
        return self._image.size

    def set_boxes(self, boxes: list[Box], selected: int = -1) -> None:
        """Replace all boxes; REJECTED ones are kept for indexing but not drawn.

        Does not emit ``selection_changed``: the caller already knows what it selected."""
        self._drag = None
        for item in self._items.values():
            self._scene.removeItem(item)
        self._items = {}
        self._boxes = list(boxes)
        for index, box in enumerate(self._boxes):
            if box.state is not BoxState.REJECTED:
                self._add_item(index, box)
        self._selected = -1
        self.select(selected)
        self._layout_labels()

    def boxes(self) -> list[Box]:
        """The boxes as the canvas knows them (including edits it has reported)."""
        return list(self._boxes)

    def update_box(self, index: int, box: Box) -> None:
        """Change one box without touching the others (cheap: one item, one small repaint)."""
        if not 0 <= index < len(self._boxes):
            raise IndexError(f"box index {index} out of range (0..{len(self._boxes) - 1})")
        if self._drag is not None and self._drag.index == index:
            self._drag = None
        self._boxes[index] = box
        item = self._items.get(index)
        if box.state is BoxState.REJECTED:
            if item is not None:
                self._scene.removeItem(self._items.pop(index))
            if index == self._selected:
                self._selected = -1
            return
        if item is None:
            self._add_item(index, box)
        else:
            if box.label != item.box.label:
                item.set_color(self._color_for(box.label))
            item.set_box(box)
        self._schedule_label_layout()

    def selected(self) -> int:
        return self._selected

    def select(self, index: int) -> None:
        """Select a box (-1: none) and scroll it into view; does not emit ``selection_changed``."""
        self._set_selected(index)
        item = self._items.get(self._selected)
        if item is not None and not self._auto_fit:
            self.ensureVisible(item.boundingRect(), FIT_MARGIN, FIT_MARGIN)

    def set_class_colors(self, colors: dict[str, QColor]) -> None:
        """Colours by class name; labels not listed get a stable fallback colour."""
        self._colors = {name: QColor(color) for name, color in colors.items()}
        for item in self._items.values():
            item.set_color(self._color_for(item.box.label))

    def labels_visible(self) -> bool:
        return self._labels_visible

    def set_labels_visible(self, visible: bool) -> None:
        """Show or hide every class tag (H): the outlines stay."""
        self._labels_visible = visible
        self._layout_labels()

    def box_item(self, index: int) -> BoxItem | None:
        """The drawn item of a box (None when rejected or out of range): for tests and tools."""
        return self._items.get(index)

    def is_drawing(self) -> bool:
        return self._drawing

    def start_drawing(self) -> None:
        """Arm draw mode: the next left-drag draws a box and emits ``box_drawn``."""
        self._drag = None
        if not self._drawing:
            self._drawing = True
            self.drawing_changed.emit(True)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self.setFocus(Qt.FocusReason.OtherFocusReason)

    def cancel_drawing(self) -> None:
        """Leave draw mode without drawing anything."""
        self._end_drawing()

    def fit(self) -> None:
        """Fit the whole image in the view, centred; the view re-fits on resize until zoomed."""
        width, height = self._image.size
        if width == 0 or height == 0:
            self.resetTransform()
            return
        self._auto_fit = True
        view = self.viewport().size()
        scale = min(
            max(view.width() - 2 * FIT_MARGIN, 1) / width,
            max(view.height() - 2 * FIT_MARGIN, 1) / height,
        )
        self._set_scroll_margin(scale)
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(width / 2, height / 2)
        self._layout_labels()
        self.zoom_changed.emit(scale)

    def zoom_by(self, factor: float) -> None:
        """Zoom around the centre of the view."""
        self._zoom_at(factor, QPointF(self.viewport().rect().center()))

    def zoom_to_selected(self) -> bool:
        """Fit the selected box, with some room around it, in the view (Z); False when no box
        is selected. Like any zoom, it ends the re-fit on resize."""
        item = self._items.get(self._selected)
        if item is None:
            return False
        box = item.box
        pad = BOX_ZOOM_PADDING * max(box.width, box.height, 1.0)
        view = self.viewport().size()
        scale = min(
            max(view.width() - 2 * FIT_MARGIN, 1) / (box.width + 2 * pad),
            max(view.height() - 2 * FIT_MARGIN, 1) / (box.height + 2 * pad),
        )
        scale = min(max(scale, self._min_scale()), MAX_SCALE)
        self._auto_fit = False
        self._set_scroll_margin(scale)
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        self._layout_labels()
        self.zoom_changed.emit(scale)
        return True

    def scale_factor(self) -> float:
        """Screen pixels per image pixel."""
        return self.transform().m11()

    # ------------------------------------------------------------------ mouse and keys

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton:
            self._start_pan(pos)
        elif event.button() == Qt.MouseButton.LeftButton:
            if self._drawing:
                self._start_rubber(pos)
            else:
                self._press_left(pos)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        elif self._rubber is not None and self._draw_from is not None:
            self._rubber.setRect(QRectF(self._draw_from, self._clamped_scene(pos)).normalized())
        elif self._drag is not None:
            self._continue_drag(pos)
        elif not self._drawing:
            self._update_hover_cursor(pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._pan_from is not None
        ):
            self._pan_from = None
            self._update_hover_cursor(event.position())
        elif event.button() == Qt.MouseButton.LeftButton:
            if self._rubber is not None:
                self._finish_rubber(event.position())
            elif self._drag is not None:
                self._finish_drag()
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        # A double click is two clicks here; Qt's default would send it to the scene instead.
        self.mousePressEvent(event)
        drag = self._drag
        if event.button() == Qt.MouseButton.LeftButton and drag is not None:
            # The listener may open a dialog that takes the release: no drag may outlive it.
            self._drag = None
            self.box_double_clicked.emit(drag.index)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() or event.angleDelta().x()
            self._zoom_at(WHEEL_ZOOM_BASE**steps, event.position())
            event.accept()
        else:
            super().wheelEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._drawing and event.key() == Qt.Key.Key_Escape:
            self.cancel_drawing()
            event.accept()
        else:
            # Not QGraphicsView's default (arrows would scroll): the window's keymap decides.
            event.ignore()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._auto_fit:
            self.fit()

    # ------------------------------------------------------------------ internals

    def _configure_view(self) -> None:
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(_BACKGROUND)
        # Only the changed areas are repainted: dragging one box repaints that box's old and
        # new rectangles, never the other 999 boxes elsewhere on the image.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        # No antialiasing: crisp axis-aligned outlines, cheaper too. The view still pads each
        # dirty rectangle by 2 px, which covers a cosmetic pen's spill past a box's edge.
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)

    def _color_for(self, label: str) -> QColor:
        color = self._colors.get(label)
        return QColor(color) if color is not None else fallback_color(label)

    def _add_item(self, index: int, box: Box) -> BoxItem:
        item = BoxItem(index, box, self._color_for(box.label))
        self._scene.addItem(item)
        self._items[index] = item
        return item

    def _set_selected(self, index: int) -> bool:
        """Change the selection; True when it changed."""
        if index not in self._items:
            index = -1
        if index == self._selected:
            return False
        old = self._items.get(self._selected)
        if old is not None:
            old.set_selected(False)
        self._selected = index
        new = self._items.get(index)
        if new is not None:
            new.set_selected(True)
        self._schedule_label_layout()
        return True

    def _schedule_label_layout(self) -> None:
        """One layout after a burst of changes (Space updates every box, one call each)."""
        if not self._label_timer.isActive():
            self._label_timer.start()

    def _layout_labels(self) -> None:
        """Place every tag on the image and hide those that would overlap (label_layout's rules).

        Runs when the boxes, the selection or the zoom change: tags keep their screen size, so
        what fits depends on the zoom."""
        scale = self.scale_factor()
        image = (self._image.size[0] * scale, self._image.size[1] * scale)
        rects: list[Rect | None] = [None] * len(self._boxes)
        for index, item in self._items.items():
            rects[index] = self._place_label(item, scale, image)
        self._label_timer.stop()
        shown = shown_labels(rects, self._selected) if self._labels_visible else set()
        for index, item in self._items.items():
            item.label_item.setVisible(index in shown)

    @staticmethod
    def _place_label(item: BoxItem, scale: float, image: tuple[float, float]) -> Rect:
        box = item.box
        corner = (box.x0 * scale, box.y0 * scale, box.x1 * scale, box.y1 * scale)
        size = item.label_item.size()
        dx, dy = label_offset(corner, size, image)
        item.label_item.set_offset(dx, dy)
        return corner[0] + dx, corner[1] + dy, size[0], size[1]

    def _view_point(self, scene: QPointF) -> QPointF:
        """Scene to viewport coordinates without rounding (mapFromScene rounds to ints)."""
        return self.viewportTransform().map(scene)

    def _clamped_scene(self, view_pos: QPointF) -> QPointF:
        width, height = self._image.size
        point = self._scene_point(view_pos)
        return QPointF(min(max(point.x(), 0.0), width), min(max(point.y(), 0.0), height))

    def _scene_point(self, view_pos: QPointF) -> QPointF:
        inverted, _ok = self.viewportTransform().inverted()
        return inverted.map(view_pos)

    def _hit(self, view_pos: QPointF) -> tuple[int, Handle] | None:
        """What a press at ``view_pos`` grabs: a handle or edge of the selected box first,
        then the smallest box under the pointer."""
        selected = self._items.get(self._selected)
        if selected is not None:
            handle = self._handle_at(selected.box, view_pos)
            if handle is not None:
                return self._selected, handle
        return self._smallest_at(view_pos)

    def _inside_selected(self, view_pos: QPointF) -> bool:
        """The press is inside the selected box: a drag there moves it, whatever lies on top
        (seen: in a crowd of ~40 proposals a drag moved a smaller, unselected one)."""
        selected = self._items.get(self._selected)
        if selected is None:
            return False
        scene = self._scene_point(view_pos)
        box = selected.box
        return box.x0 <= scene.x() <= box.x1 and box.y0 <= scene.y() <= box.y1

    def _smallest_at(self, view_pos: QPointF) -> tuple[int, Handle] | None:
        scene = self._scene_point(view_pos)
        best: BoxItem | None = None
        for item in self._scene.items(scene):
            parent = item.parentItem()
            if isinstance(item, BoxItem):
                owner = item
            elif isinstance(parent, BoxItem) and item.isVisible():
                owner = parent  # the label tag belongs to its box
            else:
                continue
            if best is None or owner.box.area < best.box.area:
                best = owner
        return None if best is None else (best.index, Handle.MOVE)

    def _handle_at(self, box: Box, view_pos: QPointF) -> Handle | None:
        reach = HANDLE_SIZE / 2 + 2
        for handle in RESIZE_HANDLES:
            point = self._view_point(handle_point(box, handle))
            if abs(point.x() - view_pos.x()) <= reach and abs(point.y() - view_pos.y()) <= reach:
                return handle
        top_left = self._view_point(QPointF(box.x0, box.y0))
        bottom_right = self._view_point(QPointF(box.x1, box.y1))
        x, y = view_pos.x(), view_pos.y()
        within_x = top_left.x() <= x <= bottom_right.x()
        within_y = top_left.y() <= y <= bottom_right.y()
        if within_y and abs(x - top_left.x()) <= EDGE_GRAB:
            return Handle.LEFT
        if within_y and abs(x - bottom_right.x()) <= EDGE_GRAB:
            return Handle.RIGHT
        if within_x and abs(y - top_left.y()) <= EDGE_GRAB:
            return Handle.TOP
        if within_x and abs(y - bottom_right.y()) <= EDGE_GRAB:
            return Handle.BOTTOM
        return None

    def _press_left(self, pos: QPointF) -> None:
        hit = self._hit(pos)
        if hit is None:
            if self._set_selected(-1):
                self.selection_changed.emit(-1)
            self._start_pan(pos)
            return
        index, handle = hit
        click = -1
        if handle is Handle.MOVE and index != self._selected and self._inside_selected(pos):
            index, click = self._selected, index  # a drag moves the selected box; a click picks
        if self._set_selected(index):
            self.selection_changed.emit(index)
        box = self._boxes[index]
        self._drag = _Drag(index, handle, box, self._scene_point(pos), QPointF(pos), box, click=click)
        self.viewport().setCursor(handle.cursor)

    def _continue_drag(self, pos: QPointF) -> None:
        drag = self._drag
        assert drag is not None
        if not drag.active:
            moved = pos - drag.press_view
            if max(abs(moved.x()), abs(moved.y())) < DRAG_THRESHOLD:
                return
            drag.active = True
        delta = self._scene_point(pos) - drag.press_scene
        width, height = self._image.size
        new = dragged_box(drag.start, drag.handle, delta.x(), delta.y(), width, height)
        if new != drag.current:
            drag.current = new
            item = self._items[drag.index]
            item.set_box(new)
            scale = self.scale_factor()
            self._place_label(item, scale, (width * scale, height * scale))

    def _finish_drag(self) -> None:
        drag = self._drag
        self._drag = None
        assert drag is not None
        if drag.current != drag.start:
            self._boxes[drag.index] = drag.current
            self.box_edited.emit(drag.index, drag.current)
        elif not drag.active and drag.click >= 0 and self._set_selected(drag.click):
            self.selection_changed.emit(drag.click)

    def _start_pan(self, pos: QPointF) -> None:
        self._pan_from = QPointF(pos)
        self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def _start_rubber(self, pos: QPointF) -> None:
        if self._image.size == (0, 0):
            return
        self._draw_from = self._clamped_scene(pos)
        pen = QPen(QColor("#ffffff"), 1, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._rubber = QGraphicsRectItem(QRectF(self._draw_from, self._draw_from))
        self._rubber.setPen(pen)
        self._rubber.setZValue(10)
        self._scene.addItem(self._rubber)

    def _finish_rubber(self, pos: QPointF) -> None:
        assert self._draw_from is not None
        end = self._clamped_scene(pos)
        rect = QRectF(self._draw_from, end).normalized()
        on_screen = self.viewportTransform().mapRect(rect)
        self._end_drawing()
        if not is_drawn_drag(on_screen.width(), on_screen.height()):
            return
        self.box_drawn.emit(Box(rect.left(), rect.top(), rect.right(), rect.bottom(), label=""))

    def _end_drawing(self) -> None:
        if self._rubber is not None:
            self._scene.removeItem(self._rubber)
        self._rubber = None
        self._draw_from = None
        if self._drawing:
            self._drawing = False
            self.viewport().unsetCursor()
            self.drawing_changed.emit(False)

    def _update_hover_cursor(self, pos: QPointF) -> None:
        if self._drawing:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        hit = self._hit(pos)
        if hit is None:
            self.viewport().unsetCursor()
        else:
            self.viewport().setCursor(hit[1].cursor)

    def _min_scale(self) -> float:
        width, height = self._image.size
        if width == 0 or height == 0:
            return 0.01
        view = self.viewport().size()
        fit_scale = min(view.width() / width, view.height() / height)
        return min(fit_scale / 2, 1.0)

    def _zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Scale by ``factor`` keeping the image point under ``anchor`` (view coords) still."""
        old = self.transform().m11()
        new = min(max(old * factor, self._min_scale()), MAX_SCALE)
        if new == old or self._image.size == (0, 0):
            return
        self._auto_fit = False
        before = self._scene_point(anchor)
        self._set_scroll_margin(new)
        self.scale(new / old, new / old)
        after = self._scene_point(anchor)
        self.translate(after.x() - before.x(), after.y() - before.y())
        self._layout_labels()
        self.zoom_changed.emit(new)

    def _set_scroll_margin(self, scale: float) -> None:
        """Let the view scroll a little past the image so labels at its edges stay visible."""
        width, height = self._image.size
        margin = FIT_MARGIN * 2 / scale
        self.setSceneRect(QRectF(0, 0, width, height).adjusted(-margin, -margin, margin, margin))
