"""The boxes panel: one row per box the canvas shows (class, score, state, VOC flags).

A picture of ``app.box_rows``, like the canvas: a click on a row reports the box
(``box_clicked``) and the window selects it; the window marks the canvas's selection here.
It takes no keyboard focus, so Delete, the digits and every other key stay the window's.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from autolabel_gui.app.box_rows import BoxRow
from autolabel_gui.gui.colors import fallback_color
from autolabel_gui.gui.panels import swatch

COLUMNS = ("Class", "Score", "State", "Flags")


def _cells(row: BoxRow) -> tuple[str, ...]:
    return row.label, row.score, row.state, row.flags


class BoxesPanel(QWidget):
    """Rows in Tab order; ``box_clicked`` gives the box's index in the review state."""

    box_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        self._rows: list[BoxRow] = []
        self._colors: dict[str, QColor] = {}
        self.table.cellClicked.connect(self._clicked)

    def set_class_colors(self, colors: dict[str, QColor]) -> None:
        self._colors = {name: QColor(color) for name, color in colors.items()}
        self._rows = []  # every row is painted again

    def rows(self) -> list[BoxRow]:
        return list(self._rows)

    def show_rows(self, rows: list[BoxRow], selected: int) -> None:
        """Show ``rows`` and mark the one of box ``selected``; only the rows that changed are
        rewritten, so a key on an image with hundreds of boxes touches one row."""
        if len(rows) != len(self._rows):
            self.table.setRowCount(len(rows))
            old: list[BoxRow | None] = [None] * len(rows)
        else:
            old = list(self._rows)
        for r, (row, before) in enumerate(zip(rows, old)):
            if row != before:
                self._write_row(r, row)
        self._rows = list(rows)
        self.select_box(selected)

    def select_box(self, index: int) -> None:
        """Mark the row of box ``index`` (none for -1 or a box not listed); emits nothing."""
        target = next((r for r, row in enumerate(self._rows) if row.index == index), -1)
        self.table.blockSignals(True)
        if target < 0:
            self.table.clearSelection()
            self.table.setCurrentCell(-1, -1)
        else:
            self.table.selectRow(target)
            self.table.scrollTo(self.table.model().index(target, 0))
        self.table.blockSignals(False)

    def _write_row(self, r: int, row: BoxRow) -> None:
        for col, text in enumerate(_cells(row)):
            item = QTableWidgetItem(text)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            if col == 0:
                item.setIcon(swatch(self._colors.get(row.label, fallback_color(row.label))))
            self.table.setItem(r, col, item)

    def _clicked(self, r: int, _col: int) -> None:
        if 0 <= r < len(self._rows):
            self.box_clicked.emit(self._rows[r].index)
