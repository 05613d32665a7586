"""The box of a mask is exact: the tight box of its True pixels, in VOC pixel convention."""

from __future__ import annotations

import numpy as np
import pytest
from autolabel_gui.core.boxes import Box, ImageLabels
from autolabel_gui.core.mask_box import box_of_mask
from autolabel_gui.formats.voc import parse_voc, voc_bytes
from hypothesis import given, settings
from hypothesis import strategies as st


@st.composite
def masks(draw) -> np.ndarray:
    """Masks of 1..40 x 1..40 pixels: a filled rectangle, scattered pixels, or both."""
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    mask = np.zeros((height, width), dtype=bool)
    if draw(st.booleans()):
        r0, r1 = sorted(draw(st.lists(st.integers(0, height), min_size=2, max_size=2)))
        c0, c1 = sorted(draw(st.lists(st.integers(0, width), min_size=2, max_size=2)))
        mask[r0:r1, c0:c1] = True
    for r, c in draw(st.lists(st.tuples(st.integers(0, height - 1), st.integers(0, width - 1)), max_size=12)):
        mask[r, c] = True
    return mask


@settings(max_examples=300, deadline=None)
@given(masks())
def test_the_box_is_the_tight_box_of_the_true_pixels(mask: np.ndarray) -> None:
    box = box_of_mask(mask)
    pixels = np.argwhere(mask)
    if len(pixels) == 0:
        assert box is None
        return
    assert box is not None
    x0, y0, x1, y1 = box
    assert (x0, y0) == (pixels[:, 1].min(), pixels[:, 0].min())
    assert (x1, y1) == (pixels[:, 1].max() + 1, pixels[:, 0].max() + 1)
    # Tight: every edge row and column of the box holds a True pixel, nothing lies outside it.
    assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
    assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()
    assert mask[y0:y1, x0:x1].sum() == mask.sum()
    assert 0 <= x0 < x1 <= mask.shape[1] and 0 <= y0 < y1 <= mask.shape[0]


def test_a_known_rectangle_becomes_the_voc_box_of_those_pixels(tmp_path) -> None:
    mask = np.zeros((20, 30), dtype=bool)
    mask[2:5, 3:8] = True  # rows 2..4, columns 3..7
    assert box_of_mask(mask) == (3, 2, 8, 5)
    labels = ImageLabels.for_image(tmp_path / "a.png", 30, 20, [Box(*box_of_mask(mask), "cup")])
    data = voc_bytes(labels)
    assert b"<xmin>4</xmin>" in data and b"<xmax>8</xmax>" in data  # 1-based inclusive columns 3..7
    assert b"<ymin>3</ymin>" in data and b"<ymax>5</ymax>" in data
    assert parse_voc(data, tmp_path / "a.xml").boxes[0].xyxy == (3, 2, 8, 5)


def test_a_mask_must_be_two_dimensional() -> None:
    with pytest.raises(ValueError, match="2-D"):
        box_of_mask(np.zeros((2, 3, 4), dtype=bool))
