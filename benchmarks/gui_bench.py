"""What the window benchmarks share: a no-model factory, synthetic 12-MP photos and proposals,
and waiting on the event loop. Not a benchmark itself (no ``bench_`` prefix)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.detection.base import DetectorUnavailable
from PySide6.QtWidgets import QApplication

CLASSES = ["person", "cat", "cup", "vehicle"]
SIZE = (4000, 3000)  # 12 MP


def no_model(_config):
    raise DetectorUnavailable("benchmark: no model")


def make_jpeg(path: Path, rng: np.random.Generator, size: tuple[int, int] = SIZE) -> None:
    """A JPEG of ``size`` with gradients and noise tiles, so it costs what a photo costs to decode."""
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    tile = rng.integers(0, 255, (500, 500), dtype=np.uint8)
    image[..., 2] = np.tile(tile, (-(-height // 500), -(-width // 500)))[:height, :width]
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def make_boxes(rng: np.random.Generator, count: int, size: tuple[int, int] = SIZE) -> list[Box]:
    """``count`` proposals of the four classes, scores above the default threshold."""
    boxes = []
    for i in range(count):
        w, h = rng.uniform(40, min(600, size[0] / 2), 2)
        x0, y0 = rng.uniform(0, size[0] - w), rng.uniform(0, size[1] - h)
        boxes.append(Box(x0, y0, x0 + w, y0 + h, CLASSES[i % 4], float(rng.uniform(0.36, 0.95)), BoxState.PROPOSED))
    return boxes


def wait_until(app: QApplication, condition, timeout: float = 30.0) -> None:
    """Run the event loop until ``condition()``; TimeoutError after ``timeout`` seconds."""
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("benchmark condition not reached")
        app.processEvents()
        time.sleep(0.0005)
