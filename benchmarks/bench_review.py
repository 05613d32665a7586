"""Review-window figures: D to the next image painted with its boxes, and opening a huge folder.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_review.py [--images 10] [--files 100000]

1. D (prefetched): 12-MP JPEGs with 100 cached proposals each; the next image has been decoded
   in the background (as it is while the annotator works on the current one). Timed from the
   key press to the viewport painted with the new image and its boxes. Against it, in the same
   run, the synchronous path labelImg takes on every key: decode the same JPEG, set it and its
   boxes on the canvas, paint. Target: D under 50 ms p95.
2. Folder open: 100,000 tiny image files; time until the window lists them (and the first image
   is requested), then how long the background status scan takes and the longest the event loop
   was blocked meanwhile. Target: open under 2 s.
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

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from autolabel_gui.app.project import ProjectSettings  # noqa: E402
from autolabel_gui.core.boxes import Box  # noqa: E402
from autolabel_gui.core.cache import ProposalCache  # noqa: E402
from autolabel_gui.core.images import load_image  # noqa: E402
from autolabel_gui.core.records import ImageKey  # noqa: E402
from autolabel_gui.detection.ids import run_id_for  # noqa: E402
from autolabel_gui.gui.main_window import MainWindow  # noqa: E402
from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui_bench import CLASSES, SIZE, make_boxes, make_jpeg, no_model, wait_until  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def fmt(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"median {statistics.median(ms):6.1f} ms   p95 {percentile(ms, 95):6.1f} ms   (n={len(ms)})"


def bench_next_image(app: QApplication, tmp: Path, count: int) -> None:
    root = tmp / "photos"
    root.mkdir()
    rng = np.random.default_rng(0)
    settings = ProjectSettings(classes=CLASSES)
    run_id = run_id_for(settings.detector_config(), settings.ontology())
    names = [f"img{i:03d}.jpg" for i in range(count)]
    boxes: dict[str, list[Box]] = {}
    print(f"writing {count} JPEGs of {SIZE[0]}x{SIZE[1]} ...", flush=True)
    with ProposalCache.for_folder(root) as cache:
        for name in names:
            make_jpeg(root / name, rng)
            boxes[name] = make_boxes(rng, 100)
            cache.put(ImageKey.from_path(root, name), run_id, boxes[name])
    window = MainWindow(QSettings(str(tmp / "q.ini"), QSettings.Format.IniFormat), detector_factory=no_model)
    window.resize(1400, 900)
    window.show()
    window.open_folder(root, settings)
    c = window.controller
    wait_until(app, lambda: c.image_on_canvas)
    viewport = window.canvas.viewport()

    def press(key: Qt.Key, target: str) -> float:
        wait_until(app, lambda: c.images.get(target) is not None)  # prefetched
        start = time.perf_counter()
        QTest.keyClick(window.canvas, key)
        wait_until(app, lambda: c.current == target and c.image_on_canvas)
        viewport.repaint()
        return time.perf_counter() - start

    times = [press(Qt.Key.Key_D, n) for n in names[1:]]
    times += [press(Qt.Key.Key_A, n) for n in reversed(names[:-1])]
    assert len(window.canvas.boxes()) == 100
    window.close()

    canvas = window.canvas
    plain = []
    for name in names:
        start = time.perf_counter()
        canvas.set_image(load_image(root / name))
        canvas.set_boxes(boxes[name])
        canvas.viewport().repaint()
        plain.append(time.perf_counter() - start)
    print(f"D -> next image painted, 100 boxes, prefetched:  {fmt(times)}")
    print(f"synchronous decode + set + paint (labelImg way): {fmt(plain)}")
    print(f"ratio (median): {statistics.median(plain) / statistics.median(times):.1f}x faster")


def bench_folder_open(app: QApplication, tmp: Path, files: int) -> None:
    root = tmp / "many"
    tiny = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    print(f"writing {files} tiny PNGs ...", flush=True)
    for i in range(files):
        sub = root / f"part{i // 10000:02d}"
        if i % 10000 == 0:
            sub.mkdir(parents=True)
        (sub / f"frame{i:06d}.png").write_bytes(tiny)
    window = MainWindow(QSettings(str(tmp / "q2.ini"), QSettings.Format.IniFormat), detector_factory=no_model)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    start = time.perf_counter()
    window.open_folder(root, ProjectSettings(classes=CLASSES))
    app.processEvents()
    opened = time.perf_counter() - start
    model = window.controller.files
    longest = 0.0
    last = time.perf_counter()
    while model.is_scanning():
        app.processEvents()
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    scanned = time.perf_counter() - start
    rows = window.file_panel.proxy.rowCount()
    window.close()
    print(f"open folder of {rows} images: listed in {opened:.2f} s; statuses all known after {scanned:.2f} s; "
          f"longest event-loop block while scanning {longest * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="12-MP images for the D benchmark")
    parser.add_argument("--files", type=int, default=100_000, help="files for the folder-open benchmark")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="bench_review_") as tmp:
        bench_next_image(app, Path(tmp), args.images)
        bench_folder_open(app, Path(tmp), args.files)
    QTimer.singleShot(0, app.quit)


if __name__ == "__main__":
    main()
