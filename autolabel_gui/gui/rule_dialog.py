"""The "Accept by rule" dialog: the rule, its match count live, the audit size (ADR 0018).

A thin widget: the counting is ``RuleRun.matches`` (Qt-free); nothing is written here. OK starts
the audit, whose images then come up in the normal review.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from autolabel_gui.app.accept_rule import AcceptRule, default_audit_size
from autolabel_gui.gui.keymap import RULE_TITLE


def _score_box(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.0, 1.0)
    box.setSingleStep(0.05)
    box.setDecimals(2)
    box.setValue(value)
    return box


class RuleDialog(QDialog):
    """Asks for a rule and an audit size; ``count(rule)`` gives the matches, ``problem(rule)``
    why it cannot apply (the score threshold)."""

    def __init__(self, count: Callable[[AcceptRule], int], problem: Callable[[AcceptRule], str | None],
                 bands: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(RULE_TITLE)
        self._count = count
        self._problem = problem
        default = AcceptRule()
        self.high = _score_box(default.high)
        self.low = _score_box(default.low)
        self.min_boxes = QSpinBox()
        self.min_boxes.setRange(0, 99)
        self.min_boxes.setValue(default.min_boxes)
        self.audit = QSpinBox()
        self.audit.setRange(0, 10_000)
        self.matches = QLabel()
        self.matches.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Accept an image when every proposal scores at least", self.high)
        form.addRow("… or at most", self.low)
        form.addRow("and at least this many boxes score high", self.min_boxes)
        form.addRow("Audit: images to review first (a random sample)", self.audit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start the audit")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        note = QLabel(f"The model's confidence: {bands}. Images accepted by a rule are never marked verified: "
                      "their files say which rule and audit accepted them; export leaves them out unless asked.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.matches)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        for box in (self.high, self.low):
            box.valueChanged.connect(self._recount)
        self.min_boxes.valueChanged.connect(self._recount)
        self._matched = 0
        self._recount()
        self.audit.setValue(default_audit_size(self._matched))

    def rule(self) -> AcceptRule:
        return AcceptRule(self.high.value(), self.low.value(), self.min_boxes.value())

    def _recount(self) -> None:
        """The match count, live: nothing is accepted until the audit is done and confirmed."""
        rule = self.rule()
        problem = self._problem(rule)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if problem is not None:
            self.matches.setText(f"Cannot apply: {problem}.")
            ok.setEnabled(False)
            return
        self._matched = self._count(rule)
        self.audit.setMaximum(self._matched)
        self.matches.setText(f"{self._matched} image{'s' if self._matched != 1 else ''} match ({rule.text}). "
                             "Nothing is accepted until the audit is reviewed and you confirm.")
        ok.setEnabled(self._matched > 0)
