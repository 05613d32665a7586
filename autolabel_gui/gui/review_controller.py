"""The open folder in the window: Qt's side of ``app.folder_review.FolderReview``.

The rules live in ``FolderReview`` (Qt-free, ADR 0014). This glue owns what needs Qt: the
detection thread, the image prefetcher, the canvas and its banner, the timers that renew leases,
and the signals the window listens to. It is the review's ``ReviewListener``: each report
becomes a canvas update or a signal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from autolabel_gui.app.folder_review import FolderReview
from autolabel_gui.app.model_progress import ModelState, ModelStatus
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.shared_folder import RENEW_EVERY_S, SCAN_EVERY_S
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.review import ReviewState
from autolabel_gui.detection.batch import DetectorFactory
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.gui.canvas import Canvas
from autolabel_gui.gui.file_list import FileListModel
from autolabel_gui.gui.image_cache import ImageCache
from autolabel_gui.gui.model_banner import ModelBanner
from autolabel_gui.gui.worker import DetectionController

PREFETCH_AHEAD = 2
PREFETCH_BEHIND = 1
BANNER_REFRESH_MS = 300
"""How often the canvas banner re-reads the model's queue while the image on screen waits."""


class ReviewController(QObject):
    """Reviews ``folder`` on ``canvas``; ``class_for_drawing`` names the class a drawn box gets."""

    message = Signal(str, bool)  # text, is an error
    current_changed = Signal(str, int, int)  # relpath, row, number of images
    boxes_changed = Signal()  # the current image's boxes changed (class counts)
    model_state = Signal(object)  # ModelStatus
    progress_changed = Signal(str)  # the folder's model figure, "Proposals 12/43"

    def __init__(self, canvas: Canvas, folder: ImageFolder, settings: ProjectSettings,
                 class_for_drawing: Callable[[], str | None], *,
                 detector_factory: DetectorFactory = create_detector,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self._class_for_drawing = class_for_drawing
        cache = ProposalCache.for_folder(folder.root)
        self.detection = DetectionController(folder, cache, settings, self, detector_factory=detector_factory)
        self.review = FolderReview(folder, settings, self.detection, self, cache=cache)
        self.files = FileListModel(self.review.statuses, self)
        self.images = ImageCache(folder, parent=self)
        self.banner = ModelBanner(canvas)
        self._shown = False
        self._banner_timer = QTimer(self, interval=BANNER_REFRESH_MS)
        self._banner_timer.timeout.connect(self.on_banner)
        self._lease_timers = (QTimer(self, interval=int(RENEW_EVERY_S * 1000)),
                              QTimer(self, interval=int(SCAN_EVERY_S * 1000)))
        self._lease_timers[0].timeout.connect(self.review.renew_leases)
        self._lease_timers[1].timeout.connect(self.review.scan_leases)
        self.images.loaded.connect(self._image_loaded)
        self.images.failed.connect(self._image_failed)
        self.detection.proposals_ready.connect(self.review.proposals_ready)
        self.detection.image_failed.connect(self.review.detection_failed)
        self.detection.model_state.connect(self._model_state)
        canvas.selection_changed.connect(self._canvas_selected)
        canvas.box_edited.connect(self._canvas_edited)
        canvas.box_drawn.connect(self._canvas_drawn)

    # ------------------------------------------------------------------ life cycle

    def start(self, first: str | None = None) -> None:
        """Start the detector and the lease timers, and open ``first`` (``FolderReview.start``).
        A folder without images loads no model."""
        if self.review.folder.images:
            self.detection.start()
        else:
            self._model_state(ModelStatus(ModelState.UNAVAILABLE, "not loaded: this folder has no images"))
        for timer in self._lease_timers:
            timer.start()
        self.review.start(first)
        if self.review.current is None:
            self.canvas.set_image(None)

    def shutdown(self, wait_ms: int | None = None) -> bool:
        """Save the open image, stop the detector and the image threads.

        Returns False when the detector is still inside a forward pass after ``wait_ms``: the
        caller may then end the process without it (its batch is committed whole or not at all).
        """
        for timer in (*self._lease_timers, self._banner_timer):
            timer.stop()
        self.review.close()
        self.banner.set_text("")
        for signal, slot in ((self.canvas.selection_changed, self._canvas_selected),
                             (self.canvas.box_edited, self._canvas_edited),
                             (self.canvas.box_drawn, self._canvas_drawn)):
            signal.disconnect(slot)
        stopped = self.detection.stop(wait_ms)
        self.images.close()
        if stopped:
            self.review.cache.close()
        return stopped

    @property
    def current(self) -> str | None:
        return self.review.current

    @property
    def state(self) -> ReviewState | None:
        return self.review.state

    @property
    def image_on_canvas(self) -> bool:
        """The open image is decoded and shown with its boxes."""
        return self._shown

    # ------------------------------------------------------------------ keys that need the canvas

    def refresh(self) -> None:
        """The open image's state changed off the canvas (the grid verified it): show it."""
        self._sync(full=True)

    def start_drawing(self) -> None:
        state = self.state
        if state is None or state.read_only or not self._shown:
            return
        if not self._class_for_drawing():
            self.message.emit("Add a class in Settings (Ctrl+,) before drawing boxes.", True)
            return
        self.canvas.start_drawing()

    def escape(self) -> None:
        if self.canvas.is_drawing():
            self.canvas.cancel_drawing()
        else:
            self.review.select_box(-1)

    # ------------------------------------------------------------------ ReviewListener

    def on_message(self, text: str, error: bool) -> None:
        self.message.emit(text, error)

    def on_opened(self, rel: str, row: int, total: int) -> None:
        """Show ``rel``'s picture (decoded now or by the prefetcher) and prefetch its neighbours."""
        images = self.review.folder.images
        ahead = images[row + 1: row + 1 + PREFETCH_AHEAD]
        behind = images[max(row - PREFETCH_BEHIND, 0): row][::-1]
        image = self.images.request(rel)
        self.images.prefetch(rel, ahead + behind)
        self._shown = False
        if image is not None:
            self._show_image(image)
        self.banner.set_text("")  # a refusal on the image before is not about this one
        self.current_changed.emit(rel, row, total)
        self.boxes_changed.emit()

    def on_boxes(self, full: bool) -> None:
        self._sync(full)

    @Slot()
    def on_banner(self) -> None:
        """The canvas banner, asked again every ``BANNER_REFRESH_MS`` while the image waits."""
        banner = self.review.banner()
        self.banner.set_text(banner.text, urgent=banner.urgent)
        if banner.waiting:
            self._banner_timer.start()
        else:
            self._banner_timer.stop()

    def on_progress(self, text: str) -> None:
        self.progress_changed.emit(text)

    def on_rows(self, rels: Iterable[str] | None) -> None:
        self.files.rows_changed(rels)

    # ------------------------------------------------------------------ internals

    @Slot(object)
    def _model_state(self, status: ModelStatus) -> None:
        self.model_state.emit(status)
        self.review.model_changed()

    def _show_image(self, image: np.ndarray) -> None:
        self.canvas.set_image(image)
        self._shown = True
        self._sync(full=True)

    def _sync(self, full: bool = False) -> None:
        """Make the canvas show the state: one item per changed box, all of them when the count changed."""
        state = self.state
        if state is None or not self._shown:
            return
        boxes = state.display_boxes()
        old = self.canvas.boxes()
        if full or len(old) != len(boxes):
            self.canvas.set_boxes(boxes, state.selected)
        else:
            for i, (a, b) in enumerate(zip(old, boxes)):
                if a != b:
                    self.canvas.update_box(i, b)
            self.canvas.select(state.selected)
        if not self._banner_timer.isActive():
            self.on_banner()
        self.boxes_changed.emit()

    @Slot(str, object)
    def _image_loaded(self, rel: str, image: np.ndarray) -> None:
        if rel == self.current and not self._shown:
            self._show_image(image)

    @Slot(str, str)
    def _image_failed(self, rel: str, reason: str) -> None:
        if rel == self.current:
            self.canvas.set_image(None)
        self.review.image_unreadable(rel, reason)

    @Slot(int)
    def _canvas_selected(self, index: int) -> None:
        state = self.state
        if state is not None:
            state.select(index)
            self.boxes_changed.emit()

    @Slot(int, object)
    def _canvas_edited(self, index: int, box: Box) -> None:
        self.review.edit(lambda s: s.replace_box(index, box))

    @Slot(object)
    def _canvas_drawn(self, box: Box) -> None:
        label = self._class_for_drawing()
        if label:
            self.review.edit(lambda s: s.add_box(box.with_label(label)))
