"""Detection for the window: a QThread serving proposals for the image on screen first.

The worker thread runs the same DetectionPipeline as ``autolabel-gui label``. The GUI thread
talks to it through a small locked work queue rather than queued signals, because the worker
spends its time inside a blocking pipeline run and could not receive signals until it ended.
A navigation (``prioritize``) replaces the queue and, when the new image is not already being
computed, interrupts the run after its current batch, so stale look-ahead work is dropped.
The window queues the whole folder (the image on screen first, then navigation order), so the
model never idles while images without proposals remain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace

from PySide6.QtCore import QObject, QThread, Signal, Slot

from autolabel_gui.app.model_progress import ModelState, ModelStatus
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable, DetectorUnreachable, MissingModelFiles
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.compute_path import describe, plan_path
from autolabel_gui.detection.pipeline import DetectionPipeline, DetectorFactory

log = logging.getLogger(__name__)

_OUTPUT_FIELDS = ("box_threshold", "batch_size")
RETRY_DELAYS_S = (2.0, 5.0, 10.0, 30.0)
"""Waits before asking an unreachable model (a proposal server) again: 2 s, 5 s, 10 s, then every 30 s."""
CACHED_WHILE_AWAY = 32
"""Images at the head of the queue looked up in the cache while the model is unreachable."""
SPEED_EVERY_S = 3.0
SPEED_SAMPLES = 20
"""Images whose model time the worker keeps, for "about N minutes here" before a class change."""
"""Config fields that do not change the built model: no rebuild when only these change."""


class _WorkQueue:
    """Paths waiting for the model, shared by the GUI thread (writer) and the worker (reader)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: deque[str] = deque()
        self.interrupt = threading.Event()
        self.stopped = False
        self.in_flight: list[str] = []
        self.delivered: set[str] = set()
        self.generation = 0
        self.changes = 0
        """Every wish of the window (navigation, R, new settings, stop): what a worker that waits
        for an unreachable model wakes up for."""
        self._seen_changes = 0
        self.settings: ProjectSettings | None = None

    def replace(self, items: list[str]) -> None:
        """New wishes from the window; what was queued before and not wished again is dropped."""
        with self._cond:
            self._items = deque(dict.fromkeys(r for r in items if r not in self.delivered))
            self.generation += 1
            self.changes += 1
            self._cond.notify_all()

    def push_front(self, rel: str) -> None:
        with self._cond:
            self.delivered.discard(rel)
            if rel in self._items:
                self._items.remove(rel)
            self._items.appendleft(rel)
            self.changes += 1
            self._cond.notify_all()

    def reconfigure(self, settings: ProjectSettings) -> None:
        with self._cond:
            self.settings = settings
            self.delivered.clear()
            self.interrupt.set()
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self.interrupt.set()
            self._cond.notify_all()

    def wait(self) -> bool:
        """Block until there is work or new settings; False once stopped."""
        with self._cond:
            while not self.stopped and not self._items and self.settings is None:
                self._cond.wait()
            return not self.stopped

    def wait_change(self, timeout: float) -> bool:
        """Block until the window wishes something new, or ``timeout`` seconds; False once stopped."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self.stopped and self.settings is None and self.changes == self._seen_changes:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._seen_changes = self.changes
            return not self.stopped

    def peek(self, count: int) -> list[str]:
        """The next ``count`` waiting paths, left in the queue."""
        with self._cond:
            waiting = (r for r in self._items if r not in self.delivered and r not in self.in_flight)
            return [r for _, r in zip(range(count), waiting)]

    def take_settings(self) -> ProjectSettings | None:
        with self._cond:
            settings, self.settings = self.settings, None
            return settings

    def begin_run(self) -> int:
        with self._cond:
            self.interrupt.clear()
            return self.generation

    def paths(self) -> Iterator[str]:
        """What a pipeline run pulls lazily: stops when empty or interrupted."""
        while not self.interrupt.is_set():
            with self._cond:
                while self._items and (self._items[0] in self.delivered or self._items[0] in self.in_flight):
                    self._items.popleft()
                if not self._items:
                    return
                rel = self._items.popleft()
                self.in_flight.append(rel)
            yield rel

    def finish(self, rel: str) -> None:
        """Mark one path delivered."""
        with self._cond:
            if rel in self.in_flight:
                self.in_flight.remove(rel)
            self.delivered.add(rel)

    def position(self, rel: str) -> int | None:
        """0 while ``rel`` is being detected; N when N images will be detected before it
        (those taken by the pipeline, in its order, count); None when it is not waiting."""
        with self._cond:
            if rel in self.in_flight:
                return self.in_flight.index(rel)
            try:
                return len(self.in_flight) + self._items.index(rel)
            except ValueError:
                return None

    def end_run(self, generation: int) -> None:
        """Paths pulled but not finished go back after the head of the queue, unless the window
        has since replaced the queue (then they are stale by definition)."""
        with self._cond:
            leftovers = [r for r in self.in_flight if r not in self.delivered]
            self.in_flight.clear()
            if generation == self.generation and leftovers:
                head = [self._items.popleft()] if self._items else []
                self._items = deque(dict.fromkeys([*head, *leftovers, *self._items]))

    def is_in_flight(self, rel: str) -> bool:
        with self._cond:
            return rel in self.in_flight


class _Worker(QObject):
    """Lives in the worker thread; its whole life is one call to ``serve``."""

    model_state = Signal(object)  # ModelStatus
    proposals_ready = Signal(str, object)
    image_failed = Signal(str, str)

    def __init__(self, folder: ImageFolder, cache: ProposalCache, settings: ProjectSettings,
                 factory: DetectorFactory, queue: _WorkQueue) -> None:
        super().__init__()
        self._folder = folder
        self._cache = cache
        self._factory = factory
        self._queue = queue
        self._settings = settings
        self._pipeline: DetectionPipeline | None = None
        self._available = False
        self._failing = False
        """The last run ended in an error: the next image that works says the model is back
        (seen: "disk is full" stayed in the status bar after the disk was freed)."""
        self.timings: deque[float] = deque(maxlen=SPEED_SAMPLES)
        """Seconds the model took for each of its last images here (cache hits left out)."""
        self._outage: DetectorUnreachable | None = None
        """The model runs elsewhere and stopped answering: the work stays queued until ``_retry_at``."""
        self._retry_at = 0.0
        self._tries = 0
        self._told_speed = 0.0

    @Slot()
    def serve(self) -> None:
        self._configure(self._settings)
        while True:
            if self._outage is not None:
                if not self._queue.wait_change(self._retry_at - time.monotonic()):
                    break
            elif not self._queue.wait():
                break
            settings = self._queue.take_settings()
            if settings is not None:
                self._configure(settings)
                continue
            if self._outage is not None and time.monotonic() < self._retry_at:
                self._serve_cached_head()  # the window moved on: what the cache has, it gets now
                continue
            self._outage = None
            generation = self._queue.begin_run()
            try:
                self._run_once()
            except Exception as exc:  # the thread must survive anything a backend throws
                log.exception("detection worker error")
                self._failing = True
                self.model_state.emit(ModelStatus(ModelState.ERROR, f"{type(exc).__name__}: {exc}"))
            finally:
                self._queue.end_run(generation)

    def _configure(self, settings: ProjectSettings) -> None:
        """Build a pipeline for new settings; the model is rebuilt only when it has to be."""
        self._outage, self._tries = None, 0
        old = self._pipeline
        config = settings.detector_config()
        if not settings.classes:
            self._pipeline, self._available = None, False
            self.model_state.emit(ModelStatus(ModelState.UNAVAILABLE,
                                              "no classes yet: add the classes to look for in the settings"))
            return
        try:
            pipeline = DetectionPipeline(self._folder, self._cache, config, settings.ontology(),
                                         factory=self._factory, on_event=self._on_event, plan=settings.run_plan())
        except ValueError as exc:
            self._pipeline, self._available = None, False
            self.model_state.emit(ModelStatus(ModelState.UNAVAILABLE, str(exc)))
            return
        reused = old.detector if old is not None and _same_model(old.config, config) else None
        if reused is not None:
            pipeline.detector = reused
        self._pipeline = pipeline
        try:
            pipeline.ensure_detector()
            self._available = True
        except DetectorUnreachable as exc:
            self._available = True  # it is elsewhere and may come back: tried again, cache meanwhile
            self._lost(exc)
            self._serve_cached_head()
            return
        except DetectorUnavailable as exc:
            self._available = False
            self.model_state.emit(unavailable(exc))
            return
        if reused is not None:
            path = describe(getattr(reused, "precision", ""), plan_path(config.precision, config.device))
            self.model_state.emit(ModelStatus(ModelState.READY, f"model ready on {reused.device}{path}"))

    def _on_event(self, kind: str, message: str) -> None:
        """The pipeline's news (loading, ready, an out-of-memory fallback: it still runs)."""
        self.model_state.emit(ModelStatus(ModelState.LOADING if kind == "loading" else ModelState.READY, message))

    def _run_once(self) -> None:
        if self._pipeline is None:
            return
        if not self._available:
            self._serve_cache_only(self._pipeline)
            return
        try:
            last = time.perf_counter()
            for result in self._pipeline.run(self._queue.paths(), self._queue.interrupt):
                now = time.perf_counter()
                elapsed, last = now - last, now
                self._deliver(result.relpath, result.boxes, result.error)
                if result.ok and not result.from_cache:
                    self.timings.append(elapsed)
                    self._tries = 0
                    self._tell_speed()
        except DetectorUnreachable as exc:
            self._lost(exc)
        except DetectorUnavailable as exc:
            self._available = False
            self.model_state.emit(unavailable(exc))

    def _lost(self, exc: DetectorUnreachable) -> None:
        """The model stopped answering: say so, keep the work queued, try again after a backoff."""
        delay = RETRY_DELAYS_S[min(self._tries, len(RETRY_DELAYS_S) - 1)]
        self._tries += 1
        self._outage, self._retry_at = exc, time.monotonic() + delay
        self._failing = True
        self.model_state.emit(ModelStatus(ModelState.ERROR, f"{exc}; retrying in {delay:g} s"))

    def _serve_cached_head(self) -> None:
        """While the model is away: the proposals the cache holds for the next images wished."""
        if self._pipeline is None:
            return
        for rel in self._queue.peek(CACHED_WHILE_AWAY):
            boxes = self._pipeline.lookup(rel)
            if boxes is not None:
                self._deliver(rel, boxes, None)

    def _tell_speed(self) -> None:
        """"server gpu-box:8000, mm-grounding-dino-t, 0.3 s/img": said for a detector that says
        where it runs (``describe``), at most every few seconds."""
        detector = self._pipeline.detector if self._pipeline is not None else None
        describe = getattr(detector, "describe", None)
        now = time.monotonic()
        if describe is None or now - self._told_speed < SPEED_EVERY_S or not self.timings:
            return
        self._told_speed = now
        median = sorted(self.timings)[len(self.timings) // 2]
        self.model_state.emit(ModelStatus(ModelState.READY, f"{describe()}, {median:.2g} s/img"))

    def _serve_cache_only(self, pipeline: DetectionPipeline) -> None:
        """Without a model the window still gets every proposal computed earlier."""
        for rel in self._queue.paths():
            boxes = pipeline.lookup(rel)
            if boxes is not None:
                self._deliver(rel, boxes, None)
            else:
                self._queue.finish(rel)

    def _deliver(self, rel: str, boxes: list[Box] | None, error: str | None) -> None:
        if error is None:
            if self._failing:
                self._failing = False
                self.model_state.emit(ModelStatus(ModelState.READY, "model working again"))
            self.proposals_ready.emit(rel, boxes)
        else:
            self.image_failed.emit(rel, error)
        self._queue.finish(rel)


def unavailable(exc: DetectorUnavailable) -> ModelStatus:
    """Why the model cannot run, typed: missing files are fixed by a download."""
    return ModelStatus(ModelState.UNAVAILABLE, str(exc), download_fixes=isinstance(exc, MissingModelFiles))


def _same_model(a: DetectorConfig, b: DetectorConfig) -> bool:
    keep = {f: getattr(a, f) for f in _OUTPUT_FIELDS}
    return replace(b, **keep) == a


class DetectionController(QObject):
    """GUI-thread face of the detection worker (see docs/modules.md, "Worker")."""

    model_state = Signal(object)  # ModelStatus
    proposals_ready = Signal(str, object)
    image_failed = Signal(str, str)

    def __init__(self, folder: ImageFolder, cache: ProposalCache, settings: ProjectSettings,
                 parent: QObject | None = None, *, detector_factory: DetectorFactory = create_detector) -> None:
        super().__init__(parent)
        self._folder = folder
        self._cache = cache
        self._factory = detector_factory
        self._queue = _WorkQueue()
        self._settings = settings
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self._state = ModelStatus(ModelState.LOADING)
        self.model_state.connect(self._remember_state)

    @Slot(object)
    def _remember_state(self, status: ModelStatus) -> None:
        self._state = status

    def start(self) -> None:
        """Start the worker thread; it loads the model at once (model_state tells how it went)."""
        if self._thread is not None:
            return
        self._thread = QThread()
        self._thread.setObjectName("autolabel-detection")
        self._worker = _Worker(self._folder, self._cache, self._settings, self._factory, self._queue)
        self._worker.moveToThread(self._thread)
        for name in ("model_state", "proposals_ready", "image_failed"):
            getattr(self._worker, name).connect(getattr(self, name))
        self._thread.started.connect(self._worker.serve)
        self._thread.start()

    @property
    def state(self) -> ModelStatus:
        """The model's last reported state."""
        return self._state

    def stop(self, wait_ms: int | None = None) -> bool:
        """Cancel after the batch in flight and join the thread; True once it has ended.

        With ``wait_ms`` the join gives up after that long (a CPU forward pass can take 10 s and
        cannot be interrupted): the caller then ends the process without waiting, which loses
        nothing, because a batch's proposals are committed in one SQLite transaction or not at all.
        """
        if self._thread is None:
            return True
        self._queue.stop()
        self._thread.quit()
        if not (self._thread.wait() if wait_ms is None else self._thread.wait(wait_ms)):
            return False
        self._thread, self._worker = None, None
        return True

    def prioritize(self, current: str | None, upcoming: list[str]) -> None:
        """Detect ``current`` first (None: it needs no detection), then ``upcoming`` in order."""
        wanted = [current] if current is not None else []
        wanted += [r for r in upcoming if r != current]
        self._queue.replace(wanted)
        if current is not None and not self._queue.is_in_flight(current):
            self._queue.interrupt.set()

    def position(self, rel: str) -> int | None:
        """How many images the model will detect before ``rel`` (0: detecting it now), or None."""
        return self._queue.position(rel)

    def seconds_per_image(self) -> float | None:
        """The model's median time per image on this machine so far (None before its first)."""
        timings = sorted(self._worker.timings) if self._worker is not None else []
        return timings[len(timings) // 2] if timings else None

    def rerun(self, relpath: str) -> None:
        """Drop the cached proposals of one image and detect it again, next.

        Without a model the cached proposals are kept (nothing could replace them) and the
        reason is told again.
        """
        if self._state.state is ModelState.UNAVAILABLE:
            self.model_state.emit(self._state)
            return
        self._cache.invalidate(relpath)
        self._queue.push_front(relpath)

    def reconfigure(self, settings: ProjectSettings) -> None:
        """New classes, prompts or model settings; the model is reloaded only if it changed."""
        self._settings = settings
        self._queue.reconfigure(settings)
