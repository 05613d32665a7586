"""The decode budget counts what decoding really allocates, mode by mode (issue 21).

Each image is decoded in a fresh child process whose peak resident memory is reset first
(``tests/fixtures/decode_memory.py``); the reservation ``load_image`` took from
``DECODE_BUDGET`` must cover that peak. The estimate before this (buffer + 6 bytes a pixel)
reserved a third of what an RGBA PNG used.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.decode_memory import KINDS, measure, write_kind

pytestmark = pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                                reason="needs Linux's /proc/self/clear_refs to reset the peak RSS")


@pytest.mark.parametrize("kind", KINDS)
def test_the_decode_reservation_covers_the_measured_peak_of_every_mode(tmp_path: Path, kind: str) -> None:
    # EXIF-rotated: the decode's own peak, then one more copy of the result, transposed
    path = write_kind(tmp_path / "x", kind, (3000, 3000), orientation=6)
    got = measure(path)
    assert got["growth"] <= got["reserved"], (
        f"{kind} ({got['mode']}, rotated): decoding grew RSS by {got['growth'] / 2**20:.1f} MiB, "
        f"{got['growth'] / got['reserved']:.2f}x the {got['reserved'] / 2**20:.1f} MiB it reserved")


def test_the_decode_reservation_covers_a_webp(tmp_path: Path) -> None:
    """``_PEAK_BYTES_PER_PIXEL`` was measured for PNG, JPEG and TIFF; a WebP opens as RGB (10 B/px
    reserved) and decodes through libwebp's 4-byte buffer: 982 MiB used for 611 MiB reserved at
    8000 x 8000 (16.7 B/px measured; ``_WEBP_BYTES_PER_PIXEL``)."""
    import numpy as np
    from PIL import Image

    from tests.fixtures.decode_memory import _gradient

    path = tmp_path / "g.webp"
    Image.fromarray(_gradient((3000, 3000), 3).astype(np.uint8)).save(path, quality=80)
    m = measure(path, "image")
    assert m["growth"] <= m["reserved"], m
