"""The file list's status read of a folder's VOC files: the old regex on the first 4 KB, the
parser up to the first object (``formats.voc.read_provenance``, what the file list uses), and a
full ``read_voc``. Prints microseconds a file, best of 3; never asserts.

    .venv/bin/python benchmarks/bench_file_status.py [--files 3000] [--boxes 20]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from autolabel_gui.core.boxes import Box, ImageLabels
from autolabel_gui.core.safe_read import open_regular
from autolabel_gui.formats.voc import read_provenance, read_voc, voc_bytes

_VERIFIED = re.compile(rb"<annotation\b[^>]*\bverified\s*=\s*[\"']yes[\"']", re.IGNORECASE)
_BY_RULE = re.compile(rb"<autolabel_accepted_by_rule[\s>]")


def regex_head(path: Path) -> tuple[bool, bool]:
    """What the file list did before: two regexes on the first 4 KB, read as it read them."""
    fd = open_regular(path)
    try:
        head = os.read(fd, 4096)
    finally:
        os.close(fd)
    return bool(_VERIFIED.search(head)), bool(_BY_RULE.search(head))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--boxes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.files):
            boxes = [Box(j, 10, j + 20, 40, "dog") for j in range(args.boxes)]
            labels = ImageLabels.for_image(Path(f"/data/x/{i}.png"), 120, 80, boxes,
                                           accepted_by_rule="r" if i % 2 else None)
            (folder / f"{i}.xml").write_bytes(voc_bytes(labels))
        files = sorted(folder.iterdir())
        reads: list[tuple[str, Callable[[Path], object]]] = [
            ("regex on 4 KB (before)", regex_head), ("read_provenance", read_provenance), ("read_voc", read_voc)]
        for name, read in reads:
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for path in files:
                    read(path)
                best = min(best, time.perf_counter() - started)
            print(f"{name:<24}{best * 1e6 / len(files):8.1f} µs a file ({len(files)} files of {args.boxes} boxes)")


if __name__ == "__main__":
    main()
