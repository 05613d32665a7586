"""The reviewer's tools around the canvas, wired in one place: the boxes panel, which classes and
states are shown, the class picker and the VOC flags.

Wiring only, like the window: the rules are ``ReviewState``'s (view filter, flags, classes) and
the words are ``app.box_rows``'s; the widgets are ``gui.boxes_panel`` and ``gui.class_picker``.
The view filter is kept here, not in a folder's review, so it survives reopening the folder
(adding a class does that) the way the threshold slider does.

The tools know the window only as a ``ReviewHost`` (the few public members they use) and ask it
for anything else by signal (``add_to_project``), so this module never imports the window's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QDockWidget, QMainWindow

from autolabel_gui.app.box_rows import box_rows
from autolabel_gui.core.review import ReviewState
from autolabel_gui.core.view_filter import ViewFilter
from autolabel_gui.gui.boxes_panel import BoxesPanel
from autolabel_gui.gui.canvas import Canvas
from autolabel_gui.gui.class_picker import ClassPicker, PickedClass
from autolabel_gui.gui.panels import ClassPanel
from autolabel_gui.gui.review_controller import ReviewController

SELECT_FIRST = "Select a box first (Tab, or a click on it)."
DOCK_WIDTH = 280
"""The right-hand docks' width: enough for the boxes panel's four columns."""


class ReviewHost(Protocol):
    """What the box tools use of the window that holds them (``gui.main_window.MainWindow``)."""

    @property
    def controller(self) -> ReviewController | None: ...

    @property
    def canvas(self) -> Canvas: ...

    @property
    def class_panel(self) -> ClassPanel: ...

    def state(self) -> ReviewState | None: ...

    def show_message(self, text: str, error: bool = False) -> None: ...


class BoxTools(QObject):
    """Owns the boxes panel's dock (docked in ``window``) and the view filter of ``host``, the
    review shown in that window; ``handlers`` are the keymap rows of these tools."""

    view_changed = Signal()  # other views of the boxes (the grid's tiles) show the new filter
    add_to_project = Signal(list)  # new class names the user gave a box: the project gets them

    def __init__(self, host: ReviewHost, window: QMainWindow) -> None:
        super().__init__(window)
        self._host = host
        self._window = window
        self.view = ViewFilter()
        self.boxes_panel = BoxesPanel(window)
        self.dock = QDockWidget("Boxes", window)
        self.dock.setObjectName("boxes_dock")
        self.dock.setWidget(self.boxes_panel)
        self.dock.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)  # under the classes
        window.resizeDocks([self.dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
        self.ask_class: Callable[[list[str], str], PickedClass | None] = self._ask_with_dialog
        """The class picker: (the project's classes, the box's class) -> the choice, or None."""
        self.boxes_panel.box_clicked.connect(self._row_clicked)
        self.dock.visibilityChanged.connect(lambda shown: self.refresh() if shown else None)
        host.class_panel.visibility_changed.connect(self._class_visibility)
        host.canvas.box_double_clicked.connect(lambda _index: self.pick_class())

    def handlers(self) -> dict[str, Callable[[], object]]:
        return {
            "pick_class": self.pick_class,
            "toggle_difficult": functools.partial(self._edit_selected, ReviewState.toggle_difficult),
            "toggle_truncated": functools.partial(self._edit_selected, ReviewState.toggle_truncated),
            "show_filter": lambda: self.set_view(self.view.next_show()),
            "show_everything": lambda: self.set_view(ViewFilter()),
            "boxes_panel": lambda: self.dock.setVisible(not self.dock.isVisible()),
        }

    def attach(self, controller: ReviewController) -> None:
        """A folder was opened: it shows what this window shows (the window gives the colours)."""
        controller.review.set_view(self.view)

    def refresh(self) -> None:
        """The image's boxes or selection changed: the panel follows (when it is shown)."""
        if not self.dock.isVisible():
            return
        state = self._host.state()
        self.boxes_panel.show_rows(box_rows(state), state.selected if state is not None else -1)

    def set_view(self, view: ViewFilter) -> None:
        self.view = view
        self._host.class_panel.set_hidden(view.hidden)
        if self._host.controller is not None:
            self._host.controller.review.set_view(view)
        self.view_changed.emit()
        self._host.show_message(f"Showing {view.text}.")

    def pick_class(self) -> None:
        """L or a double-click: give the selected box any class, or a new one for the project."""
        controller = self._host.controller
        state = self._host.state()
        if controller is None or state is None:
            return
        if state.read_only:
            self._host.show_message(f"{controller.current} is read-only: its boxes cannot be changed.", True)
            return
        if state.selected < 0:
            self._host.show_message(SELECT_FIRST, True)
            return
        names = list(controller.review.settings.classes)
        picked = self.ask_class(names, state.items[state.selected].box.label)
        self._window.activateWindow()  # the next key (Space, D) is the window's, at once
        self._host.canvas.setFocus()
        if picked is None:
            return
        if not picked.new:
            self._host.class_panel.set_current(names.index(picked.name))
            controller.review.set_class_index(names.index(picked.name))
            return
        # The box first: adding the class reopens the folder, which saves the box with it.
        controller.review.edit(lambda s: s.set_class(picked.name))
        self.add_to_project.emit([picked.name])

    def _ask_with_dialog(self, names: list[str], current: str) -> PickedClass | None:
        dialog = ClassPicker(names, current, self._window)
        return dialog.picked() if dialog.exec() else None

    def _edit_selected(self, op: Callable[[ReviewState], object]) -> None:
        controller = self._host.controller
        state = self._host.state()
        if controller is None or state is None:
            return
        if state.selected < 0 and not state.read_only:
            self._host.show_message(SELECT_FIRST, True)
            return
        controller.review.edit(op)

    @Slot(int)
    def _row_clicked(self, index: int) -> None:
        if self._host.controller is not None:
            self._host.controller.review.select_box(index)
        self._host.canvas.setFocus()

    @Slot(str, bool)
    def _class_visibility(self, name: str, shown: bool) -> None:
        self.set_view(self.view.with_class(name, shown))
        self._host.canvas.setFocus()
