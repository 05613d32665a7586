"""One code path from image paths to cached proposals, for the window's worker and ``label``.

The model itself (building it once, decoding, batching, OOM fallback) is ``detection.batch``,
which the actors of ``label --ray`` run too; this module adds the cache and the prefetching.

Images are decoded, and made into model input when the detector can do that ahead of time
(``PreparingDetector.prepare``), by a small thread pool while the model runs on the previous
batch; but never more than ``batch_size + prefetch`` images, raw or prepared, exist at once,
however large the folder: the iterable of paths is pulled lazily, which also lets the window
re-prioritise between batches.
Every finished image is committed to the cache before its result is handed out, so an
interrupted run resumes where it stopped and a cached image never meets the model again.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.base import Detector, DetectorConfig
from autolabel_gui.detection.batch import BatchDetector, Decoded, DetectorFactory, Loader, is_out_of_memory
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.run_plan import PromptGroup, RunPlan

__all__ = ["DetectionPipeline", "DetectionResult", "FolderLike", "is_out_of_memory"]


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
    have: list[list[Box] | None]
    """Each prompt group's cached proposals (``RunPlan.fetch``): only the missing are detected."""

    def missing(self, plan: RunPlan) -> tuple[PromptGroup, ...]:
        return tuple(g for g, got in zip(plan.groups, self.have) if got is None)


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
        plan: RunPlan | None = None,
    ) -> None:
        """``plan``: the prompt groups to cache apart (``detection.run_plan``); by default the
        whole ``ontology`` is one group."""
        self.folder = folder
        self.cache = cache
        self.ontology = ontology
        self.plan = plan if plan is not None else RunPlan.single(config, ontology)
        self.run_id = self.plan.id
        self.model = BatchDetector(config, self.plan.detection_ontology(), factory=factory, batch_size=batch_size,
                                   loader=loader, on_event=on_event)
        self.prefetch = self.batch_size if prefetch is None else max(0, prefetch)
        self._decode_threads = max(1, decode_threads)

    # -- model -------------------------------------------------------------------------------

    @property
    def config(self) -> DetectorConfig:
        return self.model.config

    @property
    def batch_size(self) -> int:
        return self.model.batch_size

    @property
    def detector(self) -> Detector | None:
        return self.model.detector

    @detector.setter
    def detector(self, detector: Detector | None) -> None:
        """The window hands a loaded model on to the pipeline of new settings that share it."""
        self.model.detector = detector

    def ensure_detector(self) -> Detector:
        """Build the detector once; any failure becomes DetectorUnavailable with the reason."""
        return self.model.ensure_detector()

    # -- cache only --------------------------------------------------------------------------

    def lookup(self, rel: str) -> list[Box] | None:
        """Cached proposals for the image as it is on disk now, without the model."""
        try:
            key = ImageKey.from_path(self.folder.root, rel)
        except OSError:
            return None
        return self.plan.lookup(self.cache, key)

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
                    have = self.plan.fetch(self.cache, key)
                    cached = self.plan.complete(have)
                    if cached is not None:
                        yield DetectionResult(rel, self.plan.merge(cached), from_cache=True)
                        continue
                    pending.append(_Pending(rel, key, pool.submit(self.model.decode, self.folder.image_path(rel)),
                                            have))
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

    def _process(self, batch: list[_Pending]) -> Iterator[DetectionResult]:
        """Detect one batch, commit it to the cache, then hand the results out in batch order."""
        decoded: list[Decoded] = []
        for p in batch:
            assert p.image is not None, "run() queues each image once; only this call collects it"
            decoded.append(p.image.result())
            p.image = None  # only ``decoded`` holds the images, and only until this call ends
        by_groups: dict[tuple[PromptGroup, ...], list[int]] = {}
        for i, p in enumerate(batch):
            by_groups.setdefault(p.missing(self.plan), []).append(i)
        outputs: list[list[Box] | str] = [[] for _ in batch]
        for groups, indices in by_groups.items():
            ontology = self.plan.detection_ontology(groups)
            for i, out in zip(indices, self.model.detect_decoded([decoded[i] for i in indices], ontology)):
                outputs[i] = out
        del decoded
        results: list[DetectionResult] = []
        for p, out in zip(batch, outputs):
            if isinstance(out, str):
                results.append(DetectionResult(p.rel, error=out))
                continue
            results.append(DetectionResult(p.rel, self.plan.merge(self.plan.store(self.cache, p.key, p.have, out))))
        yield from results
