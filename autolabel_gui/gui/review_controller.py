"""Reviewing one folder in the window: which image is open, what each key does to it, saving.

Glue between the Qt-free review (``app.session``, ``core.review``, ``app.model_progress``), the
canvas, the image prefetcher and the detection worker. The window only routes actions here; the
rules about boxes live in ``ReviewState``, the rules about files in ``ReviewSession``, and what
to say about the model in ``app.model_progress``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from autolabel_gui.app.conflicts import Conflict, ConflictChoice
from autolabel_gui.app.model_progress import ModelProgress, detection_order, refused_text, waiting_text
from autolabel_gui.app.project import ProjectSettings, plan_of
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.app.shared_folder import RENEW_EVERY_S, SCAN_EVERY_S, FolderLeases, held_text
from autolabel_gui.app.status import Status, verified_before
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.leftovers import sweep_leftovers
from autolabel_gui.core.review import HIDDEN_PENDING, UNSEEN_PROPOSALS, ReviewState
from autolabel_gui.core.view_filter import ViewFilter
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.gui.canvas import Canvas
from autolabel_gui.gui.file_list import FileListModel
from autolabel_gui.gui.image_cache import ImageCache
from autolabel_gui.gui.model_banner import ModelBanner
from autolabel_gui.gui.worker import DetectionController

PREFETCH_AHEAD = 2
PREFETCH_BEHIND = 1
NOTHING_FOUND = "The model found nothing here (above the threshold)"
"""Said so that an image with no boxes never looks like one still waiting for the model."""
BANNER_REFRESH_MS = 300
"""How often the canvas banner re-reads the model's queue while the image on screen waits."""


def hidden_refusal(state: ReviewState) -> str:
    """Why Space / Ctrl+S did nothing while the view filter hides pending proposals."""
    count = state.hidden_pending_count()
    return (f"Not verified: {count} pending proposal{'s are' if count != 1 else ' is'} hidden by the view "
            f"({state.view.text}). Show them (View ▸ Show everything again), then decide.")


class ReviewController(QObject):
    """Reviews ``folder`` on ``canvas``; ``class_for_drawing`` names the class a drawn box gets."""

    message = Signal(str, bool)  # text, is an error
    current_changed = Signal(str, int, int)  # relpath, row, number of images
    boxes_changed = Signal()  # the current image's boxes changed (class counts)
    model_state = Signal(str, str)
    progress_changed = Signal(str)  # the folder's model figure, "Proposals 12/43"

    def __init__(self, canvas: Canvas, folder: ImageFolder, settings: ProjectSettings,
                 class_for_drawing: Callable[[], str | None], *, detector_factory=create_detector,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.folder = folder
        self.settings = settings
        self._class_for_drawing = class_for_drawing
        self.cache = ProposalCache.for_folder(folder.root)
        plan = plan_of(settings)
        self.run_id = plan.id if plan is not None else None
        self.session = ReviewSession(folder, self.cache, settings.classes, plan, settings.box_threshold)
        cached = plan.cached_relpaths(self.cache) if plan is not None else set()
        self.progress = ModelProgress.of(folder.images, cached)
        self.files = FileListModel(folder, lambda: self.progress.done, self, failed=self.progress.failed,
                                   prelabels=self.cache.output_digests())
        self._find_predating()
        self.images = ImageCache(folder, parent=self)
        self.detection = DetectionController(folder, self.cache, settings, self, detector_factory=detector_factory)
        self.banner = ModelBanner(canvas)
        self.manual = False
        """The annotator chose to review without the model: nothing waits for it."""
        self.ask_conflict: Callable[[Conflict], ConflictChoice] | None = None
        """Asked when a save finds the file saved by someone else meanwhile (the window's)."""
        self._saved_threshold = settings.box_threshold
        """The score threshold as last kept in the folder's settings (``save_threshold``)."""
        self.current: str | None = None
        self._shown = False
        self._rerun: str | None = None
        self._problem: str | None = None
        self._banner_timer = QTimer(self)
        self._banner_timer.setInterval(BANNER_REFRESH_MS)
        self._banner_timer.timeout.connect(self._show_where_the_model_is)
        self.leases = FolderLeases.for_folder(folder)
        """Which images other annotators have open (app/shared_folder.py); timers renew and re-read."""
        self._lease_timers = (QTimer(self, interval=int(RENEW_EVERY_S * 1000)),
                              QTimer(self, interval=int(SCAN_EVERY_S * 1000)))
        self._lease_timers[0].timeout.connect(self._renew_leases)
        self._lease_timers[1].timeout.connect(self.scan_leases)
        self.images.loaded.connect(self._image_loaded)
        self.images.failed.connect(self._image_failed)
        self.detection.proposals_ready.connect(self._proposals_ready)
        self.detection.image_failed.connect(self._detection_failed)
        self.detection.model_state.connect(self._model_state)
        canvas.selection_changed.connect(self._canvas_selected)
        canvas.box_edited.connect(self._canvas_edited)
        canvas.box_drawn.connect(self._canvas_drawn)

    # ------------------------------------------------------------------ life cycle

    def start(self, first: str | None = None) -> None:
        """Start the detector and open ``first``; without it (or when it is gone), the first
        image not yet verified, or the first image when every one is."""
        sweep_leftovers(self.folder)
        self.detection.start()
        for problem in self.folder.problems[:1]:
            self.message.emit(f"{len(self.folder.problems)} problem(s) while listing: {problem}", True)
        self.scan_leases()
        for timer in self._lease_timers:
            timer.start()
        if self.leases.problem:
            self.message.emit(self.leases.problem, True)
        if first in self.folder.images:
            self.go_to(first)
        elif self.folder.images:
            row = self._next_unverified_row(-1)
            self.go_to(self.folder.images[max(row, 0)])
        else:
            self.canvas.set_image(None)
            self.message.emit(f"{self.folder.root}: no images found", True)

    def shutdown(self, wait_ms: int | None = None) -> bool:
        """Save the open image, stop the detector and the image threads.

        Returns False when the detector is still inside a forward pass after ``wait_ms``: the
        caller may then end the process without it (its batch is committed whole or not at all).
        """
        self.save_current()
        for timer in self._lease_timers:
            timer.stop()
        self.leases.close()
        self._banner_timer.stop()
        self.banner.set_text("")
        for signal, slot in ((self.canvas.selection_changed, self._canvas_selected),
                             (self.canvas.box_edited, self._canvas_edited),
                             (self.canvas.box_drawn, self._canvas_drawn)):
            signal.disconnect(slot)
        stopped = self.detection.stop(wait_ms)
        self.images.close()
        if stopped:
            self.cache.close()
        return stopped

    @property
    def image_on_canvas(self) -> bool:
        """The open image is decoded and shown with its boxes."""
        return self._shown

    @property
    def state(self) -> ReviewState | None:
        return None if self.current is None else self.session.get(self.current)

    @property
    def model_runs(self) -> bool:
        """A model works (or loads) for this folder: images wait for it before being verified."""
        return not self.manual and self.detection.state != "unavailable"

    def set_manual(self, manual: bool) -> None:
        """Review without the model (existing labels, or drawing by hand), or with it again."""
        self.manual = manual
        self._queue_detection()
        self._show_where_the_model_is()
        self.progress_changed.emit(self.progress.text(self.model_runs))
        self.message.emit("Manual review: the model is off; Space verifies your boxes alone." if manual
                          else "The model is on again: images are verified once it has seen them.", False)

    # ------------------------------------------------------------------ navigation

    def go_to(self, rel: str) -> None:
        """Save the image being left (if the annotator changed it) and open ``rel``."""
        if rel == self.current:
            return
        self.save_current()
        self.leases.leave(self.session, self.current)
        self.current = rel
        had_leases = self.leases.book is not None
        opened = self.leases.open(self.session, rel)
        if had_leases and self.leases.problem:
            self.message.emit(self.leases.problem, True)
        self._problem = opened.problem
        if rel in self.progress.failed:
            opened.state.model_done = True  # it has seen the image and could not process it
        elif opened.state.model_done and self.progress.add(rel):  # proposals from the cache
            self.files.mark_proposals(rel)
            self.progress_changed.emit(self.progress.text(self.model_runs))
        if opened.problem:
            self.message.emit(opened.problem, True)
        elif rel in self.progress.failed:
            self.message.emit(f"{rel}: detection failed: {self.progress.failed[rel]}", True)
        row = self.files.row_of(rel)
        images = self.folder.images
        ahead = images[row + 1: row + 1 + PREFETCH_AHEAD]
        behind = images[max(row - PREFETCH_BEHIND, 0): row][::-1]
        image = self.images.request(rel)
        self.images.prefetch(rel, ahead + behind)
        self._shown = False
        if image is not None:
            self._show_image(image)
        self._queue_detection()
        self.banner.set_text("")  # a refusal on the image before is not about this one
        self._show_where_the_model_is()
        self.current_changed.emit(rel, row, len(images))
        self.boxes_changed.emit()

    def step(self, direction: int) -> None:
        """D / A: the next or previous image in folder order."""
        row = self.files.row_of(self.current) if self.current else -1
        target = row + direction
        if 0 <= target < len(self.folder.images):
            self.go_to(self.folder.images[target])
        else:
            self.save_current()
            self.message.emit("Last image." if direction > 0 else "First image.", False)

    def next_unverified(self) -> bool:
        """The next image (after this one, then from the start) not yet verified."""
        row = self.files.row_of(self.current) if self.current else -1
        self.save_current()
        target = self._next_unverified_row(row)
        if target < 0:
            target = self._next_unverified_row(-1)
        if target < 0 or target == row:
            self.message.emit(f"All {len(self.folder.images)} images are verified.", False)
            return False
        self.go_to(self.files.relpath(target))
        return True

    def _next_unverified_row(self, row: int) -> int:
        """The next row after ``row`` (no wrap) not verified and not held by another annotator."""
        want = lambda status: status is not Status.VERIFIED  # noqa: E731
        target = self.files.next_row(row, +1, want)
        while target >= 0 and self.leases.held_by_other(self.files.relpath(target)):
            target = self.files.next_row(target, +1, want)
        return target

    @Slot()
    def scan_leases(self) -> None:
        """Who holds what now (timer): the file list's marks; the image on screen becomes
        writable once its holder has moved on."""
        if self.leases.scan():
            self.files.set_held({rel: held_text(h) for rel, h in self.leases.held.items()})
        for report in self.leases.reports():
            self.message.emit(report, True)
        rel = self.current
        if rel is not None and self.leases.read_only_by_lease(rel) and not self.leases.held_by_other(rel):
            self.current = None  # open it again, leased this time
            self.go_to(rel)
            if not self.leases.read_only_by_lease(rel):
                self.message.emit(f"{rel}: its holder moved on; it is yours to review now.", False)

    @Slot()
    def _renew_leases(self) -> None:
        for text in self.leases.renew(self.session, self.current):
            self.message.emit(text, True)

    def accept_all_and_next(self) -> None:
        """Space: accept the visible proposals, save verified, go on to the next unverified image.

        Refused (nothing saved, no move) while the model has not seen this image: proposals that
        arrive later are never accepted by a key pressed before anyone saw them.
        """
        state = self.state
        if state is None or self._refuse_verify(state):
            return
        count = state.accept_all_visible()
        if not self.save_current(verify=True):
            self._sync()
            return
        self._sync()  # the last unverified image stays on screen: show its boxes accepted
        self.message.emit(f"{self.current}: {count} proposal(s) accepted, verified.", False)
        self.next_unverified()

    def verify_current(self) -> None:
        """Ctrl+S: save verified as it is; pending proposals in view are recorded as rejected."""
        state = self.state
        if state is None or self._refuse_verify(state):
            return
        rejected = state.reject_visible_pending()
        if rejected:
            self._sync(full=True)
        if self.save_current(verify=True) and rejected and self.current is not None:
            self.message.emit(f"Saved {self.folder.voc_path(self.current).name} (verified); {rejected} pending "
                              f"proposal{'s' if rejected != 1 else ''} recorded as rejected.", False)

    def _refuse_verify(self, state: ReviewState) -> bool:
        """Say why this image cannot be verified now, if it cannot; True when refused."""
        blocker = state.verify_blocker(self.model_runs)
        if blocker is None:
            return False
        if blocker == "read-only":
            self.message.emit(f"{self.current}: not saved, {self._problem or 'opened read-only'}", True)
            return True
        if blocker == HIDDEN_PENDING:
            self.message.emit(hidden_refusal(state), True)
            return True
        if blocker == UNSEEN_PROPOSALS:
            self.message.emit(f"Not verified: {state.unseen_proposals()} proposal(s) of the model are neither on "
                              f"the image nor reviewed; press R to show the model's proposals again.", True)
            return True
        text = refused_text(self._waiting_text())
        self.banner.set_text(text, urgent=True)
        self.message.emit(text, True)
        return True

    def refresh(self) -> None:
        """The open image's state changed off the canvas (the grid verified it): show it."""
        self._sync(full=True)

    def save_current(self, verify: bool = False) -> bool:
        """Ctrl+S (``verify``) or leaving/closing: write what changed; False when it failed."""
        rel = self.current
        if rel is None:
            return False
        saved = self.session.save(rel, verify=verify)
        if saved.conflict is not None:
            self._resolve_conflict(saved.conflict)
            return False
        if saved.error:
            self.message.emit(saved.error, True)
            return False
        status = self.session.status(rel)
        if status is not None:
            self.files.set_status(rel, status)
        if verify:
            self.files.predates.pop(rel, None)
            self.message.emit(f"Saved {self.folder.voc_path(rel).name} (verified).", False)
        self.boxes_changed.emit()
        return True

    def _resolve_conflict(self, conflict: Conflict) -> None:
        """Someone saved this image after it was opened: ask which version to keep, apply it,
        say what happened (ours is already kept aside whatever the answer)."""
        rel = conflict.rel
        for _ in range(3):  # they may save yet again while the question is open
            if self.ask_conflict is None:
                self.message.emit(conflict.text, True)
                return
            resolved = self.session.resolve(rel, self.ask_conflict(conflict))
            self.message.emit(resolved.text, resolved.error is not None or resolved.conflict is not None)
            if resolved.conflict is None:
                break
            conflict = resolved.conflict
        status = self.session.status(rel)
        if status is not None:
            self.files.set_status(rel, status)
        if rel == self.current:
            self._sync(full=True)

    def save_all(self) -> dict[str, str]:
        """Before the folder is closed: save the open image and every image whose save failed
        earlier. Returns those whose edits are still only in memory -> why their save failed."""
        self.save_current()
        self.session.retry_unsaved()
        return self.session.unsaved()

    def rerun(self) -> None:
        """R: forget this image's proposals and detect it again."""
        if self.current is None or self.state is None or self.state.read_only:
            return
        self._rerun = self.current
        self.detection.rerun(self.current)
        if self.model_runs:  # Space waits for the new proposals, as for an image the model has not seen
            self.state.model_done = False
            self._show_where_the_model_is()
        self.message.emit(f"{self.current}: detecting again…", False)

    def set_annotations_folder(self, path: Path) -> list[str]:
        """Save VOC files in ``path`` from now on (the image folder is read-only); the edits
        whose saves failed are written there now. Returns the images that still fail."""
        self.folder.annotations = Path(path)
        self.settings.annotations_dir = str(Path(path).absolute())
        self.save_current()
        failed = self.session.retry_unsaved()
        for rel in list(self.session.opened()):
            status = self.session.status(rel)
            if status is not None:
                self.files.set_status(rel, status)
        return failed

    def set_threshold(self, threshold: float) -> None:
        self.session.set_threshold(threshold)
        threshold = round(threshold, 4)
        self.settings.box_threshold = threshold
        self._sync()

    def save_threshold(self) -> None:
        """Keep the score threshold with the folder, so the next session shows what this one did
        (it is not part of the run id: nothing is recomputed). Seen: after a restart at 0.35,
        images verified at 0.80 showed dozens of never-reviewed proposals as pending."""
        if self.settings.box_threshold == self._saved_threshold:
            return
        old = replace(self.settings, box_threshold=self._saved_threshold)
        self._saved_threshold = self.settings.box_threshold
        try:  # only the threshold: another annotator's window may have saved classes since
            self.settings.save_changes(self.folder.root, old)
        except (OSError, ValueError) as exc:
            self.message.emit(f"{ProjectSettings.path_for(self.folder.root)}: score threshold not kept ({exc})", True)

    def set_view(self, view: ViewFilter) -> None:
        """Classes switched off, only pending / only accepted: on every image, like the threshold."""
        self.session.set_view(view)
        self._sync()

    def select_box(self, index: int) -> None:
        """A click in the boxes panel: select that box, on the canvas too."""
        if self.state is not None:
            self.state.select(index)
            self._sync()

    def reconfigure(self, settings: ProjectSettings) -> None:
        """New thresholds or model settings with the same classes and annotation folder (saved
        by the window)."""
        self.settings = settings
        self._saved_threshold = settings.box_threshold
        self.detection.reconfigure(settings)

    def apply_classes(self, settings: ProjectSettings) -> None:
        """The class list (or a prompt) changed, the model did not: every proposal in the cache
        stays; only the new prompt groups are detected (ADR 0013). Images waiting for a new
        group keep their boxes on screen and wait for the model before Space verifies them."""
        self.save_current()
        plan = plan_of(settings)
        if plan is None:
            self.reconfigure(settings)
            return
        self.settings = settings
        self._saved_threshold = settings.box_threshold
        self.run_id = plan.id
        self.session.set_plan(plan, settings.classes)
        self.progress.done = ModelProgress.of(self.folder.images, plan.cached_relpaths(self.cache)).done
        self.progress.failed.clear()
        self._find_predating()
        self.files.model_changed()
        self.detection.reconfigure(settings)
        self._queue_detection()
        self._sync(full=True)
        self.progress_changed.emit(self.progress.text(self.model_runs))

    # ------------------------------------------------------------------ box actions

    def edit(self, op: Callable[[ReviewState], object]) -> None:
        """Apply one ReviewState operation to the open image and show the result."""
        state = self.state
        if state is None:
            return
        if state.read_only:
            self.message.emit(f"{self.current} is read-only: {self._problem or 'it cannot be edited'}", True)
        else:
            op(state)
        self._sync()

    def set_class_index(self, index: int) -> None:
        names = self.settings.classes
        if 0 <= index < len(names):
            self.edit(lambda s: s.set_class(names[index]))

    def start_drawing(self) -> None:
        if self.state is None or self.state.read_only or not self._shown:
            return
        if not self._class_for_drawing():
            self.message.emit("Add a class in Settings (Ctrl+,) before drawing boxes.", True)
            return
        self.canvas.start_drawing()

    def escape(self) -> None:
        if self.canvas.is_drawing():
            self.canvas.cancel_drawing()
        elif self.state is not None:
            self.state.select(-1)
            self._sync()

    # ------------------------------------------------------------------ internals

    def _queue_detection(self) -> None:
        """The model's work: the image on screen unless it has proposals, then the whole
        folder in navigation order, so the model never idles while images are left."""
        if self.current is None:
            return
        if self.manual:
            self.detection.prioritize(None, [])
            return
        state = self.state
        wanted = None if state is None or state.model_done or state.read_only else self.current
        row = self.files.row_of(self.current)
        self.detection.prioritize(wanted, detection_order(self.folder.images, row, self.progress))

    def _waiting_text(self) -> str:
        position = None if self.current is None else self.detection.position(self.current)
        return waiting_text(self.detection.state, position, self.progress)

    @Slot()
    def _show_where_the_model_is(self) -> None:
        """The canvas banner: shown while the image on screen waits for the model."""
        state = self.state
        waiting = state is not None and state.waits_for_model(self.model_runs)
        if not waiting:
            self._banner_timer.stop()
            self.banner.set_text(self.leases.note(self.current) or self._settled_text(state))
            return
        if not self.banner.urgent or not self._banner_timer.isActive():
            self.banner.set_text(self._waiting_text())
        else:
            self.banner.set_text(refused_text(self._waiting_text()), urgent=True)
        self._banner_timer.start()

    def _find_predating(self) -> None:
        """The file list's "verified before a class was added" (from the review records)."""
        try:
            self.files.predates = verified_before(self.folder, self.cache.verified_classes(), self.settings.classes)
        except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
            self.message.emit(f"{self.cache.path}: review records not read ({exc})", True)

    def _settled_text(self, state: ReviewState | None) -> str:
        """The banner once the image has its proposals: "found nothing" only when the model's
        proposals past the threshold are none; a verified image that predates a class says so."""
        if state is None:
            return ""
        added = state.classes_added_since_verified(self.settings.classes)
        if added:
            names = ", ".join(f"'{c}'" for c in added)
            verb = "was" if len(added) == 1 else "were"
            return f"Verified before {names} {verb} added: review the new class, then Space"
        if (self.model_runs and state.model_done and self.current not in self.progress.failed
                and state.model_proposals_above_threshold() == 0):
            return NOTHING_FOUND
        return ""

    @Slot(str, str)
    def _model_state(self, state: str, message: str) -> None:
        self.model_state.emit(state, message)
        self.progress_changed.emit(self.progress.text(self.model_runs))
        self._show_where_the_model_is()

    def _show_image(self, image) -> None:
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
            self._show_where_the_model_is()
        self.boxes_changed.emit()

    @Slot(str, object)
    def _image_loaded(self, rel: str, image) -> None:
        if rel == self.current and not self._shown:
            self._show_image(image)

    @Slot(str, str)
    def _image_failed(self, rel: str, reason: str) -> None:
        self.files.set_unreadable(rel, reason)
        if rel != self.current:
            return
        self.canvas.set_image(None)
        self.session.mark_unreadable(rel, reason)
        if str(self.folder.image_path(rel)) not in (self._problem or ""):  # said once, not twice
            self._problem = reason
            self.message.emit(reason, True)

    @Slot(str, object)
    def _proposals_ready(self, rel: str, boxes) -> None:
        if self.progress.add(rel):
            self.progress_changed.emit(self.progress.text(self.model_runs))
        self.files.mark_proposals(rel)
        state = self.session.get(rel)
        if state is None or state.read_only:
            return
        rerun = rel == self._rerun
        if rerun:
            self._rerun = None
            self.message.emit(f"{rel}: {len(boxes)} proposal(s) from the new run.", False)
        refused = rel == self.current and self.banner.urgent
        if state.set_proposals(boxes, rerun=rerun) and rel == self.current:
            self._sync(full=True)
        if rel == self.current:
            self._show_where_the_model_is()
        if refused:
            self.message.emit(f"{rel}: {state.pending_count()} proposal(s) arrived; look at them, then Space "
                              f"verifies.", False)

    @Slot(str, str)
    def _detection_failed(self, rel: str, reason: str) -> None:
        if self.progress.fail(rel, reason):
            self.progress_changed.emit(self.progress.text(self.model_runs))
        self.files.mark_failed(rel)
        state = self.session.get(rel)
        if state is not None:
            state.model_done = True
        if rel == self.current:
            self.message.emit(f"{rel}: detection failed: {reason}", True)
            self._show_where_the_model_is()

    @Slot(int)
    def _canvas_selected(self, index: int) -> None:
        if self.state is not None:
            self.state.select(index)
            self.boxes_changed.emit()

    @Slot(int, object)
    def _canvas_edited(self, index: int, box) -> None:
        self.edit(lambda s: s.replace_box(index, box))

    @Slot(object)
    def _canvas_drawn(self, box) -> None:
        label = self._class_for_drawing()
        if label:
            self.edit(lambda s: s.add_box(box.with_label(label)))
