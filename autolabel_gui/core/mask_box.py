"""The tight box of a mask: the step that turns a segmenter's answer into a box, pure numpy.

Exact by construction, in the continuous pixel coordinates of ``core.boxes`` (ADR 0003): a
mask whose True pixels span columns 3..7 and rows 2..4 gives x0=3, x1=8, y0=2, y1=5, so the
VOC file written from it (``xmin = x0 + 1``, ``xmax = x1``) names exactly those pixels.
"""

from __future__ import annotations

import numpy as np


def box_of_mask(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the True pixels of a 2-D mask, None when it has none.

    The mask is in image pixels (row, column), so the box is inside the image by construction.
    """
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D (rows, columns), not of shape {mask.shape}")
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
