"""Accuracy of a detector on held-out generated scenes: COCO AP and AP50, and precision/recall at
the window's box threshold.

Detection goes through the product's detector end to end (resize, normalise, captions and class
spans, box conversion back to pixels, per-class NMS, threshold), scoring every proposal above a
low floor so AP sees the whole ranking. AP is pycocotools' (COCOeval, 101-point, maxDets 100).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from benchmarks.instrument.scenes import Scene, make_scenes

SCORE_FLOOR = 0.01
WINDOW_THRESHOLD = 0.35


def coco_ap(scenes: Sequence[Scene], detections: Sequence[Sequence], classes: Sequence[str]) -> dict[str, float]:
    """{"AP": AP@[.5:.95], "AP50": AP@.5} of ``detections`` (per scene, objects with x0..y1, label, score)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cat = {name: i + 1 for i, name in enumerate(classes)}
    images, annotations, results = [], [], []
    for img_id, (scene, boxes) in enumerate(zip(scenes, detections), 1):
        height, width = scene.image.shape[:2]
        images.append({"id": img_id, "width": width, "height": height})
        for (x0, y0, x1, y1), label in zip(scene.boxes, scene.labels):
            annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": cat[label],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
        for b in boxes:
            results.append({"image_id": img_id, "category_id": cat[b.label], "score": float(b.score),
                            "bbox": [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0]})
    if not results:
        return {"AP": 0.0, "AP50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": i, "name": n} for n, i in cat.items()]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": float(max(0.0, ev.stats[0])), "AP50": float(max(0.0, ev.stats[1]))}


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def precision_recall(scenes: Sequence[Scene], detections: Sequence[Sequence],
                     threshold: float = WINDOW_THRESHOLD, iou: float = 0.5) -> tuple[float, float]:
    """What a user sees at ``threshold``: share of shown boxes that are right, share of objects shown."""
    shown = right = objects = 0
    for scene, boxes in zip(scenes, detections):
        kept = sorted((b for b in boxes if b.score >= threshold), key=lambda b: -b.score)
        free = list(zip(scene.boxes, scene.labels))
        objects += len(free)
        shown += len(kept)
        for b in kept:
            hit = max((g for g in free if g[1] == b.label), key=lambda g: _iou(g[0], (b.x0, b.y0, b.x1, b.y1)),
                      default=None)
            if hit is not None and _iou(hit[0], (b.x0, b.y0, b.x1, b.y1)) >= iou:
                free.remove(hit)
                right += 1
    return (right / shown if shown else 1.0), (right / objects if objects else 1.0)


def held_out(spec, count: int) -> list[Scene]:
    from benchmarks.instrument.train import HELD_OUT_FIRST

    return make_scenes(spec.scenes, HELD_OUT_FIRST, count)


def detect_all(detector, scenes: Sequence[Scene], classes: Sequence[str], images: Sequence[np.ndarray] | None = None):
    from autolabel_gui.core.ontology import Ontology

    ontology = Ontology.from_names(list(classes))
    return [detector.detect([img], ontology, SCORE_FLOOR)[0] for img in (images or [s.image for s in scenes])]


def evaluate(inst, count: int = 100, detector=None, precision: str = "fp32") -> dict[str, float]:
    """AP, AP50, precision and recall at 0.35 of ``inst`` (the product detector at ``precision`` unless given)."""
    scenes = held_out(inst.spec, count)
    detector = detector or inst.detector(text_threshold=SCORE_FLOOR, precision=precision)
    found = detect_all(detector, scenes, inst.classes)
    precision, recall = precision_recall(scenes, found)
    return {**coco_ap(scenes, found, inst.classes), "precision": precision, "recall": recall}
