"""Torch helpers every torch backend shares: device and precision choice, autocast, final boxes,
and ``TorchDetector``, the detect loop around a backend's forward.

One place for "which device does auto mean", "fp16 on a CPU is an error", "one forward per input
shape" and "model outputs -> pixel boxes with per-class NMS", so two backends cannot drift apart
in what they return.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable, Prepared
from autolabel_gui.detection.class_scoring import NMS_IOU, PromptChunk, assign_classes, merge_duplicates
from autolabel_gui.detection.compute_path import GPU_AUTO, INT8, PRECISIONS, planned
from autolabel_gui.detection.image_input import check_image


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
    if dev.type == "cuda" and dev.index is not None and dev.index >= (count := torch.cuda.device_count()):
        raise DetectorUnavailable(f"device {device!r} asked for, but this machine has {count} CUDA device(s) "
                                  f"(cuda:0 to cuda:{count - 1})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DetectorUnavailable(f"device {device!r} asked for, but MPS is not available here; use --device cpu")
    return device


def resolve_precision(precision: str, planned_device: str, device: str) -> str:
    """The path a detector runs: ``compute_path.planned`` (what the run id names, from the device
    as asked), then the legacy ``auto`` = fp16 on CUDA, fp32 elsewhere."""
    kind = torch.device(device).type
    precision = planned(precision, planned_device)
    if precision == GPU_AUTO:
        return "fp16" if kind == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise DetectorUnavailable(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "fp16" and kind == "cpu":
        raise DetectorUnavailable("fp16 needs a GPU; on the CPU use --precision fast (or bf16, int8)")
    if precision == INT8 and kind != "cpu":
        raise DetectorUnavailable(f"int8 runs on the CPU only (its quantised layers have no {kind} kernels); "
                                  "use --device cpu, or --precision fp16 or bf16 on the GPU")
    return precision


def apply_path(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The model as ``precision`` runs it: every ``nn.Linear`` quantised to int8 (weights int8
    per channel, activations quantised per batch) on the int8 path, else the model unchanged."""
    if precision != INT8:
        return model
    import torch.ao.quantization as quantization

    with warnings.catch_warnings():  # torch announces the API's move to torchao; it still runs here
        warnings.simplefilter("ignore")
        return quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


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


def add_candidates(out: list[Candidates], probs: torch.Tensor, boxes: torch.Tensor, chunk: PromptChunk,
                   floor: float) -> None:
    """One prompt chunk's outputs for a batch (B, queries, tokens) and (B, queries, 4): each
    image's queries that score a class of the chunk at ``floor`` or above, added to ``out``."""
    for b, candidates in enumerate(out):
        picked = assign_classes(probs[b], chunk.spans, chunk.class_ids, floor, floor)
        candidates.boxes.append(boxes[b, picked.queries])
        candidates.scores.append(picked.scores)
        candidates.class_ids.append(picked.class_ids)


class TorchDetector:
    """What both torch backends share behind the ``Detector`` protocol: input checks, one forward
    per input shape (padding would change an image's boxes, ADR 0010) and final boxes.

    A backend sets the attributes below in ``__init__`` and gives ``prepare``, ``_text`` (its
    encoded prompt chunks) and ``_detect_group`` (one forward for images of one shape).
    """

    _backend: str  # the backend's name, which its ``Prepared.spec`` carries
    _config: DetectorConfig
    _device: str
    _precision: str
    _resize: tuple[int, int]
    _model: torch.nn.Module
    _model_id: str

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def device(self) -> str:
        return self._device

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def model(self) -> torch.nn.Module:
        """The backend's torch module, for diagnostics, tests and benchmarks."""
        return self._model

    @property
    def input_size(self) -> tuple[int, int]:
        """(shorter side, longer-side cap) images are resized to before the model sees them."""
        return self._resize

    def prepare(self, image: np.ndarray) -> Prepared:
        raise NotImplementedError

    def detect(
        self, images: Sequence[np.ndarray | Prepared], ontology: Ontology, score_floor: float
    ) -> list[list[Box]]:
        """Per image, PROPOSED boxes labelled with ontology classes, score >= max(floor, text_threshold).

        ``images`` may mix raw RGB arrays and ``prepare`` results; outputs are the same either way.
        """
        for i, image in enumerate(images):
            self._check_input(i, image)
        if not images or len(ontology) == 0:
            return [[] for _ in images]
        floor = max(float(score_floor), float(self._config.text_threshold))
        inputs = [img if isinstance(img, Prepared) else self.prepare(img) for img in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, p in enumerate(inputs):
            groups[tuple(p.data.shape)].append(i)
        results: list[list[Box]] = [[] for _ in images]
        with torch.inference_mode(), autocast(self._device, self._precision), self._arithmetic():
            text = self._text(ontology)
            for indices in groups.values():
                candidates = self._detect_group([inputs[i].data for i in indices], text, floor)
                for pos, i in enumerate(indices):
                    results[i] = to_boxes(candidates[pos], inputs[i].height, inputs[i].width, ontology)
        return results

    def _arithmetic(self) -> contextlib.AbstractContextManager:
        """A context the forward passes run in, beyond autocast (none by default)."""
        return contextlib.nullcontext()

    def _text(self, ontology: Ontology) -> Any:
        raise NotImplementedError

    def _detect_group(self, tensors: list[torch.Tensor], text: Any, floor: float) -> list[Candidates]:
        raise NotImplementedError

    def _check_input(self, index: int, image: np.ndarray | Prepared) -> None:
        if not isinstance(image, Prepared):
            check_image(f"image #{index}", image)
        elif image.spec != (self._backend, self._resize):
            raise ValueError(f"image #{index}: prepared as {image.spec}, but this detector takes "
                             f"{self._backend} input of size {self._resize}")
