"""File > Export: pick a format and an output folder, export off the UI thread with a progress bar.

The work is ``formats.export.export_dataset``, the same call the ``export`` command makes; the
dialog only collects its arguments, shows progress and lets the user cancel (the staging
folder is then removed, so a cancelled export leaves nothing).
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats.export import (
    ORIENTATION_NOTE,
    ExportCancelled,
    ExportError,
    ExportResult,
    check_output,
    export_dataset,
    plan_export,
)
from autolabel_gui.formats.registry import EXPORT_FORMATS
from autolabel_gui.gui.keymap import EXPORT_TITLE

_ERROR_STYLE = "color: #c62828;"


def default_output(root: Path, fmt: str) -> Path:
    """``<folder>-<fmt>`` beside the image folder, numbered so it never names an existing path."""
    base = root.absolute().parent / f"{root.absolute().name}-{fmt}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def export_summary(images: int, negatives: int, verified_only: bool) -> tuple[bool, str]:
    """(whether to allow Export, what to say) for an export of ``images`` images of which
    ``negatives`` have no boxes. Nothing to export is said, not written as an empty dataset."""
    if images == 0:
        if verified_only:
            return False, ("Nothing to export: no image is verified yet. Space or Ctrl+S verifies "
                           "the image on screen; or include the images not yet verified.")
        return False, "Nothing to export: no image has an annotation file yet."
    which = "verified " if verified_only else ""
    return True, (f"{images} {which}images will be exported, {negatives} of them negatives "
                  "(no boxes: the dataset says nothing of any class is in them).")


class _CountWorker(QObject):
    """Plans the export (reads every annotation file) to say what Export would write."""

    counted = Signal(int, int, int)  # generation, images, negatives
    failed = Signal(int, str)
    done = Signal()  # always last: its thread may end

    def __init__(self, generation: int, folder: ImageFolder, classes: list[str], verified_only: bool,
                 stop: threading.Event, include_by_rule: bool = False) -> None:
        super().__init__()
        self._args = (generation, folder, classes, verified_only)
        self._by_rule = include_by_rule
        self._stop = stop

    @Slot()
    def run(self) -> None:
        generation, folder, classes, verified_only = self._args
        try:
            plan = plan_export(folder, classes, verified_only, should_stop=self._stop.is_set,
                               include_by_rule=self._by_rule)
        except ExportCancelled:
            pass
        except (ExportError, OSError) as exc:
            self.failed.emit(generation, str(exc))
        else:
            negatives = sum(1 for item in plan.items if not item.labels.boxes)
            self.counted.emit(generation, len(plan.items), negatives)
        finally:
            self.done.emit()


class _ExportWorker(QObject):
    """Runs one export on the dialog's thread; results travel back as queued signals."""

    progress = Signal(str, int, int)
    finished = Signal(object)  # ExportResult
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, folder: ImageFolder, fmt: str, out: Path, classes: list[str], verified_only: bool,
                 stop: threading.Event, include_by_rule: bool = False) -> None:
        super().__init__()
        self._args = (folder, fmt, out, classes, verified_only)
        self._by_rule = include_by_rule
        self._stop = stop

    @Slot()
    def run(self) -> None:
        folder, fmt, out, classes, verified_only = self._args
        try:
            result = export_dataset(folder, fmt, out, classes, verified_only, progress=self.progress.emit,
                                    should_stop=self._stop.is_set, include_by_rule=self._by_rule)
        except ExportCancelled:
            self.cancelled.emit()
        except (ExportError, OSError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user, not die silently in a thread
            self.failed.emit(f"export failed: {exc!r}")
        else:
            self.finished.emit(result)


class ExportDialog(QDialog):
    """Collects format, output folder and scope; runs the export and reports what it wrote."""

    export_done = Signal(object)  # ExportResult

    def __init__(self, folder: ImageFolder, settings: ProjectSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(EXPORT_TITLE)
        self._folder = folder
        self._classes = list(settings.classes)
        self._stop = threading.Event()
        self._thread: QThread | None = None
        self._worker: _ExportWorker | None = None
        self.result_: ExportResult | None = None
        # What Export would write for the current choices; None while it is being counted.
        self._count: tuple[int, int] | None = None
        self._count_generation = 0
        self._count_stop = threading.Event()
        self._count_thread: QThread | None = None
        self._count_worker: _CountWorker | None = None

        self.format_box = QComboBox()
        for fmt in EXPORT_FORMATS.values():
            self.format_box.addItem(fmt.title, fmt.name)
        self._suggested = str(default_output(folder.root, self.format_box.currentData()))
        self.out_edit = QLineEdit(self._suggested)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.browse_button)
        self.include_unverified = QCheckBox("Include images not yet verified")
        self.include_by_rule = QCheckBox("Include images accepted by rule (after an audit, not seen by a person)")
        classes = ", ".join(self._classes) if self._classes else "none: set the classes in Settings first"
        form = QFormLayout()
        form.addRow("Format", self.format_box)
        form.addRow("Output folder", out_row)
        form.addRow("Classes (in order)", QLabel(classes))
        form.addRow("", self.include_unverified)
        form.addRow("", self.include_by_rule)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status = QLabel("Only verified images are exported unless you include the others.")
        self.status.setWordWrap(True)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setVisible(False)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        self.export_button.setEnabled(False)  # until the count says there is something to export
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.include_unverified.toggled.connect(self._recount)
        self.include_by_rule.toggled.connect(self._recount)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.details)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())
        self._recount()

    def counted(self) -> tuple[int, int] | None:
        """(images, negatives) the export would write with the current choices, once known."""
        return self._count

    def _recount(self) -> None:
        """Count what Export would write, off the UI thread (a big folder has 100,000 files)."""
        self._stop_count()
        self._count = None
        self.export_button.setEnabled(False)
        if not self._classes:
            self._show_error("No classes: set them in Settings (Ctrl+,) first.")
            return
        self.status.setStyleSheet("")
        self.status.setText("Counting the images to export…")
        self._count_generation += 1
        self._count_stop = threading.Event()
        self._count_thread = QThread(self)
        self._count_worker = _CountWorker(self._count_generation, self._folder, self._classes,
                                          not self.include_unverified.isChecked(), self._count_stop,
                                          self.include_by_rule.isChecked())
        self._count_worker.moveToThread(self._count_thread)
        self._count_thread.started.connect(self._count_worker.run)
        self._count_worker.done.connect(self._count_thread.quit)
        self._count_worker.counted.connect(self._on_counted)
        self._count_worker.failed.connect(self._on_count_failed)
        self._count_thread.start()

    @Slot(int, int, int)
    def _on_counted(self, generation: int, images: int, negatives: int) -> None:
        if generation != self._count_generation or self.running():
            return
        self._stop_count()  # finished: join its thread now
        self._count = (images, negatives)
        allowed, text = export_summary(images, negatives, not self.include_unverified.isChecked())
        self.status.setStyleSheet("" if allowed else _ERROR_STYLE)
        self.status.setText(text)
        self.export_button.setEnabled(allowed)
        self.export_button.setToolTip("" if allowed else text)

    @Slot(int, str)
    def _on_count_failed(self, generation: int, message: str) -> None:
        if generation == self._count_generation and not self.running():
            self._stop_count()
            self._show_error(message)

    def _stop_count(self) -> None:
        if self._count_thread is None:
            return
        self._count_stop.set()
        self._count_thread.quit()
        self._count_thread.wait()
        self._count_thread = None
        self._count_worker = None

    def done(self, result: int) -> None:
        """However the dialog closes, no counting thread outlives it."""
        self._stop_count()
        super().done(result)

    def _format_changed(self) -> None:
        """Follow the format in the suggested folder name unless the user chose their own."""
        if self.out_edit.text() == self._suggested:
            self._suggested = str(default_output(self._folder.root, self.format_box.currentData()))
            self.out_edit.setText(self._suggested)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export into (a new or empty folder)",
                                                  str(Path(self.out_edit.text()).parent))
        if chosen:
            self.out_edit.setText(chosen)

    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Check the output folder here (a refusal needs no thread), then export on a QThread."""
        if self.running():
            return
        if self._count is None or self._count[0] == 0:  # an empty dataset is never written
            return
        out = Path(self.out_edit.text().strip()).expanduser()
        try:
            if not self.out_edit.text().strip():
                raise ExportError("choose an output folder")
            check_output(out, self._folder.root)
        except ExportError as exc:
            self._show_error(str(exc))
            return
        self._stop.clear()
        self.details.setVisible(False)
        self.status.setStyleSheet("")
        self.status.setText("Exporting…")
        self.export_button.setEnabled(False)
        for widget in (self.format_box, self.out_edit, self.browse_button, self.include_unverified,
                       self.include_by_rule):
            widget.setEnabled(False)
        self._thread = QThread(self)
        self._worker = _ExportWorker(self._folder, self.format_box.currentData(), out, self._classes,
                                     not self.include_unverified.isChecked(), self._stop,
                                     self.include_by_rule.isChecked())
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the export to stop; it does between two images and removes what it wrote."""
        if self.running():
            self._stop.set()
            self.status.setText("Cancelling…")

    def reject(self) -> None:
        """Cancel (or Escape, or closing the window) stops a running export before closing."""
        if self.running():
            self.cancel()
            self._join()
        super().reject()

    @Slot(str, int, int)
    def _on_progress(self, phase: str, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        what = "Checking annotations" if phase == "reading" else "Exporting"
        self.status.setText(f"{what}… {done} / {total} images")

    @Slot(object)
    def _on_finished(self, result: ExportResult) -> None:
        self._join()
        self.result_ = result
        self.progress_bar.setRange(0, max(result.images, 1))
        self.progress_bar.setValue(max(result.images, 1))
        self.status.setText(f"Exported {result.images} images ({result.boxes} boxes, {result.negatives} "
                            f"without objects) as {result.fmt.upper()} to {result.out}")
        notes = [f"skipped: {s}" for s in result.skipped]
        if result.turned:
            more = ", …" if len(result.turned) > 5 else ""
            notes.append(f"{len(result.turned)} images carry an EXIF orientation "
                         f"({', '.join(result.turned[:5])}{more}): {ORIENTATION_NOTE}")
        if notes:
            self.details.setPlainText("\n".join(notes))
            self.details.setVisible(True)
        self.close_button.setText("Close")
        self.export_done.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._join()
        self._show_error(f"Nothing was written. {message}")
        self._unlock()

    @Slot()
    def _on_cancelled(self) -> None:
        self._join()
        self.status.setStyleSheet("")
        self.status.setText("Cancelled; nothing was written.")
        self.progress_bar.setValue(0)
        self._unlock()

    def _show_error(self, message: str) -> None:
        self.status.setStyleSheet(_ERROR_STYLE)
        self.status.setText(message)

    def _unlock(self) -> None:
        self.export_button.setEnabled(bool(self._count and self._count[0]))
        for widget in (self.format_box, self.out_edit, self.browse_button, self.include_unverified,
                       self.include_by_rule):
            widget.setEnabled(True)

    def _join(self) -> None:
        if self._thread is None:
            return
        self._thread.quit()
        self._thread.wait()
        self._thread = None
        self._worker = None


def run_export_dialog(parent: QWidget | None, folder: ImageFolder, settings: ProjectSettings) -> ExportResult | None:
    """Show the export dialog modally; the result of a finished export, or None."""
    dialog = ExportDialog(folder, settings, parent)
    dialog.exec()
    return dialog.result_
