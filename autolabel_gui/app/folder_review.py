"""The one owner of an open folder: its review, the model's progress, leases and the verify rules.

Qt-free, so every rule of reviewing a folder is tested without a display (ADR 0014). The window's
``ReviewController`` only translates: keys become calls here, and what this reports to its
``ReviewListener`` becomes canvas updates and Qt signals. The file list and the grid read the
statuses from ``statuses``; nobody else keeps a copy of the folder's state.

What it owns, and the rules written once here:

- The open image (``current``), the ``ReviewSession`` of the images opened so far, their
  statuses (``ImageStatuses``), the model's progress and each image's "the model has seen it".
- Verifying: Space (``accept_all_and_next``), Ctrl+S (``verify_current``) and the grid
  (``accept_and_verify``) go through one gate, ``ReviewState.verify_blocker``, and one save;
  a refusal is a typed ``Blocker``, worded here once.
- Navigation: "next unverified" skips verified images and those another annotator holds.
- Leases and conflicts (``app.shared_folder``, ``app.conflicts``): the image on screen is
  leased; a save that finds someone else's newer file asks ``ask_conflict``.
- What the model should do next: the image on screen unless it has proposals, then the whole
  folder in navigation order (``ModelPort.prioritize``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from autolabel_gui.app.accept_rule import AcceptRule, Audit, changed
from autolabel_gui.app.confidence import ConfidenceIndex, scores_of
from autolabel_gui.app.conflicts import Conflict, ConflictChoice
from autolabel_gui.app.image_statuses import ImageStatuses
from autolabel_gui.app.model_progress import (
    ModelProgress,
    ModelState,
    ModelStatus,
    detection_order,
    refused_text,
    waiting_text,
)
from autolabel_gui.app.project import ProjectSettings, plan_of
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.app.shared_folder import FolderLeases, held_text
from autolabel_gui.app.status import Status, verified_before
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.leftovers import sweep_leftovers
from autolabel_gui.core.review import Blocker, ReviewState
from autolabel_gui.core.view_filter import ViewFilter

NOTHING_FOUND = "The model found nothing here (above the threshold)"
"""Said so that an image with no boxes never looks like one still waiting for the model."""


class ModelPort(Protocol):
    """The detector as the review sees it (``gui.worker.DetectionController`` in the window)."""

    @property
    def state(self) -> ModelStatus: ...

    def position(self, rel: str) -> int | None: ...

    def prioritize(self, current: str | None, upcoming: list[str]) -> None: ...

    def rerun(self, relpath: str) -> None: ...

    def reconfigure(self, settings: ProjectSettings) -> None: ...


class ReviewListener(Protocol):
    """What the window is told; each call says what changed, the data is read from the review."""

    def on_message(self, text: str, error: bool) -> None:
        """A line for the status bar."""

    def on_opened(self, rel: str, row: int, total: int) -> None:
        """``rel`` is the open image now: show its picture."""

    def on_boxes(self, full: bool) -> None:
        """The open image's boxes changed (``full``: redraw them all)."""

    def on_banner(self) -> None:
        """``FolderReview.banner()`` may say something else now."""

    def on_progress(self, text: str) -> None:
        """The folder's model figure, "Proposals 12/43"."""

    def on_rows(self, rels: Iterable[str] | None) -> None:
        """These images' statuses or marks changed (None: every image's)."""


@dataclass(frozen=True, slots=True)
class Banner:
    """What the canvas says over the open image; ``waiting``: it waits for the model (the window
    asks again every few hundred ms while it does)."""

    text: str = ""
    urgent: bool = False
    waiting: bool = False


def hidden_refusal(state: ReviewState) -> str:
    """Why Space / Ctrl+S did nothing while the view filter hides pending proposals."""
    count = state.hidden_pending_count()
    return (f"Not verified: {count} pending proposal{'s are' if count != 1 else ' is'} hidden by the view "
            f"({state.view.text}). Show them (View ▸ Show everything again), then decide.")


def unseen_refusal(state: ReviewState) -> str:
    return (f"Not verified: {state.unseen_proposals()} proposal(s) of the model are neither on the image "
            f"nor reviewed; press R to show the model's proposals again.")


class FolderReview:
    """Reviews ``folder`` with ``settings``; ``model`` detects, ``listener`` is told what changed."""

    def __init__(self, folder: ImageFolder, settings: ProjectSettings, model: ModelPort,
                 listener: ReviewListener, *, cache: ProposalCache | None = None,
                 session: ReviewSession | None = None, leases: FolderLeases | None = None) -> None:
        """``cache``, ``session``, ``leases``: given when the caller built them (the window's
        detector shares the cache; tests give each annotator their own lease holder)."""
        self.folder = folder
        self.settings = settings
        self.model = model
        self.listener = listener
        self.cache = cache if cache is not None else ProposalCache.for_folder(folder.root)
        plan = plan_of(settings)
        self.run_id = plan.id if plan is not None else None
        self.session = session if session is not None else ReviewSession(
            folder, self.cache, settings.classes, plan, settings.box_threshold)
        cached = plan.cached_relpaths(self.cache) if plan is not None else set()
        self.progress = ModelProgress.of(folder.images, cached)
        self.statuses = ImageStatuses(folder.images, folder.voc_path, self.progress.done, self.progress.failed,
                                      self.cache.output_digests())
        self.leases = leases if leases is not None else FolderLeases.for_folder(folder)
        self.manual = False
        """The annotator chose to review without the model: nothing waits for it."""
        self.ask_conflict: Callable[[Conflict], ConflictChoice] | None = None
        """Asked when a save finds the file saved by someone else meanwhile (the window's)."""
        self.current: str | None = None
        self.problem: str | None = None
        """Why the open image is read-only or unreadable, said once."""
        self._saved_threshold = settings.box_threshold
        self._rerun: str | None = None
        self._refused: str | None = None
        """The open image, after a verify key was refused because it waits for the model."""
        self.order: list[str] | None = None
        """The review order "next unverified" and the grid follow (None: folder order), e.g.
        the confidence order (``app.confidence``) or an audit's sample (``app.rule_batch``)."""
        self.audit: Audit | None = None
        """The accept-by-rule audit under way: verifying one of its images records whether the
        review changed the proposals."""
        self._in_order: frozenset[str] | None = None
        self.audit_done: Callable[[Audit], None] | None = None
        """Told when the audit's last image is verified (the window asks to confirm the batch)."""
        self._find_predating()

    # ------------------------------------------------------------------ life cycle

    def start(self, first: str | None = None) -> None:
        """Open ``first``; without it (or when it is gone), the first image not yet verified,
        or the first image when every one is."""
        sweep_leftovers(self.folder)
        for problem in self.folder.problems[:1]:
            self._say(f"{len(self.folder.problems)} problem(s) while listing: {problem}", True)
        self.scan_leases()
        if self.leases.problem:
            self._say(self.leases.problem, True)
        if first in self.folder.images:
            self.go_to(first)
        elif self.folder.images:
            row = self._next_unverified_row(-1)
            self.go_to(self.folder.images[max(row, 0)])
        else:
            self._say(f"{self.folder.root}: no images found", True)

    def close(self) -> None:
        """Save the open image and give back every lease."""
        self.save_current()
        self.leases.close()

    @property
    def state(self) -> ReviewState | None:
        return None if self.current is None else self.session.get(self.current)

    @property
    def model_runs(self) -> bool:
        """A model works (or loads) for this folder: images wait for it before being verified."""
        return not self.manual and self.model.state.state is not ModelState.UNAVAILABLE

    def set_manual(self, manual: bool) -> None:
        """Review without the model (existing labels, or drawing by hand), or with it again."""
        self.manual = manual
        self._queue_detection()
        self.listener.on_banner()
        self._tell_progress()
        self._say("Manual review: the model is off; Space verifies your boxes alone." if manual
                  else "The model is on again: images are verified once it has seen them.", False)

    # ------------------------------------------------------------------ navigation

    def go_to(self, rel: str) -> None:
        """Save the image being left (if the annotator changed it) and open ``rel``."""
        if rel == self.current:
            return
        self.save_current()
        self.leases.leave(self.session, self.current)
        self.current = rel
        self._refused = None
        had_leases = self.leases.book is not None
        opened = self.leases.open(self.session, rel)
        if had_leases and self.leases.problem:
            self._say(self.leases.problem, True)
        self.problem = opened.problem
        if rel in self.progress.failed:
            opened.state.model_done = True  # it has seen the image and could not process it
        elif opened.state.model_done and self.progress.add(rel):  # proposals from the cache
            self.statuses.mark_proposals(rel)
            self.listener.on_rows([rel])
            self._tell_progress()
        if opened.problem:
            self._say(opened.problem, True)
        elif rel in self.progress.failed:
            self._say(f"{rel}: detection failed: {self.progress.failed[rel]}", True)
        self._queue_detection()
        self.listener.on_opened(rel, self.statuses.row_of(rel), len(self.folder.images))
        self.listener.on_banner()

    def step(self, direction: int) -> None:
        """D / A: the next or previous image in folder order."""
        target = self.statuses.row_of(self.current) + direction
        if 0 <= target < len(self.folder.images):
            self.go_to(self.folder.images[target])
        else:
            self.save_current()
            self._say("Last image." if direction > 0 else "First image.", False)

    def next_unverified(self) -> bool:
        """The next image in the review order (after this one, then from the start) not yet
        verified, nor accepted by a rule, nor held by another annotator."""
        self.save_current()
        self.settle_audit()
        target = self.next_to_review(self.current)
        if target is None or target == self.current:
            if self.audit is not None:
                self._say(f"The audit's {len(self.audit.sample)} images are reviewed.", False)
            else:
                self._say(f"All {len(self.folder.images)} images are verified.", False)
            return False
        self.go_to(target)
        return True

    def next_to_review(self, after: str | None) -> str | None:
        """The image "next unverified" goes to from ``after``, in ``order`` (wrapping)."""
        if self.order is None:
            row = self.statuses.row_of(after)
            target = self._next_unverified_row(row)
            if target < 0:
                target = self._next_unverified_row(-1)
            return None if target < 0 else self.folder.images[target]
        order = self.order
        start = order.index(after) + 1 if after in order else 0
        for k in range(len(order)):
            rel = order[(start + k) % len(order)]
            if self._to_review(rel, self.statuses.status_of(rel)):
                return rel
        return None

    def confidence_index(self) -> ConfidenceIndex:
        """Every image's proposal scores as the cache holds them now (one lookup per image)."""
        return ConfidenceIndex(self.folder.images, self.session.cached_proposals)

    def set_order(self, order: list[str] | None) -> None:
        """Follow ``order`` from now on (None: folder order); images outside it are not visited."""
        self.order = order
        self._in_order = None if order is None else frozenset(order)

    def _next_unverified_row(self, row: int) -> int:
        """The next row after ``row`` (no wrap) not verified and not held by another annotator."""
        return self.statuses.next_row(row, +1, self._to_review)

    def _to_review(self, rel: str, status: Status | None) -> bool:
        """Not verified, nor accepted by a rule, nor held by another annotator. An image the list
        offers is read again first (one file head): another window or tool may have verified it
        since the list was read, and going there would verify it a second time under this name."""
        if status in (Status.VERIFIED, Status.RULE_ACCEPTED, None) or self.leases.held_by_other(rel):
            return False
        if rel != self.current and self._reread_status(rel) in (Status.VERIFIED, Status.RULE_ACCEPTED):
            return False
        return True

    def _reread_status(self, rel: str) -> Status | None:
        """``rel``'s status read from its file again; the list is told when that changed it."""
        before = self.statuses.status_of(rel)
        self.statuses.rescan(rel)
        after = self.statuses.status_of(rel)
        if after != before:
            self.listener.on_rows([rel])
        return after

    # ------------------------------------------------------------------ leases (timers call these)

    def scan_leases(self) -> None:
        """Who holds what now: the file list's marks; the image on screen becomes writable once
        its holder has moved on."""
        changed = self.leases.scan()
        if changed:
            self.statuses.held = {rel: held_text(h) for rel, h in self.leases.held.items()}
            for gone in changed:  # a lease that went: its holder may have saved the image
                if gone != self.current and not self.leases.held_by_other(gone):
                    self.statuses.rescan(gone)
            self.listener.on_rows(changed)
        for report in self.leases.reports():
            self._say(report, True)
        rel = self.current
        if rel is not None and self.leases.read_only_by_lease(rel) and not self.leases.held_by_other(rel):
            self.current = None  # open it again, leased this time
            self.go_to(rel)
            if not self.leases.read_only_by_lease(rel):
                self._say(f"{rel}: its holder moved on; it is yours to review now.", False)

    def renew_leases(self) -> None:
        for text in self.leases.renew(self.session, self.current):
            self._say(text, True)

    # ------------------------------------------------------------------ verifying

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
            self.listener.on_boxes(False)
            return
        self.listener.on_boxes(False)  # the last unverified image stays on screen: show its boxes accepted
        self._say(f"{self.current}: {count} proposal(s) accepted, verified.", False)
        self.next_unverified()

    def verify_current(self) -> None:
        """Ctrl+S: save verified as it is; pending proposals in view are recorded as rejected."""
        state = self.state
        if state is None or self._refuse_verify(state):
            return
        rejected = state.reject_visible_pending()
        if rejected:
            self.listener.on_boxes(True)
        if self.save_current(verify=True) and rejected and self.current is not None:
            self._say(f"Saved {self.folder.voc_path(self.current).name} (verified); {rejected} pending "
                      f"proposal{'s' if rejected != 1 else ''} recorded as rejected.", False)

    def accept_and_verify(self, rel: str) -> tuple[int, str | None]:
        """Space on an image of the grid: its lease, the verify gate, every visible proposal
        accepted, the file saved verified. Returns (proposals accepted, why it is not verified)."""
        refused = self.leases.claim(self.session, rel)
        if refused is not None:
            return 0, refused
        state = self.session.open(rel).state
        blocker = state.verify_blocker(self.model_runs)
        if blocker is not None:
            return 0, blocker.value
        count = state.accept_all_visible()
        saved = self.session.save(rel, verify=True)
        if saved.conflict is not None or saved.error:  # not written: no verification to count
            self._saved(rel, verify=False)
            # someone saved it meanwhile: theirs stays, ours is kept aside
            return count, saved.conflict.text if saved.conflict is not None else saved.error
        self._saved(rel, verify=True)
        return count, None

    def accept_by_rule(self, rel: str, provenance: str, rule: AcceptRule) -> str | None:
        """Write ``rel``'s shown proposals as accepted by ``rule`` (never verified), through the
        same lease, gate and save as Space; returns why it was not, or None. Only an image with
        no file of a person's (status "proposals ready", read from the disk once the lease is
        held: another window or tool may have saved it since the count) whose proposals still
        match the rule is accepted: nobody's work is replaced, nothing unsure is accepted unseen."""
        if rel == self.current:
            return "it is open on screen: yours to review"
        refused = self.leases.claim(self.session, rel)
        if refused is not None:
            return refused
        self.statuses.rescan(rel)
        status = self.statuses.status_of(rel)
        if status is not Status.PROPOSALS:
            return f"its status is '{status.value if status else 'gone'}'"
        if not rule.matches(scores_of(rel, self.session.cached_proposals(rel))):
            return "its proposals no longer match the rule (the image or its proposals changed)"
        state = self.session.open(rel).state
        if state.verified or self.session.changed_on_disk(rel):
            return "someone saved it meanwhile"
        if not all(item.pending for item in state.items):
            return "it has boxes of a person's"
        if not rule.matches(scores_of(rel, [item.box for item in state.items])):
            return "its proposals no longer match the rule (the image or its proposals changed)"
        blocker = state.verify_blocker(self.model_runs)
        if blocker is not None:
            return blocker.value
        state.accept_all_visible()
        saved = self.session.save_by_rule(rel, provenance)
        self._saved(rel, verify=False)
        if saved.conflict is not None:
            return saved.conflict.text
        return saved.error

    def grid_done(self) -> None:
        """The grid's page is verified: the leases it claimed go back (not the open image's)."""
        self.leases.drop_claims(keep=self.current)
        self.listener.on_boxes(False)

    def eligible_for_grid(self, rel: str) -> bool:
        """Unverified, readable, finished by the model and passing the same gate as Space: a
        grid page never holds an image still waiting for the model, or held by someone else."""
        if rel not in self.progress.done or self.leases.held_by_other(rel):
            return False
        if self._in_order is not None and rel not in self._in_order:
            return False
        if self.statuses.status_of(rel) in (Status.VERIFIED, Status.RULE_ACCEPTED, Status.UNREADABLE):
            return False
        state = self.open_state(rel)
        return not state.verified and state.verify_blocker(self.model_runs) is None

    def open_state(self, rel: str) -> ReviewState:
        """The review state of ``rel``, opened once (later proposals reach an opened state)."""
        state = self.session.get(rel)
        return state if state is not None else self.session.open(rel).state

    def _refuse_verify(self, state: ReviewState) -> bool:
        """Say why this image cannot be verified now, if it cannot; True when refused."""
        blocker = state.verify_blocker(self.model_runs)
        if blocker is None:
            return False
        if blocker is Blocker.WAITING_FOR_MODEL:
            self._refused = self.current
            self.listener.on_banner()
            self._say(refused_text(self._waiting_text()), True)
        else:
            self._say(self.refusal_text(blocker, state), True)
        return True

    def refusal_text(self, blocker: Blocker, state: ReviewState) -> str:
        """The status-bar line for a refused verify of the open image."""
        if blocker is Blocker.READ_ONLY:
            return f"{self.current}: not saved, {self.problem or 'opened read-only'}"
        if blocker is Blocker.HIDDEN_PENDING:
            return hidden_refusal(state)
        if blocker is Blocker.UNSEEN_PROPOSALS:
            return unseen_refusal(state)
        return refused_text(self._waiting_text())

    # ------------------------------------------------------------------ saving

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
            self._say(saved.error, True)
            return False
        self._saved(rel, verify)
        if verify:
            self._say(f"Saved {self.folder.voc_path(rel).name} (verified).", False)
        self.listener.on_boxes(False)
        return True

    def _saved(self, rel: str, verify: bool) -> None:
        """The statuses after a save of ``rel``; an audited image's review is counted."""
        if verify and self.audit is not None and rel in self.audit.sample:
            self._audited(rel, self.audit)
        self.settle_audit()
        status = self.session.status(rel)
        changed = status is not None and self.statuses.set(rel, status)
        if verify and self.statuses.predates.pop(rel, None) is not None:
            changed = True
        if changed:
            self.listener.on_rows([rel])

    def settle_audit(self) -> None:
        """The audit's images another hand settled: one verified elsewhere counts as audited
        (a person reviewed the proposals: did they change them?); one that can no longer be
        audited (unreadable, changed since the rule matched it, accepted by another batch) is
        left out of the sample and of the batch, and that is said. Without this an audit would
        wait forever for an image it never offers again."""
        audit = self.audit
        if audit is None:
            return
        for rel in audit.remaining():
            if rel == self.current:
                continue
            self.statuses.rescan(rel)
            status = self.statuses.status_of(rel)
            why = self._unauditable(rel, status)
            if why is not None:
                if audit.drop(rel, why):
                    self._say(f"{rel}: left out of the audit, {why}.", True)
            elif status is Status.VERIFIED:
                if self.session.changed_on_disk(rel):
                    self.session.forget(rel)
                self._audited(rel, audit)

    def _unauditable(self, rel: str, status: Status | None) -> str | None:
        if status is None:
            return "it is gone from the folder"
        if status is Status.UNREADABLE:
            return "it cannot be read"
        if status is Status.RULE_ACCEPTED:
            return "another batch accepted it"
        if self.session.cached_proposals(rel) is None and rel not in self.progress.failed:
            return "the image changed since the rule matched it"
        return None

    def _audited(self, rel: str, audit: Audit) -> None:
        """An audit image was verified: did the review change what the model proposed?"""
        state = self.open_state(rel)
        proposals = self.session.cached_proposals(rel)
        if state is None or proposals is None:
            return
        shown = [b for b in proposals if b.passes(self.settings.box_threshold)]
        audit.record(rel, changed(shown, state.accepted_boxes()))
        if audit.finished and self.audit_done is not None:
            self.audit_done(audit)

    def _resolve_conflict(self, conflict: Conflict) -> None:
        """Someone saved this image after it was opened: ask which version to keep, apply it,
        say what happened (ours is already kept aside whatever the answer)."""
        rel = conflict.rel
        for _ in range(3):  # they may save yet again while the question is open
            if self.ask_conflict is None:
                self._say(conflict.text, True)
                return
            resolved = self.session.resolve(rel, self.ask_conflict(conflict))
            self._say(resolved.text, resolved.error is not None or resolved.conflict is not None)
            if resolved.conflict is None:
                break
            conflict = resolved.conflict
        self._saved(rel, verify=False)
        if rel == self.current:
            self.listener.on_boxes(True)

    def save_all(self) -> dict[str, str]:
        """Before the folder is closed: save the open image and every image whose save failed
        earlier. Returns those whose edits are still only in memory -> why their save failed."""
        self.save_current()
        self.session.retry_unsaved()
        return self.session.unsaved()

    def set_annotations_folder(self, path: Path) -> list[str]:
        """Save VOC files in ``path`` from now on (the image folder is read-only); the edits
        whose saves failed are written there now. Returns the images that still fail."""
        self.folder.annotations = Path(path)
        self.settings = replace(self.settings, annotations_dir=str(Path(path).absolute()))
        self.save_current()
        failed = self.session.retry_unsaved()
        for rel in self.session.opened():
            self._saved(rel, verify=False)
        return failed

    # ------------------------------------------------------------------ the model

    def rerun(self) -> None:
        """R: forget this image's proposals and detect it again."""
        state = self.state
        if self.current is None or state is None or state.read_only:
            return
        self._rerun = self.current
        self.model.rerun(self.current)
        if self.model_runs:  # Space waits for the new proposals, as for an image the model has not seen
            state.model_done = False
            self.listener.on_banner()
        self._say(f"{self.current}: detecting again…", False)

    def proposals_ready(self, rel: str, boxes: list[Box]) -> None:
        """The model (or the cache) delivered ``rel``'s proposals."""
        if self.progress.add(rel):
            self._tell_progress()
        self.statuses.mark_proposals(rel)
        self.listener.on_rows([rel])
        state = self.session.get(rel)
        if state is None or state.read_only:
            return
        rerun = rel == self._rerun
        if rerun:
            self._rerun = None
            self._say(f"{rel}: {len(boxes)} proposal(s) from the new run.", False)
        refused = rel == self.current and self._refused == rel
        if state.set_proposals(boxes, rerun=rerun) and rel == self.current:
            self.listener.on_boxes(True)
        if rel == self.current:
            self._refused = None
            self.listener.on_banner()
        if refused:
            self._say(f"{rel}: {state.pending_count()} proposal(s) arrived; look at them, then Space verifies.", False)

    def detection_failed(self, rel: str, reason: str) -> None:
        if self.progress.fail(rel, reason):
            self._tell_progress()
        self.listener.on_rows([rel])
        state = self.session.get(rel)
        if state is not None:
            state.model_done = True
        if rel == self.current:
            self._refused = None
            self._say(f"{rel}: detection failed: {reason}", True)
            self.listener.on_banner()

    def model_changed(self) -> None:
        """The detector's state changed (loading, ready, unavailable)."""
        self._tell_progress()
        self.listener.on_banner()

    def image_unreadable(self, rel: str, reason: str) -> None:
        """The picture of ``rel`` does not decode: nobody may verify what nobody can see."""
        if self.statuses.set_unreadable(rel, reason):
            self.listener.on_rows([rel])
        self.session.mark_unreadable(rel, reason)
        if rel == self.current and str(self.folder.image_path(rel)) not in (self.problem or ""):
            self.problem = reason  # said once, not twice
            self._say(reason, True)

    def _queue_detection(self) -> None:
        """The model's work: the image on screen unless it has proposals, then the whole
        folder in navigation order, so the model never idles while images are left."""
        if self.current is None:
            return
        if self.manual:
            self.model.prioritize(None, [])
            return
        state = self.state
        wanted = None if state is None or state.model_done or state.read_only else self.current
        row = self.statuses.row_of(self.current)
        self.model.prioritize(wanted, detection_order(self.folder.images, row, self.progress))

    def _waiting_text(self) -> str:
        position = None if self.current is None else self.model.position(self.current)
        return waiting_text(self.model.state.state, position, self.progress)

    def banner(self) -> Banner:
        """The canvas line: where the model is while the open image waits for it (in red after
        a refused verify), else who holds the image, "verified before X was added" or "found
        nothing"."""
        state = self.state
        if state is not None and state.waits_for_model(self.model_runs):
            if self._refused == self.current:
                return Banner(refused_text(self._waiting_text()), urgent=True, waiting=True)
            return Banner(self._waiting_text(), waiting=True)
        self._refused = None
        audit = self.audit
        if audit is not None and self.current in audit.sample and self.current not in audit.results:
            return Banner(audit.banner())
        return Banner(self.leases.note(self.current) or self._settled_text(state))

    def _settled_text(self, state: ReviewState | None) -> str:
        """Once the image has its proposals: "found nothing" only when the model's proposals
        past the threshold are none; a verified image that predates a class says so."""
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

    def progress_text(self) -> str:
        return self.progress.text(self.model_runs)

    def _tell_progress(self) -> None:
        self.listener.on_progress(self.progress_text())

    # ------------------------------------------------------------------ settings

    def set_threshold(self, threshold: float) -> None:
        self.session.set_threshold(threshold)
        self.settings = replace(self.settings, box_threshold=round(threshold, 4))
        self.listener.on_boxes(False)

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
            self._say(f"{ProjectSettings.path_for(self.folder.root)}: score threshold not kept ({exc})", True)

    def set_view(self, view: ViewFilter) -> None:
        """Classes switched off, only pending / only accepted: on every image, like the threshold."""
        self.session.set_view(view)
        self.listener.on_boxes(False)

    def reconfigure(self, settings: ProjectSettings) -> None:
        """New thresholds or model settings with the same classes and annotation folder."""
        self.settings = settings
        self._saved_threshold = settings.box_threshold
        self.model.reconfigure(settings)

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
        listed = set(self.folder.images)
        self.progress.done.clear()
        self.progress.done.update(rel for rel in plan.cached_relpaths(self.cache) if rel in listed)
        self.progress.failed.clear()
        self._find_predating()
        self.listener.on_rows(None)
        self.model.reconfigure(settings)
        self._queue_detection()
        self.listener.on_boxes(True)
        self.listener.on_banner()
        self._tell_progress()

    def _find_predating(self) -> None:
        """The file list's "verified before a class was added" (from the review records)."""
        try:
            self.statuses.predates = verified_before(self.folder, self.cache.verified_classes(), self.settings.classes)
        except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
            self._say(f"{self.cache.path}: review records not read ({exc})", True)

    # ------------------------------------------------------------------ box actions

    def edit(self, op: Callable[[ReviewState], object]) -> None:
        """Apply one ReviewState operation to the open image and show the result."""
        state = self.state
        if state is None:
            return
        if state.read_only:
            self._say(f"{self.current} is read-only: {self.problem or 'it cannot be edited'}", True)
        else:
            op(state)
        self.listener.on_boxes(False)

    def set_class_index(self, index: int) -> None:
        names = self.settings.classes
        if 0 <= index < len(names):
            self.edit(lambda s: s.set_class(names[index]))

    def select_box(self, index: int) -> None:
        """A click in the boxes panel (or on the canvas): select that box."""
        if self.state is not None:
            self.state.select(index)
            self.listener.on_boxes(False)

    def _say(self, text: str, error: bool) -> None:
        self.listener.on_message(text, error)
