"""How many images per second the driver of ``label --ray`` can commit: ``ProposalCache.put``. Prints only.

Every image the cluster finishes is one committed SQLite transaction on the driver (WAL,
synchronous=NORMAL), so this rate is the ceiling of a cluster run however many GPUs it has
(docs/scale.md). Measured for proposals of 20 and 100 boxes (a realistic and a crowded image),
against, for scale, the same rows written 500 to a transaction (what a batched commit would give).
Each rate is given per wall second and per second of this process's CPU time: on a machine
shared with other work the second is the ceiling the first would reach alone. Usage:

    .venv/bin/python benchmarks/bench_cache_commits.py [--images N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache, proposals_to_json
from autolabel_gui.core.records import ImageKey


def _boxes(n: int, seed: int) -> list[Box]:
    return [Box(1.5 + i + seed % 7, 2.25 + i, 40.125 + i, 60.0625 + i, ("person", "dog", "car")[i % 3],
                0.05 + (i * 37 + seed) % 90 / 100, BoxState.PROPOSED) for i in range(n)]


def _per_put(path: Path, images: int, boxes: int) -> tuple[float, float]:
    cache = ProposalCache(path)
    data = [(ImageKey(f"dir{i // 1000}/img{i:07d}.jpg", 100_000 + i, 1_700_000_000_000_000_000 + i),
             _boxes(boxes, i)) for i in range(images)]
    start, cpu = time.perf_counter(), time.process_time()
    for key, proposals in data:
        cache.put(key, "run0123456789abc", proposals)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    cache.close()
    return images / seconds, images / cpu


def _batched(path: Path, images: int, boxes: int, per_transaction: int = 500) -> tuple[float, float]:
    cache = ProposalCache(path)
    conn = cache._conn  # the same file and pragmas, many rows to one commit
    rows = [(f"dir{i // 1000}/img{i:07d}.jpg", "run0123456789abc", 100_000 + i, 1_700_000_000_000_000_000 + i,
             proposals_to_json(_boxes(boxes, i)), time.time_ns()) for i in range(images)]
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, images, per_transaction):
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO proposals VALUES (?, ?, ?, ?, ?, ?)", rows[i:i + per_transaction])
        conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    cache.close()
    return images / seconds, images / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000, help="images per measurement (default 5000)")
    parser.add_argument("--dir", type=Path, default=None, help="where the cache files go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_cache_", dir=args.dir) as tmp:
        print(f"{args.images} images per measurement, cache in {tmp}")
        for boxes in (20, 100):
            one, one_cpu = _per_put(Path(tmp) / f"put{boxes}.sqlite", args.images, boxes)
            many, many_cpu = _batched(Path(tmp) / f"batch{boxes}.sqlite", args.images, boxes)
            print(f"{boxes:>4} boxes/image: ProposalCache.put {one:6.0f} commits/s ({one_cpu:6.0f} per CPU s); "
                  f"500 rows a transaction {many:6.0f} images/s ({many_cpu:6.0f} per CPU s)")


if __name__ == "__main__":
    main()
