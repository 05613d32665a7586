"""The model half of pre-labelling: decode images and turn batches of them into proposals.

Shared by ``DetectionPipeline`` (the window and ``label`` on one machine, which adds the cache,
prefetching and cancellation around it) and the actors of ``label --ray`` (which have no cache:
the driver commits), so both build the detector, decode, batch, survive a bad image and fall back
after running out of memory in one way, and a folder labelled on a cluster holds what a laptop
would have written.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import (
    Detector,
    DetectorConfig,
    DetectorFactory,
    DetectorUnavailable,
    ImageRefused,
    Prepared,
)
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.compute_path import FUSED_SAMPLING, describe, plan_path, planned
from autolabel_gui.detection.ids import SCORE_FLOOR
from autolabel_gui.detection.image_input import INPUT_SIDES, PREVIEW_SIDES, is_preview, resize_options

log = logging.getLogger(__name__)

Loader = Callable[[Path], np.ndarray]
Decoded = np.ndarray | Prepared | str
"""A decoded image, the same prepared for the model, or why the file cannot be read."""


PREPARED_INPUT_BUDGET = 2**30
"""Bytes the prepared model inputs of one batch and its prefetch (``pipeline``: as many again)
may take: a prepared image is 3 float32 planes (12 bytes a pixel) of up to ``image_size`` x
``max_size`` pixels. Each setting is bounded on its own (``INPUT_SIDES``, the batch size), but a
folder's project.json with batch_size 64 and image_size/max_size 2048 made ``label`` reach
23.6 GB resident (the inputs, 3.2 GB a batch, and the model's activations, which grow with them),
then a global OOM kill; so the batch is lowered until 2 x batch x input bytes fit in 1 GiB: 10 at
2048 x 2048 (by the same proportion, about 3.7 GB in all), 41 at the default 800 x 1333."""
_PREPARED_BYTES_PER_PIXEL = 12
_DEFAULT_SIDES = (800, 1333)
"""Grounding DINO's own input sides (``grounding_dino.DEFAULT_IMAGE_SIZE``/``DEFAULT_MAX_SIZE``),
used when the settings name none (this module does not import the model's)."""


def effective_batch_size(requested: int, extra: dict[str, str]) -> int:
    """``requested`` lowered (never below 1) so that a batch and its prefetch of prepared inputs
    at the largest size ``extra`` allows stay within ``PREPARED_INPUT_BUDGET``. Sides that are not
    valid count as the largest allowed (the model refuses them later anyway)."""
    try:
        size, max_size = resize_options(extra, *_DEFAULT_SIDES)
    except ValueError:
        size = max_size = INPUT_SIDES[1]
    per_image = size * max_size * _PREPARED_BYTES_PER_PIXEL
    return max(1, min(requested, PREPARED_INPUT_BUDGET // (2 * per_image)))


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, the RuntimeError older torch and other backends raise, or the
    CPU allocator's "can't allocate memory" (seen: a batch too big for the machine failed every
    image as a model error instead of halving the batch)."""
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text))


def _free_accelerator_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class BatchDetector:
    """A detector built once on first use, with the rules for decoding and detecting around it.

    ``on_event(kind, message)`` tells the user about the model: kind ``loading``, ``ready``, or
    ``warning`` (a batch size lowered after running out of memory, a switch to the CPU).
    """

    def __init__(
        self,
        config: DetectorConfig,
        ontology: Ontology,
        *,
        factory: DetectorFactory = create_detector,
        batch_size: int | None = None,
        loader: Loader = load_image,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.ontology = ontology
        requested = max(1, batch_size or config.batch_size)
        self.batch_size = effective_batch_size(requested, config.extra)
        if self.batch_size < requested:
            log.warning("batch size %d lowered to %d: %d prepared images of up to %s x %s pixels (and as many "
                        "decoded ahead) would take more than %d GiB", requested, self.batch_size, requested,
                        config.extra.get("image_size", _DEFAULT_SIDES[0]),
                        config.extra.get("max_size", _DEFAULT_SIDES[1]), PREPARED_INPUT_BUDGET >> 30)
        self.detector: Detector | None = None
        self._factory = factory
        self._loader = loader
        self._on_event = on_event or (lambda kind, msg: log.info("%s", msg))

    def ensure_detector(self) -> Detector:
        """Build the detector once; any failure becomes DetectorUnavailable with the reason."""
        if self.detector is None:
            self._on_event("loading", f"loading the model (device {self.config.device})")
            start = time.perf_counter()
            try:
                self.detector = self._factory(self.config)
            except DetectorUnavailable:
                raise
            except Exception as exc:
                raise DetectorUnavailable(f"cannot load the model: {type(exc).__name__}: {exc}") from exc
            why = plan_path(self.config.precision, self.config.device)
            path = describe(getattr(self.detector, "precision", ""), why)
            preview = f", preview size {PREVIEW_SIDES[0]} px: less accurate" if is_preview(self.config.extra) else ""
            self._on_event("ready", f"model ready on {self.detector.device}{path} "
                                    f"in {time.perf_counter() - start:.1f} s{preview}")
        return self.detector

    def decode(self, path: Path) -> Decoded:
        """The image (prepared for the model once it is loaded), or why it cannot be read.

        Images decoded while the model is still loading stay raw; ``detect`` takes both.
        Thread-safe: the pipeline calls it from its decode threads.
        """
        try:
            read = getattr(self.detector, "read_file", None)
            if read is not None:  # a detector that takes the file as it is (a proposal server)
                return read(path)
            image = self._loader(path)
            prepare = getattr(self.detector, "prepare", None)
            return image if prepare is None else prepare(image)
        except Exception as exc:  # a bad file must never stop the run: its reason is reported
            text = str(exc)
            return text if str(path) in text else f"{path}: {text or type(exc).__name__}"

    def detect_decoded(self, decoded: Sequence[Decoded], ontology: Ontology | None = None) -> list[list[Box] | str]:
        """Per item: proposals, or an error text (the decode error, or why the model failed on it).

        ``ontology``: the classes to detect this time (some prompt groups only), else the run's."""
        images = [d for d in decoded if not isinstance(d, str)]
        outputs = iter(self.detect(images, ontology) if images else [])
        del images
        return [d if isinstance(d, str) else next(outputs) for d in decoded]

    def detect(self, images: list[np.ndarray | Prepared], ontology: Ontology | None = None) -> list[list[Box] | str]:
        """Per image: proposals, or an error text; one bad image never fails its batch-mates."""
        detector = self.ensure_detector()
        try:
            return list(self._forward(images, ontology or self.ontology))
        except DetectorUnavailable:
            raise  # the model itself is gone (a server that stopped answering): no image failed
        except Exception as exc:
            if len(images) > 1:
                return [self.detect([image], ontology)[0] for image in images]
            if isinstance(exc, ImageRefused):
                return [str(exc)]
            log.warning("detector failed", exc_info=True)
            name = getattr(detector, "model_id", type(detector).__name__)
            return [f"detector {name} failed: {type(exc).__name__}: {exc}"]

    def _forward(self, images: Sequence[np.ndarray | Prepared], ontology: Ontology) -> list[list[Box]]:
        """Run the model in chunks; on out-of-memory halve the batch, then fall back to the CPU."""
        out: list[list[Box]] = []
        i = 0
        while i < len(images):
            chunk = images[i:i + self.batch_size]
            try:
                boxes = self.ensure_detector().detect(chunk, ontology, SCORE_FLOOR)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _free_accelerator_memory()
                if len(chunk) > 1:
                    self.batch_size = max(1, len(chunk) // 2)
                    self._on_event("warning", f"out of memory: batch size lowered to {self.batch_size}")
                    continue
                if self.detector is not None and not str(self.detector.device).startswith("cpu"):
                    self._switch_to_cpu()
                    continue
                raise
            if len(boxes) != len(chunk):
                raise RuntimeError(f"detector returned {len(boxes)} results for {len(chunk)} images")
            out.extend(boxes)
            i += len(chunk)
        return out

    def _switch_to_cpu(self) -> None:
        """Slower but alive; the run id stays: same weights and prompts, same proposals."""
        assert self.detector is not None
        self._on_event("warning", f"out of memory on {self.detector.device} even with one image: running on the CPU")
        self.detector = None
        _free_accelerator_memory()
        # a fused-sampling path stays itself (its id names the same arithmetic on any device)
        path = planned(self.config.precision, self.config.device)
        self.config = replace(self.config, device="cpu", precision=path if path in FUSED_SAMPLING else "fp32")
        self.ensure_detector()
