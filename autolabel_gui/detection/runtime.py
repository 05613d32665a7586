"""Torch helpers every torch backend shares: device and precision choice, autocast, final boxes.

One place for "which device does auto mean", "fp16 on a CPU is an error" and "model outputs ->
pixel boxes with per-class NMS", so two backends cannot drift apart in what they return.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import torch

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.class_scoring import NMS_IOU, merge_duplicates
from autolabel_gui.detection.compute_path import GPU_AUTO, PRECISIONS, planned

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` = cuda, then mps, then cpu; anything else must be usable here."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise DetectorUnavailable(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DetectorUnavailable(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DetectorUnavailable(f"device {device!r} asked for, but MPS is not available here; use --device cpu")
    return device


def resolve_precision(precision: str, planned_device: str, device: str) -> str:
    """The path a detector runs: ``compute_path.planned`` (what the run id names, from the device
    as asked), then the legacy ``auto`` = fp16 on CUDA, fp32 elsewhere. bf16 on CPU is opt-in."""
    kind = torch.device(device).type
    precision = planned(precision, planned_device)
    if precision == GPU_AUTO:
        return "fp16" if kind == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise DetectorUnavailable(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "fp16" and kind == "cpu":
        raise DetectorUnavailable("fp16 needs a GPU; on the CPU use --precision fp32 (or bf16, experimental)")
    if precision == "bf16" and kind == "cpu":
        log.warning("bf16 on the CPU is experimental: scores can differ slightly from fp32")
    return precision


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (none for fp32 and the fp32 fast path)."""
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    if precision in dtypes:
        return torch.autocast(device_type=torch.device(device).type, dtype=dtypes[precision])
    return contextlib.nullcontext()


@dataclass(slots=True)
class Candidates:
    """One image's class-scored boxes (normalised cxcywh) from all prompt chunks, before NMS."""

    boxes: list[torch.Tensor] = field(default_factory=list)
    scores: list[torch.Tensor] = field(default_factory=list)
    class_ids: list[torch.Tensor] = field(default_factory=list)


def to_boxes(candidates: Candidates, height: int, width: int, ontology: Ontology) -> list[Box]:
    """Normalised cxcywh -> pixel boxes of the original image, duplicates merged per class."""
    if not candidates.boxes:
        return []
    cxcywh = torch.cat(candidates.boxes)
    scores = torch.cat(candidates.scores)
    class_ids = torch.cat(candidates.class_ids)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    xyxy = torch.cat([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], dim=1) * scale
    xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, width)
    xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, height)
    usable = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    xyxy, scores, class_ids = xyxy[usable], scores[usable], class_ids[usable]
    keep = merge_duplicates(xyxy, scores, class_ids, NMS_IOU)
    names = ontology.names
    boxes = []
    for k in keep.tolist():
        x0, y0, x1, y1 = (float(v) for v in xyxy[k].tolist())
        boxes.append(Box(x0, y0, x1, y1, label=names[int(class_ids[k])], score=float(scores[k]),
                         state=BoxState.PROPOSED))
    return boxes
