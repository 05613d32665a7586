"""The grid page: tiles of pictures with their boxes, the marked ones crossed out.

Draws what it is given and reports clicks (``tile_clicked``); which images a page holds and
what a mark means live in ``app.triage``. One widget painting every tile, rather than a
QGraphicsView per tile: a page of 16 tiles with 50 boxes each is one paint of a few ms.
Pictures come as small RGB arrays (thumbnails) and are scaled to the tile once per size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.gui.box_item import PROPOSAL_DASHES
from autolabel_gui.gui.colors import fallback_color
from autolabel_gui.gui.image_item import qimage_from_rgb

GAP = 6
"""Pixels between tiles."""
MARK_COLOR = QColor("#e53935")
MARK_WIDTH = 5
BOX_WIDTH = 1.5
SCALED_KEPT = 32
"""Scaled pictures kept: two pages of the largest grid."""
_BACKGROUND = QColor("#2b2b2b")
_TILE = QColor("#1e1e1e")
_CAPTION = QColor(0, 0, 0, 170)


@dataclass(slots=True)
class TileContent:
    """What one tile shows: the image's size (its boxes are in those pixels), the boxes in
    view, the picture once decoded, and why it cannot be, if so."""

    rel: str
    width: int
    height: int
    boxes: list[Box]
    marked: bool = False
    picture: np.ndarray | None = None
    failed: str | None = None
    note: str = ""
    """After the name: boxes shown and the lowest score ("3 boxes, min 0.42")."""


class GridView(QWidget):
    """``columns`` x ``columns`` tiles in reading order; tile ``i`` answers digit ``i + 1``."""

    tile_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAutoFillBackground(False)
        self._columns = 3
        self._tiles: list[TileContent] = []
        self._colors: dict[str, QColor] = {}
        self._scaled: OrderedDict[str, QPixmap] = OrderedDict()
        """Pictures scaled to their tile, by image: kept across pages, so G, Esc, G scales nothing."""

    # ------------------------------------------------------------------ content

    def set_columns(self, columns: int) -> None:
        self._columns = max(columns, 1)
        self._scaled.clear()
        self.update()

    def columns(self) -> int:
        return self._columns

    def set_class_colors(self, colors: dict[str, QColor]) -> None:
        self._colors = dict(colors)
        self.update()

    def set_tiles(self, tiles: list[TileContent]) -> None:
        self._tiles = list(tiles)
        self.update()

    def tiles(self) -> list[TileContent]:
        return list(self._tiles)

    def set_picture(self, index: int, picture: np.ndarray) -> None:
        if 0 <= index < len(self._tiles):
            self._tiles[index].picture = picture
            self._scaled.pop(self._tiles[index].rel, None)
            self.update(self.tile_rect(index))

    def set_failed(self, index: int, reason: str) -> None:
        if 0 <= index < len(self._tiles):
            self._tiles[index].failed = reason
            self._tiles[index].marked = True
            self.update(self.tile_rect(index))

    def set_marked(self, index: int, marked: bool) -> None:
        if 0 <= index < len(self._tiles):
            self._tiles[index].marked = marked
            self.update(self.tile_rect(index))

    def set_boxes(self, index: int, boxes: list[Box]) -> None:
        if 0 <= index < len(self._tiles):
            self._tiles[index].boxes = list(boxes)
            self.update(self.tile_rect(index))

    # ------------------------------------------------------------------ geometry

    def tile_rect(self, index: int) -> QRect:
        """Tile ``index``'s rectangle in widget pixels (reading order)."""
        n = self._columns
        row, col = divmod(index, n)
        w = (self.width() - GAP * (n + 1)) / n
        h = (self.height() - GAP * (n + 1)) / n
        return QRect(round(GAP + col * (w + GAP)), round(GAP + row * (h + GAP)), max(int(w), 1), max(int(h), 1))

    def tile_at(self, x: float, y: float) -> int:
        for i in range(len(self._tiles)):
            if self.tile_rect(i).contains(int(x), int(y)):
                return i
        return -1

    def picture_rect(self, index: int) -> QRectF:
        """Where the picture of tile ``index`` is drawn: fitted to the tile, aspect kept."""
        tile = self._tiles[index]
        return _fit(self.tile_rect(index), tile.width, tile.height)

    def prepare(self, rel: str, picture: np.ndarray, width: int, height: int) -> None:
        """Scale the picture of an image of the next page (``width`` x ``height``) now, while
        the annotator looks at this page, so turning the page only draws."""
        self._scaled_picture(rel, picture, _fit(self.tile_rect(0), width, height))

    # ------------------------------------------------------------------ Qt events

    def resizeEvent(self, event) -> None:
        self._scaled.clear()
        super().resizeEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            index = self.tile_at(event.position().x(), event.position().y())
            if index >= 0:
                self.tile_clicked.emit(index)
                return
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), _BACKGROUND)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for i in range(len(self._tiles)):
            rect = self.tile_rect(i)
            if rect.intersects(event.rect()):
                self._paint_tile(painter, i, rect)
        painter.end()

    # ------------------------------------------------------------------ painting

    def _paint_tile(self, painter: QPainter, index: int, rect: QRect) -> None:
        tile = self._tiles[index]
        painter.fillRect(rect, _TILE)
        target = self.picture_rect(index)
        if tile.picture is not None:
            painter.drawPixmap(target.topLeft(), self._pixmap(index, target))
            self._paint_boxes(painter, tile, target)
        else:
            painter.setPen(QColor("#bdbdbd"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter,
                             "loading…" if tile.failed is None else f"cannot be read\n{tile.failed[-80:]}")
        self._paint_caption(painter, index, tile, rect)
        if tile.marked:
            tint = QColor(MARK_COLOR)
            tint.setAlpha(50)
            painter.fillRect(rect, tint)
            pen = QPen(MARK_COLOR, MARK_WIDTH)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            half = MARK_WIDTH / 2
            painter.drawRect(QRectF(rect).adjusted(half, half, -half, -half))

    def _pixmap(self, index: int, target: QRectF) -> QPixmap:
        tile = self._tiles[index]
        assert tile.picture is not None
        return self._scaled_picture(tile.rel, tile.picture, target)

    def _scaled_picture(self, rel: str, picture: np.ndarray, target: QRectF) -> QPixmap:
        """``picture`` at ``target``'s size: scaled once (area filter) until the size changes."""
        size = (max(round(target.width()), 1), max(round(target.height()), 1))
        cached = self._scaled.get(rel)
        if cached is None or (cached.width(), cached.height()) != size:
            scaled = np.ascontiguousarray(cv2.resize(picture, size, interpolation=cv2.INTER_AREA))
            cached = QPixmap.fromImage(qimage_from_rgb(scaled))
            self._scaled[rel] = cached
            while len(self._scaled) > SCALED_KEPT:
                self._scaled.popitem(last=False)
        self._scaled.move_to_end(rel)
        return cached

    def _paint_boxes(self, painter: QPainter, tile: TileContent, target: QRectF) -> None:
        """Accepted boxes solid, proposals dashed, in their class colours: as on the canvas."""
        sx, sy = target.width() / tile.width, target.height() / tile.height
        painter.save()
        painter.setClipRect(target)
        for box in tile.boxes:
            if box.state is BoxState.REJECTED:
                continue
            pen = QPen(self._colors.get(box.label) or fallback_color(box.label), BOX_WIDTH)
            if box.state is BoxState.PROPOSED:
                pen.setDashPattern(list(PROPOSAL_DASHES))
            painter.setPen(pen)
            painter.drawRect(QRectF(QPointF(target.x() + box.x0 * sx, target.y() + box.y0 * sy),
                                    QPointF(target.x() + box.x1 * sx, target.y() + box.y1 * sy)))
        painter.restore()

    def _paint_caption(self, painter: QPainter, index: int, tile: TileContent, rect: QRect) -> None:
        """The tile's digit (the first nine) at the top left, the file name along the bottom."""
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        height = painter.fontMetrics().height() + 4
        badge = QRect(rect.x() + MARK_WIDTH, rect.y() + MARK_WIDTH, height + 4, height)
        painter.fillRect(badge, MARK_COLOR if tile.marked else _CAPTION)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, str(index + 1) if index < 9 else "·")
        font.setBold(False)
        painter.setFont(font)
        caption = QRect(rect.x() + MARK_WIDTH, rect.bottom() - MARK_WIDTH - height, rect.width() - 2 * MARK_WIDTH,
                        height)
        painter.fillRect(caption, _CAPTION)
        text = f"{tile.rel}  {tile.note}".rstrip()
        text = f"{text}  — needs work" if tile.marked else text
        elided = painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, caption.width() - 8)
        painter.drawText(caption.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         elided)


def _fit(tile: QRect, width: int, height: int) -> QRectF:
    """A ``width`` x ``height`` picture fitted in ``tile`` inside the mark's border, centred."""
    rect = QRectF(tile).adjusted(MARK_WIDTH, MARK_WIDTH, -MARK_WIDTH, -MARK_WIDTH)
    if width <= 0 or height <= 0:
        return rect
    scale = min(rect.width() / width, rect.height() / height)
    w, h = width * scale, height * scale
    return QRectF(rect.x() + (rect.width() - w) / 2, rect.y() + (rect.height() - h) / 2, w, h)
