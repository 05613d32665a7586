"""The boxes panel: one row per box the canvas shows (class, score, state, VOC flags).

A picture of ``app.box_rows``, like the canvas: a click on a row reports the box
(``box_clicked``) and the window selects it; the window marks the canvas's selection here.
It takes no keyboard focus, so Delete, the digits and every other key stay the window's.

A model and a view rather than a table of items: a key changes one box, and only that row is
announced (``dataChanged``), so an image with a thousand boxes costs no more per key than one
with ten; the columns have fixed widths for the same reason (sizing to contents reads every row).
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QVBoxLayout, QWidget

from autolabel_gui.app.box_rows import BoxRow, flag_tags
from autolabel_gui.gui.colors import fallback_color
from autolabel_gui.gui.panels import swatch

COLUMNS = ("Class", "Score", "State", "Flags")
_WIDTHS = (0, 42, 64, 68)  # the class column takes what is left
_FLAGS = 3

AnyIndex = QModelIndex | QPersistentModelIndex


def _cells(row: BoxRow) -> tuple[str, ...]:
    return row.label, row.score, row.state, flag_tags(row.flags)


class BoxRowsModel(QAbstractTableModel):
    """The rows of ``app.box_rows`` for a view; ``set_rows`` announces only what changed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[BoxRow] = []
        self._colors: dict[str, QColor] = {}
        self._icons: dict[str, QIcon] = {}

    def rows(self) -> list[BoxRow]:
        return list(self._rows)

    def set_colors(self, colors: dict[str, QColor]) -> None:
        self.beginResetModel()
        self._colors = {name: QColor(color) for name, color in colors.items()}
        self._icons = {}
        self.endResetModel()

    def set_rows(self, rows: list[BoxRow]) -> None:
        if len(rows) != len(self._rows):
            self.beginResetModel()
            self._rows = list(rows)
            self.endResetModel()
            return
        changed = [r for r, (new, old) in enumerate(zip(rows, self._rows)) if new != old]
        self._rows = list(rows)
        if changed:
            self.dataChanged.emit(self.index(changed[0], 0), self.index(changed[-1], len(COLUMNS) - 1))

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return _cells(row)[index.column()]
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return self._icon(row.label)
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == _FLAGS and row.flags:
            return ", ".join(row.flags)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def _icon(self, label: str) -> QIcon:
        icon = self._icons.get(label)
        if icon is None:
            icon = self._icons[label] = swatch(self._colors.get(label, fallback_color(label)))
        return icon


class BoxesPanel(QWidget):
    """Rows in Tab order; ``box_clicked`` gives the box's index in the review state."""

    box_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = BoxRowsModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in enumerate(_WIDTHS[1:], start=1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        self.table.clicked.connect(self._clicked)

    def set_class_colors(self, colors: dict[str, QColor]) -> None:
        self.model.set_colors(colors)

    def show_rows(self, rows: list[BoxRow], selected: int) -> None:
        """Show ``rows`` and mark the one of box ``selected``."""
        self.model.set_rows(rows)
        self.select_box(selected)

    def selected_row(self) -> int:
        """The marked row, -1 when none."""
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def select_box(self, index: int) -> None:
        """Mark the row of box ``index`` (none for -1 or a box not listed); emits nothing."""
        target = next((r for r, row in enumerate(self.model.rows()) if row.index == index), -1)
        selection = self.table.selectionModel()
        if target == self.selected_row():
            return
        if target < 0:
            selection.clear()
            return
        flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
                 | QItemSelectionModel.SelectionFlag.Current)
        selection.select(self.model.index(target, 0), flags)
        self.table.scrollTo(self.model.index(target, 0))

    def _clicked(self, index: QModelIndex) -> None:
        rows = self.model.rows()
        if 0 <= index.row() < len(rows):
            self.box_clicked.emit(rows[index.row()].index)
