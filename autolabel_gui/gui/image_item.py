"""The photograph under the boxes, drawn from a resolution pyramid.

A plain QGraphicsPixmapItem converts the whole image to a pixmap (4 bytes a pixel: 1.2 GB for a
20000x15000 scan) and, zoomed out, samples it with a bilinear filter that aliases badly and
touches far more memory than the screen needs. Here the full-resolution level wraps the
caller's RGB buffer without a copy, half-size levels are made on first use with an area filter,
and each repaint draws only the exposed part of the level closest to the screen's resolution.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

# Levels stop halving once the image fits in this many pixels a side: a screen never needs less.
SMALLEST_LEVEL_SIDE = 1024
# Always filtered, whatever the zoom. Filtering used to stop at 1 screen pixel per image pixel,
# so zooming across 100% flipped the picture from smooth to nearest-neighbour, whose uneven
# duplicated rows and columns (a 1.2x zoom doubles every fifth one) look blocky; the 6000x4000
# photo switched back and forth while the wheel turned. labelImg filters always too.
SMOOTH = True
# Level pixels painted beyond the exposed rectangle (see paint).
EXPOSED_PAD = 2


def level_for_scale(scale: float) -> int:
    """The pyramid level to draw at ``scale`` screen pixels per image pixel: the coarsest one
    that still has at least one pixel per screen pixel (level k is 2**-k the size). A pure step
    function of the scale, never increasing as the scale grows, so zooming in never picks a
    coarser level and no two zooms that look alike draw from different levels."""
    if scale <= 0 or not math.isfinite(scale):
        return 0
    # The epsilon: an exact halving (0.5, 0.25) draws the half-size level 1:1 despite rounding.
    return max(0, math.floor(math.log2(1.0 / scale) + 1e-9))


def qimage_from_rgb(rgb: np.ndarray) -> QImage:
    """Wrap an (H, W, 3) uint8 C-contiguous array as a QImage sharing its memory.

    Built from the raw buffer, not through QImageReader, so Qt's 256 MB image-allocation
    limit does not apply. The caller must keep ``rgb`` alive as long as the QImage.
    """
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, rgb.strides[0], QImage.Format.Format_RGB888)


def rgb_from_qimage(image: QImage) -> np.ndarray:
    """Copy any QImage into an (H, W, 3) uint8 RGB array."""
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width = converted.height(), converted.width()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=converted.sizeInBytes())
    rows = buffer.reshape(height, converted.bytesPerLine())
    # An explicit copy: the view would otherwise point into the temporary QImage.
    return rows[:, : width * 3].reshape(height, width, 3).copy()


def as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Check and normalise the canvas's input: (H, W, 3) uint8, C-contiguous."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got shape {image.shape} dtype {image.dtype}")
    return np.ascontiguousarray(image)


class ImageItem(QGraphicsItem):
    """Draws an RGB image at scene coordinates (0, 0)-(W, H), one scene unit per image pixel."""

    def __init__(self) -> None:
        super().__init__()
        # The exposed rectangle tells paint() which part of the level to draw.
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self._levels: list[np.ndarray] = []
        self._images: list[QImage] = []
        self._width = 0
        self._height = 0

    @property
    def size(self) -> tuple[int, int]:
        return self._width, self._height

    def set_array(self, rgb: np.ndarray | None) -> None:
        """Show ``rgb`` (kept by reference, not copied), or nothing for None."""
        self.prepareGeometryChange()
        if rgb is None:
            self._levels, self._images = [], []
            self._width = self._height = 0
        else:
            rgb = as_rgb_array(rgb)
            self._levels = [rgb]
            self._images = [qimage_from_rgb(rgb)]
            self._height, self._width = rgb.shape[:2]
        self.update()

    def level_count(self) -> int:
        """How many levels exist so far (they are built on demand)."""
        return len(self._levels)

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._width, self._height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self._levels:
            return
        transform = painter.worldTransform()
        level = self._level_for(math.hypot(transform.m11(), transform.m12()))
        source_level = self._levels[level]
        level_h, level_w = source_level.shape[:2]
        fx, fy = level_w / self._width, level_h / self._height
        # A little more than the exposed part: the filter then reads the same neighbours in a
        # partial repaint (a dragged box's rectangle) as in a full one, so no seams show.
        pad = EXPOSED_PAD / min(fx, fy)
        target = option.exposedRect.adjusted(-pad, -pad, pad, pad).intersected(self.boundingRect())
        if target.isEmpty():
            return
        source = QRectF(target.x() * fx, target.y() * fy, target.width() * fx, target.height() * fy)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, SMOOTH)
        painter.drawImage(target, self._images[level], source)

    def _level_for(self, scale: float) -> int:
        """The level ``level_for_scale`` asks for, built on demand, or the smallest there is."""
        wanted = level_for_scale(scale)
        while len(self._levels) <= wanted and not self._smallest_reached():
            self._add_level()
        return min(wanted, len(self._levels) - 1)

    def _smallest_reached(self) -> bool:
        h, w = self._levels[-1].shape[:2]
        return max(h, w) <= SMALLEST_LEVEL_SIDE

    def _add_level(self) -> None:
        previous = self._levels[-1]
        h, w = previous.shape[:2]
        smaller = cv2.resize(previous, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        self._levels.append(smaller)
        self._images.append(qimage_from_rgb(smaller))
