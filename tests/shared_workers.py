"""Worker processes for tests/test_shared_folder.py: several processes on one folder.

``python tests/shared_workers.py review ROOT SEED STEPS USER LOG``: random open / edit / save /
resolve over the folder's images with its own ReviewSession; every write it made (sha256 of the
bytes written, and the identity of the file it replaced knowingly) goes to LOG as JSON lines.

``python tests/shared_workers.py cache CACHE_FILE SEED STEPS``: random proposals, review records
and output digests into one ProposalCache; prints ``committed N`` after each committed write.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from autolabel_gui.app.conflicts import ConflictChoice
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.records import ImageKey, Outcome, ReviewRecord
from autolabel_gui.detection.run_plan import PromptGroup, RunPlan

CLASSES = ["dog", "cat"]
RUN = "run-1"


def review(root: Path, seed: int, steps: int, user: str, log_path: Path) -> None:
    rng = random.Random(seed)
    folder = ImageFolder(root)
    cache = ProposalCache.for_folder(root)
    plan = RunPlan((PromptGroup(Ontology.from_names(CLASSES), RUN),), tuple(CLASSES))
    session = ReviewSession(folder, cache, CLASSES, plan, 0.35, user=user)
    rel = rng.choice(folder.images)
    with open(log_path, "a", encoding="utf-8") as log:
        def note(**entry) -> None:
            log.write(json.dumps(entry) + "\n")
            log.flush()

        for step in range(steps):
            op = rng.random()
            if op < 0.15:
                rel = rng.choice(folder.images)
            elif op < 0.2:  # the window closed and opened again
                session = ReviewSession(folder, cache, CLASSES, plan, 0.35, user=user)
            state = session.open(rel).state
            if rng.random() < 0.7 or not state.items:
                x, y = rng.uniform(0, 100), rng.uniform(0, 60)
                state.add_box(Box(x, y, x + rng.uniform(5, 50), y + rng.uniform(5, 40), rng.choice(CLASSES),
                                  None, BoxState.ACCEPTED))
            else:
                state.select(rng.randrange(len(state.items)))
                state.delete_selected()
            expected = session.identity(rel)
            saved = session.save(rel, verify=rng.random() < 0.5)
            if saved.error:
                raise SystemExit(f"{user} step {step}: {saved.error}")
            if saved.written:
                note(written=session.identity(rel), expected=expected, rel=rel, user=user)
            conflict = saved.conflict
            while conflict is not None:
                note(copy=str(conflict.mine_copy), rel=rel, user=user)
                choice = rng.choice(list(ConflictChoice))
                resolved = session.resolve(rel, choice, verify=rng.random() < 0.3)
                if resolved.error:
                    raise SystemExit(f"{user} step {step}: {resolved.error}")
                if resolved.written:
                    note(written=session.identity(rel), expected=conflict.theirs_sha256, rel=rel, user=user,
                         choice=choice.value)
                conflict = resolved.conflict
            time.sleep(rng.random() * 0.002)


def cache_writer(path: Path, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    cache = ProposalCache(path)
    for n in range(steps):
        rel = f"img{rng.randrange(20)}.png"
        op = rng.random()
        if op < 0.5:
            boxes = [Box(i, i, i + 10.5, i + 20.25, rng.choice(CLASSES), round(rng.random(), 3), BoxState.PROPOSED)
                     for i in range(rng.randrange(1, 40))]
            cache.put(ImageKey(rel, rng.randrange(1, 10**6), rng.randrange(1, 10**12)), RUN, boxes)
        elif op < 0.85:
            rejected = [Box(1, 2, 30, 40, "dog", 0.5, BoxState.REJECTED)] * rng.randrange(0, 5)
            cache.put_review(rel, ReviewRecord(RUN, rejected, [Outcome("dog", 0.5, "rejected")] * len(rejected)))
        else:
            cache.put_output(path.parent / rel, f"{rng.getrandbits(256):064x}")
        print(f"committed {n + 1}", flush=True)
    cache.close()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "review":
        review(Path(args[0]), int(args[1]), int(args[2]), args[3], Path(args[4]))
    elif mode == "cache":
        cache_writer(Path(args[0]), int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")
