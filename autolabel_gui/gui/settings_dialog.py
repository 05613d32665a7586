"""The project settings dialog: classes and their prompts, thresholds, model and output options.

It edits a copy: ``settings()`` returns a new ``ProjectSettings`` and the caller decides
whether to save it and what to re-run. Choosing a catalogue model sets exactly what ``--model
NAME`` sets (``ProjectSettings.with_model``); the choice shown is always ``model_of`` the fields,
so editing a model file by hand shows "Custom". Invalid input (an empty or repeated class name) keeps
OK disabled and says why in the dialog instead of raising.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from autolabel_gui.app.project import MAX_BATCH_SIZE, ProjectSettings
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable
from autolabel_gui.detection.catalogue import BACKENDS, spec_for
from autolabel_gui.detection.models import ModelEntry, all_models, model_named, model_of
from autolabel_gui.gui.keymap import SETTINGS_TITLE

DEVICES: tuple[tuple[str, str], ...] = (
    ("auto", "auto (CUDA, then MPS, then CPU)"),
    ("cpu", "cpu"),
    ("cuda", "cuda"),
    ("mps", "mps (Apple)"),
)
PRECISIONS: tuple[tuple[str, str], ...] = (
    ("auto", "auto (fp16 on CUDA; on a CPU the fastest path proven for it)"),
    ("fast", "fast (CPU fast path)"),
    ("bf16", "bf16 (CPUs with AMX or AVX-512 BF16, GPUs)"),
    ("int8", "int8 linear layers (CPU only)"),
    ("fp32", "fp32 (reference)"),
    ("fp16", "fp16 (GPU only)"),
)
DOWNLOAD_HINT = "Get it with: autolabel-gui weights download"
CUSTOM_MODEL = "Custom (files below)"
_AP_NAMES = {"lvis_minival_zero_shot": "LVIS AP", "coco_zero_shot": "COCO AP"}
_ERROR_STYLE = "color: #c62828;"


def class_name_problem(names: list[str]) -> str | None:
    """Why this class list cannot be used, or None when it can."""
    for row, name in enumerate(names, start=1):
        if not name.strip():
            return f"Class in row {row} has no name."
    seen: set[str] = set()
    for name in (n.strip() for n in names):
        if name in seen:
            return f'Class names must be unique: "{name}" appears more than once.'
        seen.add(name)
    return None


def model_label(entry: ModelEntry) -> str:
    """A catalogue model as the Model list shows it: title, published zero-shot AP, download size."""
    facts = [f"{_AP_NAMES.get(name, name)} {value}" for name, value in entry.ap.items()]
    return f"{entry.title} ({', '.join([*facts, f'{entry.download_mb} MB'])})"


def _model_tooltip(entry: ModelEntry) -> str:
    source = f"{entry.hub_id}@{entry.revision}" if entry.hub_id else "the original checkpoint"
    return (f"--model {entry.name}: {entry.backend} backend, {source}, licence {entry.licence}, "
            f"{entry.download_mb} MB. AP source: {entry.ap_source}")


def model_status(config: DetectorConfig) -> tuple[bool, str, str]:
    """(ready, message, details): the backend spec's own check of what is missing, so the dialog
    knows no backend; a catalogue model's message is the command that downloads it."""
    try:
        problem = spec_for(config.backend).missing(config)
    except DetectorUnavailable as exc:  # a backend name written by hand into project.json
        return False, str(exc), ""
    entry = model_of(config)
    if entry is not None:
        if problem is None:
            return True, "Downloaded: its files are on this machine.", ""
        return False, f"Not downloaded. {DOWNLOAD_HINT} --model {entry.name}", problem
    if problem is None:
        return True, "Found: the backend has the files it needs.", ""
    return False, re.split(r"(?<=\.)\s", problem, maxsplit=1)[0], problem  # the first sentence; all of it on hover


VISIBLE_CLASS_ROWS = 9
"""Class rows shown without scrolling: the nine the digit keys reach (seen: only four showed)."""


class ClassTable(QWidget):
    """An ordered, editable list of (class, prompt) rows with add/remove/up/down buttons."""

    changed = Signal()

    def __init__(self, classes: list[str], prompts: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Class", "Prompt (empty: the class name)"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().resizeSection(0, 180)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(True)  # row numbers = digit keys 1..9
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height()
                                    + VISIBLE_CLASS_ROWS * self.table.verticalHeader().defaultSectionSize() + 4)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        buttons = QVBoxLayout()
        for button in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        for name in classes:
            self.add_class(name, prompts.get(name, ""))
        self.add_button.clicked.connect(self._add_clicked)
        self.remove_button.clicked.connect(lambda: self.remove_class(self.table.currentRow()))
        self.up_button.clicked.connect(lambda: self.move_class(self.table.currentRow(), -1))
        self.down_button.clicked.connect(lambda: self.move_class(self.table.currentRow(), 1))
        self.table.itemChanged.connect(lambda _item: self.changed.emit())

    def rows(self) -> list[tuple[str, str]]:
        """(class name, prompt) per row, stripped, in order."""
        out = []
        for row in range(self.table.rowCount()):
            name, prompt = (self.table.item(row, col) for col in (0, 1))
            out.append((name.text().strip() if name else "", prompt.text().strip() if prompt else ""))
        return out

    def add_class(self, name: str = "", prompt: str = "") -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(name))
        self.table.setItem(row, 1, QTableWidgetItem(prompt))
        self.table.setCurrentCell(row, 0)
        self.changed.emit()
        return row

    def set_class(self, row: int, name: str, prompt: str | None = None) -> None:
        """Rename the class in ``row`` (and set its prompt when given)."""
        self._cell(row, 0).setText(name)
        if prompt is not None:
            self._cell(row, 1).setText(prompt)

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        """``add_class`` gives every row both cells; a row outside the table has none."""
        item = self.table.item(row, col)
        if item is None:
            raise IndexError(f"no class in row {row}")
        return item

    def remove_class(self, row: int) -> None:
        if 0 <= row < self.table.rowCount():
            self.table.removeRow(row)
            self.changed.emit()

    def move_class(self, row: int, delta: int) -> None:
        """Move a row up (-1) or down (+1); the order is the digit-key and export order."""
        target = row + delta
        if not (0 <= row < self.table.rowCount() and 0 <= target < self.table.rowCount()):
            return
        taken = [self.table.takeItem(row, col) for col in (0, 1)]
        self.table.removeRow(row)
        self.table.insertRow(target)
        for col, item in enumerate(taken):
            self.table.setItem(target, col, item)
        self.table.setCurrentCell(target, 0)
        self.changed.emit()

    def _add_clicked(self) -> None:
        """A new row is named first: the edit cursor goes to its class-name cell."""
        row = self.add_class()
        item = self._cell(row, 0)
        self.table.scrollToItem(item)
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        self.table.setCurrentCell(row, 0)
        self.table.editItem(item)


class PathField(QWidget):
    """A path line edit with a Browse… button (a file or a folder)."""

    def __init__(self, text: str | None, caption: str, pick_folder: bool = False,
                 file_filter: str = "", placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(text or "")
        self.edit.setPlaceholderText(placeholder)
        self.browse_button = QPushButton("Browse…")
        self._caption, self._pick_folder, self._filter = caption, pick_folder, file_filter
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.browse_button)
        self.browse_button.clicked.connect(self._browse)

    def value(self) -> str | None:
        """The path, or None when left empty (the default applies)."""
        return self.edit.text().strip() or None

    def _browse(self) -> None:
        start = self.edit.text().strip() or str(Path.home())
        if self._pick_folder:
            chosen = QFileDialog.getExistingDirectory(self, self._caption, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._filter)
        if chosen:
            self.edit.setText(chosen)


class SettingsDialog(QDialog):
    """Edit a project's settings; after ``exec()`` is accepted, ``settings()`` is the result."""

    def __init__(self, settings: ProjectSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(SETTINGS_TITLE)
        self._original = settings
        self._extra = dict(settings.extra)  # backend options: the model choice sets its revision
        self.class_table = ClassTable(settings.classes, settings.prompts)
        self.box_threshold = self._threshold_box(settings.box_threshold)
        self.text_threshold = self._threshold_box(settings.text_threshold)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, MAX_BATCH_SIZE)
        self.batch_size.setValue(settings.batch_size)
        self.device = self._combo(DEVICES, settings.device)
        self.precision = self._combo(PRECISIONS, settings.precision)
        self.model = QComboBox()
        for entry in all_models():
            self.model.addItem(model_label(entry), entry.name)
            self.model.setItemData(self.model.count() - 1, _model_tooltip(entry), Qt.ItemDataRole.ToolTipRole)
        self.model.addItem(CUSTOM_MODEL, "")
        self.backend = self._combo(tuple((name, spec.title) for name, spec in BACKENDS.items()), settings.backend)
        self.weights = PathField(settings.weights, "Model weights",
                                 file_filter="Checkpoints (*.pth *.pt *.safetensors);;All files (*)",
                                 placeholder="a checkpoint, a model folder or a hub id; empty: the default "
                                             "checkpoint lookup (AUTOLABEL_WEIGHTS, weights/, user data folder)")
        self.weights_status = QLabel()
        self.weights_status.setWordWrap(True)
        self.weights_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weights_status.setFixedHeight(2 * self.weights_status.fontMetrics().lineSpacing() + 4)
        self.weights_status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.config = PathField(settings.config, "Grounding DINO config",
                                file_filter="Python config (*.py);;All files (*)",
                                placeholder="the package's SwinT-OGC config")
        self.text_encoder = QLineEdit(settings.text_encoder or "")
        self.text_encoder.setPlaceholderText("bert-base-uncased (or a local folder with a copy of it)")
        self.next_to_images = QRadioButton("Next to the images")
        self.in_folder = QRadioButton("In this folder:")
        self.annotations = PathField(settings.annotations_dir, "Annotation folder", pick_folder=True)
        self.error = QLabel()
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.setWordWrap(True)
        # Room for two lines, always: a message appearing or going must not move the fields
        # under the user's pointer (seen: the form jumped 17 px and the next click missed).
        self.error.setFixedHeight(2 * self.error.fontMetrics().lineSpacing() + 4)
        self.error.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self._layout()
        (self.in_folder if settings.annotations_dir else self.next_to_images).setChecked(True)
        self._show_model_of_fields()
        self._connect()
        self._validate()

    def settings(self) -> ProjectSettings:
        """The edited copy (the dialog's input is never modified)."""
        rows = self.class_table.rows()
        return replace(
            self._original,
            backend=self.backend.currentData(),
            extra=dict(self._extra),
            classes=[name for name, _ in rows],
            prompts={name: prompt for name, prompt in rows if prompt},
            box_threshold=round(self.box_threshold.value(), 4),
            text_threshold=round(self.text_threshold.value(), 4),
            batch_size=self.batch_size.value(),
            device=self.device.currentData(),
            precision=self.precision.currentData(),
            weights=self.weights.value(),
            config=self.config.value(),
            text_encoder=self.text_encoder.text().strip() or None,
            annotations_dir=self.annotations.value() if self.in_folder.isChecked() else None,
        )

    def choose_model(self, name: str) -> None:
        """Set the fields to what ``--model name`` sets; "" (Custom) keeps them as they are."""
        self.model.setCurrentIndex(self.model.findData(name))
        self._model_chosen()

    def problem(self) -> str | None:
        """Why OK is refused right now, or None."""
        problem = class_name_problem([name for name, _ in self.class_table.rows()])
        if problem is None and self.in_folder.isChecked() and not self.annotations.value():
            problem = "Choose the annotation folder, or save next to the images."
        return problem

    def accept(self) -> None:
        if self._validate():
            super().accept()

    # ------------------------------------------------------------------ building

    @staticmethod
    def _threshold_box(value: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0.01, 0.99)
        box.setSingleStep(0.05)
        box.setDecimals(2)
        box.setValue(value)
        return box

    @staticmethod
    def _combo(options: tuple[tuple[str, str], ...], current: str) -> QComboBox:
        combo = QComboBox()
        for value, text in options:
            combo.addItem(text, value)
        index = combo.findData(current)
        if index < 0:  # a value written by hand into project.json: keep it visible, not lost
            combo.addItem(current, current)
            index = combo.count() - 1
        combo.setCurrentIndex(index)
        return combo

    def _layout(self) -> None:
        classes = QGroupBox("Classes (row number = digit key)")
        class_layout = QVBoxLayout(classes)
        class_layout.addWidget(self.class_table)
        hint = QLabel("The model reads the prompt; several phrases for one class go in one prompt "
                      "separated by \" . \", e.g. \"car . truck . bus\".")
        hint.setWordWrap(True)
        class_layout.addWidget(hint)

        detection = QGroupBox("Detection")
        form = QFormLayout(detection)
        form.addRow("Box threshold", self.box_threshold)
        form.addRow("Text threshold", self.text_threshold)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)

        model = QGroupBox("Model")
        model_form = QFormLayout(model)
        model_cell = QWidget()
        model_layout = QVBoxLayout(model_cell)
        model_layout.setContentsMargins(0, 0, 0, 0)
        model_layout.addWidget(self.model)
        model_layout.addWidget(self.weights_status)
        model_form.addRow("Model", model_cell)
        model_form.addRow("Backend", self.backend)
        model_form.addRow("Weights", self.weights)
        model_form.addRow("Config", self.config)
        model_form.addRow("Text encoder", self.text_encoder)

        output = QGroupBox("Annotation files (Pascal VOC)")
        output_layout = QVBoxLayout(output)
        group = QButtonGroup(self)
        group.addButton(self.next_to_images)
        group.addButton(self.in_folder)
        output_layout.addWidget(self.next_to_images)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.in_folder)
        folder_row.addWidget(self.annotations, 1)
        output_layout.addLayout(folder_row)
        output_layout.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addWidget(classes, 1)
        columns = QHBoxLayout()
        columns.addWidget(detection)
        columns.addWidget(output, 1)
        layout.addLayout(columns)
        layout.addWidget(model)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(760, 680)

    def _connect(self) -> None:
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.class_table.changed.connect(self._validate)
        self.model.activated.connect(self._model_chosen)  # the user's pick, also of the same one again
        self.weights.edit.textChanged.connect(self._show_model_of_fields)
        self.config.edit.textChanged.connect(self._show_model_of_fields)
        self.backend.currentIndexChanged.connect(self._show_model_of_fields)
        self.in_folder.toggled.connect(self._validate)
        self.in_folder.toggled.connect(self.annotations.setEnabled)
        self.annotations.edit.textChanged.connect(self._validate)
        self.annotations.setEnabled(self.in_folder.isChecked())

    def _validate(self) -> bool:
        problem = self.problem()
        self.error.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)
        return problem is None

    def _model_chosen(self) -> None:
        name = self.model.currentData()
        if not name:  # Custom: the files below stay as they are, for the user to set
            return
        chosen = self.settings().with_model(model_named(name))
        self._extra = dict(chosen.extra)
        self.backend.setCurrentIndex(self.backend.findData(chosen.backend))
        self.weights.edit.setText(chosen.weights or "")
        self.config.edit.setText(chosen.config or "")
        self.box_threshold.setValue(chosen.box_threshold)
        self.text_threshold.setValue(chosen.text_threshold)
        self._show_model_of_fields()

    def _show_model_of_fields(self) -> None:
        """The model list follows the fields (a file typed or browsed by hand is Custom), and the
        status says whether the model's files are here."""
        config = self.settings().detector_config()
        entry = model_of(config)
        self.model.setCurrentIndex(self.model.findData(entry.name if entry else ""))
        found, message, details = model_status(config)
        self.weights_status.setText(message)
        self.weights_status.setToolTip(details)
        self.weights_status.setStyleSheet("" if found else _ERROR_STYLE)
