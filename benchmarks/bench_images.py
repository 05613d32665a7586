"""Foundation figures: listing a folder of 100,000 images, and decoding a 12-Mpx EXIF-rotated
JPEG with OpenCV against Pillow + ImageOps.exif_transpose, and load_image itself.

Run: .venv/bin/python benchmarks/bench_images.py [--files 100000]

Prints medians of several runs; the targets are "well under 2 s" for the listing
(docs/modules.md) and load_image no slower than Pillow for JPEGs.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from autolabel_gui.core.folder import ImageFolder  # noqa: E402
from autolabel_gui.core.images import load_image  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402


def median_time(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_listing(root: Path, files: int) -> None:
    per_dir = 10_000
    for i in range(files):
        d = root / f"cam{i // per_dir}"
        if i % per_dir == 0:
            d.mkdir()
        (d / f"frame{i}.jpg").touch()
    t = median_time(lambda: ImageFolder(root), runs=3)
    folders = files // per_dir + (files % per_dir > 0)
    print(f"ImageFolder: {files:,} files in {folders} folders: {t:.3f} s (median of 3)")


def bench_jpeg(root: Path) -> None:
    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], axis=-1).astype(np.int16)
    rgb = np.clip(rgb + rng.integers(-20, 20, rgb.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = root / "photo.jpg"
    Image.fromarray(rgb).save(path, quality=90, exif=exif)
    data = path.read_bytes()

    def pillow() -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))

    def opencv() -> np.ndarray:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)

    print(f"JPEG {w}x{h}, {len(data) / 1e6:.1f} MB, EXIF orientation 6 (median of 5):")
    for name, fn in [("Pillow + exif_transpose", pillow), ("cv2.imdecode (BGR, no copy)", opencv),
                     ("load_image", lambda: load_image(path))]:
        print(f"  {name:28s} {median_time(fn, runs=5) * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "listing"
        listing.mkdir()
        bench_listing(listing, args.files)
        bench_jpeg(Path(tmp))


if __name__ == "__main__":
    main()
