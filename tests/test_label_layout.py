"""Class tags: the pure placement and crowding rules, and the canvas applying them at any zoom."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.gui.canvas import Canvas
from autolabel_gui.gui.label_layout import label_offset, shown_labels
from PySide6.QtCore import QRectF

TAG = (60.0, 16.0)


def test_tag_sits_above_the_box_when_there_is_room():
    assert label_offset((100, 100, 200, 200), TAG, (800, 600)) == (0, -16)


def test_tag_goes_inside_the_box_at_the_top_of_the_image():
    assert label_offset((100, 5, 200, 200), TAG, (800, 600)) == (0, 0)


def test_tag_shifts_left_at_the_right_edge_and_never_past_the_left_edge():
    dx, dy = label_offset((780, 100, 800, 150), TAG, (800, 600))
    assert (780 + dx, dy) == (740, -16)
    dx, _ = label_offset((10, 100, 40, 150), (900, 16), (800, 600))  # wider than the image
    assert 10 + dx == 0


def test_tag_of_a_box_at_the_bottom_of_a_short_image_stays_on_it():
    _dx, dy = label_offset((0, 10, 10, 20), TAG, (800, 20))  # no room above, none below either
    assert 10 + dy == 4  # inside, lifted so its bottom is the image's bottom


def test_shown_tags_never_overlap_and_the_selected_one_always_shows():
    rects = [(10.0 * i, 0.0, 60.0, 16.0) for i in range(10)] + [None, (500.0, 500.0, 60.0, 16.0)]
    shown = shown_labels(rects)
    assert shown == {0, 6, 11}
    shown = shown_labels(rects, selected=3)
    assert 3 in shown and 0 not in shown and 10 not in shown
    for a, b in itertools.combinations(sorted(shown), 2):
        ra, rb = rects[a], rects[b]
        assert ra[0] + ra[2] <= rb[0] or rb[0] + rb[2] <= ra[0] or ra[1] + ra[3] <= rb[1] or rb[1] + rb[3] <= ra[1]


# ---------------------------------------------------------------- on the canvas

W, H = 400, 300


@pytest.fixture
def canvas(qtbot) -> Canvas:
    view = Canvas()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(np.full((H, W, 3), 100, dtype=np.uint8))
    return view


def tag_rect(canvas: Canvas, index: int) -> QRectF:
    """A tag's rectangle on the viewport."""
    label = canvas.box_item(index).label_item
    return label.deviceTransform(canvas.viewportTransform()).mapRect(label.boundingRect())


def image_rect(canvas: Canvas) -> QRectF:
    return canvas.viewportTransform().mapRect(QRectF(0, 0, W, H))


@pytest.mark.parametrize("zoom", [1.0, 0.4, 3.0])
def test_tags_of_boxes_at_the_edges_stay_on_the_image(canvas, qtbot, zoom):
    canvas.set_boxes([
        Box(0, 0, 40, 30, "person with a long class name", 0.91, BoxState.PROPOSED),  # top-left corner
        Box(370, 0, 400, 20, "vehicle", 0.5, BoxState.PROPOSED),  # top-right corner
        Box(385, 150, 400, 200, "cat"),  # right edge, a narrow box
        Box(380, 280, 400, 300, "cup"),  # bottom-right corner
    ])
    if zoom != 1.0:
        canvas.zoom_by(zoom)
    qtbot.wait(1)
    image = image_rect(canvas).adjusted(-0.5, -0.5, 0.5, 0.5)
    for i in range(4):
        assert canvas.box_item(i).label_item.isVisible()
        assert image.contains(tag_rect(canvas, i)), (i, tag_rect(canvas, i), image)


def test_forty_boxes_show_no_overlapping_tags_and_h_style_toggle_hides_them(canvas, qtbot):
    boxes = [Box(20 + 8 * (i % 20), 40 + 10 * (i // 20), 60 + 8 * (i % 20), 80 + 10 * (i // 20),
                 "person", 0.5 + i / 100, BoxState.PROPOSED) for i in range(40)]
    canvas.set_boxes(boxes, selected=17)
    qtbot.wait(1)
    shown = [i for i in range(40) if canvas.box_item(i).label_item.isVisible()]
    assert 17 in shown and 1 < len(shown) < 40
    for a, b in itertools.combinations(shown, 2):
        assert not tag_rect(canvas, a).intersects(tag_rect(canvas, b)), (a, b)
    canvas.zoom_by(6.0)  # zoomed in, the tags have room: more of them show
    assert sum(canvas.box_item(i).label_item.isVisible() for i in range(40)) > len(shown)

    canvas.set_labels_visible(False)
    assert not any(canvas.box_item(i).label_item.isVisible() for i in range(40))
    canvas.set_labels_visible(True)
    assert canvas.box_item(17).label_item.isVisible()
