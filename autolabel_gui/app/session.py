"""One folder under review: opening an image's ReviewState and saving it back, without Qt.

What the window does on every key that leaves or completes an image lives here, so the rules
("never create a file for an untouched image", "never overwrite a file we could not read")
are tested without a display:

- Opening reads the image size from the header, the labels the image already has (VOC, YOLO
  or COCO, as accepted boxes), the review record and the cached proposals (so the first paint
  already shows them). A label file that cannot be parsed opens the image read-only and says
  why; it is never written over.
- Saving writes the VOC file only when the accepted boxes changed, or to mark the image
  verified; the review record goes to the cache when a decision about a proposal changed.
- Saving never replaces what someone else saved after this session opened the image
  (``app.conflicts``): the save comes back with a ``Conflict`` and ``resolve`` applies the
  annotator's choice.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

from autolabel_gui.app.conflicts import ABSENT, Conflict, ConflictChoice, Resolved, SharedVocWriter, read_current
from autolabel_gui.app.status import Status
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, image_size
from autolabel_gui.core.records import ImageKey
from autolabel_gui.core.review import ReviewState, without_duplicates
from autolabel_gui.core.view_filter import ViewFilter
from autolabel_gui.detection.run_plan import RunPlan
from autolabel_gui.formats.existing import load_existing_labels, load_foreign_labels
from autolabel_gui.formats.voc import AnnotationError, parse_voc, read_label_file


@dataclass(slots=True)
class Opened:
    """An opened image: its state and, when something is wrong, what (for the status bar)."""

    state: ReviewState
    problem: str | None = None


@dataclass(slots=True)
class Saved:
    """What a save did: whether the VOC file was written, and the error if it failed;
    ``conflict``: not written, someone else saved the file meanwhile (ours is kept aside)."""

    written: bool = False
    error: str | None = None
    conflict: Conflict | None = None


@dataclass(slots=True)
class _Failed:
    """An image whose last save failed: it is tried again with the same intent (``verify``);
    ``error`` says why it failed, for the question asked when the window closes."""

    verify: bool
    error: str


class ReviewSession:
    """Review states of the images opened so far (undo history survives leaving an image)."""

    def __init__(self, folder: ImageFolder, cache: ProposalCache | None, class_names: list[str],
                 plan: RunPlan | None, threshold: float, *, user: str | None = None) -> None:
        """``plan``: the cache runs whose proposals are shown (None: no model settings)."""
        self.folder = folder
        self.cache = cache
        self.class_names = list(class_names)
        self.plan = plan
        self.run_id = plan.id if plan is not None else None
        self.threshold = threshold
        self.view = ViewFilter()
        self._opened: dict[str, Opened] = {}
        self._unsaved: dict[str, _Failed] = {}
        self.voc = SharedVocWriter(folder, cache, user)
        self._loaded: dict[str, str | None] = {}
        """Per opened image, the identity of its VOC file as this session last read or wrote it
        (``SharedVocWriter.identity``: read before the image is loaded)."""
        self._conflicts: dict[str, Conflict] = {}
        self._by_rule: dict[str, str] = {}
        """Opened images whose file a rule accepted unseen, and nobody saved since -> its provenance."""

    def open(self, rel: str) -> Opened:
        """The state of image ``rel``: kept from an earlier visit, or loaded now."""
        opened = self._opened.get(rel)
        if opened is None:
            self._loaded[rel] = self.voc.identity(rel)  # read first: a save in between is a conflict
            opened = self._load(rel)
            self._opened[rel] = opened
        opened.state.set_threshold(self.threshold)
        opened.state.set_view(self.view)
        if not opened.state.read_only:
            proposals = self.cached_proposals(rel)
            if proposals is not None:
                opened.state.set_proposals(proposals)
        return opened

    def forget(self, rel: str) -> None:
        """Drop the state kept for ``rel``: the next ``open`` reads its files again (another
        annotator may have changed them). A failed save of it is forgotten too."""
        self._opened.pop(rel, None)
        self._unsaved.pop(rel, None)
        self._by_rule.pop(rel, None)

    def changed_on_disk(self, rel: str) -> bool:
        """Whether the VOC file of opened image ``rel`` changed since this session last read or
        wrote it: someone else wrote it (another annotator's window, ``label``)."""
        return rel in self._opened and self.voc.identity(rel) != self._loaded.get(rel)

    def opened(self) -> list[str]:
        """The images opened in this session so far."""
        return list(self._opened)

    def get(self, rel: str) -> ReviewState | None:
        opened = self._opened.get(rel)
        return None if opened is None else opened.state

    def cached_proposals(self, rel: str) -> list[Box] | None:
        """Every prompt group's proposals for the image as it is now, or None while one is missing."""
        if self.cache is None or self.plan is None:
            return None
        try:
            return self.plan.lookup(self.cache, ImageKey.from_path(self.folder.root, rel))
        except OSError:
            return None

    def set_plan(self, plan: RunPlan, class_names: list[str]) -> None:
        """The class list changed: opened images keep their boxes and take the proposals of the
        new plan where the cache has them all; the others wait for the model (``model_done``)."""
        self.plan = plan
        self.run_id = plan.id
        self.class_names = list(class_names)
        for rel, opened in self._opened.items():
            if opened.state.read_only:
                continue
            proposals = self.cached_proposals(rel)
            if proposals is None:
                opened.state.model_done = False
            else:
                opened.state.set_proposals(proposals)

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        for opened in self._opened.values():
            opened.state.set_threshold(threshold)

    def set_view(self, view: ViewFilter) -> None:
        """The classes and states shown, on every image (like the threshold)."""
        self.view = view
        for opened in self._opened.values():
            opened.state.set_view(view)

    def save(self, rel: str, *, verify: bool = False) -> Saved:
        """Write what changed; ``verify`` (Space, Ctrl+S) writes the file marked verified.

        A save that fails (full or read-only disk) leaves the edits in memory and is tried again,
        with the same intent, after the next save that works: fixing the disk loses nothing.
        """
        failed = self._unsaved.get(rel)
        verify = verify or (failed is not None and failed.verify)
        result = self._write(rel, verify)
        opened = self._opened.get(rel)
        if result.conflict is not None:  # ours is on disk aside: asked about, never retried blindly
            self._unsaved.pop(rel, None)
        elif result.error is None:
            self._unsaved.pop(rel, None)
            self.retry_unsaved()
        elif opened is not None and not opened.state.read_only:
            self._unsaved[rel] = _Failed(verify, result.error)
        return result

    def save_by_rule(self, rel: str, provenance: str) -> Saved:
        """Write ``rel``'s accepted boxes marked as accepted by a rule (``provenance``), never
        verified. A failure is reported, not retried: the batch lists it as not accepted."""
        return self._write(rel, False, provenance)

    def accepted_by_rule(self, rel: str) -> str | None:
        """The provenance of opened image ``rel``'s file when a rule accepted it and nobody saved since."""
        return self._by_rule.get(rel)

    def retry_unsaved(self) -> list[str]:
        """Save again the images whose save failed earlier; returns those that still fail."""
        for rel, failed in list(self._unsaved.items()):
            result = self._write(rel, failed.verify)
            error = result.error
            if error is None or result.conflict is not None:
                del self._unsaved[rel]
            else:
                failed.error = error
        return list(self._unsaved)

    def unsaved(self) -> dict[str, str]:
        """Images whose edits are only in memory (their last save failed) -> why it failed."""
        return {rel: failed.error for rel, failed in self._unsaved.items()}

    def _write(self, rel: str, verify: bool, rule: str | None = None) -> Saved:
        opened = self._opened.get(rel)
        if opened is None:
            return Saved()
        state = opened.state
        if state.read_only:
            if verify or state.boxes_changed:
                return Saved(error=f"{rel}: not saved, {opened.problem or 'opened read-only'}")
            return Saved()
        result = Saved()
        verified = verify or state.verified
        if verify or rule or state.boxes_changed:
            path = self.folder.voc_path(rel)
            try:
                written = self.voc.write(rel, self._labels(rel, state, verified, rule), self._loaded.get(rel))
            except (AnnotationError, OSError, ValueError) as exc:
                return Saved(error=f"{path}: not saved ({exc})")
            if isinstance(written, Conflict):
                self._conflicts[rel] = written
                return Saved(conflict=written)
            self._loaded[rel] = written
            result.written = True
            if verify:
                state.verified_classes = list(self.class_names)
            if rule and not verified:
                self._by_rule[rel] = rule
            else:
                self._by_rule.pop(rel, None)
        if self.cache is not None and self.run_id is not None and (state.record_changed or result.written):
            record = state.record(self.run_id)
            record.accepted_by_rule = self._by_rule.get(rel)
            try:
                self.cache.put_review(rel, record)
            except sqlite3.Error as exc:  # not marked saved: the record is written again next time
                result.error = f"{self.cache.path}: the rejected proposals of {rel} are not remembered ({exc})"
                return result
        state.mark_saved(verified)
        return result

    def mark_unreadable(self, rel: str, reason: str) -> None:
        """The image's pixels cannot be decoded (its header could): nobody may verify or save
        boxes for a picture they cannot see, so it becomes read-only with ``reason``."""
        opened = self._opened.get(rel)
        if opened is not None:
            opened.state.read_only = True
            opened.problem = opened.problem or reason

    def status(self, rel: str) -> Status | None:
        """The status of an image opened in this session (None: not opened, ask the file)."""
        opened = self._opened.get(rel)
        if opened is None:
            return None
        if opened.state.verified:
            return Status.VERIFIED
        if rel in self._by_rule:
            return Status.RULE_ACCEPTED
        if self.folder.voc_path(rel).exists():
            return Status.IN_REVIEW
        return None

    def _labels(self, rel: str, state: ReviewState, verified: bool, rule: str | None = None) -> ImageLabels:
        return ImageLabels.for_image(self.folder.image_path(rel).absolute(), state.width, state.height,
                                     state.accepted_boxes(), verified, rule)

    def _load(self, rel: str) -> Opened:
        try:
            width, height = image_size(self.folder.image_path(rel))
        except ImageLoadError as exc:
            return Opened(ReviewState(0, 0, read_only=True, threshold=self.threshold), str(exc))
        record = self.cache.get_review(rel) if self.cache is not None else None
        voc = self.folder.voc_path(rel)
        prelabels = self._prelabels(voc, self._loaded.get(rel))
        try:
            labels = (load_foreign_labels if prelabels is not None else load_existing_labels)(
                self.folder, rel, self.class_names)
        except (AnnotationError, ImageLoadError, OSError, ValueError) as exc:
            problem = f"{exc}; opened read-only, the file is left as it is"
            return Opened(ReviewState(width, height, read_only=True, threshold=self.threshold), problem)
        if record is not None and (prelabels is not None or not voc.exists()):
            record = record.without_accepted()  # the file that held them is gone
        if (labels is not None and labels.width and labels.height and (labels.width, labels.height) != (width, height)
                and voc.is_file()):
            # Its boxes belong to another picture (resized, replaced, or turned by a tool that
            # ignores EXIF): saving would clip them to this one and lose them.
            problem = (f"{voc}: made for a {labels.width}x{labels.height} image, but the "
                       f"image is {width}x{height}; opened read-only, the file is left as it is")
            return Opened(ReviewState(width, height, labels.boxes, read_only=True, threshold=self.threshold), problem)
        boxes = labels.boxes if labels is not None else []
        verified = labels.verified if labels is not None else False
        if labels is not None and labels.accepted_by_rule and prelabels is None:
            self._by_rule[rel] = labels.accepted_by_rule
        state = ReviewState(width, height, boxes, verified=verified, record=record, threshold=self.threshold)
        if prelabels:
            # Shown as proposals until this model's own arrive (from the cache, at once, when
            # the pre-labelling run had these settings): never as boxes someone accepted.
            state.set_proposals(without_duplicates(prelabels, boxes), from_model=False)
        return Opened(state)

    def _prelabels(self, voc: Path, digest: str | None) -> list[Box] | None:
        """The boxes of a VOC file that ``label --voc-dir`` wrote and nobody changed since (its
        ``digest``, read by ``open``, is one ``label`` recorded, and it is not verified), as
        proposals without a score; None for any other file (a person's work stays accepted)."""
        if self.cache is None or digest is None or digest == ABSENT:
            return None
        try:
            if not self.cache.wrote(digest):
                return None
            data = read_label_file(voc)
        except (AnnotationError, OSError, sqlite3.Error):
            return None
        if hashlib.sha256(data).hexdigest() != digest:  # replaced since open() read it
            return None
        try:
            labels = parse_voc(data, voc)
        except AnnotationError:
            return None
        if labels.verified:
            return None
        return [replace(b, score=None, state=BoxState.PROPOSED) for b in labels.boxes]

    # ------------------------------------------------------------------ conflicts

    def conflict(self, rel: str) -> Conflict | None:
        """The conflict of ``rel``'s last save, until ``resolve`` settles it."""
        return self._conflicts.get(rel)

    def identity(self, rel: str) -> str | None:
        """The identity (sha256 or ``absent``) of the VOC file this session last loaded or wrote."""
        return self._loaded.get(rel)

    def resolve(self, rel: str, choice: ConflictChoice, *, verify: bool = False) -> Resolved:
        """Settle the conflict of ``rel``'s last save (``app.conflicts.ConflictChoice``).

        THEIRS reloads their file (my copy stays aside); MINE keeps their file aside and writes
        mine; MERGE keeps theirs aside and writes their boxes plus mine (same class and IoU >=
        0.7 once), verified only if both were, or ``verify`` (the annotator verifies now). If
        the file changed yet again, nothing is written and ``Resolved.conflict`` says so.
        """
        conflict = self._conflicts.pop(rel, None)
        if conflict is None or rel not in self._opened:
            return Resolved(rel, choice, error=f"{rel}: no conflict to resolve")
        kept = [conflict.mine_copy]
        if choice is ConflictChoice.THEIRS:
            self._reopen(rel)
            return Resolved(rel, choice, kept=kept, boxes=len(conflict.theirs.boxes),
                            verified=conflict.theirs.verified)
        path = self.folder.voc_path(rel)
        try:
            data = read_current(path)
            if data is not None:
                kept.append(self.voc.keep_copy(rel, data, conflict.saved_by or "other"))
        except OSError as exc:
            self._conflicts[rel] = conflict
            return Resolved(rel, choice, error=f"{path}: their version could not be kept aside ({exc}); not saved")
        mine = conflict.mine
        if choice is ConflictChoice.MINE:
            labels = mine
        else:
            theirs = conflict.theirs
            boxes = list(theirs.boxes) + without_duplicates(mine.boxes, theirs.boxes)
            verified = (theirs.verified and mine.verified) or verify
            labels = ImageLabels(mine.filename, mine.width, mine.height, mine.depth, boxes, verified,
                                 mine.folder, mine.path)
        try:
            written = self.voc.write(rel, labels, conflict.theirs_sha256)
        except (AnnotationError, OSError, ValueError) as exc:
            self._conflicts[rel] = conflict
            return Resolved(rel, choice, kept=kept, error=f"{path}: not saved ({exc})")
        if isinstance(written, Conflict):
            self._conflicts[rel] = written
            return Resolved(rel, choice, kept=kept + [written.mine_copy], conflict=written)
        self._loaded[rel] = written
        state = self._opened[rel].state
        if self.cache is not None and self.run_id is not None:
            try:
                self.cache.put_review(rel, state.record(self.run_id))
            except sqlite3.Error:
                pass  # the file is what matters; the record is written again with the next save
        if choice is ConflictChoice.MINE:
            state.mark_saved(labels.verified)
        else:
            self._reopen(rel)
        return Resolved(rel, choice, written=True, kept=kept, boxes=len(labels.boxes), verified=labels.verified)

    def _reopen(self, rel: str) -> None:
        """Forget the state of ``rel`` and load it again from its file."""
        self.forget(rel)
        self.open(rel)
