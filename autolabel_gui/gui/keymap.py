"""The one table of shortcuts: the window's actions and the F1 help are both built from it.

Every key is a window-wide ``QAction`` (``Qt.WindowShortcut``). Qt tries shortcuts before it
delivers a key press, so Tab reaches the "next box" action instead of moving the focus, as long
as no focused widget claims Tab for itself: the window keeps focus on the canvas (side panels
take no keyboard focus) and the tests press Tab on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True, slots=True)
class KeyBinding:
    action: str
    keys: tuple[str, ...]  # QKeySequence strings (PortableText); empty: menu only
    description: str
    group: str
    dialog: str = ""  # the title of the window this action opens: its menu entry is that + "…"


# The windows that menu entries open: each one's title is its entry's text, so "File ▸ Settings…"
# opens "Settings" (seen: "File ▸ Classes" opened "Project settings").
OPEN_FOLDER_TITLE = "Open folder"
SETTINGS_TITLE = "Settings"
EXPORT_TITLE = "Export"
SHORTCUTS_TITLE = "Keyboard shortcuts"
PICKER_TITLE = "Class picker"
RULE_TITLE = "Accept by rule"


def _classes() -> tuple[KeyBinding, ...]:
    return tuple(KeyBinding(f"class_{n}", (str(n),), f"give the selected box class {n} (class list order)", "Boxes")
                 for n in range(1, 10))


KEYMAP: tuple[KeyBinding, ...] = (
    KeyBinding("next_image", ("D",), "next image (saves first)", "Images"),
    KeyBinding("prev_image", ("A",), "previous image (saves first)", "Images"),
    KeyBinding("accept_all_next", ("Space",),
               "accept every visible proposal, mark verified, save, go to the next unverified image", "Images"),
    KeyBinding("next_unverified", ("Ctrl+N",), "go to the next unverified image (saves first)", "Images"),
    KeyBinding("save", ("Ctrl+S",), "save now and mark verified", "Images"),
    KeyBinding("rerun", ("R",), "run the detector again on this image", "Images"),
    KeyBinding("accept_selected", ("Return", "Enter"),
               "accept the selected proposal, select the next pending one", "Boxes"),
    KeyBinding("delete_selected", ("Delete", "Backspace", "X"),
               "delete / reject the selected box, select the next one", "Boxes"),
    KeyBinding("select_next", ("Tab",), "select the next box", "Boxes"),
    KeyBinding("select_prev", ("Shift+Tab", "Shift+Backtab"), "select the previous box", "Boxes"),
    KeyBinding("draw", ("W",), "draw a new box (drag); Esc cancels", "Boxes"),
    KeyBinding("escape", ("Esc",), "cancel drawing, or clear the selection", "Boxes"),
    *_classes(),
    KeyBinding("move_left", ("Left",), "move the selected box 1 px left", "Boxes"),
    KeyBinding("move_right", ("Right",), "move the selected box 1 px right", "Boxes"),
    KeyBinding("move_up", ("Up",), "move the selected box 1 px up", "Boxes"),
    KeyBinding("move_down", ("Down",), "move the selected box 1 px down", "Boxes"),
    KeyBinding("move_left_10", ("Shift+Left",), "move the selected box 10 px left", "Boxes"),
    KeyBinding("move_right_10", ("Shift+Right",), "move the selected box 10 px right", "Boxes"),
    KeyBinding("move_up_10", ("Shift+Up",), "move the selected box 10 px up", "Boxes"),
    KeyBinding("move_down_10", ("Shift+Down",), "move the selected box 10 px down", "Boxes"),
    KeyBinding("duplicate", ("Ctrl+D",), "duplicate the selected box", "Boxes"),
    KeyBinding("fit_box", ("F",), "fit the selected box to its object (a segmenter, on a worker thread; "
               "an empty mask leaves it as it is; undo puts it back)", "Boxes"),
    KeyBinding("fit_all", ("Shift+F",), "fit every accepted box shown to its object (one undo step)", "Boxes"),
    KeyBinding("undo", ("Ctrl+Z",), "undo", "Boxes"),
    KeyBinding("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "redo", "Boxes"),
    KeyBinding("threshold_down", ("[",), "lower the score threshold", "View"),
    KeyBinding("threshold_up", ("]",), "raise the score threshold", "View"),
    KeyBinding("fit", ("Ctrl+F",), "fit the image in the window", "View"),
    KeyBinding("zoom_in", ("+", "="), "zoom in (also Ctrl+wheel)", "View"),
    KeyBinding("zoom_out", ("-",), "zoom out (also Ctrl+wheel)", "View"),
    KeyBinding("toggle_labels", ("H",), "hide or show the class labels of the boxes", "View"),
    KeyBinding("zoom_to_box", ("Z",), "zoom to the selected box", "View"),
    KeyBinding("search", ("Ctrl+K",), "search images by name (Enter or Esc: back to the image)", "Images"),
    KeyBinding("grid", ("G",), "grid triage: a page of the next images with proposals ready; digits 1-9 or a "
               "click mark those that need work, Space verifies the others and turns the page; G or Esc goes back",
               "Review"),
    KeyBinding("confidence_order", ("O",), "review order by the model's confidence (unsure images first; Space, "
               "Ctrl+N and the grid follow it), or folder order again", "Review"),
    KeyBinding("accept_by_rule", ("Shift+A",), "accept by rule: a rule on the scores, its match count, a random "
               "audit reviewed as usual, then the error rate's 95% bound before the rest are accepted (never "
               "as verified); during the audit, asks whether to stop it", "Review", RULE_TITLE),
    KeyBinding("undo_rule_batch", (), "undo the last accept-by-rule batch (files changed since stay)", "Review"),
    KeyBinding("grid_2", (), "grid of 2×2 images a page", "View"),
    KeyBinding("grid_3", (), "grid of 3×3 images a page", "View"),
    KeyBinding("grid_4", (), "grid of 4×4 images a page (digits mark the first nine, a click any)", "View"),
    # Box tools (gui/box_tools.py): any class from the keyboard, VOC flags, which boxes are shown.
    KeyBinding("pick_class", ("L",), "class picker (type to filter; Enter gives the selected box that class, "
               "or a new one added to the project; also a double-click on a box)", "Boxes", PICKER_TITLE),
    KeyBinding("toggle_difficult", ("I",),
               "toggle difficult on the selected box (kept in the VOC file; the tag shows [diff])", "Boxes"),
    KeyBinding("toggle_truncated", ("T",),
               "toggle truncated on the selected box (kept in the VOC file; the tag shows [trunc])", "Boxes"),
    KeyBinding("show_filter", ("V",), "cycle the box filter (all, only pending proposals, only accepted boxes; "
               "Space never verifies past a hidden proposal)", "View"),
    KeyBinding("show_everything", ("Shift+V",), "show everything again (every class, every box)", "View"),
    KeyBinding("boxes_panel", (), "boxes panel (show or hide the list of this image's boxes)", "View"),
    KeyBinding("help", ("F1", "?"), "show this table", "Help", SHORTCUTS_TITLE),
    KeyBinding("open_folder", ("Ctrl+O",), "open a folder of images", "File", OPEN_FOLDER_TITLE),
    KeyBinding("settings", ("Ctrl+,",), "settings: classes, prompts, thresholds, model (kept per folder)",
               "File", SETTINGS_TITLE),
    KeyBinding("annotation_folder", (), "choose the folder VOC files are saved in (for a read-only image folder)",
               "File"),
    KeyBinding("manual_review", (), "review without the model: Space verifies your own boxes, waits for nothing",
               "Review"),
    KeyBinding("export", ("Ctrl+E",), "export the verified labels as a YOLO, COCO or VOC dataset", "File",
               EXPORT_TITLE),
    KeyBinding("quit", ("Ctrl+Q",), "quit (saves first)", "File"),
)

MOVE_STEPS: dict[str, tuple[int, int]] = {
    "move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1),
    "move_left_10": (-10, 0), "move_right_10": (10, 0), "move_up_10": (0, -10), "move_down_10": (0, 10),
}
"""Pixels per arrow-key action (Shift moves 10)."""


def title(b: KeyBinding) -> str:
    """A menu entry's text: the title of the window it opens and "…", else the description up
    to its first clause."""
    if b.dialog:
        return f"{b.dialog}…"
    text = re.split(r"[,;(]", b.description)[0].strip()
    return text[:1].upper() + text[1:]


def key_text(b: KeyBinding) -> str:
    """The keys as the user reads them on this platform (Ctrl shows as Cmd on macOS)."""
    shown = [QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in b.keys
             if k != "Shift+Backtab"]
    return ", ".join(shown) or "menu"


def build_actions(parent: QWidget, handlers: dict[str, Callable[[], object]],
                  keymap: tuple[KeyBinding, ...] = KEYMAP) -> dict[str, QAction]:
    """One QAction per table row, added to ``parent`` so its keys work anywhere in the window.

    ``keymap``: the keys in force (``KEYMAP`` with the user's overrides, ``gui.user_keys``).
    Every row needs a handler and every handler a row: a missing one is a bug, not a dead key.
    """
    missing = {b.action for b in keymap} ^ set(handlers)
    if missing:
        raise KeyError(f"keymap and handlers differ: {sorted(missing)}")
    actions: dict[str, QAction] = {}
    for b in keymap:
        action = QAction(title(b), parent)
        action.setObjectName(b.action)
        action.setShortcuts([QKeySequence(k) for k in b.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{b.description} ({key_text(b)})")
        action.triggered.connect(handlers[b.action])
        parent.addAction(action)
        actions[b.action] = action
    return actions


class ShortcutsDialog(QDialog):
    """F1: the keymap as a table, generated from the keys in force so it can never be out of date."""

    def __init__(self, parent: QWidget | None = None, keymap: tuple[KeyBinding, ...] = KEYMAP) -> None:
        super().__init__(parent)
        self.setWindowTitle(SHORTCUTS_TITLE)
        self.table = QTableWidget(len(keymap), 4, self)
        # "Name" is what a user's keys.json calls the action (gui.user_keys).
        self.table.setHorizontalHeaderLabels(["Key", "Action", "Group", "Name"])
        for row, b in enumerate(keymap):
            for col, text in enumerate((key_text(b), b.description, b.group, b.action)):
                item = QTableWidgetItem(text)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.table.setItem(row, col, item)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(860, 640)
