"""An accept-by-rule batch from the rule to its undo, on an open folder, without Qt (ADR 0018).

``RuleRun`` drives ``FolderReview``: ``matches`` (counted live as the rule changes),
``start_audit`` (the sample becomes the review order; nothing else is accepted), ``apply``
(after the user read "k of n changed; error rate <= p" and confirmed: every other match is
written through ``FolderReview.accept_by_rule``), ``cancel`` and ``undo`` (the batch's files go,
unless someone changed them since: those stay and are named).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from autolabel_gui.app.accept_rule import AcceptRule, Audit, Batch
from autolabel_gui.app.folder_review import FolderReview
from autolabel_gui.app.status import Status


@dataclass(slots=True)
class Undone:
    """What undoing a batch did: files removed, files left (-> why)."""

    removed: list[str] = field(default_factory=list)
    left: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        left = ""
        if self.left:
            shown = ", ".join(list(self.left)[:3]) + (", ..." if len(self.left) > 3 else "")
            left = f"; {len(self.left)} left as they are (changed or verified since: {shown})"
        return f"Accept-by-rule undone: {len(self.removed)} file(s) removed{left}."


class RuleRun:
    """Accept by rule on ``review``: the confidence index is read once from the cache."""

    def __init__(self, review: FolderReview) -> None:
        self.review = review
        self.index = review.confidence_index()
        self.audit: Audit | None = None
        self.batches: list[Batch] = []
        self._order_before: list[str] | None = None

    def refresh(self) -> None:
        """Read every image's scores again (proposals arrived since; no audit may be running)."""
        if self.audit is None:
            self.index = self.review.confidence_index()

    def candidates(self) -> list[str]:
        """Images a rule may accept: proposals ready, no person's file, not held by another."""
        review = self.review
        return [rel for rel in review.folder.images
                if review.statuses.status_of(rel) is Status.PROPOSALS and not review.leases.held_by_other(rel)]

    def matches(self, rule: AcceptRule) -> list[str]:
        """The candidates whose proposals satisfy ``rule`` (folder order): the live count."""
        return [rel for rel in self.candidates() if rule.matches(self.index.scores[rel])]

    def start_audit(self, rule: AcceptRule, size: int, seed: int | None = None) -> Audit:
        """Draw the sample and make it the review order; ValueError when the rule cannot apply."""
        problem = rule.problem(self.review.settings.box_threshold)
        if problem is not None:
            raise ValueError(problem)
        audit = Audit(rule, self.matches(rule), size, seed)
        self.audit = audit
        self._order_before = self.review.order
        self.review.audit = audit
        self.review.set_order(list(audit.sample))
        first = self.review.next_to_review(None)
        if first is not None:
            self.review.go_to(first)
        return audit

    def apply(self, confirm_empty: Callable[[], bool] | None = None) -> Batch:
        """The user confirmed after the audit: accept every other match by rule, keep the batch.
        ValueError while the audit is not finished."""
        audit = self.audit
        if audit is None or not audit.finished:
            raise ValueError("the audit is not finished: review its images first")
        review = self.review
        problem = audit.rule.problem(review.settings.box_threshold)
        if problem is not None:  # the threshold moved during the audit: the shown boxes are not the rule's
            raise ValueError(f"nothing accepted yet: {problem}; set it back and press Shift+A")
        provenance = audit.provenance()
        batch = Batch(provenance, audit=dict(audit.results))
        for rel in audit.rest():
            why = review.accept_by_rule(rel, provenance.text, audit.rule)
            identity = review.session.identity(rel)
            if why is None and identity is not None:
                batch.written[rel] = identity
            else:
                batch.skipped[rel] = why or "not written"
        review.leases.drop_claims(keep=review.current)
        self._finish()
        self.batches.append(batch)
        try:
            batch.save(review.session.voc.state_dir)
        except OSError as exc:
            review.listener.on_message(f"accept-by-rule batch record not kept ({exc})", True)
        review.listener.on_rows(list(batch.written))
        review.listener.on_message(
            f"Accepted by rule, unseen: {len(batch.written)} image(s) (error rate <= {100 * provenance.bound:.1f}%)"
            + (f"; {len(batch.skipped)} not accepted" if batch.skipped else ""), False)
        return batch

    def cancel(self) -> None:
        """No batch: the audited images stay as the reviewer saved them, nothing else changes."""
        self._finish()

    def _finish(self) -> None:
        """The review order before the audit again, from its first image left to review."""
        self.audit = None
        review = self.review
        review.audit = None
        review.set_order(self._order_before)
        first = review.next_to_review(None)
        if first is not None:
            review.go_to(first)

    def undo(self, batch: Batch | None = None) -> Undone:
        """Remove the files ``batch`` (the last one) wrote, each only if it is still the very file
        it wrote and nobody else holds the image; the others stay and are named."""
        batch = batch if batch is not None else (self.batches[-1] if self.batches else None)
        done = Undone()
        if batch is None:
            return done
        review = self.review
        for rel, digest in batch.written.items():
            why = self._remove(rel, digest)
            if why is None:
                done.removed.append(rel)
            else:
                done.left[rel] = why
        review.leases.drop_claims(keep=review.current)
        if batch in self.batches:
            self.batches.remove(batch)
        review.listener.on_rows(done.removed)
        review.listener.on_message(done.text, bool(done.left))
        return done

    def _remove(self, rel: str, digest: str) -> str | None:
        review = self.review
        refused = review.leases.claim(review.session, rel)
        if refused is not None:
            return refused
        if review.session.voc.identity(rel) != digest:
            return "changed since the batch wrote it"
        path = review.folder.checked_voc_path(rel)
        try:
            path.unlink()
        except OSError as exc:
            return f"not removed ({exc})"
        review.session.forget(rel)
        try:
            record = review.cache.get_review(rel)
            if record is not None:
                review.cache.put_review(rel, record.without_accepted())
        except sqlite3.Error:
            pass  # the file is gone: its load already treats the accepted proposals as undecided
        review.statuses.rescan(rel)
        if rel == review.current:
            review.current = None
            review.go_to(rel)
        return None
