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
