"""The window's review by exception: the confidence order, accept by rule and its undo (ADR 0018).

Qt glue over ``app.rule_batch.RuleRun`` and ``app.confidence``: keys (``gui/keymap.py``) become
calls there; the audit's end becomes a question ("k of n changed; error rate <= p (95%)").
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog, QMessageBox, QWidget

from autolabel_gui.app.accept_rule import Audit
from autolabel_gui.app.confidence import ConfidenceIndex
from autolabel_gui.app.rule_batch import RuleRun
from autolabel_gui.gui.keymap import RULE_TITLE
from autolabel_gui.gui.review_controller import ReviewController
from autolabel_gui.gui.rule_dialog import RuleDialog


class RuleFlow(QObject):
    """Confidence order and accept by rule for the window's folder."""

    message = Signal(str, bool)
    order_changed = Signal(object)  # list[str] | None: the review order (the file list follows it)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self._controller: ReviewController | None = None
        self._index: ConfidenceIndex | None = None
        self.run: RuleRun | None = None
        self.by_confidence = False
        self.ask_confirm: Callable[[Audit], bool] = self._ask
        """Asked when the audit is reviewed (tests answer it)."""
        self.ask_stop: Callable[[Audit], bool] = self._ask_stop
        """Shift+A while an audit runs: stop it (nothing accepted)?"""
        self.seed: int | None = None
        """The audit's seed; None draws one (recorded in the batch either way)."""

    def attach(self, controller: ReviewController) -> None:
        self._controller = controller
        self.run = None
        self.by_confidence = False
        controller.review.audit_done = self._audit_done
        self._index = None
        self.order_changed.emit(None)

    def confidence(self) -> ConfidenceIndex | None:
        """Every image's scores, read from the cache once (the file list's filters ask)."""
        c = self._controller
        if c is None:
            return None
        if self._index is None:
            self._index = c.review.confidence_index()
        return self._index

    def handlers(self) -> dict[str, Callable[[], object]]:
        return {"confidence_order": self.toggle_order, "accept_by_rule": self.open_dialog,
                "undo_rule_batch": self.undo}

    def _rule_run(self) -> RuleRun | None:
        if self._controller is None:
            return None
        if self.run is None:
            self.run = RuleRun(self._controller.review)
        return self.run

    def toggle_order(self) -> None:
        """O: unsure images first (next unverified and the grid follow), or back to folder order."""
        c = self._controller
        if c is None:
            return
        review = c.review
        if review.audit is not None:
            self.message.emit("The audit's images come first until it is done.", False)
            return
        self.by_confidence = not self.by_confidence
        if not self.by_confidence:
            review.set_order(None)
            self.order_changed.emit(None)
            self.message.emit("Review order: folder order.", False)
            return
        index = self._index = review.confidence_index()
        self.run = None  # the scores are read again for the next rule
        review.set_order(index.order())
        self.order_changed.emit(review.order)
        self.message.emit(f"Review order: by confidence, unsure first ({index.counts_text()}); "
                          "Space and the grid follow it. O again: folder order.", False)
        first = review.next_to_review(None)
        if first is not None:
            review.go_to(first)

    def open_dialog(self) -> None:
        """Shift+A: the rule and its live match count; OK starts the audit."""
        run = self._rule_run()
        if run is None:
            return
        review = run.review
        if run.audit is not None and run.audit.finished:  # its question was refused, not answered
            self._confirm(run.audit)
            return
        if run.audit is not None:
            if self.ask_stop(run.audit):
                run.cancel()
                self.message.emit("Audit stopped: nothing was accepted by rule; the images you verified stay "
                                  "verified.", False)
            return
        review.save_current()
        run.refresh()  # proposals that arrived since the last rule count too
        dialog = RuleDialog(lambda rule: len(run.matches(rule)),
                            lambda rule: rule.problem(review.settings.box_threshold),
                            run.index.counts_text(), self._parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            audit = run.start_audit(dialog.rule(), dialog.audit.value(), self.seed)
        except ValueError as exc:
            self.message.emit(str(exc), True)
            return
        if audit.finished:  # an audit of 0: the bound says so (error rate <= 100%)
            self._confirm(audit)
        else:
            self.message.emit(f"Audit: review these {len(audit.sample)} images as usual (seed {audit.seed}); "
                              f"the other {len(audit.rest())} wait.", False)

    def _audit_done(self, audit: Audit) -> None:
        """Asked once the save of the audit's last image is over (not inside it)."""
        QTimer.singleShot(0, lambda: self._confirm(audit))

    def _confirm(self, audit: Audit) -> None:
        run = self.run
        if run is None or run.audit is not audit:
            return
        if self.ask_confirm(audit):
            try:
                run.apply()
            except ValueError as exc:  # the threshold moved during the audit: the audit is kept
                self.message.emit(str(exc), True)
        else:
            run.cancel()
            self.message.emit("Accept by rule cancelled: nothing else was accepted.", False)

    def _ask(self, audit: Audit) -> bool:
        answer = QMessageBox.question(self._parent, RULE_TITLE, audit.result_text(),
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_stop(self, audit: Audit) -> bool:
        answer = QMessageBox.question(
            self._parent, RULE_TITLE,
            f"An audit is under way ({len(audit.results)} of {len(audit.sample)} reviewed). Stop it? "
            "Nothing will be accepted by rule.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def undo(self) -> None:
        """Review ▸ Undo accept-by-rule batch: the last batch's files go, unless changed since."""
        run = self.run
        if run is None or not run.batches:
            self.message.emit("No accept-by-rule batch to undo in this session.", False)
            return
        run.undo()
