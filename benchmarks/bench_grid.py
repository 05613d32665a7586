"""Grid triage figures: a page of nine 12-MP images with 50 boxes each, shown and turned.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_grid.py [--pages 4] [--repeats 5]

Synthetic 4000x3000 JPEGs with 50 cached proposals each, in the real window (no model: the
proposals are already in the cache, as after ``autolabel-gui label``). Every figure is timed
from the key press to the grid painted (a forced repaint of the whole grid).

1. G, cold: no thumbnail decoded yet; until all nine tiles show their pictures.
2. G, prefetched: the page's thumbnails already decoded (Esc, then G again). Target: < 100 ms.
3. Space, turning a page: nine images verified and saved (50 boxes each), the next page shown,
   its thumbnails decoded in the background while the page before was on screen; split into
   the saving and the showing.
Against them, in the same run: nine full-size decodes on the UI thread (what showing nine
canvases would cost), and one thumbnail decode against one full decode.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from autolabel_gui.app.project import ProjectSettings  # noqa: E402
from autolabel_gui.app.triage import Triage  # noqa: E402
from autolabel_gui.core.cache import ProposalCache  # noqa: E402
from autolabel_gui.core.images import load_image, load_thumbnail  # noqa: E402
from autolabel_gui.core.records import ImageKey  # noqa: E402
from autolabel_gui.detection.ids import run_id_for  # noqa: E402
from autolabel_gui.gui.grid_triage import THUMB_SIDE  # noqa: E402
from autolabel_gui.gui.main_window import MainWindow  # noqa: E402
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui_bench import CLASSES, make_boxes, make_jpeg, no_model, wait_until  # noqa: E402

BOXES = 50
PAGE = 9
TARGET_MS = 100.0






def ms(seconds: float) -> float:
    return seconds * 1000.0


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms   (n={len(values)})"


def build_folder(root: Path, images: int) -> ProjectSettings:
    rng = np.random.default_rng(0)
    settings = ProjectSettings(classes=list(CLASSES))
    run_id = run_id_for(settings.detector_config(), settings.ontology())
    with ProposalCache.for_folder(root) as cache:
        for i in range(images):
            rel = f"img{i:03d}.jpg"
            make_jpeg(root / rel, rng)
            cache.put(ImageKey.from_path(root, rel), run_id, make_boxes(rng, BOXES))
    return settings


def bench(app: QApplication, root: Path, settings: ProjectSettings, repeats: int) -> None:
    window = MainWindow(QSettings(str(root.parent / "qsettings.ini"), QSettings.Format.IniFormat),
                        detector_factory=no_model)
    window.resize(1400, 900)
    window.show()
    window.open_folder(root, settings)
    c, grid = window.controller, window.grid
    assert c is not None
    wait_until(app, lambda: c.image_on_canvas)

    def press(key: Qt.Key) -> None:
        QTest.keyClick(QApplication.focusWidget() or window, key)

    def shown() -> bool:
        return grid.triage is not None and bool(grid.triage.tiles) and not grid.triage.loading()

    t0 = time.perf_counter()
    press(Qt.Key.Key_G)
    t_key = time.perf_counter()
    wait_until(app, shown)
    grid.view.repaint()
    cold = time.perf_counter() - t0
    print(f"  G, cold (9 thumbnails decoded now): {ms(cold):7.1f} ms   (the key itself {ms(t_key - t0):.1f} ms)")

    wait_until(app, lambda: grid.decoded(grid.upcoming()))  # as while the annotator looks at the page
    prefetched = []
    for _ in range(repeats):
        press(Qt.Key.Key_Escape)
        app.processEvents()
        t0 = time.perf_counter()
        press(Qt.Key.Key_G)
        assert shown(), "the page's thumbnails should all be cached"
        grid.view.repaint()
        prefetched.append(ms(time.perf_counter() - t0))
    print(f"  G, prefetched                     : {fmt(prefetched)}")

    turns, saving = [], []
    verify_page = Triage.verify_page

    def timed_verify(self: Triage, *args, **kwargs):
        t = time.perf_counter()
        result = verify_page(self, *args, **kwargs)
        saving.append(ms(time.perf_counter() - t))
        return result

    Triage.verify_page = timed_verify  # type: ignore[method-assign]
    while True:
        upcoming = grid.upcoming()
        if not upcoming:
            break
        wait_until(app, lambda: grid.decoded(upcoming))  # noqa: B023
        t0 = time.perf_counter()
        press(Qt.Key.Key_Space)
        if not shown():
            raise RuntimeError("the next page was not prefetched")
        grid.view.repaint()
        turns.append(ms(time.perf_counter() - t0))
    Triage.verify_page = verify_page  # type: ignore[method-assign]
    print(f"  Space, turning a page (9 saved)   : {fmt(turns)}")
    if turns:
        shows = [t - v for t, v in zip(turns, saving)]
        print(f"    of which verifying + saving 9   : {fmt(saving)}")
        print(f"    of which showing the next page  : {fmt(shows)}")
    verified = sum(1 for p in root.glob("*.xml") if 'verified="yes"' in p.read_text(encoding="utf-8"))
    print(f"  verified files written            : {verified}")
    window.close()

    rels = sorted(p.name for p in root.glob("*.jpg"))[:PAGE]
    t0 = time.perf_counter()
    for rel in rels:
        load_image(root / rel)
    naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_image(root / rels[0])
    full_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_thumbnail(root / rels[0], THUMB_SIDE)
    thumb_one = time.perf_counter() - t0
    print(f"  baseline: 9 full decodes on the UI thread: {ms(naive):7.1f} ms")
    print(f"  one decode: full {ms(full_one):.1f} ms, thumbnail ({THUMB_SIDE} px) {ms(thumb_one):.1f} ms")
    med = statistics.median(prefetched)
    print("Ratios:")
    print(f"  cold / prefetched                : {ms(cold) / med:6.1f}x")
    print(f"  prefetched / target ({TARGET_MS:.0f} ms)     : {med / TARGET_MS:6.2f}  "
          f"({'under' if med < TARGET_MS else 'OVER'} the target)")
    print(f"  9 full decodes / prefetched G    : {ms(naive) / med:6.1f}x")
    print(f"  full decode / thumbnail decode   : {full_one / thumb_one:6.1f}x")
    if turns:
        print(f"  page turn per image              : {statistics.median(turns) / PAGE:6.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4, help="pages of nine 12-MP images to make (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="prefetched G repeats (default 5)")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        root = Path(tmp) / "images"
        root.mkdir()
        t0 = time.perf_counter()
        settings = build_folder(root, PAGE * max(args.pages, 2))
        print(f"Grid benchmark: {PAGE * max(args.pages, 2)} synthetic 4000x3000 JPEGs with {BOXES} proposals "
              f"each (made in {time.perf_counter() - t0:.0f} s), window 1400x900, platform {app.platformName()}")
        bench(app, root, settings, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
