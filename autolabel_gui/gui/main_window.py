"""The review window: wiring only. Actions come from ``gui.keymap``, what they do from
``gui.review_controller``, the panels from ``gui.file_list`` and ``gui.panels``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from autolabel_gui.app.class_change import ClassChange, class_change
from autolabel_gui.app.conflicts import Conflict, ConflictChoice
from autolabel_gui.app.folder_review import FolderReview
from autolabel_gui.app.model_progress import ModelState, ModelStatus, folder_writable
from autolabel_gui.app.project import ProjectSettings, model_id_of, run_id_of
from autolabel_gui.app.trust import remember_chosen
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.review import ReviewState
from autolabel_gui.detection.batch import DetectorFactory
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.gui.box_tools import BoxTools
from autolabel_gui.gui.canvas import Canvas
from autolabel_gui.gui.colors import class_colors
from autolabel_gui.gui.conflict_dialog import ask_conflict
from autolabel_gui.gui.file_list import FileListPanel
from autolabel_gui.gui.fit_tool import FitTool
from autolabel_gui.gui.grid_triage import GridTriage, route_by_mode
from autolabel_gui.gui.keymap import MOVE_STEPS, OPEN_FOLDER_TITLE, ShortcutsDialog, build_actions
from autolabel_gui.gui.message_line import MessageLine
from autolabel_gui.gui.panels import ClassPanel, ThresholdPanel
from autolabel_gui.gui.recent import RecentMenu, remember_folder
from autolabel_gui.gui.resume import (
    remember_annotations,
    remember_image,
    remembered_annotations,
    remembered_image,
)
from autolabel_gui.gui.review_controller import ReviewController
from autolabel_gui.gui.rule_flow import RuleFlow
from autolabel_gui.gui.theme import CANVAS_BACKGROUND, ThemeMenu
from autolabel_gui.gui.unsaved_dialog import UnsavedChoice, ask_unsaved, images_text
from autolabel_gui.gui.user_keys import load_user_keymap

log = logging.getLogger(__name__)

MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("&File", ("open_folder", "save", "settings", "annotation_folder", "export", "quit")),
    ("&Review", ("next_image", "prev_image", "accept_all_next", "next_unverified", "search", "rerun",
                 "manual_review", "grid", "confidence_order", "accept_by_rule", "undo_rule_batch")),
    ("&Edit", ("accept_selected", "delete_selected", "draw", "duplicate", "undo", "redo",
               "pick_class", "toggle_difficult", "toggle_truncated", "fit_box", "fit_all")),
    ("&View", ("fit", "zoom_in", "zoom_out", "zoom_to_box", "toggle_labels", "threshold_down", "threshold_up",
               "show_filter", "show_everything", "boxes_panel", "grid_2", "grid_3", "grid_4")),
    ("&Help", ("help",)),
)
WEIGHTS_HINT = "run `autolabel-gui weights download`"
_ERROR_STYLE = "color: #e53935;"
_WARNING_STYLE = "color: #ef6c00;"


def model_text(status: ModelStatus) -> str:
    """One status-bar line for the detector's state; the full message goes in the tooltip."""
    message = status.message.strip()
    first = message.splitlines()[0] if message else ""
    first = first.split(". ")[0].rstrip(".")  # "weights not found. Looked for:" -> the finding
    if status.state is ModelState.LOADING:
        return f"Model: {first or 'loading'}…"
    if status.state is ModelState.READY:
        return f"Model: {first or 'ready'}"
    if status.state is ModelState.UNAVAILABLE:
        hint = f" — {WEIGHTS_HINT}" if status.download_fixes else ""
        return f"No model: {first}{hint} (drawing and editing still work)"
    return f"Model error: {first}"


def boxes_text(state: ReviewState | None) -> str:
    """What is left to do on this image, at a glance."""
    if state is None:
        return ""
    accepted = len(state.accepted_boxes())
    parts = [f"{state.pending_count()} pending", f"{accepted} accepted"]
    if state.verified:
        parts.append("verified")
    if state.read_only:
        parts.append("read-only")
    if hidden := len(state.hidden_indices()):
        parts.append(f"{hidden} box{'es' if hidden != 1 else ''} hidden")
    return " · ".join(parts)


def _move_by(dx: int, dy: int) -> Callable[[FolderReview], object]:
    """One arrow-key handler; built by a function so that each keeps its own step."""
    return lambda r: r.edit(lambda s: s.move_selected(dx, dy))


class MainWindow(QMainWindow):
    """``open_folder`` shows a folder; everything else is reached through the keymap's actions."""

    def __init__(self, qsettings: QSettings | None = None, *,
                 detector_factory: DetectorFactory = create_detector) -> None:
        super().__init__()
        self.qsettings = qsettings if qsettings is not None else QSettings("autolabel-gui", "autolabel-gui")
        self._detector_factory = detector_factory
        self.controller: ReviewController | None = None
        # What to do when saves still fail as the folder closes: (image -> reason, action) ->
        # choice. A modal QMessageBox; tests put their own answer here.
        self.ask_unsaved: Callable[[dict[str, str], str], UnsavedChoice] = self._ask_with_dialog
        # Where to save VOC files when the image folder cannot be written (the folder, why) ->
        # a folder, or None for "not now". A folder chooser; tests put their own answer here.
        self.ask_annotation_folder: Callable[[Path, str], Path | None] = self._choose_annotation_folder
        # Whether to go ahead with a class change that costs model time (its cost) -> yes/no.
        # A modal question; tests put their own answer here.
        self.ask_class_change: Callable[[ClassChange], bool] = self._confirm_class_change
        # Someone else saved an image since it was opened here: which version to keep. A modal
        # QMessageBox (gui/conflict_dialog.py); tests put their own answer here.
        self.ask_conflict: Callable[[Conflict], ConflictChoice] = lambda c: ask_conflict(self, c)
        self.close_wait_ms: int | None = None
        """How long closing waits for a forward pass in flight (None: until it ends). The
        application sets 1.5 s and then ends the process without it (``worker_left_running``)."""
        self.worker_left_running = False
        self._asking = False
        self.setWindowTitle("autolabel-gui")
        self.canvas = Canvas(self)
        self.grid = GridTriage(self.canvas, self.qsettings, self)
        self.rule_flow = RuleFlow(self)
        self.rule_flow.message.connect(self.show_message)
        self.setCentralWidget(self.grid.stack)
        self.file_panel = FileListPanel(self)
        self.class_panel = ClassPanel(self)
        self.threshold_panel = ThresholdPanel(ProjectSettings().box_threshold, self)
        self._build_docks()
        self.box_tools = BoxTools(self, self)
        self.fit_tool = FitTool(self, self)
        self._build_status_bar()
        self.user_keys = load_user_keymap()
        self.actions_by_id = build_actions(self, route_by_mode(self._handlers(), self.grid), self.user_keys.keymap)
        self.grid.bind_size_actions(self.actions_by_id)
        self.grid.message.connect(self.show_message)
        self.grid.shown.connect(lambda _shown: self._boxes_changed())
        self.actions_by_id["manual_review"].setCheckable(True)
        self._build_menus()
        self._install_workbench()
        self.file_panel.image_chosen.connect(self._image_chosen)
        self.rule_flow.order_changed.connect(self.file_panel.show_order)
        self.file_panel.confidence_source = self.rule_flow.confidence
        self.class_panel.class_clicked.connect(self._class_clicked)
        self.class_panel.add_to_project.connect(self._add_to_project)
        self._threshold_save = QTimer(self, singleShot=True, interval=1000)  # one write per burst of [ ]
        self._threshold_save.timeout.connect(lambda: self.controller and self.controller.review.save_threshold())
        self.threshold_panel.threshold_changed.connect(self._threshold_changed)
        self.threshold_panel.threshold_changed.connect(self.grid.refresh)
        self.box_tools.view_changed.connect(self.grid.refresh)
        self.box_tools.add_to_project.connect(self._add_to_project)
        self.resize(1400, 900)
        self._restore_geometry()
        self.canvas.setFocus()

    # ------------------------------------------------------------------ folders

    def open_folder(self, root: Path, settings: ProjectSettings, first: str | None = None) -> bool:
        """Review ``root`` with ``settings`` (the folder's, already merged with the command line),
        at ``first``, else the image open when the folder was last reviewed, else the first
        image not yet verified."""
        root = Path(root)
        if settings.annotations_dir is None and (chosen := remembered_annotations(self.qsettings, root)):
            settings = replace(settings, annotations_dir=chosen)
        try:
            folder = ImageFolder(root, settings.annotations_path(root))
        except OSError as exc:  # NotADirectoryError included
            self.show_message(str(exc), error=True)
            return False
        if not self._may_close_folder("Close the folder"):
            return False
        self._close_controller()
        controller = ReviewController(self.canvas, folder, settings, self.class_panel.current_class,
                                      detector_factory=self._detector_factory, parent=self)
        self.controller = controller
        controller.review.ask_conflict = lambda conflict: self.ask_conflict(conflict)
        self.box_tools.attach(controller)
        controller.message.connect(self.show_message)
        controller.current_changed.connect(self._current_changed)
        controller.boxes_changed.connect(self._boxes_changed)
        controller.model_state.connect(self._model_state)
        controller.progress_changed.connect(self.progress_label.setText)
        self.file_panel.set_model(controller.files)
        self._show_classes(settings.classes)
        self.threshold_panel.set_value(settings.box_threshold)
        self.model_label.setText(model_text(ModelStatus(ModelState.LOADING, "loading the model")))
        self.setWindowTitle(f"{root.name} — autolabel-gui")
        self.qsettings.setValue("last_folder", str(root.resolve()))
        remember_folder(self.qsettings, root)
        self.actions_by_id["manual_review"].setChecked(False)
        controller.start(first or remembered_image(self.qsettings, root))
        self.grid.attach(controller)
        self.rule_flow.attach(controller)
        self.progress_label.setText(controller.review.progress_text())
        self.canvas.setFocus()
        self._offer_annotation_folder_if_read_only()
        return True

    def _offer_annotation_folder_if_read_only(self) -> None:
        """Said at once: VOC files cannot be written next to the images; offer another folder."""
        folder = None if self.controller is None else self.controller.review.folder
        if folder is None or not folder.images:
            return
        target = folder.annotations if folder.annotations is not None else folder.root
        if folder_writable(target):
            return
        why = (f"{target}: this folder is read-only, so the VOC files cannot be saved there. "
               f"Choose a folder for them (File ▸ Annotation folder…); until then edits stay in memory.")
        self.show_message(why, error=True)
        self._annotation_folder(why)

    def state(self) -> ReviewState | None:
        """The single image's review; None while the grid shows (the side panels then show no
        image's boxes: the one behind the grid is not what the annotator looks at)."""
        return None if self.controller is None or self.grid.active else self.controller.state

    # ------------------------------------------------------------------ status bar

    @Slot(str, bool)
    def show_message(self, text: str, error: bool = False) -> None:
        self.message_label.setText(text.splitlines()[0] if text else "")
        self.message_label.setToolTip(text)
        self.message_label.setStyleSheet(_ERROR_STYLE if error else "")

    @Slot(object)
    def _model_state(self, status: ModelStatus) -> None:
        self.model_label.setText(model_text(status))
        self.model_label.setToolTip(status.message)
        styles = {ModelState.UNAVAILABLE: _WARNING_STYLE, ModelState.ERROR: _ERROR_STYLE}
        self.model_label.setStyleSheet(styles.get(status.state, ""))


    @Slot(str, int, int)
    def _current_changed(self, rel: str, row: int, total: int) -> None:
        self.index_label.setText(f"{row + 1} / {total}  {rel}")
        self.file_panel.set_current(rel)
        if self.controller is not None:
            remember_image(self.qsettings, self.controller.review.folder.root, rel)

    @Slot()
    def _boxes_changed(self) -> None:
        state = self.state()
        self.class_panel.set_counts(state.label_counts() if state is not None else {})
        self.boxes_label.setText(boxes_text(state))
        self.actions_by_id["undo"].setEnabled(state is not None and state.can_undo)
        self.actions_by_id["redo"].setEnabled(state is not None and state.can_redo)
        self.box_tools.refresh()

    # ------------------------------------------------------------------ actions

    def _handlers(self) -> dict[str, Callable[[], object]]:
        c = self._on_review
        handlers: dict[str, Callable[[], object]] = {
            "next_image": c(lambda r: r.step(+1)),
            "prev_image": c(lambda r: r.step(-1)),
            "accept_all_next": c(lambda r: r.accept_all_and_next()),
            "next_unverified": c(lambda r: r.next_unverified()),
            "save": c(lambda r: r.verify_current()),
            "manual_review": c(lambda r: r.set_manual(self.actions_by_id["manual_review"].isChecked())),
            "annotation_folder": lambda: self._annotation_folder(""),
            "rerun": c(lambda r: r.rerun()),
            "accept_selected": c(lambda r: r.edit(ReviewState.accept_selected)),
            "delete_selected": c(lambda r: r.edit(ReviewState.delete_selected)),
            "select_next": c(lambda r: r.edit(ReviewState.select_next)),
            "select_prev": c(lambda r: r.edit(ReviewState.select_prev)),
            "draw": self._on_controller(lambda r: r.start_drawing()),
            "escape": self._on_controller(lambda r: r.escape()),
            "duplicate": c(lambda r: r.edit(ReviewState.duplicate_selected)),
            "undo": c(lambda r: r.edit(ReviewState.undo)),
            "redo": c(lambda r: r.edit(ReviewState.redo)),
            "threshold_down": lambda: self.threshold_panel.step(-1),
            "threshold_up": lambda: self.threshold_panel.step(+1),
            "fit": self.canvas.fit,
            "zoom_in": lambda: self.canvas.zoom_by(1.25),
            "zoom_out": lambda: self.canvas.zoom_by(0.8),
            "toggle_labels": lambda: self.canvas.set_labels_visible(not self.canvas.labels_visible()),
            "zoom_to_box": self._zoom_to_box,
            "search": self.file_panel.focus_search,
            "help": lambda: ShortcutsDialog(self, self.user_keys.keymap).exec(),
            "open_folder": self._choose_folder,
            "settings": self._edit_settings,
            "export": self._export,
            "quit": self.close,
        }
        for n in range(1, 10):
            handlers[f"class_{n}"] = c(functools.partial(self._give_class, index=n - 1))
        for name, (dx, dy) in MOVE_STEPS.items():
            handlers[name] = c(_move_by(dx, dy))
        handlers.update(self.box_tools.handlers())
        handlers.update(self.rule_flow.handlers())
        handlers.update(self.fit_tool.handlers())
        return handlers

    def _on_controller(self, fn: Callable[[ReviewController], object]) -> Callable[[], None]:
        """A handler that does nothing until a folder is open (keys that need the canvas)."""
        def handler() -> None:
            if self.controller is not None:
                fn(self.controller)
        return handler

    def _on_review(self, fn: Callable[[FolderReview], object]) -> Callable[[], None]:
        """A handler of the open folder's review; nothing until a folder is open."""
        return self._on_controller(lambda c: fn(c.review))

    def _give_class(self, review: FolderReview, index: int) -> None:
        self.class_panel.set_current(index)
        review.set_class_index(index)

    @Slot(int)
    def _class_clicked(self, index: int) -> None:
        if self.controller is not None:
            self.controller.review.set_class_index(index)
        self.canvas.setFocus()

    @Slot(str)
    def _image_chosen(self, rel: str) -> None:
        if self.controller is not None:
            self.controller.review.go_to(rel)
        self.canvas.setFocus()

    @Slot(float)
    def _threshold_changed(self, value: float) -> None:
        if self.controller is not None:
            self.controller.review.set_threshold(value)
            self._threshold_save.start()

    def _choose_folder(self) -> None:
        start = self.qsettings.value("last_folder", "") or str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, OPEN_FOLDER_TITLE, str(start))
        if chosen:
            self.open_folder_from_disk(Path(chosen))

    def open_folder_from_disk(self, root: Path) -> None:
        """Open ``root`` with the settings it keeps (File ▸ Open folder…, File ▸ Open recent)."""
        try:
            settings = ProjectSettings.load(root)
        except ValueError as exc:
            self.show_message(f"{exc}; using default settings", error=True)
            settings = ProjectSettings()
        self.open_folder(root, settings)
        if settings.notes:  # a folder's model setting that was ignored, and why
            self.show_message(settings.notes[0], error=True)

    def _annotation_folder(self, why: str) -> None:
        """Ask where VOC files go; edits whose saves failed are written there at once."""
        if self.controller is None:
            self.show_message("Open a folder first (Ctrl+O).", error=True)
            return
        c = self.controller.review
        chosen = self.ask_annotation_folder(c.folder.root, why)
        if chosen is None:
            return
        if not folder_writable(chosen):
            self.show_message(f"{chosen}: cannot be written either; choose another folder.", error=True)
            return
        still = c.set_annotations_folder(Path(chosen))
        remember_annotations(self.qsettings, c.folder.root, Path(chosen).absolute())
        try:
            c.settings.save(c.folder.root)
        except OSError:
            pass  # a read-only folder: the choice is remembered in the user's own settings
        if still:
            self.show_message(f"{len(still)} image(s) still not saved in {chosen}", error=True)
        else:
            self.show_message(f"VOC files are saved in {chosen} from now on.")

    def _choose_annotation_folder(self, root: Path, why: str) -> Path | None:
        chosen = QFileDialog.getExistingDirectory(self, why or "Folder for the VOC files", str(Path.home()))
        return Path(chosen) if chosen else None

    def _edit_settings(self) -> None:
        from autolabel_gui.gui.settings_dialog import SettingsDialog

        if self.controller is None:
            self.show_message("Open a folder first (Ctrl+O): settings are kept per folder.", error=True)
            return
        old = self.controller.review.settings
        dialog = SettingsDialog(old, self)
        if not dialog.exec():
            return
        self._apply_settings(old, dialog.settings())

    @Slot(list)
    def _add_to_project(self, names: list[str]) -> None:
        """Classes found in annotation files join the project's list (and its saved settings)."""
        if self.controller is None:
            return
        old = self.controller.review.settings
        added = [n for n in names if n not in old.classes]
        if added and self._apply_settings(old, replace(old, classes=[*old.classes, *added])):
            self.show_message(f"Added to the project: {', '.join(added)}.")

    def _apply_settings(self, old: ProjectSettings, new: ProjectSettings) -> bool:
        """Save the folder's new settings and show the folder under them. A new class list says
        first what it costs ("bottle: 46 images to detect…") and runs only if the user agrees."""
        assert self.controller is not None
        review = self.controller.review
        root = review.folder.root
        if new.classes != old.classes or new.prompts != old.prompts:
            seconds = self.controller.detection.seconds_per_image()
            change = class_change(old, new, review.folder.images, review.cache, seconds)
            if change.images_to_detect and not self.ask_class_change(change):
                self.show_message("Class list not changed.")
                return False
        remember_chosen([v for v in (new.weights, new.config, new.text_encoder) if v])  # the user picked them
        try:  # over what the file holds now: another annotator may have added classes since
            new = new.save_changes(root, old)
        except (OSError, ValueError) as exc:
            self.show_message(f"{ProjectSettings.path_for(root)}: settings not saved ({exc})", error=True)
            new = new.with_groups_kept()  # the groups as they would be saved: the next change adds to them
        # A new model (weights, text threshold, precision) or VOC folder is a new view of the
        # folder: reopening rebuilds everything that reads the cache or the VOC files. A new
        # class list keeps every proposal and detects only the new classes (ADR 0013).
        if model_id_of(new) != model_id_of(old) or new.annotations_path(root) != old.annotations_path(root):
            self.open_folder(root, new, first=review.current)
            return True
        if run_id_of(new) != run_id_of(old):
            review.apply_classes(new)
            self._show_classes(new.classes)
        else:
            review.reconfigure(new)
        self.threshold_panel.set_value(new.box_threshold)
        return True

    def _show_classes(self, classes: list[str]) -> None:
        """One colour per class on the canvas, in the class panel and in the boxes panel."""
        colors = class_colors(classes)
        self.canvas.set_class_colors(colors)
        self.class_panel.set_classes(classes, colors)
        self.box_tools.boxes_panel.set_class_colors(colors)

    def _confirm_class_change(self, change: ClassChange) -> bool:
        answer = QMessageBox.question(self, "Change the class list", change.text() + "\n\nGo ahead?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _export(self) -> None:
        from autolabel_gui.gui.export_dialog import run_export_dialog

        if self.controller is None:
            self.show_message("Open a folder first (Ctrl+O).", error=True)
            return
        review = self.controller.review
        review.save_current()
        result = run_export_dialog(self, review.folder, review.settings)
        if result is not None:
            self.show_message(f"Exported {result.images} images, {result.boxes} boxes as {result.fmt} to {result.out}")

    # ------------------------------------------------------------------ layout and closing

    def _build_docks(self) -> None:
        files = QDockWidget("Images", self)
        files.setObjectName("images_dock")
        files.setWidget(self.file_panel)
        files.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, files)
        side = QWidget(self)
        layout = QVBoxLayout(side)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.threshold_panel)
        layout.addWidget(self.class_panel, 1)
        classes = QDockWidget("Classes", self)
        classes.setObjectName("classes_dock")
        classes.setWidget(side)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, classes)
        self.resizeDocks([files, classes], [280, 240], Qt.Orientation.Horizontal)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.message_label = MessageLine(self)
        self.model_label = QLabel("Model: no folder open", self)
        self.progress_label = QLabel(self)
        self.progress_label.setToolTip("Images the model has finished (proposals or a failure) / all images")
        self.index_label = QLabel(self)
        self.boxes_label = QLabel(self)
        bar.addWidget(self.message_label, 1)
        for label in (self.progress_label, self.model_label, self.boxes_label, self.index_label):
            bar.addPermanentWidget(label)

    def _build_menus(self) -> None:
        self.menus: dict[str, QMenu] = {}
        for title, ids in MENUS:
            menu = self.menuBar().addMenu(title)
            self.menus[title] = menu
            for action_id in ids:
                menu.addAction(self.actions_by_id[action_id])

    def _install_workbench(self) -> None:
        """File ▸ Open recent, View ▸ Theme, the zoom in the status bar, the name search's way
        back to the canvas, and what was wrong with the user's keys."""
        self.recent_menu = RecentMenu(self.qsettings, self)
        self.menus["&File"].insertMenu(self.actions_by_id["save"], self.recent_menu)  # under Open folder…
        self.recent_menu.folder_chosen.connect(self.open_folder_from_disk)
        self.theme_menu = ThemeMenu(self.qsettings, self)
        self.menus["&View"].addMenu(self.theme_menu)
        self.theme_menu.dark_changed.connect(lambda dark: self.canvas.setBackgroundBrush(CANVAS_BACKGROUND[dark]))
        self.theme_menu.apply()
        self.zoom_label = QLabel(self)
        self.zoom_label.setToolTip("Zoom: screen pixels per image pixel")
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.canvas.zoom_changed.connect(self._zoom_changed)
        self._zoom_changed(self.canvas.scale_factor())
        self.file_panel.search_done.connect(self.canvas.setFocus)
        if self.user_keys.problems:
            log.warning("%s", self.user_keys.message())
            self.show_message(self.user_keys.message(), error=True)

    @Slot(float)
    def _zoom_changed(self, scale: float) -> None:
        self.zoom_label.setText(f"Zoom {scale:.0%}")

    def _zoom_to_box(self) -> None:
        if not self.canvas.zoom_to_selected():
            self.show_message("Select a box first (Tab), then zoom to it.")

    def _restore_geometry(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.qsettings.value("window/state")
        if state is not None:
            self.restoreState(state)

    def _close_controller(self) -> None:
        self.grid.detach()
        self._threshold_save.stop()
        if self.controller is not None:
            self.controller.review.save_threshold()
            if not self.controller.shutdown(self.close_wait_ms):
                self.worker_left_running = True
            self.controller.deleteLater()
            self.controller = None

    def _may_close_folder(self, action: str) -> bool:
        """Save every image before the folder closes; while some saves still fail (full or
        read-only disk), ask whether to retry, ``action`` without them, or keep working."""
        if self._asking:  # Ctrl+C or a second close while the question is open
            return False
        while self.controller is not None and (failed := self.controller.review.save_all()):
            self._asking = True
            try:
                choice = self.ask_unsaved(failed, action)
            finally:
                self._asking = False
            if choice is UnsavedChoice.DISCARD:
                return True
            if choice is UnsavedChoice.CANCEL:
                self.show_message(f"{images_text(len(failed))} not saved: {failed[min(failed)]}", error=True)
                return False
        return True

    def _ask_with_dialog(self, failed: dict[str, str], action: str) -> UnsavedChoice:
        return ask_unsaved(self, failed, action)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save every image (asking when a save still fails), stop the threads, remember the window."""
        if not self._may_close_folder("Quit"):
            event.ignore()
            return
        # A fit writes nothing (its answer is applied on this thread), so quitting never waits for
        # one: the thread is told to stop first and, when the process ends at once, not waited for.
        self.fit_tool.shutdown(0)
        self._close_controller()
        if not self.fit_tool.shutdown(None if self.close_wait_ms is None else 0):
            self.worker_left_running = True
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.qsettings.sync()
        super().closeEvent(event)

