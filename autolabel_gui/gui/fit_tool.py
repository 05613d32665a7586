"""F and Shift+F: fit boxes to their objects, the segmenter running on a thread of its own.

Wiring only: which boxes and what the answer does to them are ``app.fit_box``'s; the model is
``detection.segmenter``'s, imported on the worker thread at the first fit (torch stays out of
start-up). Requests travel to the worker as queued signals (it waits idle between fits) and the
answers come back the same way, to be applied on the UI thread only while the image they were
asked for is still on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from autolabel_gui.app.fit_box import BoxFitter, BoxSegmenter, FitRequest, FitResult, apply_fit, plan_fit
from autolabel_gui.core.images import load_image
from autolabel_gui.core.records import ImageKey
from autolabel_gui.core.review import ReviewState
from autolabel_gui.detection.segmenter_spec import missing
from autolabel_gui.gui.review_controller import ReviewController


def load_segmenter(value: str | None) -> BoxSegmenter:
    """The segmenter ``value`` names (a catalogue name or folder), loaded on the calling thread."""
    from autolabel_gui.detection.segmenter import Segmenter

    return Segmenter.load(value)


class FitHost(Protocol):
    """What the fit uses of the window (``gui.main_window.MainWindow``)."""

    @property
    def controller(self) -> ReviewController | None: ...

    def state(self) -> ReviewState | None: ...

    def show_message(self, text: str, error: bool = False) -> None: ...


class _FitWorker(QObject):
    """Lives on the fit thread: one request at a time, in the order they were made."""

    fitted = Signal(object)  # FitResult

    def __init__(self, fitter: BoxFitter) -> None:
        super().__init__()
        self.fitter = fitter

    @Slot(object)
    def run(self, request: FitRequest) -> None:
        self.fitted.emit(self.fitter.fit(request))


class FitTool(QObject):
    """The window's fit keys; ``load_segmenter`` and ``load_image`` run on the fit thread."""

    _requested = Signal(object)  # FitRequest, to the worker
    done = Signal(object)  # FitResult, after it was applied (or not): for tests and the status line

    def __init__(self, host: FitHost, parent: QObject) -> None:
        super().__init__(parent)
        self._host = host
        self.load_segmenter: Callable[[str | None], BoxSegmenter] = load_segmenter
        self.load_image: Callable[[Path], np.ndarray] = load_image
        self.fitter = BoxFitter(lambda value: self.load_segmenter(value), lambda path: self.load_image(path))
        self._thread = QThread(self)
        self._thread.setObjectName("fit")
        self._worker = _FitWorker(self.fitter)
        self._worker.moveToThread(self._thread)
        self._requested.connect(self._worker.run)
        self._worker.fitted.connect(self._fitted)
        self.pending = 0

    def handlers(self) -> dict[str, Callable[[], object]]:
        return {"fit_box": lambda: self.request(all_accepted=False),
                "fit_all": lambda: self.request(all_accepted=True)}

    def request(self, all_accepted: bool) -> FitRequest | None:
        """Plan the fit on this thread and hand it to the worker; say why when nothing is fitted."""
        controller = self._host.controller
        state = self._host.state()
        rel = controller.current if controller is not None else None
        if controller is None or rel is None:
            self._host.show_message("Open a folder first (Ctrl+O).", True)
            return None
        folder = controller.review.folder
        path = folder.image_path(rel)
        try:
            key: object = (str(folder.root), ImageKey.from_path(folder.root, rel))
        except OSError as exc:
            self._host.show_message(f"{path}: cannot be read ({exc})", True)
            return None
        segmenter = controller.review.settings.segmenter
        planned = plan_fit(state, rel, path, key, all_accepted, segmenter)
        if isinstance(planned, str):
            self._host.show_message(planned, True)
            return None
        problem = missing(segmenter)
        if problem is not None:
            self._host.show_message(problem, True)
            return None
        self.pending += 1
        boxes = len(planned.targets)
        # Short: the status line is narrow beside the model's state (seen under Xvfb); the first fit
        # of an image takes seconds on a CPU (the image encoder), the others a fraction of one.
        self._host.show_message(f"Fitting {boxes} box{'es' if boxes != 1 else ''}…")
        if not self._thread.isRunning():  # started by the first fit: a window that never fits has no thread
            self._thread.start()
        self._requested.emit(planned)
        return planned

    @Slot(object)
    def _fitted(self, result: FitResult) -> None:
        self.pending -= 1
        controller = self._host.controller
        if controller is None or not self._still_shown(controller, result.request):
            self._host.show_message(f"fit of {result.request.rel} dropped: that image is no longer shown", True)
        else:
            said: list[tuple[str, bool]] = []
            controller.review.edit(lambda s: said.append(apply_fit(s, result)))
            if said:
                self._host.show_message(*said[0])
        self.done.emit(result)

    def _still_shown(self, controller: ReviewController, request: FitRequest) -> bool:
        """Whether the image a fit was asked for is the one on screen (not the same name in
        another folder opened since, nor an image behind the grid)."""
        return (controller.current == request.rel and self._host.state() is not None
                and controller.review.folder.image_path(request.rel) == request.path)

    def shutdown(self, wait_ms: int | None = None) -> bool:
        """Stop the fit thread; False when a fit is still running after ``wait_ms``."""
        if not self._thread.isRunning():
            return True
        self._thread.quit()
        return self._thread.wait() if wait_ms is None else self._thread.wait(wait_ms)
