"""A line of text over the top of the canvas: where the model is for the image on screen.

On the canvas rather than in the status bar because that is where the reviewer looks: an image
with no boxes must never look the same as an image whose proposals have not arrived yet.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QLabel

_STYLE = ("QLabel {{ background: rgba({bg}, 225); color: white; border-radius: 4px; padding: 6px 10px;"
          " font-weight: bold; }}")
_CALM = "33, 33, 33"
_URGENT = "198, 40, 40"
_MARGIN = 8


class ModelBanner(QLabel):
    """Shown while ``set_text`` has text; ``urgent`` (red) when a key was refused because of it."""

    def __init__(self, view: QAbstractScrollArea) -> None:
        super().__init__(view.viewport())
        self._view = view
        self.urgent = False
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        view.viewport().installEventFilter(self)
        self.hide()

    def set_text(self, text: str, urgent: bool = False) -> None:
        """Show ``text`` over the canvas ("" hides it)."""
        self.urgent = urgent and bool(text)
        self.setText(text)
        self.setStyleSheet(_STYLE.format(bg=_URGENT if self.urgent else _CALM))
        self.setVisible(bool(text))
        self._place()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        width = max(self._view.viewport().width() - 2 * _MARGIN, 50)
        self.setFixedWidth(min(width, 720))
        self.adjustSize()
        self.move((self._view.viewport().width() - self.width()) // 2, _MARGIN)
        self.raise_()
