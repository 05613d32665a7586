"""The file list: every image of the folder with its review status, counts and a status filter.

A folder of 100,000 images must open at once: the model lists the names immediately and fills
the statuses (``app.image_statuses``) in batches from a timer, so the window stays responsive
while the counts grow.

Besides its review status (the icon), each row says where the model is with it: the name is
grey and italic while the image waits for the model, red when the model failed on it; the
tooltip says which, and why. A search line above the list keeps only the names that contain
its text (Ctrl+K focuses it; Enter or Esc hands the keys back to the image).

What the model was unsure of (``app.confidence``, read once when first asked for): the list can
follow the confidence order (O), keep the images the model hesitated over or those with a
proposal in a score range, and the counts say how many images fall in each band.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)

from autolabel_gui.app.confidence import DEFAULT_HIGH, DEFAULT_LOW, Band, ConfidenceIndex
from autolabel_gui.app.image_statuses import ImageStatuses, ModelMark
from autolabel_gui.app.status import Status

STATUS_COLORS: dict[Status, str] = {
    Status.NEW: "#9e9e9e",
    Status.PROPOSALS: "#42a5f5",
    Status.IN_REVIEW: "#ffb300",
    Status.VERIFIED: "#43a047",
    Status.RULE_ACCEPTED: "#8e24aa",
    Status.UNREADABLE: "#e53935",
}
HELD_MARK = "\N{LOCK}"
"""After the name of an image another annotator has open."""
MARK_COLORS = {ModelMark.WAITING: "#8a8a8a", ModelMark.FAILED: "#e53935"}
"""The name's colour while the model has not finished the image, or failed on it."""
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1

FILTERS: tuple[tuple[str, frozenset[Status] | None], ...] = (
    ("All images", None),
    ("Not verified", frozenset({Status.NEW, Status.PROPOSALS, Status.IN_REVIEW, Status.RULE_ACCEPTED,
                                Status.UNREADABLE})),
    ("New", frozenset({Status.NEW})),
    ("Proposals ready", frozenset({Status.PROPOSALS})),
    ("In review", frozenset({Status.IN_REVIEW})),
    ("Verified", frozenset({Status.VERIFIED})),
    ("Accepted by rule (unseen)", frozenset({Status.RULE_ACCEPTED})),
    ("Cannot be read", frozenset({Status.UNREADABLE})),
)
PREDATES_FILTER = "Verified before a class was added"
"""Verified images whose files may miss a class added since (ADR 0013)."""
UNSURE_FILTER = f"Model unsure (a score between {DEFAULT_LOW:.2f} and {DEFAULT_HIGH:.2f})"
RANGE_FILTER = "A proposal scoring in a range…"
EXTRA_FILTERS = (PREDATES_FILTER, UNSURE_FILTER, RANGE_FILTER)
"""After ``FILTERS``: filters on something other than the status."""


def _icon(color: str) -> QIcon:
    pixmap = QPixmap(10, 10)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class FileListModel(QAbstractListModel):
    """Rows are the folder's images, read from the review's ``ImageStatuses``; statuses fill in
    from a timer (``is_scanning()`` until all are known)."""

    counts_changed = Signal()

    def __init__(self, statuses: ImageStatuses, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.statuses = statuses
        self._waiting_font = QFont()
        self._waiting_font.setItalic(True)
        self._icons = {s: _icon(c) for s, c in STATUS_COLORS.items()}
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._scan_batch)
        self._timer.start()

    # -- Qt model --------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.statuses)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row = index.row()
        rel = self.statuses.images[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{rel}  {HELD_MARK}" if rel in self.statuses.held else rel
        if role == Qt.ItemDataRole.ForegroundRole:
            mark = self.statuses.model_mark(rel)
            return None if mark is ModelMark.READY else QBrush(QColor(MARK_COLORS[mark]))
        if role == Qt.ItemDataRole.FontRole:
            return self._waiting_font if self.statuses.model_mark(rel) is ModelMark.WAITING else None
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icons[self.statuses.status(row)]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.statuses.tooltip(rel)
        if role == STATUS_ROLE:
            return self.statuses.status(row)
        return None

    def rows_changed(self, rels: Iterable[str] | None) -> None:
        """The review changed these images' statuses or marks (None: every image's)."""
        if rels is None:
            if len(self.statuses):
                self.dataChanged.emit(self.index(0), self.index(len(self.statuses) - 1))
        else:
            for rel in rels:
                row = self.statuses.row_of(rel)
                if row >= 0:
                    self.dataChanged.emit(self.index(row), self.index(row))
        self.counts_changed.emit()

    # -- reading -----------------------------------------------------------------------------

    def relpath(self, row: int) -> str:
        return self.statuses.images[row]

    def row_of(self, rel: str) -> int:
        return self.statuses.row_of(rel)

    def status(self, row: int) -> Status:
        return self.statuses.status(row)

    @property
    def predates(self) -> dict[str, list[str]]:
        return self.statuses.predates

    def counts(self) -> dict[Status, int]:
        return self.statuses.counts()

    def scanned(self) -> int:
        return self.statuses.scanned

    def is_scanning(self) -> bool:
        return self._timer.isActive()

    def _scan_batch(self) -> None:
        first, end = self.statuses.scan_batch()
        if end > first:
            self.dataChanged.emit(self.index(first), self.index(end - 1), [Qt.ItemDataRole.DecorationRole, STATUS_ROLE])
        if end >= len(self.statuses):
            self._timer.stop()
        self.counts_changed.emit()


def name_matches(rel: str, text: str) -> bool:
    """Whether the search ``text`` is in the image's relative path, ignoring case."""
    return text.casefold() in rel.casefold()


class StatusFilter(QSortFilterProxyModel):
    """Shows the rows whose status is in the chosen set (None: all rows) and whose name
    contains the search text."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._wanted: frozenset[Status] | None = None
        self._text = ""
        self._predates_only = False
        self._only: frozenset[str] | None = None
        self._rank: dict[str, int] | None = None

    def set_only(self, rels: frozenset[str] | None) -> None:
        """Keep just ``rels`` (a confidence filter), or every row again (None)."""
        self._only = rels
        self.refilter()

    def set_rank(self, order: list[str] | None) -> None:
        """Rows in ``order`` (the confidence order), or in folder order again (None)."""
        self._rank = None if order is None else {rel: i for i, rel in enumerate(order)}
        self.invalidate()
        self.sort(0 if order is not None else -1)

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if self._rank is None or not isinstance(model, FileListModel):
            return left.row() < right.row()
        last = len(self._rank)
        return (self._rank.get(model.relpath(left.row()), last), left.row()) < (
            self._rank.get(model.relpath(right.row()), last), right.row())

    def set_text(self, text: str) -> None:
        self._text = text.strip()
        self.refilter()

    def set_wanted(self, wanted: frozenset[Status] | None, predates_only: bool = False) -> None:
        """``predates_only``: just the verified images that predate a class (``PREDATES_FILTER``)."""
        self._wanted = wanted
        self._predates_only = predates_only
        self.refilter()

    def refilter(self) -> None:
        """Re-run the filter (statuses changed); Qt 6.9 deprecates invalidateFilter for this."""
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def wanted(self) -> frozenset[Status] | None:
        return self._wanted

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, FileListModel):
            return True
        if self._text and not name_matches(model.relpath(source_row), self._text):
            return False
        if self._only is not None:
            return model.relpath(source_row) in self._only
        if self._predates_only:
            return model.relpath(source_row) in model.predates
        return self._wanted is None or model.status(source_row) in self._wanted


_DONE_KEYS = frozenset({Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter})


class SearchLine(QLineEdit):
    """The name search. Enter and Esc end the search (``finished``) instead of reaching the
    window's shortcuts for them (accept the selected box, clear the selection)."""

    finished = Signal(bool)  # True: Enter (go to a match), False: Esc

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ShortcutOverride and isinstance(e, QKeyEvent) and e.key() in _DONE_KEYS:
            e.accept()  # a shortcut override: the key press comes to this widget
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in _DONE_KEYS:
            self.finished.emit(e.key() != Qt.Key.Key_Escape)
            e.accept()
        else:
            super().keyPressEvent(e)


class FileListPanel(QWidget):
    """Filter, counts and the list; a click asks the window to open that image."""

    image_chosen = Signal(str)
    search_done = Signal()  # Enter or Esc in the search line: the keys go back to the image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = SearchLine(self)
        self.search.setPlaceholderText("Search by name…")
        self.search.setClearButtonEnabled(True)
        self.search.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click or Ctrl+K; Tab never lands here
        self.filter_box = QComboBox(self)
        for name, _ in FILTERS:
            self.filter_box.addItem(name)
        for name in EXTRA_FILTERS:
            self.filter_box.addItem(name)
        self.confidence_source: Callable[[], ConfidenceIndex | None] = lambda: None
        """Where the scores come from (the window's rule flow: the cache, read once)."""
        self.range_low, self.range_high = QDoubleSpinBox(self), QDoubleSpinBox(self)
        self.range_row = QWidget(self)
        range_layout = QHBoxLayout(self.range_row)
        range_layout.setContentsMargins(0, 0, 0, 0)
        range_layout.addWidget(QLabel("Scores from", self.range_row))
        for box, value in ((self.range_low, DEFAULT_LOW), (self.range_high, DEFAULT_HIGH)):
            box.setRange(0.0, 1.0)
            box.setSingleStep(0.05)
            box.setValue(value)
            box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            box.valueChanged.connect(self._range_changed)
            range_layout.addWidget(box)
            if box is self.range_low:
                range_layout.addWidget(QLabel("to", self.range_row))
        self.range_row.setVisible(False)
        self.counts_label = QLabel(self)
        self.counts_label.setWordWrap(True)
        self.view = QListView(self)
        self.view.setUniformItemSizes(True)  # no per-row size query: 100,000 rows lay out at once
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for widget in (self.filter_box, self.view):
            # Keys belong to the window's keymap; the list is driven by the mouse.
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter_box)
        layout.addWidget(self.range_row)
        layout.addWidget(self.search)
        layout.addWidget(self.counts_label)
        layout.addWidget(self.view)
        self.proxy = StatusFilter(self)
        self.model: FileListModel | None = None
        self._current: str | None = None
        self.filter_box.currentIndexChanged.connect(self._filter_chosen)
        self.view.clicked.connect(self._clicked)
        self.search.textChanged.connect(self._search_changed)
        self.search.finished.connect(self._search_finished)

    def set_model(self, model: FileListModel) -> None:
        self.model = model
        self._current = None
        self.proxy.setSourceModel(model)
        self.view.setModel(self.proxy)
        model.counts_changed.connect(self._show_counts)
        model.counts_changed.connect(self._refilter)
        self._show_counts()

    def set_current(self, rel: str) -> None:
        """Highlight and scroll to ``rel`` without emitting ``image_chosen``."""
        self._current = rel
        self._show_current()

    def _show_current(self) -> None:
        """Highlight the image on screen, or nothing when the filter hides it: never the row
        that took its place (seen: verifying under "Not verified" highlighted the next image)."""
        if self.model is None or self._current is None:
            return
        index = self.proxy.mapFromSource(self.model.index(self.model.row_of(self._current)))
        if index.isValid():
            self.view.setCurrentIndex(index)
            self.view.scrollTo(index)
        else:
            self.view.selectionModel().clear()

    def focus_search(self) -> None:
        """Ctrl+K: type to filter the names (the dock is shown if it was closed)."""
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.show()
            dock.raise_()
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _search_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._show_current()

    def _search_finished(self, go: bool) -> None:
        """Enter goes to the first match unless the image on screen is one; Esc just returns."""
        if go and self.model is not None and self.proxy.rowCount() > 0:
            current = self.model.row_of(self._current) if self._current is not None else -1
            if not self.proxy.mapFromSource(self.model.index(current)).isValid():
                self._clicked(self.proxy.index(0, 0))
        self.search_done.emit()

    def _clicked(self, index: QModelIndex) -> None:
        if self.model is not None:
            self.image_chosen.emit(self.model.relpath(self.proxy.mapToSource(index).row()))

    def show_order(self, order: list[str] | None) -> None:
        """The list follows ``order`` (the review's: O), or folder order (None)."""
        self.proxy.set_rank(order)
        self._show_current()

    def _filter_chosen(self, i: int) -> None:
        name = self.filter_box.itemText(i)
        self.range_row.setVisible(name == RANGE_FILTER)
        self.proxy.set_only(None)
        if i < len(FILTERS):
            self.proxy.set_wanted(FILTERS[i][1])
        elif name == PREDATES_FILTER:
            self.proxy.set_wanted(frozenset({Status.VERIFIED}), predates_only=True)
        else:
            self.proxy.set_wanted(None)
            self._confidence_filter()
        self._show_counts()
        self._show_current()

    def _confidence_filter(self) -> None:
        index = self.confidence_source()
        if index is None:
            return
        if self.filter_box.currentText() == UNSURE_FILTER:
            unsure = {rel for rel, s in index.scores.items() if s.band(DEFAULT_LOW, DEFAULT_HIGH) is Band.AMBIGUOUS}
            self.proxy.set_only(frozenset(unsure))
        else:
            self.proxy.set_only(frozenset(index.in_range(self.range_low.value(), self.range_high.value())))

    def _range_changed(self) -> None:
        if self.filter_box.currentText() == RANGE_FILTER:
            self._confidence_filter()
            self._show_current()

    def _refilter(self) -> None:
        """Statuses changed: re-filter, but not per scanning batch (100,000 Python calls each)."""
        if self.proxy.wanted() is not None and self.model is not None and not self.model.is_scanning():
            self.proxy.refilter()
            self._show_current()

    def _show_counts(self) -> None:
        if self.model is None:
            return
        counts = self.model.counts()
        total = self.model.rowCount()
        parts = [f"{counts[s]} {s.value}" for s in Status]
        scanning = "" if not self.model.is_scanning() else f" (checking {self.model.scanned()}/{total})"
        text = f"{total} images{scanning}: " + ", ".join(parts)
        if self.filter_box.currentText() in (UNSURE_FILTER, RANGE_FILTER):
            index = self.confidence_source()
            if index is not None:
                text += f". The model: {index.counts_text()}; {self.proxy.rowCount()} shown"
        self.counts_label.setText(text)
