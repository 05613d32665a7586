"""The review of one image: its boxes, what the human decided about each, and undo/redo.

Qt-free so that every keyboard flow can be tested without a display and so the rules live in
one place (see docs/decisions/0006-review-state.md). Each box is an ``Item``: the ``Box`` as it
is now plus where it came from (a model proposal, the annotation file, or drawn by hand).

Rules:
- A proposal is PROPOSED until the human acts on it. Accepting, moving, resizing or giving it a
  class accepts it; deleting it rejects it (it stays in the list, hidden, and is remembered in
  the ``ReviewRecord`` so it never comes back on this image until the detector runs again).
- Deleting an accepted box removes it (an accepted *proposal* goes back to REJECTED instead,
  so the record still says the proposal was wrong).
- Only ACCEPTED boxes are ever saved.
- A pending proposal is visible when its score reaches the threshold. Proposals that duplicate
  an accepted box (IoU >= ``DUPLICATE_IOU`` and the same class) never enter the list.
- The view filter (``core.view_filter``: classes switched off, only pending / only accepted)
  hides boxes on top of the threshold. Keys reach only what is shown, so Space and Ctrl+S never
  settle a hidden proposal; and while one past the threshold is hidden, nobody has seen it, so
  the image cannot be verified (``verify_blocker``).
- Order (Tab, "next pending") is the list order: boxes from the file first in file order, then
  proposals by descending score (the model's surest first), then boxes drawn by hand.
- Undo keeps whole snapshots: items are immutable, so a snapshot is one tuple of references.
- An image is verified only on what the model has seen: while the model runs, verifying waits
  until its proposals for this image arrived (``model_done``); see ``verify_blocker``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.records import Outcome, ReviewRecord
from autolabel_gui.core.view_filter import ViewFilter

DUPLICATE_IOU = 0.7
"""A proposal this close to an accepted box of the same class is the same object: hidden."""

SAME_PROPOSAL_IOU = 0.9
"""A proposal this close to a remembered (settled) one of the same class is that proposal again."""

DUPLICATE_OFFSET = 10.0
"""Ctrl+D puts the copy this many pixels right and down, so it is visibly a second box."""


class Blocker(str, enum.Enum):
    """Why an image cannot be verified now (``ReviewState.verify_blocker``); the window words
    each one (``app.folder_review.refusal_text``), nothing parses them."""

    READ_ONLY = "read-only"
    WAITING_FOR_MODEL = "waiting for the model"
    HIDDEN_PENDING = "hidden proposals"
    """The view filter hides pending proposals."""
    UNSEEN_PROPOSALS = "proposals neither shown nor reviewed"
    """A model proposal past the threshold is neither on the image nor recorded as decided:
    verifying then would say "nobody found anything" without a look."""


class Origin(str, enum.Enum):
    PROPOSAL = "proposal"
    FILE = "file"
    DRAWN = "drawn"


@dataclass(frozen=True, slots=True)
class Item:
    """A box on this image and its history: ``proposal`` is the detector's box, unchanged."""

    box: Box
    origin: Origin
    proposal: Box | None = None

    @property
    def pending(self) -> bool:
        return self.box.state is BoxState.PROPOSED

    @property
    def accepted(self) -> bool:
        return self.box.state is BoxState.ACCEPTED

    @property
    def rejected(self) -> bool:
        return self.box.state is BoxState.REJECTED


def _same_object(a: Box, b: Box, iou: float) -> bool:
    return a.label == b.label and a.iou(b) >= iou


def without_duplicates(proposals: Sequence[Box], accepted: Sequence[Box]) -> list[Box]:
    """The proposals that do not repeat an accepted box (the window hides those; so does ``label``)."""
    return [p for p in proposals if not any(_same_object(p, a, DUPLICATE_IOU) for a in accepted)]


Snapshot = tuple[tuple[Item, ...], int]
"""The boxes and the selected index: one undo step (items are immutable, so sharing is safe)."""


class ReviewState:
    """Boxes, selection and undo history of one image of ``width`` x ``height`` pixels."""

    def __init__(self, width: int, height: int, boxes: Iterable[Box] = (), *, verified: bool = False,
                 read_only: bool = False, record: ReviewRecord | None = None, threshold: float = 0.35) -> None:
        self.width = width
        self.height = height
        self.verified = verified
        self.read_only = read_only
        self.threshold = threshold
        self.view = ViewFilter()
        self.items: tuple[Item, ...] = tuple(
            Item(b.with_state(BoxState.ACCEPTED), Origin.FILE) for b in boxes)
        self.selected = -1
        self._settled: list[Box] = list(record.rejected) if record else []
        self._base_outcomes: list[Outcome] = list(record.outcomes) if record else []
        self.verified_classes: list[str] | None = record.verified_classes if record else None
        """The class list of the last verification (kept in the review record)."""
        self._proposals: tuple[Box, ...] | None = None
        self.model_done = False
        """The detector's proposals for this image (under the current settings) have arrived,
        or it reported that it cannot process the image: either way it has seen it."""
        self._undo: list[Snapshot] = []
        self._redo: list[Snapshot] = []
        self._saved_boxes = self.accepted_boxes()
        self._saved_record = self._record_key()

    # ------------------------------------------------------------------ queries

    def passes_threshold(self, index: int) -> bool:
        """Accepted boxes, and pending proposals that reach the threshold: the image's boxes
        as far as verifying is concerned (rejected proposals are gone)."""
        item = self.items[index]
        if item.accepted:
            return True
        if item.rejected:
            return False
        return item.box.passes(self.threshold)

    def is_visible(self, index: int) -> bool:
        """Drawn and reachable by the keys: past the threshold and shown by the view filter."""
        return self.passes_threshold(index) and self.view.shows(self.items[index].box)

    def visible_indices(self) -> list[int]:
        return [i for i in range(len(self.items)) if self.is_visible(i)]

    def hidden_indices(self) -> list[int]:
        """Boxes past the threshold that the view filter hides (for "3 boxes hidden")."""
        return [i for i in range(len(self.items))
                if self.passes_threshold(i) and not self.view.shows(self.items[i].box)]

    def hidden_pending_count(self) -> int:
        """Pending proposals past the threshold that the view filter hides: nobody saw them."""
        return sum(1 for i in self.hidden_indices() if self.items[i].pending)

    def display_boxes(self) -> list[Box]:
        """One box per item (indices match ``items``); hidden ones carry state REJECTED."""
        return [it.box if self.is_visible(i) else it.box.with_state(BoxState.REJECTED)
                for i, it in enumerate(self.items)]

    def accepted_boxes(self) -> list[Box]:
        """What the VOC file gets: accepted boxes only, scores dropped."""
        return [replace(it.box, score=None) for it in self.items if it.accepted]

    def pending_count(self) -> int:
        return sum(1 for i, it in enumerate(self.items) if it.pending and self.is_visible(i))

    def label_counts(self) -> dict[str, int]:
        """Boxes per class past the threshold (accepted and pending), for the class panel: a
        class switched off keeps its count, so the panel still lists it to switch it on."""
        counts: dict[str, int] = {}
        for i in range(len(self.items)):
            if not self.passes_threshold(i):
                continue
            label = self.items[i].box.label
            counts[label] = counts.get(label, 0) + 1
        return counts

    @property
    def boxes_changed(self) -> bool:
        """The accepted boxes differ from what was last loaded or saved: the file must be written."""
        return self.accepted_boxes() != self._saved_boxes

    @property
    def record_changed(self) -> bool:
        """Decisions about proposals changed since the last save: the review record must be written."""
        return self._record_key() != self._saved_record

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def record(self, run_id: str) -> ReviewRecord:
        """Settled proposals (REJECTED: rejected; ACCEPTED: accepted or edited, now in the file)
        and the outcome of every proposal decided so far, for ``autolabel-gui stats``."""
        settled = list(self._settled)
        outcomes = list(self._base_outcomes)
        for it in self.items:
            if it.origin is Origin.PROPOSAL and not it.pending:
                assert it.proposal is not None
                settled.append(it.proposal.with_state(it.box.state))
                outcomes.append(self._outcome(it))
            elif it.origin is Origin.DRAWN and it.accepted:
                outcomes.append(Outcome(it.box.label, None, "accepted"))
        return ReviewRecord(run_id, settled, outcomes, self.verified_classes)

    def model_proposals_above_threshold(self) -> int:
        """The model's proposals for this image past the threshold, decided or not: "found
        nothing" means this is 0, never that they were all reviewed or hidden."""
        return sum(1 for p in self._proposals or () if p.passes(self.threshold))

    def unseen_proposals(self) -> int:
        """Model proposals past the threshold that are neither a box of this image (in any
        state), nor a duplicate of an accepted box, nor recorded as decided earlier."""
        if not self._proposals:
            return 0
        accepted = [it.box for it in self.items if it.accepted]
        mine = {it.proposal for it in self.items if it.proposal is not None}
        settled = self._settled + [it.proposal for it in self.items if it.proposal is not None and not it.pending]
        return sum(1 for p in self._proposals
                   if p.passes(self.threshold) and p.with_state(BoxState.PROPOSED) not in mine
                   and not any(_same_object(p, a, DUPLICATE_IOU) for a in accepted)
                   and not any(_same_object(p, b, SAME_PROPOSAL_IOU) for b in settled))

    def classes_added_since_verified(self, classes: Iterable[str]) -> list[str]:
        """Classes of ``classes`` that did not exist when this image was verified (its file may
        miss objects of them); empty when it is not verified or that is not known."""
        if not self.verified or self.verified_classes is None:
            return []
        return [c for c in classes if c not in self.verified_classes]

    @staticmethod
    def _outcome(item: Item) -> Outcome:
        proposal = item.proposal
        assert proposal is not None
        if item.rejected:
            return Outcome(proposal.label, proposal.score, "rejected")
        same = item.box.xyxy == proposal.xyxy and item.box.label == proposal.label
        return Outcome(proposal.label, proposal.score, "accepted" if same else "edited")

    def _record_key(self) -> tuple:
        return tuple((it.box.xyxy, it.box.label, it.box.state) for it in self.items
                     if it.origin is not Origin.FILE and not it.pending)

    # ------------------------------------------------------------------ machine input

    def set_proposals(self, proposals: Iterable[Box], *, rerun: bool = False, from_model: bool = True) -> bool:
        """Take the detector's proposals for this image; True when the list changed.

        Pending and rejected proposals from before are replaced; accepted ones stay. Proposals
        the human already settled and duplicates of accepted boxes are left out. With ``rerun``
        (the R key) rejections are forgotten: the detector ran again, its new guesses are shown.
        New proposals start a new undo history: the old snapshots hold the old proposals.
        ``from_model=False``: stand-ins (pre-labels a ``label`` run wrote into the VOC file under
        other settings) shown until this model's proposals arrive; they do not count as seen.
        """
        proposals = tuple(proposals)
        self.model_done = self.model_done or from_model
        if proposals == self._proposals and not rerun:
            return False
        self._proposals = proposals
        if rerun:
            self._base_outcomes += [self._outcome(it) for it in self.items
                                    if it.origin is Origin.PROPOSAL and it.rejected]
            self._settled = [b for b in self._settled if b.state is not BoxState.REJECTED]
        # Accepted proposals are the human's boxes now; rejected ones stay (hidden) unless re-run.
        kept = [it for it in self.items
                if it.origin is not Origin.PROPOSAL or (it.accepted if rerun else not it.pending)]
        accepted = [it.box for it in kept if it.accepted]
        settled = self._settled + [it.proposal for it in kept if it.proposal is not None]
        fresh = []
        for p in sorted(without_duplicates(proposals, accepted), key=lambda b: -(b.score or 0.0)):
            if any(_same_object(p, s, SAME_PROPOSAL_IOU) for s in settled):
                continue
            box = p.with_state(BoxState.PROPOSED)
            fresh.append(Item(box, Origin.PROPOSAL, box))
        drawn = [it for it in kept if it.origin is Origin.DRAWN]
        others = [it for it in kept if it.origin is not Origin.DRAWN]
        self.items = (*others, *fresh, *drawn)
        self.selected = -1
        self._undo.clear()
        self._redo.clear()
        return True

    def waits_for_model(self, model_runs: bool) -> bool:
        """``verify_blocker``'s "waiting for the model", alone: the canvas banner asks this on
        every redraw, without the cost of the other checks (``unseen_proposals`` compares every
        proposal with every settled one)."""
        return not self.read_only and model_runs and not self.model_done and not self.verified

    def verify_blocker(self, model_runs: bool) -> Blocker | None:
        """Why this image cannot be marked verified now, or None when it can.

        ``model_runs``: a detector is (being) loaded for this folder. Then an image is verified
        only once the model has seen it, so a verified file with no boxes always means "the
        model and the annotator found nothing", never "nobody looked". Without a model (no
        weights, manual review) the annotator's own boxes are all there is. An image verified
        earlier stays verifiable: its file already says a person checked it.

        Pending proposals hidden by the view filter (a class switched off, "only accepted")
        block it too, for the same reason: verified must never mean "nobody looked at these".
        Accepting them unseen would be worse, so they wait, unsettled, until shown. Proposals
        under the threshold do not block: the threshold says the model's guess is noise.
        """
        if self.read_only:
            return Blocker.READ_ONLY
        if self.waits_for_model(model_runs):
            return Blocker.WAITING_FOR_MODEL
        if self.hidden_pending_count():
            return Blocker.HIDDEN_PENDING
        if self.unseen_proposals():
            return Blocker.UNSEEN_PROPOSALS
        return None

    def reject_visible_pending(self) -> int:
        """Verifying with pending proposals in view (Ctrl+S): the annotator saw them and did not
        accept them, so they are recorded as rejected (one undo step); returns how many."""
        return self._settle_visible_pending(
            lambda item: item.proposal.with_state(BoxState.REJECTED) if item.proposal else item.box, -1)

    def set_threshold(self, threshold: float) -> None:
        """Not an undo step: the threshold is a view of the proposals, not a decision."""
        self.threshold = threshold
        self._keep_selection_visible()

    def set_view(self, view: ViewFilter) -> None:
        """Not an undo step either: which classes and states are shown."""
        self.view = view
        self._keep_selection_visible()

    def _keep_selection_visible(self) -> None:
        """A hidden box is never selected: a key must not edit what the annotator cannot see."""
        if self.selected >= 0 and not self.is_visible(self.selected):
            self.selected = -1

    # ------------------------------------------------------------------ selection

    def select(self, index: int) -> None:
        self.selected = index if 0 <= index < len(self.items) and self.is_visible(index) else -1

    def select_next(self) -> None:
        self.selected = self._step(self.selected, +1, lambda i: True)

    def select_prev(self) -> None:
        self.selected = self._step(self.selected, -1, lambda i: True)

    def _step(self, start: int, direction: int, want) -> int:
        """The next visible index after ``start`` (wrapping) that ``want`` accepts, or -1."""
        n = len(self.items)
        if n == 0:
            return -1
        if start < 0:
            start = -1 if direction > 0 else n
        for k in range(1, n + 1):
            i = (start + direction * k) % n
            if self.is_visible(i) and want(i):
                return i
        return -1

    def _next_pending(self, after: int) -> int:
        return self._step(after, +1, lambda i: self.items[i].pending)

    # ------------------------------------------------------------------ edits (each one undo step)

    def accept_selected(self) -> bool:
        """Enter: accept the selected proposal, then select the next pending one."""
        i = self.selected
        if i < 0 or self.read_only:
            return False
        changed = self.items[i].pending
        if changed:
            self._commit(self._with(i, self.items[i].box.with_state(BoxState.ACCEPTED)), i)
        nxt = self._next_pending(i)
        self.selected = nxt if nxt >= 0 else i
        self._keep_selection_visible()  # "only pending" shows: the accepted box just left the view
        return changed

    def accept_all_visible(self) -> int:
        """Space: accept every proposal shown at the current threshold; returns how many."""
        return self._settle_visible_pending(lambda item: item.box.with_state(BoxState.ACCEPTED), self.selected)

    def _settle_visible_pending(self, settle: Callable[[Item], Box], selected: int) -> int:
        """Replace every pending proposal in view by ``settle(item)``, as one undo step."""
        if self.read_only:
            return 0
        targets = [i for i in self.visible_indices() if self.items[i].pending]
        if not targets:
            return 0
        items = list(self.items)
        for i in targets:
            items[i] = replace(items[i], box=settle(items[i]))
        self._commit(tuple(items), selected)
        return len(targets)

    def delete_selected(self) -> bool:
        """Delete/Backspace/X: reject a proposal, remove any other box; select the next one."""
        i = self.selected
        if i < 0 or self.read_only:
            return False
        item = self.items[i]
        if item.origin is Origin.PROPOSAL:
            assert item.proposal is not None
            items = self._with(i, item.proposal.with_state(BoxState.REJECTED))
            self._commit(items, i)
            self.selected = self._step(i, +1, lambda j: True)
        else:
            items = self.items[:i] + self.items[i + 1:]
            self._commit(items, -1)
            self.selected = self._step(i - 1, +1, lambda j: True)
        return True

    def set_class(self, label: str) -> bool:
        """1..9 or the class picker: give the selected box a class (a proposal is accepted by it)."""
        return self._edit_selected(lambda b: b.with_label(label))

    def toggle_difficult(self) -> bool:
        """VOC's ``difficult`` on the selected box; like any edit, it accepts a proposal."""
        return self._edit_selected(lambda b: replace(b, difficult=not b.difficult))

    def toggle_truncated(self) -> bool:
        """VOC's ``truncated`` on the selected box; like any edit, it accepts a proposal."""
        return self._edit_selected(lambda b: replace(b, truncated=not b.truncated))

    def move_selected(self, dx: float, dy: float) -> bool:
        """Arrow keys: move without resizing; stops at the image border."""
        return self._edit_selected(lambda b: b.moved(dx, dy, self.width, self.height))

    def replace_box(self, index: int, box: Box) -> bool:
        """A move or resize dragged on the canvas: new geometry for box ``index``."""
        if self.read_only or not 0 <= index < len(self.items):
            return False
        old = self.items[index].box
        new = replace(old, x0=box.x0, y0=box.y0, x1=box.x1, y1=box.y1).clamped(self.width, self.height)
        if new.area <= 0:
            return False
        self.selected = index
        return self._edit_selected(lambda b: new)

    def set_geometry(self, changes: Mapping[int, tuple[float, float, float, float]]) -> int:
        """New corners for boxes by index (a box fitted to its object), as one undo step.

        Class and flags stay; like any edit, a proposal is accepted by it. A corner set with no
        area inside the image, or equal to the box's, changes nothing. Returns how many changed.
        """
        if self.read_only:
            return 0
        items = list(self.items)
        count = 0
        for i, (x0, y0, x1, y1) in changes.items():
            if not 0 <= i < len(items):
                continue
            old = items[i].box
            new = replace(old, x0=x0, y0=y0, x1=x1, y1=y1).clamped(self.width, self.height)
            new = new.with_state(BoxState.ACCEPTED)
            if new.area <= 0 or new == old:
                continue
            items[i] = replace(items[i], box=new)
            count += 1
        if count:
            self._commit(tuple(items), self.selected)
        return count

    def add_box(self, box: Box) -> bool:
        """A box drawn with W; it is selected so a digit can give it its class."""
        if self.read_only:
            return False
        b = replace(box, score=None, state=BoxState.ACCEPTED).clamped(self.width, self.height)
        if b.area <= 0:
            return False
        self._commit((*self.items, Item(b, Origin.DRAWN)), len(self.items))
        return True

    def duplicate_selected(self) -> bool:
        """Ctrl+D: an accepted copy of the selected box, offset a little, selected."""
        i = self.selected
        if i < 0 or self.read_only:
            return False
        src = self.items[i].box
        copy = replace(src, score=None, state=BoxState.ACCEPTED)
        copy = copy.moved(DUPLICATE_OFFSET, DUPLICATE_OFFSET, self.width, self.height)
        self._commit((*self.items, Item(copy, Origin.DRAWN)), len(self.items))
        return True

    def undo(self) -> bool:
        return self._travel(self._undo, self._redo)

    def redo(self) -> bool:
        return self._travel(self._redo, self._undo)

    def _travel(self, source: list[Snapshot], target: list[Snapshot]) -> bool:
        """Restore the newest snapshot of ``source``; the current state goes onto ``target``."""
        if not source:
            return False
        target.append((self.items, self.selected))
        self.items, selected = source.pop()
        self.select(selected)
        return True

    def mark_saved(self, verified: bool, classes: Iterable[str] | None = None) -> None:
        """The file and record now hold this state; ``classes``: the class list it was verified with."""
        self.verified = verified
        if verified and classes is not None:
            self.verified_classes = list(classes)
        self._saved_boxes = self.accepted_boxes()
        self._saved_record = self._record_key()

    # ------------------------------------------------------------------ internals

    def _with(self, index: int, box: Box) -> tuple[Item, ...]:
        return self.items[:index] + (replace(self.items[index], box=box),) + self.items[index + 1:]

    def _edit_selected(self, change) -> bool:
        i = self.selected
        if i < 0 or self.read_only:
            return False
        old = self.items[i].box
        new = change(old).with_state(BoxState.ACCEPTED)
        if new == old:
            return False
        self._commit(self._with(i, new), i)
        return True

    def _commit(self, items: tuple[Item, ...], selected: int) -> None:
        self._undo.append((self.items, self.selected))
        self._redo.clear()
        self.items = items
        self.selected = selected
        self._keep_selection_visible()
