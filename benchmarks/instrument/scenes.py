"""Deterministic synthetic scenes with exact ground truth: the instrument's training and test data.

A scene is a textured background, clutter (thin strokes, speckle noise) and one to several
filled shapes of a few classes in random colours, sizes and rotations. Each shape is drawn on a
mask of its own first, so its box is the exact bounding box of its own pixels (``mask.getbbox``);
shapes overlap each other little (rejection by overlap), so no box is mostly hidden.

Everything comes from ``numpy.random.default_rng(seed)``: scene ``i`` of a set is the same on
every machine and run, which is what lets a cached model and a held-out set be named by a hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star", "cross")


@dataclass(frozen=True)
class SceneSpec:
    """What a set of scenes looks like; part of the instrument's cache key."""

    size: int = 128
    min_objects: int = 1
    max_objects: int = 4
    min_side: int = 16
    max_side: int = 64
    strokes: int = 6
    max_overlap: float = 0.15  # of the smaller box's area
    classes: tuple[str, ...] = CLASSES


@dataclass(frozen=True)
class Scene:
    """One image and its ground truth: pixel boxes (x0, y0, x1, y1), exclusive ends, class names,
    and each shape's fill colour (what a test can find its pixels by)."""

    image: np.ndarray
    boxes: list[tuple[int, int, int, int]]
    labels: list[str]
    colours: list[tuple[int, int, int]]


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape of outer radius ``r`` centred at (cx, cy), rotated by ``angle``."""
    if kind == "square":
        radii, count = [r], 4
    elif kind == "triangle":
        radii, count = [r], 3
    elif kind == "star":
        radii, count = [r, r * 0.42], 10
    elif kind == "cross":
        t = r * 0.36  # half the arm's width
        arm = [(t, r), (t, t), (r, t), (r, -t), (t, -t), (t, -r),
               (-t, -r), (-t, -t), (-r, -t), (-r, t), (-t, t), (-t, r)]
        cos, sin = math.cos(angle), math.sin(angle)
        return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in arm]
    else:
        raise ValueError(kind)
    step = 2 * math.pi / count
    radius = [radii[i % len(radii)] for i in range(count)]
    return [(cx + radius[i] * math.cos(angle + i * step), cy + radius[i] * math.sin(angle + i * step))
            for i in range(count)]


def _colour(rng: np.random.Generator, light: tuple[int, int]) -> tuple[int, int, int]:
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.45, 1.0)
    val = rng.uniform(*light) / 255
    rgb = Image.new("HSV", (1, 1), (int(hue * 255), int(sat * 255), int(val * 255))).convert("RGB").getpixel((0, 0))
    return tuple(int(c) for c in rgb)  # type: ignore[return-value]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A smooth colour gradient with low-frequency blotches and fine noise (a 'texture')."""
    base = np.array(_colour(rng, (60, 200)), np.float32)
    other = np.array(_colour(rng, (60, 200)), np.float32)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    t = ramp[None, :] if rng.uniform() < 0.5 else ramp[:, None]
    img = base * (1 - t[..., None]) + other * t[..., None]
    coarse = rng.normal(0, 25, (8, 8, 3)).astype(np.float32)
    blotches = np.asarray(Image.fromarray(coarse[..., 0]).resize((size, size), Image.BILINEAR))
    img = img + blotches[..., None] + rng.normal(0, 8, (size, size, 3)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box: how much of either could be hidden by the other."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller else 1.0


def _clutter(rng: np.random.Generator, image: Image.Image, count: int) -> None:
    """Thin strokes and arcs: edges and colours everywhere, but no filled shape."""
    draw = ImageDraw.Draw(image)
    size = image.width
    for _ in range(count):
        colour = _colour(rng, (20, 255))
        width = int(rng.integers(1, 4))
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(-0.1 * size, 1.1 * size, 4))
        if rng.uniform() < 0.5:
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=width)
        else:
            box = [min(x0, x1), min(y0, y1), max(x0, x1) + 4, max(y0, y1) + 4]
            draw.arc(box, float(rng.uniform(0, 360)), float(rng.uniform(0, 360)), fill=colour, width=width)


def make_scene(spec: SceneSpec, seed: int) -> Scene:
    """Scene number ``seed``: the same pixels and boxes every time."""
    rng = np.random.default_rng(seed)
    size = spec.size
    image = _background(rng, size)
    _clutter(rng, image, int(rng.integers(0, spec.strokes + 1)))
    wanted = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    boxes: list[tuple[int, int, int, int]] = []
    labels: list[str] = []
    colours: list[tuple[int, int, int]] = []
    for _ in range(wanted * 10):
        if len(boxes) == wanted:
            break
        kind = spec.classes[int(rng.integers(len(spec.classes)))]
        side = float(rng.uniform(spec.min_side, spec.max_side))
        cx, cy = (float(v) for v in rng.uniform(side / 2, size - side / 2, 2))
        mask = Image.new("L", (size, size), 0)
        mdraw = ImageDraw.Draw(mask)
        if kind == "circle":
            mdraw.ellipse([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], fill=255)
        else:
            mdraw.polygon(_polygon(kind, cx, cy, side / 2, float(rng.uniform(0, 2 * math.pi))), fill=255)
        box = mask.getbbox()
        if box is None or any(_overlap(box, b) > spec.max_overlap for b in boxes):
            continue
        colour = _colour(rng, (30, 255))
        image.paste(Image.new("RGB", (size, size), colour), (0, 0), mask)
        boxes.append(box)
        labels.append(kind)
        colours.append(colour)
    return Scene(np.asarray(image).copy(), boxes, labels, colours)


def make_scenes(spec: SceneSpec, first: int, count: int) -> list[Scene]:
    """Scenes ``first`` .. ``first + count - 1`` (training and held-out sets use disjoint ranges)."""
    return [make_scene(spec, first + i) for i in range(count)]
