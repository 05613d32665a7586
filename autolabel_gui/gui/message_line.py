"""The status bar's message: wrapped onto up to three lines, the whole text in its tooltip.

A ``QStatusBar`` lays its widgets out on one line and does not ask a wrapping label how tall it
wants to be; this label says so itself (its minimum height follows its width), so a long
refusal or OS error is read whole (seen: they were cut off at the window's edge).
"""

from __future__ import annotations

from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

MAX_LINES = 3
"""Lines the message may take; the rest is in its tooltip (seen: in an 800 px window a long
warning took 13 lines and squeezed the canvas)."""


class MessageLine(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        lines = self.fontMetrics().lineSpacing() * MAX_LINES + 2 * self.margin()
        needed = min(self.heightForWidth(self.width()), lines) if self.text() else 0
        if needed != self.minimumHeight():
            self.setMinimumHeight(max(needed, 0))
