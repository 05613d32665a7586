"""What decoding an image really allocates, per Pillow mode, against what ``DECODE_BUDGET`` reserves.

Each image (one per decoding path: ``tests/fixtures/decode_memory.KINDS``) is written once as
stored and once with EXIF orientation 6, then decoded by ``load_image`` and ``load_thumbnail``
in a fresh child process that resets its peak RSS first (``/proc/self/clear_refs``, Linux only).
Printed per image: the file size, the peak RSS growth, the reservation, their ratio (must stay
<= 1) and the growth per pixel beyond the file's bytes, the figure ``core.images`` keeps per
mode. Usage:

    .venv/bin/python benchmarks/bench_decode_memory.py [--size 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.decode_memory import KINDS, measure, write_kind  # noqa: E402

MB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=3000, help="width and height of every image (default 3000)")
    args = parser.parse_args()
    pixels = args.size * args.size
    print(f"{args.size}x{args.size} images; growth = peak RSS growth of one decode in a fresh process")
    print(f"{'image':25} {'mode':5} {'loader':9} {'file MB':>8} {'growth MB':>10} {'reserved MB':>12} "
          f"{'ratio':>6} {'B/px':>6}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            for orientation in (1, 6):
                path = write_kind(Path(tmp) / ("rotated-" if orientation == 6 else "stored-"), kind,
                                  (args.size, args.size), orientation)
                file_bytes = path.stat().st_size
                for loader in ("image", "thumbnail"):
                    got = measure(path, loader)
                    ratio = got["growth"] / got["reserved"]
                    worst = max(worst, ratio)
                    per_pixel = (got["growth"] - file_bytes) / pixels
                    print(f"{path.name:25} {got['mode']:5} {loader:9} {file_bytes / MB:8.1f} "
                          f"{got['growth'] / MB:10.1f} {got['reserved'] / MB:12.1f} {ratio:6.2f} {per_pixel:6.1f}")
                path.unlink()
    print(f"worst growth / reserved: {worst:.2f}")


if __name__ == "__main__":
    main()
