"""A long review through the real window: memory and time per image stay flat.

Every image gets a scripted, varied review (accept all, delete, move, undo, redo, Space), all
through real key presses. RSS is read after ``gc.collect()``; the growth after a warm-up of
``WARMUP`` images must stay under ``MAX_GROWTH_MB``. The mean time per image of the first and
last ``WINDOW`` images is printed and only a generous ratio is asserted (no absolute timings).
The default run reviews 400 images; ``AUTOLABEL_LONG=1`` (make test-long) reviews 2,000.
"""

from __future__ import annotations

import gc
import os
import time

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.boxes import Box, BoxState
from PySide6.QtCore import Qt

from tests.fixtures.hostile import scaled
from tests.fixtures.window import WINDOW_CLASSES, put_proposals, write_image

Key = Qt.Key
WARMUP = 200
WINDOW = 200
MAX_GROWTH_MB = 50
MAX_SLOWDOWN = 3.0


def rss_mb() -> float:
    gc.collect()
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _proposals(i: int) -> list[Box]:
    return [Box(4 + i % 30, 6, 60 + i % 50, 70, "person", 0.9, BoxState.PROPOSED),
            Box(80, 20 + i % 40, 140, 100, "cat", 0.7, BoxState.PROPOSED),
            Box(10, 90, 50, 140, "cup", 0.5, BoxState.PROPOSED)]


@pytest.mark.scalable
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS is read from /proc")
def test_long_review_keeps_memory_and_time_per_image_flat(open_review, tmp_path, qtbot):
    count = scaled(400, 2000)
    root = tmp_path / "images"
    names = [f"img{i:05d}.png" for i in range(count)]
    for i, name in enumerate(names):
        write_image(root / name, size=(160, 120), seed=i % 7)
    settings = ProjectSettings(classes=list(WINDOW_CLASSES))
    put_proposals(root, settings, {n: _proposals(i) for i, n in enumerate(names)})
    h = open_review([], root=root)
    c = h.controller
    scripts = [
        [Key.Key_Space],
        [Key.Key_Tab, Key.Key_Delete, Key.Key_Space],
        [Key.Key_Tab, Key.Key_Right, Key.Key_Down, Key.Key_Space],
        [Key.Key_Tab, Key.Key_Delete, Key.Key_Z, Key.Key_Space],  # Z with Ctrl: undo
        [Key.Key_Tab, Key.Key_Return, Key.Key_Tab, Key.Key_Delete, Key.Key_Space],
    ]
    times: list[float] = []
    memory: dict[int, float] = {}
    for i, name in enumerate(names):
        start = time.perf_counter()
        qtbot.waitUntil(lambda name=name: c.current == name and c.image_on_canvas and len(c.state.items) == 3,
                        timeout=10_000)
        for key in scripts[i % len(scripts)]:
            h.press(key, Qt.KeyboardModifier.ControlModifier if key == Key.Key_Z else Qt.KeyboardModifier.NoModifier)
        times.append(time.perf_counter() - start)
        if i + 1 == WARMUP:
            memory["warm"] = rss_mb()
    memory["end"] = rss_mb()
    first, last = sum(times[:WINDOW]) / WINDOW, sum(times[-WINDOW:]) / WINDOW
    growth = memory["end"] - memory["warm"]
    print(f"\n{count} images: RSS {memory['warm']:.0f} MB after {WARMUP}, {memory['end']:.0f} MB at the end "
          f"(+{growth:.1f} MB); mean per image {first * 1000:.1f} ms (first {WINDOW}) vs "
          f"{last * 1000:.1f} ms (last {WINDOW}), ratio {last / first:.2f}")

    assert all(h.voc(n).verified for n in (names[0], names[count // 2], names[-1]))
    assert [label for label, _ in h.saved(names[1])] == ["cat", "cup"], "Tab, Delete rejected the person"
    assert [label for label, _ in h.saved(names[3])] == ["person", "cat", "cup"], "Ctrl+Z brought the person back"
    assert growth < MAX_GROWTH_MB, f"memory grew by {growth:.1f} MB over {count - WARMUP} images"
    assert last / first < MAX_SLOWDOWN, f"time per image grew from {first * 1000:.1f} to {last * 1000:.1f} ms"
