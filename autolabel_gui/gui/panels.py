"""Side panels: the class list (colours, digit keys, box counts) and the score threshold slider.

Both take no keyboard focus: every key belongs to the window's keymap (see gui/keymap.py).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QSlider, QVBoxLayout, QWidget

THRESHOLD_STEP = 0.05
"""How far [ and ] move the threshold."""

_SLIDER_SCALE = 100  # the slider works in hundredths


def _swatch(color: QColor) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(color)
    return QIcon(pixmap)


class ClassPanel(QWidget):
    """One row per class: colour, digit key and how many boxes of it this image shows.

    The highlighted row is the class a newly drawn box gets; clicking a row gives the selected
    box that class (``class_clicked``), like its digit key.
    """

    class_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addWidget(self.hint)
        self._names: list[str] = []
        self._counts: dict[str, int] = {}
        self.list.itemClicked.connect(lambda item: self.class_clicked.emit(self.list.row(item)))

    def set_classes(self, names: list[str], colors: dict[str, QColor]) -> None:
        self._names = list(names)
        self.list.clear()
        for name in names:
            self.list.addItem(QListWidgetItem(_swatch(colors[name]), name))
        if names:
            self.list.setCurrentRow(0)
            self.hint.setText("Digits 1-9 give the selected box a class; W draws a box of the highlighted class.")
        else:
            self.hint.setText("No classes yet: add them in Settings (Ctrl+,).")
        self._refresh()

    def set_counts(self, counts: dict[str, int]) -> None:
        self._counts = dict(counts)
        self._refresh()

    def current_class(self) -> str | None:
        """The class a drawn box gets: the highlighted row."""
        row = self.list.currentRow()
        return self._names[row] if 0 <= row < len(self._names) else None

    def set_current(self, index: int) -> None:
        if 0 <= index < len(self._names):
            self.list.setCurrentRow(index)

    def names(self) -> list[str]:
        return list(self._names)

    def _refresh(self) -> None:
        for row, name in enumerate(self._names):
            key = f"{row + 1}  " if row < 9 else "   "
            self.list.item(row).setText(f"{key}{name}  ({self._counts.get(name, 0)})")


class ThresholdPanel(QWidget):
    """Minimum score of the proposals shown (and accepted by Space); filters the cache live."""

    threshold_changed = Signal(float)

    def __init__(self, value: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(5, 100)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label = QLabel(self)
        self.label.setMinimumWidth(40)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("Score ≥", self))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.slider.valueChanged.connect(self._changed)
        self.set_value(value)

    def value(self) -> float:
        return self.slider.value() / _SLIDER_SCALE

    def set_value(self, value: float) -> None:
        self.slider.setValue(round(value * _SLIDER_SCALE))
        self.label.setText(f"{self.value():.2f}")

    def step(self, direction: int) -> None:
        """[ and ]: move by THRESHOLD_STEP."""
        self.set_value(self.value() + direction * THRESHOLD_STEP)

    def _changed(self, raw: int) -> None:
        self.label.setText(f"{raw / _SLIDER_SCALE:.2f}")
        self.threshold_changed.emit(raw / _SLIDER_SCALE)
