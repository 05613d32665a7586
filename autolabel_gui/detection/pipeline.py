"""One code path from image paths to cached proposals, for the window's worker and ``label``.

Images are decoded, and made into model input when the detector can do that ahead of time
(``PreparingDetector.prepare``), by a small thread pool while the model runs on the previous
batch; but never more than ``batch_size + prefetch`` images, raw or prepared, exist at once,
however large the folder: the iterable of paths is pulled lazily, which also lets the window
re-prioritise between batches.
Every finished image is committed to the cache before its result is handed out, so an
interrupted run resumes where it stopped and a cached image never meets the model again.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.base import (
    Detector,
    DetectorConfig,
    DetectorFactory,
    DetectorUnavailable,
    Prepared,
    create_detector,
)
from autolabel_gui.detection.ids import SCORE_FLOOR, run_id_for

log = logging.getLogger(__name__)

Loader = Callable[[Path], np.ndarray]


class FolderLike(Protocol):
    """What the pipeline needs of ``core.folder.ImageFolder``."""

    root: Path

    def image_path(self, rel: str) -> Path: ...


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """Proposals (at the score floor) for one image, or why there are none."""

    relpath: str
    boxes: list[Box] | None = None
    error: str | None = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class _Pending:
    rel: str
    key: ImageKey
    image: Future | None


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, or the RuntimeError older torch and other backends raise."""
    return type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _free_accelerator_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class DetectionPipeline:
    """Cache lookups, prefetching, batching, OOM fallback and cancellation around a Detector.

    The detector is built by ``factory(config)`` on the first image that is not cached, so a
    fully cached folder never loads the model. ``on_event(kind, message)`` tells the user about
    the model: kind ``loading``, ``ready``, or ``warning`` (a batch size lowered after running out
    of memory, a switch to the CPU; the model still works).
    """

    def __init__(
        self,
        folder: FolderLike,
        cache: ProposalCache,
        config: DetectorConfig,
        ontology: Ontology,
        *,
        factory: DetectorFactory = create_detector,
        batch_size: int | None = None,
        prefetch: int | None = None,
        loader: Loader = load_image,
        decode_threads: int = 2,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.folder = folder
        self.cache = cache
        self.config = config
        self.ontology = ontology
        self.run_id = run_id_for(config, ontology)
        self.batch_size = max(1, batch_size or config.batch_size)
        self.prefetch = self.batch_size if prefetch is None else max(0, prefetch)
        self._factory = factory
        self._loader = loader
        self._decode_threads = max(1, decode_threads)
        self._on_event = on_event or (lambda kind, msg: log.info("%s", msg))
        self.detector: Detector | None = None

    # -- model -------------------------------------------------------------------------------

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
            self._on_event("ready", f"model ready on {self.detector.device} in {time.perf_counter() - start:.1f} s")
        return self.detector

    # -- cache only --------------------------------------------------------------------------

    def lookup(self, rel: str) -> list[Box] | None:
        """Cached proposals for the image as it is on disk now, without the model."""
        try:
            key = ImageKey.from_path(self.folder.root, rel)
        except OSError:
            return None
        return self.cache.get(key, self.run_id)

    # -- the run -----------------------------------------------------------------------------

    def run(self, relpaths: Iterable[str],
            cancel: threading.Event | None = None) -> Generator[DetectionResult, None, None]:
        """Yield one result per path; cache hits at once, the rest batch by batch, in order.

        ``relpaths`` is pulled only as prefetch slots free up. Setting ``cancel`` stops the run
        after the batch in flight (its results are still cached). Raises DetectorUnavailable
        when an image needs the model and the model cannot be built.
        """
        cancel = cancel or threading.Event()
        source = iter(relpaths)
        pending: deque[_Pending] = deque()
        pool = ThreadPoolExecutor(max_workers=self._decode_threads, thread_name_prefix="autolabel-decode")
        exhausted = False
        try:
            while not cancel.is_set():
                while not exhausted and not cancel.is_set() and len(pending) < self.batch_size + self.prefetch:
                    rel = next(source, None)
                    if rel is None:
                        exhausted = True
                        break
                    try:
                        key = ImageKey.from_path(self.folder.root, rel)
                    except OSError as exc:
                        yield DetectionResult(rel, error=f"{self.folder.image_path(rel)}: {exc.strerror or exc}")
                        continue
                    boxes = self.cache.get(key, self.run_id)
                    if boxes is not None:
                        yield DetectionResult(rel, boxes, from_cache=True)
                        continue
                    pending.append(_Pending(rel, key, pool.submit(self._decode, rel)))
                if not pending or cancel.is_set():
                    break
                batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                yield from self._process(batch)
        finally:
            for p in pending:
                if p.image is not None:
                    p.image.cancel()
            pending.clear()
            pool.shutdown(wait=True, cancel_futures=True)

    def _decode(self, rel: str) -> np.ndarray | Prepared | str:
        """The image (prepared for the model once it is loaded), or why it cannot be read.

        Images decoded while the model is still loading stay raw; ``detect`` takes both.
        """
        path = self.folder.image_path(rel)
        try:
            image = self._loader(path)
            prepare = getattr(self.detector, "prepare", None)
            return image if prepare is None else prepare(image)
        except Exception as exc:  # a bad file must never stop the run: its reason is reported
            text = str(exc)
            return text if str(path) in text else f"{path}: {text or type(exc).__name__}"

    def _process(self, batch: list[_Pending]) -> Iterator[DetectionResult]:
        """Detect one batch, commit it to the cache, then hand the results out in batch order."""
        decoded: list[np.ndarray | Prepared | str] = []
        for p in batch:
            assert p.image is not None, "run() queues each image once; only this call collects it"
            decoded.append(p.image.result())
            p.image = None  # only ``decoded`` holds the images, and only until this call ends
        images = [d for d in decoded if not isinstance(d, str)]
        outputs = iter(self._detect(images) if images else [])
        del images
        results: list[DetectionResult] = []
        for p, d in zip(batch, decoded):
            out = d if isinstance(d, str) else next(outputs)
            if isinstance(out, str):
                results.append(DetectionResult(p.rel, error=out))
            else:
                self.cache.put(p.key, self.run_id, out)
                results.append(DetectionResult(p.rel, out))
        del decoded
        yield from results

    def _detect(self, images: list[np.ndarray | Prepared]) -> list[list[Box] | str]:
        """Per image: proposals, or an error text; one bad image never fails its batch-mates."""
        detector = self.ensure_detector()
        try:
            return list(self._forward(images))
        except Exception as exc:
            if len(images) > 1:
                return [self._detect([image])[0] for image in images]
            log.warning("detector failed", exc_info=True)
            name = getattr(detector, "model_id", type(detector).__name__)
            return [f"detector {name} failed: {type(exc).__name__}: {exc}"]

    def _forward(self, images: Sequence[np.ndarray | Prepared]) -> list[list[Box]]:
        """Run the model in chunks; on out-of-memory halve the batch, then fall back to the CPU."""
        out: list[list[Box]] = []
        i = 0
        while i < len(images):
            chunk = images[i:i + self.batch_size]
            try:
                boxes = self.ensure_detector().detect(chunk, self.ontology, SCORE_FLOOR)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _free_accelerator_memory()
                if len(chunk) > 1:
                    self.batch_size = max(1, len(chunk) // 2)
                    self._on_event("warning", f"out of memory: batch size lowered to {self.batch_size}")
                    continue
                if self.detector is not None and not str(self.detector.device).startswith("cpu"):
                    self._switch_to_cpu(self.detector.device)
                    continue
                raise
            if len(boxes) != len(chunk):
                raise RuntimeError(f"detector returned {len(boxes)} results for {len(chunk)} images")
            out.extend(boxes)
            i += len(chunk)
        return out

    def _switch_to_cpu(self, device: str) -> None:
        """Slower but alive; the run id stays: same weights and prompts, same proposals."""
        self._on_event("warning", f"out of memory on {device} even with one image: running on the CPU")
        self.detector = None
        _free_accelerator_memory()
        self.config = replace(self.config, device="cpu", precision="fp32")
        self.ensure_detector()
