"""One box on the canvas: outline per review state, a class label and, when selected, eight
handles.

The outline is a cosmetic pen and the label and handles ignore the view transform, so all of
them keep their on-screen size whatever the zoom; a box's geometry never depends on the zoom,
so zooming touches no item.
"""

from __future__ import annotations

import enum
from dataclasses import replace

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QStyleOptionGraphicsItem, QWidget

from autolabel_gui.app.box_rows import flag_names, flag_tags
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.gui.colors import text_color_on

LINE_WIDTH = 2
SELECTED_LINE_WIDTH = 3
HANDLE_SIZE = 9
# The dash pattern of a proposal, in line widths: long enough to read as a box, clearly not solid.
PROPOSAL_DASHES = (4.0, 3.0)
# Smallest side a resize may leave, in image pixels: a box never collapses or turns inside out.
MIN_BOX_SIZE = 1.0

Z_BOX_BASE = 0.0
Z_SELECTED = 2.0


class Handle(enum.Enum):
    """What a drag grabs: a corner, an edge, or the whole box."""

    TOP_LEFT = "top_left"
    TOP = "top"
    TOP_RIGHT = "top_right"
    RIGHT = "right"
    BOTTOM_RIGHT = "bottom_right"
    BOTTOM = "bottom"
    BOTTOM_LEFT = "bottom_left"
    LEFT = "left"
    MOVE = "move"

    @property
    def edges(self) -> tuple[bool, bool, bool, bool]:
        """Which of (x0, y0, x1, y1) this handle moves."""
        return _HANDLE_EDGES[self]

    @property
    def cursor(self) -> Qt.CursorShape:
        return _HANDLE_CURSORS[self]


_HANDLE_EDGES: dict[Handle, tuple[bool, bool, bool, bool]] = {
    Handle.TOP_LEFT: (True, True, False, False),
    Handle.TOP: (False, True, False, False),
    Handle.TOP_RIGHT: (False, True, True, False),
    Handle.RIGHT: (False, False, True, False),
    Handle.BOTTOM_RIGHT: (False, False, True, True),
    Handle.BOTTOM: (False, False, False, True),
    Handle.BOTTOM_LEFT: (True, False, False, True),
    Handle.LEFT: (True, False, False, False),
    Handle.MOVE: (True, True, True, True),
}

_HANDLE_CURSORS: dict[Handle, Qt.CursorShape] = {
    Handle.TOP_LEFT: Qt.CursorShape.SizeFDiagCursor,
    Handle.BOTTOM_RIGHT: Qt.CursorShape.SizeFDiagCursor,
    Handle.TOP_RIGHT: Qt.CursorShape.SizeBDiagCursor,
    Handle.BOTTOM_LEFT: Qt.CursorShape.SizeBDiagCursor,
    Handle.TOP: Qt.CursorShape.SizeVerCursor,
    Handle.BOTTOM: Qt.CursorShape.SizeVerCursor,
    Handle.LEFT: Qt.CursorShape.SizeHorCursor,
    Handle.RIGHT: Qt.CursorShape.SizeHorCursor,
    Handle.MOVE: Qt.CursorShape.SizeAllCursor,
}

RESIZE_HANDLES: tuple[Handle, ...] = tuple(h for h in Handle if h is not Handle.MOVE)


def handle_point(box: Box, handle: Handle) -> QPointF:
    """Where a resize handle sits, in image (scene) coordinates."""
    left, top, right, bottom = box.x0, box.y0, box.x1, box.y1
    cx, cy = (left + right) / 2, (top + bottom) / 2
    points = {
        Handle.TOP_LEFT: (left, top),
        Handle.TOP: (cx, top),
        Handle.TOP_RIGHT: (right, top),
        Handle.RIGHT: (right, cy),
        Handle.BOTTOM_RIGHT: (right, bottom),
        Handle.BOTTOM: (cx, bottom),
        Handle.BOTTOM_LEFT: (left, bottom),
        Handle.LEFT: (left, cy),
        Handle.MOVE: (cx, cy),
    }
    px, py = points[handle]
    return QPointF(px, py)


def dragged_box(start: Box, handle: Handle, dx: float, dy: float, width: float, height: float) -> Box:
    """The box after dragging ``handle`` by (dx, dy) image pixels from ``start``, kept inside
    the image. Always computed from the drag's start box, so clamping never accumulates."""
    if handle is Handle.MOVE:
        return start.moved(dx, dy, width, height)
    move_x0, move_y0, move_x1, move_y1 = handle.edges
    x0, y0, x1, y1 = start.xyxy
    if move_x0:
        x0 = min(max(x0 + dx, 0.0), x1 - MIN_BOX_SIZE)
    if move_x1:
        x1 = max(min(x1 + dx, width), x0 + MIN_BOX_SIZE)
    if move_y0:
        y0 = min(max(y0 + dy, 0.0), y1 - MIN_BOX_SIZE)
    if move_y1:
        y1 = max(min(y1 + dy, height), y0 + MIN_BOX_SIZE)
    return replace(start, x0=x0, y0=y0, x1=x1, y1=y1)


ACCEPTED_MARK = "\u2713"  # a check mark: a human said yes to this box


def label_text(box: Box) -> str:
    """What the label says the box is.

    - a proposal nobody has decided on: its class and the model's score, "cup 0.87";
    - a proposal the human accepted (Enter, Space, a digit, a drag): the check mark, its class
      *now* and the score it was proposed with, "\u2713 cup 0.87" (a digit changes the class, the
      score stays the model's);
    - a box drawn by hand or read from the annotation file: just its class, "cup".

    VOC flags follow in brackets, shortened so the tag stays small: "cup [diff trunc]".
    """
    name = box.label or "?"
    flags = flag_tags(flag_names(box))
    suffix = f" [{flags}]" if flags else ""
    if box.score is None:
        return name + suffix
    if box.state is BoxState.PROPOSED:
        return f"{name} {box.score:.2f}{suffix}"
    return f"{ACCEPTED_MARK} {name} {box.score:.2f}{suffix}"


class LabelItem(QGraphicsItem):
    """The class tag at a box's top-left corner, drawn at a fixed screen size; the canvas
    moves it by ``set_offset`` (screen pixels) to keep it on the image (see label_layout)."""

    PADDING = 3

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        # The tag only changes when its text or colour does, so caching it in device pixels
        # turns a thousand text layouts per repaint into a thousand small blits.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._text = ""
        self._color = QColor()
        self._font = QFont()
        self._font.setPixelSize(12)
        self._font.setBold(True)
        self._rect = QRectF()
        self._offset: tuple[float, float] | None = None  # None: above the corner, the default

    def text(self) -> str:
        return self._text

    def size(self) -> tuple[float, float]:
        """(width, height) in screen pixels."""
        return self._rect.width(), self._rect.height()

    def set_offset(self, dx: float, dy: float) -> None:
        """Put the tag's top-left (dx, dy) screen pixels from the box's top-left corner."""
        if (dx, dy) == (self._rect.x(), self._rect.y()):
            return
        self.prepareGeometryChange()
        self._offset = (dx, dy)
        self._rect.moveTo(dx, dy)
        self.update()

    def set_style(self, text: str, color: QColor) -> None:
        if text == self._text and color == self._color:
            return
        self.prepareGeometryChange()
        self._text = text
        self._color = QColor(color)
        metrics = QFontMetrics(self._font)
        w = metrics.horizontalAdvance(text) + 2 * self.PADDING
        h = metrics.height() + 2
        dx, dy = self._offset if self._offset is not None else (0.0, -h)
        self._rect = QRectF(dx, dy, w, h)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.fillRect(self._rect, self._color)
        painter.setPen(text_color_on(self._color))
        painter.setFont(self._font)
        painter.drawText(self._rect.adjusted(self.PADDING, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, self._text)


class HandleItem(QGraphicsItem):
    """A square grip on a selected box's corner or edge, drawn at a fixed screen size."""

    def __init__(self, handle: Handle, color: QColor, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.handle = handle
        self._color = QColor(color)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        half = HANDLE_SIZE / 2
        self._rect = QRectF(-half, -half, HANDLE_SIZE, HANDLE_SIZE)

    def set_color(self, color: QColor) -> None:
        self._color = QColor(color)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-1, -1, 1, 1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setPen(QPen(self._color, 1))
        painter.setBrush(QColor("#ffffff"))
        painter.drawRect(self._rect)


class BoxItem(QGraphicsRectItem):
    """The picture of one ``Box``; it holds no review logic (the window owns that).

    Painting is Qt's own C++ rectangle with a cosmetic pen: with a thousand boxes on screen a
    Python ``paint`` per box cost more than the image itself (12 ms against 4 ms a frame)."""

    def __init__(self, index: int, box: Box, color: QColor) -> None:
        super().__init__(QRectF(box.x0, box.y0, box.width, box.height))
        self.index = index
        self._box = box
        self._color = QColor(color)
        self._selected = False
        self._label = LabelItem(self)
        self._label.setPos(box.x0, box.y0)
        self._handles: list[HandleItem] = []
        self._apply_style()

    @property
    def box(self) -> Box:
        return self._box

    @property
    def label_item(self) -> LabelItem:
        return self._label

    @property
    def handles(self) -> list[HandleItem]:
        return list(self._handles)

    def color(self) -> QColor:
        return QColor(self._color)

    def set_box(self, box: Box) -> None:
        old = self._box
        self._box = box
        if box.xyxy != old.xyxy:
            self.setRect(QRectF(box.x0, box.y0, box.width, box.height))
            self._label.setPos(box.x0, box.y0)
            self._place_handles()
        if (box.label, box.score, box.state, box.difficult, box.truncated) != (
                old.label, old.score, old.state, old.difficult, old.truncated):
            self._apply_style()
        elif box.area != old.area and not self._selected:
            self.setZValue(self._z())

    def set_color(self, color: QColor) -> None:
        self._color = QColor(color)
        self._apply_style()

    def set_selected(self, selected: bool) -> None:
        if selected == self._selected:
            return
        self._selected = selected
        if selected:
            self._handles = [HandleItem(h, self._color, self) for h in RESIZE_HANDLES]
            self._place_handles()
        else:
            for item in self._handles:
                item.setParentItem(None)  # type: ignore[arg-type]  # None unparents; the stubs omit it
                if item.scene() is not None:
                    item.scene().removeItem(item)
            self._handles = []
        self._apply_style()

    def _apply_style(self) -> None:
        """Dashed for a proposal, solid once accepted; wider and lightly filled when selected."""
        pen = QPen(self._color, SELECTED_LINE_WIDTH if self._selected else LINE_WIDTH)
        pen.setCosmetic(True)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        if self._box.state is BoxState.PROPOSED:
            pen.setDashPattern(list(PROPOSAL_DASHES))
        self.setPen(pen)
        if self._selected:
            fill = QColor(self._color)
            fill.setAlpha(40)
            self.setBrush(fill)
        else:
            self.setBrush(QBrush())
        self._label.set_style(label_text(self._box), self._color)
        for item in self._handles:
            item.set_color(self._color)
        self.setZValue(self._z())

    def _z(self) -> float:
        # Smaller boxes above larger ones, so a box nested in another stays visible and clickable.
        return Z_SELECTED if self._selected else Z_BOX_BASE - self._box.area * 1e-9

    def _place_handles(self) -> None:
        for item in self._handles:
            item.setPos(handle_point(self._box, item.handle))
