"""Shared-folder figures: what a team's folder costs the window when it opens, and per key.

Run: .venv/bin/python benchmarks/bench_shared.py [--records 20000] [--proposals 300]

1. Opening a folder: the file list's "verified before a class was added" marks. The window reads
   the class list of each verification with SQLite's JSON functions
   (``ProposalCache.verified_classes``); the baseline, in the same run, builds every review
   record in Python (``iter_reviews``), as the first version of the feature did.
2. Every redraw of the canvas banner: ``ReviewState.waits_for_model`` against the full
   ``verify_blocker`` (which compares every proposal with every settled one), on a crowded image.
3. Opening an image of a folder whose class list grew twice: ``RunPlan.lookup`` of three prompt
   groups against one ``ProposalCache.get`` of a single-run folder.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autolabel_gui.app.project import ProjectSettings  # noqa: E402
from autolabel_gui.core.boxes import Box, BoxState  # noqa: E402
from autolabel_gui.core.cache import ProposalCache  # noqa: E402
from autolabel_gui.core.records import ImageKey, Outcome, ReviewRecord  # noqa: E402
from autolabel_gui.core.review import ReviewState  # noqa: E402
from benchmarks.bench_images import median_time  # noqa: E402
from benchmarks.machine import cpu_name  # noqa: E402


def _boxes(rng: random.Random, n: int, state: BoxState) -> list[Box]:
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, 900), rng.uniform(0, 600)
        out.append(Box(x, y, x + rng.uniform(10, 90), y + rng.uniform(10, 90), rng.choice("abcd"),
                       round(rng.uniform(0.05, 1), 3), state))
    return out


def opening(records: int, tmp: Path) -> None:
    rng = random.Random(0)
    cache = ProposalCache(tmp / "open" / "cache.sqlite")
    rejected = _boxes(rng, 20, BoxState.REJECTED)
    outcomes = [Outcome("a", 0.5, "rejected")] * 20
    cache._run(lambda c: c.execute("BEGIN"))
    for i in range(records):
        cache.put_review(f"img{i}.jpg", ReviewRecord("run", rejected, outcomes, ["a", "b"]))
    cache._run(lambda c: c.execute("COMMIT"))
    fast = median_time(cache.verified_classes, 3)
    slow = median_time(lambda: {rel: r.verified_classes for rel, r in cache.iter_reviews()}, 3)
    print(f"1. opening a folder of {records} reviewed images: verified_classes {fast:.2f} s, "
          f"baseline (every record built) {slow:.2f} s, {slow / fast:.1f}x faster")


def banner(proposals: int) -> None:
    rng = random.Random(1)
    props = _boxes(rng, proposals, BoxState.PROPOSED)
    record = ReviewRecord("run", [p.with_state(BoxState.REJECTED) for p in props[: proposals // 2]], [])
    state = ReviewState(1000, 700, record=record)
    state.set_proposals(props)
    state.accept_all_visible()
    quick = median_time(lambda: [state.waits_for_model(True) for _ in range(100)], 5) / 100
    full = median_time(lambda: [state.verify_blocker(True) for _ in range(10)], 5) / 10
    print(f"2. banner check per redraw, {proposals} proposals: waits_for_model {quick * 1e6:.1f} us, "
          f"baseline verify_blocker {full * 1e3:.2f} ms")


def lookup(tmp: Path) -> None:
    rng = random.Random(2)
    grown = ProjectSettings(classes=["a", "b"])
    grown = ProjectSettings(classes=["a", "b", "c"], prompt_groups=grown.prompt_groups).with_groups_kept()
    grown = ProjectSettings(classes=["a", "b", "c", "d"], prompt_groups=grown.prompt_groups).with_groups_kept()
    plan = grown.run_plan()
    cache = ProposalCache(tmp / "lookup" / "cache.sqlite")
    key = ImageKey("a.jpg", 1, 1)
    for group in plan.groups:
        cache.put(key, group.run_id, _boxes(rng, 100, BoxState.PROPOSED))
    single = median_time(lambda: [cache.get(key, plan.groups[0].run_id) for _ in range(100)], 5) / 100
    grouped = median_time(lambda: [plan.lookup(cache, key) for _ in range(100)], 5) / 100
    print(f"3. opening an image, {len(plan.groups)} prompt groups of 100 proposals: RunPlan.lookup "
          f"{grouped * 1e3:.2f} ms, baseline one cache row {single * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--proposals", type=int, default=300)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        opening(args.records, Path(tmp))
        banner(args.proposals)
        lookup(Path(tmp))


if __name__ == "__main__":
    main()
