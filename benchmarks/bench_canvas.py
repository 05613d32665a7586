"""Canvas frame times: dragging one box among 1,000 on a 12-MP image, against the naive
redraw-everything drag in the same run; set_boxes for 100 boxes; the image drawn from the
pyramid against a plain QGraphicsPixmapItem; optionally a 20000x15000 image (--huge).

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_canvas.py [--huge]

Frame = one simulated mouse move sent to the viewport + a forced repaint of the viewport
(``viewport().repaint()``, the whole viewport: the worst case). "Partial" frames instead let
Qt repaint only the dirty region, as it does on screen. Target: under 16 ms a frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from autolabel_gui.core.boxes import Box, BoxState  # noqa: E402
from autolabel_gui.gui.canvas import Canvas  # noqa: E402
from autolabel_gui.gui.colors import class_colors  # noqa: E402
from PySide6.QtCore import QEvent, QObject, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView  # noqa: E402

CLASSES = ["person", "cat", "cup", "vehicle", "dog"]
VIEW_SIZE = (1280, 800)


def make_image(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A textured image (gradients plus noise) so drawing does real work."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = (np.arange(width, dtype=np.uint32) * 255 // max(width - 1, 1)).astype(np.uint8)[None, :]
    image[..., 1] = (np.arange(height, dtype=np.uint32) * 255 // max(height - 1, 1)).astype(np.uint8)[:, None]
    tile = rng.integers(0, 255, size=(min(height, 512), min(width, 512)), dtype=np.uint8)
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]))
    image[..., 2] = np.tile(tile, reps)[:height, :width]
    return image


def make_boxes(count: int, width: int, height: int, rng: np.random.Generator) -> list[Box]:
    boxes = []
    for i in range(count):
        w, h = rng.uniform(20, 300, size=2)
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        state = BoxState.PROPOSED if i % 2 else BoxState.ACCEPTED
        score = round(float(rng.uniform(0.3, 1)), 2)
        boxes.append(Box(x0, y0, x0 + w, y0 + h, CLASSES[i % len(CLASSES)], score, state))
    return boxes


class PaintCounter(QObject):
    """Counts paint events of the viewport, to wait for Qt's own (partial) repaint."""

    def __init__(self, target) -> None:
        super().__init__()
        self.count = 0
        target.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def mouse(canvas: Canvas, kind: QEvent.Type, pos: QPointF) -> None:
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, pos, canvas.viewport().mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas.viewport(), event)


def stats(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def box_centre(canvas: Canvas, box: Box) -> QPointF:
    return canvas.viewportTransform().map(QPointF((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2))


def drag_frames(canvas: Canvas, index: int, frames: int, partial: bool) -> list[float]:
    """Drag box ``index`` with the mouse; time each move plus its repaint."""
    app = QApplication.instance()
    counter = PaintCounter(canvas.viewport())
    start = box_centre(canvas, canvas.boxes()[index])
    mouse(canvas, QEvent.Type.MouseButtonPress, start)
    app.processEvents()
    times = []
    for i in range(1, frames + 1):
        pos = start + QPointF(3 * (i % 40), 2 * (i % 30))
        t0 = time.perf_counter()
        mouse(canvas, QEvent.Type.MouseMove, pos)
        if partial:
            seen = counter.count
            while counter.count == seen:
                app.processEvents()
        else:
            canvas.viewport().repaint()
        times.append(time.perf_counter() - t0)
    mouse(canvas, QEvent.Type.MouseButtonRelease, pos)
    app.processEvents()
    return times


def naive_drag_frames(canvas: Canvas, index: int, frames: int) -> list[float]:
    """What a naive canvas does: every mouse move rebuilds all boxes, then repaints."""
    boxes = canvas.boxes()
    width, height = canvas.image_size()
    start = boxes[index]
    times = []
    for i in range(1, frames + 1):
        t0 = time.perf_counter()
        scale = canvas.scale_factor()
        boxes[index] = start.moved(3 * (i % 40) / scale, 2 * (i % 30) / scale, width, height)
        canvas.set_boxes(boxes, selected=index)
        canvas.viewport().repaint()
        times.append(time.perf_counter() - t0)
    return times


def full_repaints(view: QGraphicsView, frames: int) -> list[float]:
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        view.viewport().repaint()
        times.append(time.perf_counter() - t0)
    return times


def new_canvas() -> Canvas:
    canvas = Canvas()
    canvas.resize(*VIEW_SIZE)
    canvas.show()
    canvas.set_class_colors(class_colors(CLASSES))
    QApplication.processEvents()
    return canvas


def bench_drag(image: np.ndarray, boxes: list[Box], frames: int) -> None:
    canvas = new_canvas()
    canvas.set_image(image)
    canvas.set_boxes(boxes)
    QApplication.processEvents()
    index = min(range(len(boxes)), key=lambda i: boxes[i].area)  # a small box: the typical edit
    for label, zoom in (("fit", 1.0), ("zoom 100%", 1.0 / canvas.scale_factor())):
        canvas.fit()
        canvas.zoom_by(zoom)
        canvas.centerOn(QPointF((boxes[index].x0 + boxes[index].x1) / 2, (boxes[index].y0 + boxes[index].y1) / 2))
        canvas.set_boxes(boxes)
        QApplication.processEvents()
        print(f"  [{label}, scale {canvas.scale_factor():.3f}]")
        print(f"    drag, forced full repaint  : {stats(drag_frames(canvas, index, frames, partial=False))}")
        canvas.set_boxes(boxes)
        print(f"    drag, Qt partial repaint   : {stats(drag_frames(canvas, index, frames, partial=True))}")
        canvas.set_boxes(boxes)
        naive = naive_drag_frames(canvas, index, max(frames // 4, 10))
        print(f"    baseline: set_boxes per move: {stats(naive)}")
    canvas.close()


def bench_set_boxes(image: np.ndarray, boxes: list[Box], runs: int) -> None:
    canvas = new_canvas()
    canvas.set_image(image)
    QApplication.processEvents()
    call, with_paint = [], []
    for _ in range(runs):
        canvas.set_boxes([])
        t0 = time.perf_counter()
        canvas.set_boxes(boxes[:100], selected=0)
        t1 = time.perf_counter()
        canvas.viewport().repaint()
        t2 = time.perf_counter()
        call.append(t1 - t0)
        with_paint.append(t2 - t0)
    print(f"  set_boxes(100)              : {stats(call)}")
    print(f"  set_boxes(100) + repaint    : {stats(with_paint)}")
    canvas.close()


def bench_image_drawing(image: np.ndarray, frames: int) -> None:
    """Full repaints at fit: the pyramid item against a QGraphicsPixmapItem."""
    canvas = new_canvas()
    canvas.set_image(image)
    QApplication.processEvents()
    print(f"  pyramid ImageItem at fit    : {stats(full_repaints(canvas, frames))}")
    canvas.close()

    scene = QGraphicsScene()
    height, width = image.shape[:2]
    pixmap = QPixmap.fromImage(QImage(image.data, width, height, image.strides[0], QImage.Format.Format_RGB888))
    item = QGraphicsPixmapItem(pixmap)
    item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
    scene.addItem(item)
    view = QGraphicsView(scene)
    view.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    view.resize(*VIEW_SIZE)
    view.show()
    view.fitInView(scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
    QApplication.processEvents()
    print(f"  baseline: QGraphicsPixmapItem: {stats(full_repaints(view, frames))}")
    view.close()


def bench_huge(rng: np.random.Generator, frames: int) -> None:
    image = make_image(20000, 15000, rng)
    boxes = make_boxes(1000, 20000, 15000, rng)
    canvas = new_canvas()
    t0 = time.perf_counter()
    canvas.set_image(image)
    canvas.set_boxes(boxes)
    canvas.viewport().repaint()
    print(f"  set_image + 1000 boxes + first paint: {(time.perf_counter() - t0) * 1000:.0f} ms (builds the pyramid)")
    print(f"  full repaint at fit         : {stats(full_repaints(canvas, frames))}")
    canvas.zoom_by(1.0 / canvas.scale_factor())
    print(f"  full repaint at 100%        : {stats(full_repaints(canvas, frames))}")
    index = min(range(len(boxes)), key=lambda i: boxes[i].area)
    canvas.centerOn(QPointF(boxes[index].x0, boxes[index].y0))
    print(f"  drag at 100%, full repaint  : {stats(drag_frames(canvas, index, frames, partial=False))}")
    canvas.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--huge", action="store_true", help="also a 20000x15000 image (~1.3 GB of memory)")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    image = make_image(4000, 3000, rng)
    boxes = make_boxes(1000, 4000, 3000, rng)
    print(f"Canvas benchmark, viewport {VIEW_SIZE[0]}x{VIEW_SIZE[1]}, platform {app.platformName()}")
    print("12 MP image (4000x3000), 1000 boxes, dragging one box:")
    bench_drag(image, boxes, args.frames)
    print("12 MP image, set_boxes with 100 boxes:")
    bench_set_boxes(image, boxes, 30)
    print("12 MP image drawing, full viewport repaint at fit:")
    bench_image_drawing(image, 30)
    if args.huge:
        print("20000x15000 image (300 MP), 1000 boxes:")
        bench_huge(rng, 30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
