"""Side panels: the class list (colours, digit keys, box counts, show/hide ticks) and the score
threshold slider.

Both take no keyboard focus: every key belongs to the window's keymap (see gui/keymap.py).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from autolabel_gui.gui.colors import fallback_color

THRESHOLD_STEP = 0.05
"""How far [ and ] move the threshold."""

_SLIDER_SCALE = 100  # the slider works in hundredths


NOT_IN_PROJECT = "not in the project"


def foreign_classes(names: list[str], counts: dict[str, int]) -> list[str]:
    """Classes this image's boxes use that the project does not list (e.g. from a VOC file
    labelled elsewhere), sorted: they are drawn, so they must be listed too."""
    known = set(names)
    return sorted(label for label, count in counts.items() if count and label and label not in known)


def swatch(color: QColor) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(color)
    return QIcon(pixmap)


class ClassPanel(QWidget):
    """One row per class: colour, digit key and how many boxes of it this image shows.

    The highlighted row is the class a newly drawn box gets; clicking a row gives the selected
    box that class (``class_clicked``), like its digit key. Classes the image uses but the project
    does not list follow, greyed and marked "not in the project"; the button under the list asks
    to add them (``add_to_project``; the window saves the settings).

    Each project class has a checkbox: unticking it hides that class's boxes
    (``visibility_changed``; the window keeps the view filter and ticks the boxes back through
    ``set_hidden``). A click on the checkbox only shows or hides: it neither gives the selected
    box that class nor changes the highlighted row.
    """

    class_clicked = Signal(int)
    add_to_project = Signal(list)  # class names
    visibility_changed = Signal(str, bool)  # class name, shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hint = QLabel(self)
        self.hint.setWordWrap(True)
        self.add_button = QPushButton(self)
        self.add_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.add_button.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addWidget(self.add_button)
        layout.addWidget(self.hint)
        self._names: list[str] = []
        self._foreign: list[str] = []
        self._colors: dict[str, QColor] = {}
        self._counts: dict[str, int] = {}
        self._hidden: frozenset[str] = frozenset()
        self._toggled: QListWidgetItem | None = None
        self.list.itemPressed.connect(self._pressed)
        self.list.itemChanged.connect(self._changed)
        self.list.itemClicked.connect(self._clicked)
        self.add_button.clicked.connect(lambda: self.add_to_project.emit(list(self._foreign)))

    def set_classes(self, names: list[str], colors: dict[str, QColor]) -> None:
        self._names = list(names)
        self._colors = dict(colors)
        self._foreign = []
        self.list.clear()
        self.list.blockSignals(True)
        for name in names:
            item = QListWidgetItem(swatch(colors[name]), name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(_check(name not in self._hidden))
            self.list.addItem(item)
        self.list.blockSignals(False)
        if names:
            self.list.setCurrentRow(0)
            self.hint.setText("Digits 1-9 (L: any class) give the selected box a class; W draws a box of the "
                              "highlighted class; untick a class to hide its boxes.")
        else:
            self.hint.setText("No classes yet: add them in Settings (Ctrl+,).")
        self._refresh()

    def set_counts(self, counts: dict[str, int]) -> None:
        self._counts = dict(counts)
        self._refresh()

    def set_hidden(self, hidden: frozenset[str]) -> None:
        """Tick the classes shown, untick those hidden; emits nothing."""
        self._hidden = frozenset(hidden)
        self.list.blockSignals(True)
        for row, name in enumerate(self._names):
            self.list.item(row).setCheckState(_check(name not in self._hidden))
        self.list.blockSignals(False)

    def current_class(self) -> str | None:
        """The class a drawn box gets: the highlighted row."""
        row = self.list.currentRow()
        return self._names[row] if 0 <= row < len(self._names) else None

    def set_current(self, index: int) -> None:
        if 0 <= index < len(self._names):
            self.list.setCurrentRow(index)

    def names(self) -> list[str]:
        return list(self._names)

    def foreign(self) -> list[str]:
        """The listed classes that are not in the project."""
        return list(self._foreign)

    def _pressed(self, _item: QListWidgetItem) -> None:
        # Qt reports no press on a checkbox (its delegate takes it): a press means a row click.
        self._toggled = None

    def _changed(self, item: QListWidgetItem) -> None:
        row = self.list.row(item)
        if not 0 <= row < len(self._names):
            return
        name = self._names[row]
        shown = item.checkState() == Qt.CheckState.Checked
        if shown == (name in self._hidden):  # a tick that changed, not a new text
            self._hidden = self._hidden - {name} if shown else self._hidden | {name}
            self._toggled = item
            self.visibility_changed.emit(name, shown)

    def _clicked(self, item: QListWidgetItem) -> None:
        if item is self._toggled:  # the click that ticked the checkbox
            self._toggled = None
            return
        row = self.list.row(item)
        if row < len(self._names):  # a class not in the project has no digit to give
            self.class_clicked.emit(row)

    def _refresh(self) -> None:
        for row, name in enumerate(self._names):
            key = f"{row + 1}  " if row < 9 else "   "
            self.list.item(row).setText(f"{key}{name}  ({self._counts.get(name, 0)})")
        foreign = foreign_classes(self._names, self._counts)
        if foreign != self._foreign:
            while self.list.count() > len(self._names):
                self.list.takeItem(len(self._names))
            for name in foreign:
                item = QListWidgetItem(swatch(fallback_color(name)), "")
                item.setFlags(Qt.ItemFlag.NoItemFlags)  # listed, never the class a drawn box gets
                font = item.font()
                font.setItalic(True)
                item.setFont(font)
                item.setToolTip(f'"{name}" is in this image\'s annotation file but {NOT_IN_PROJECT}.')
                self.list.addItem(item)
            self._foreign = foreign
        for offset, name in enumerate(self._foreign):
            self.list.item(len(self._names) + offset).setText(
                f"   {name}  ({self._counts.get(name, 0)})  {NOT_IN_PROJECT}")
        if self._foreign:
            self.add_button.setText(f"Add {', '.join(self._foreign)} to the project")
        self.add_button.setVisible(bool(self._foreign))


def _check(shown: bool) -> Qt.CheckState:
    return Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked


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
