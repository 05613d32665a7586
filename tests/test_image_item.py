"""The image under the boxes: which pyramid level is drawn, and that it is filtered at every zoom."""

from __future__ import annotations

import numpy as np
import pytest
from autolabel_gui.gui.image_item import ImageItem, level_for_scale
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter, QTransform
from PySide6.QtWidgets import QStyleOptionGraphicsItem


def test_level_is_a_step_function_that_never_coarsens_when_zooming_in():
    scales = np.geomspace(0.005, 40, 4000)
    levels = [level_for_scale(float(s)) for s in scales]
    assert all(a >= b for a, b in zip(levels, levels[1:]))
    assert [level_for_scale(s) for s in (40, 2, 1, 0.7, 0.5, 0.3, 0.25, 0.2, 0.1)] == [0, 0, 0, 0, 1, 1, 2, 2, 3]
    # zoomed out, the level drawn has between 1 and 2 of its pixels per screen pixel
    for s in scales[scales < 1]:
        on_screen = 2 ** level_for_scale(float(s)) * s  # screen pixels per level pixel
        assert 0.5 < on_screen <= 1 + 1e-9


def render(item: ImageItem, scale: float, size: tuple[int, int]) -> np.ndarray:
    """Paint ``item`` at ``scale`` as the view would; the grey values of the result."""
    target = QImage(size[0], size[1], QImage.Format.Format_RGB888)
    target.fill(0)
    painter = QPainter(target)
    painter.setTransform(QTransform.fromScale(scale, scale))
    option = QStyleOptionGraphicsItem()
    option.exposedRect = QRectF(0, 0, size[0] / scale, size[1] / scale)
    item.paint(painter, option)
    painter.end()
    buffer = np.frombuffer(target.constBits(), dtype=np.uint8, count=target.sizeInBytes())
    return buffer.reshape(size[1], target.bytesPerLine())[:, : size[0] * 3].reshape(size[1], size[0], 3)[..., 0]


@pytest.mark.parametrize("scale", [0.3, 0.7, 0.999, 1.2, 1.5, 3.0])
def test_the_image_is_filtered_at_every_zoom_across_100_percent(scale):
    stripes = np.zeros((3000, 3000, 3), dtype=np.uint8)  # big enough to get half-size levels
    stripes[:, ::2] = 255  # one-pixel columns: nearest-neighbour gives only 0 and 255
    item = ImageItem()
    item.set_array(stripes)
    pixels = render(item, scale, (240, 60))
    inner = pixels[10:-10, 10:-10]
    in_between = ((inner > 20) & (inner < 235)).mean()
    assert in_between > 0.2, f"at scale {scale} only {in_between:.0%} of the pixels are blended"
