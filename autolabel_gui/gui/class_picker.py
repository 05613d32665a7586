"""The class picker (L, or a double-click on a box): any class from the keyboard, past the nine
digits. Type to filter (``app.class_filter``), Up/Down to move, Enter to choose, Esc to cancel.

Typed text that names no class of the project is offered as the last row, "Add … to the
project": choosing it gives the box that new class and adds it to the project's list.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from autolabel_gui.app.class_filter import matching_classes, new_class_name
from autolabel_gui.gui.keymap import PICKER_TITLE

_NAME = Qt.ItemDataRole.UserRole
_NEW = Qt.ItemDataRole.UserRole + 1
_LIST_KEYS = {Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown}


@dataclass(frozen=True, slots=True)
class PickedClass:
    name: str
    new: bool
    """Not in the project yet: the window adds it."""


class ClassPicker(QDialog):
    """Modal; after ``exec()`` returns Accepted, ``picked()`` says what was chosen."""

    def __init__(self, names: list[str], current: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(PICKER_TITLE)
        self._names = list(names)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Type to filter, or a new class name")
        self.list = QListWidget(self)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing always goes to the filter
        hint = QLabel("Enter gives the selected box this class; Esc cancels.", self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._accept_row)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)
        layout.addWidget(hint)
        layout.addWidget(buttons)
        self.filter.textChanged.connect(self._fill)
        self.filter.installEventFilter(self)
        self.list.itemActivated.connect(lambda _item: self._accept_row())
        self._picked: PickedClass | None = None
        self._fill("")
        if current in self._names:
            self.list.setCurrentRow(self._names.index(current))
        self.resize(320, 420)

    def picked(self) -> PickedClass | None:
        return self._picked

    def rows(self) -> list[str]:
        """The texts of the rows shown (for tests and for reading what the filter left)."""
        return [self.list.item(r).text() for r in range(self.list.count())]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Up/Down/PageUp/PageDown in the filter move through the list."""
        if watched is self.filter and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() in _LIST_KEYS:
                QApplication.sendEvent(self.list, event)
                return True
        return super().eventFilter(watched, event)

    def _fill(self, typed: str) -> None:
        self.list.clear()
        for name in matching_classes(self._names, typed):
            position = self._names.index(name) + 1
            item = QListWidgetItem(f"{name}  [{position}]" if position <= 9 else name)  # [digit key]
            item.setData(_NAME, name)
            self.list.addItem(item)
        new = new_class_name(self._names, typed)
        if new is not None:
            item = QListWidgetItem(f'+ Add "{new}" to the project')
            item.setData(_NAME, new)
            item.setData(_NEW, True)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _accept_row(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        self._picked = PickedClass(str(item.data(_NAME)), bool(item.data(_NEW)))
        self.accept()
