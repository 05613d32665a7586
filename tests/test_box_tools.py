"""Box tools in the window, driven by real keys and clicks: the boxes panel, class
visibility and the show filter, the class picker, VOC flags; asserted on the saved files."""

from __future__ import annotations

import json

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.boxes import BoxState
from autolabel_gui.gui.class_picker import ClassPicker
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QStyle

from tests.fixtures.window import proposal, put_proposals, send_mouse

Key = Qt.Key
Mod = Qt.KeyboardModifier

PROPOSALS = {
    "a.png": [proposal(10, 10, 50, 60, "person", 0.9), proposal(100, 20, 150, 80, "cat", 0.6),
              proposal(20, 90, 60, 140, "cup", 0.2)],
    "b.png": [proposal(30, 30, 90, 100, "vehicle", 0.8)],
}
TWELVE = ["person", "bicycle", "car", "motorcycle", "bus", "train", "truck", "boat", "bench", "bird",
          "traffic light", "dog"]


def panel_rows(h) -> list[tuple[str, ...]]:
    """What the boxes panel's view shows, cell by cell."""
    model = h.window.box_tools.boxes_panel.table.model()
    return [tuple(model.index(r, c).data() for c in range(model.columnCount())) for r in range(model.rowCount())]


def selected_row(h) -> int:
    rows = h.window.box_tools.boxes_panel.table.selectionModel().selectedRows()
    return rows[0].row() if rows else -1


def click_row(h, qtbot, row: int) -> None:
    table = h.window.box_tools.boxes_panel.table
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton,
                     pos=table.visualRect(table.model().index(row, 1)).center())


def click_on_image(h, x: float, y: float, double: bool = False) -> None:
    canvas = h.window.canvas
    point = canvas.viewportTransform().map(QPointF(x, y))
    left = Qt.MouseButton.LeftButton
    kinds = [QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease]
    if double:
        kinds += [QEvent.Type.MouseButtonDblClick, QEvent.Type.MouseButtonRelease]
    for kind in kinds:
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else left
        send_mouse(canvas.viewport(), kind, point, left, buttons)
    QApplication.processEvents()


def xml(h, rel: str) -> bytes:
    return h.voc_path(rel).read_bytes()


# ------------------------------------------------------------------ boxes panel


def test_boxes_panel_lists_the_shown_boxes_and_follows_the_selection_both_ways(open_review, qtbot):
    h = open_review(["a.png"], PROPOSALS)
    assert h.window.box_tools.dock.isVisible()
    assert panel_rows(h) == [("person", "0.90", "proposed", ""), ("cat", "0.60", "proposed", "")]  # 0.2 < 0.35
    focus = QApplication.focusWidget()
    click_row(h, qtbot, 1)
    assert h.state.selected == 1 and h.window.canvas.selected() == 1
    assert QApplication.focusWidget() is focus is h.window.canvas  # the keys stay the window's
    click_on_image(h, 20, 20)  # the person box, on the canvas
    assert h.state.selected == 0 and selected_row(h) == 0
    h.press(Key.Key_Tab)
    assert selected_row(h) == 1
    h.press(Key.Key_3)  # digits work while the panel is shown: the cat proposal becomes a cup
    assert panel_rows(h)[1] == ("cup", "0.60", "accepted", "")
    click_row(h, qtbot, 0)
    h.press(Key.Key_Delete)  # rejects the person proposal: its row goes
    assert panel_rows(h) == [("cup", "0.60", "accepted", "")]
    h.press(Key.Key_W)
    h.drag((120, 100), (180, 140))
    assert panel_rows(h)[-1] == ("cup", "", "drawn", "") and selected_row(h) == 1  # 3 made cup the highlighted
    h.press(Key.Key_S, Mod.ControlModifier)
    saved = h.saved("a.png")
    assert saved[0] == ("cup", (100, 20, 150, 80)) and saved[1][0] == "cup"
    assert saved[1][1] == pytest.approx((120, 100, 180, 140), abs=1)  # drawn on screen: a pixel either way
    assert h.state.items[0].box.state is BoxState.REJECTED


def test_boxes_panel_can_be_closed_and_brought_back_from_the_view_menu(open_review):
    h = open_review(["a.png"], PROPOSALS)
    action = h.window.actions_by_id["boxes_panel"]
    action.trigger()
    assert not h.window.box_tools.dock.isVisible()
    h.press(Key.Key_Tab)
    h.press(Key.Key_Return)  # while it is closed
    action.trigger()
    assert h.window.box_tools.dock.isVisible()
    assert panel_rows(h) == [("person", "0.90", "accepted", ""), ("cat", "0.60", "proposed", "")]
    assert selected_row(h) == 1


# ------------------------------------------------------------------ visibility


def click_checkbox(h, qtbot, row: int) -> None:
    """A click on the tick of a class row (the left end of the row, where the style draws it)."""
    lst = h.window.class_panel.list
    rect = lst.visualItemRect(lst.item(row))
    indicator = lst.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
    margin = lst.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin)
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(rect.left() + margin + indicator // 2 + 1, rect.center().y()))


def test_a_class_switched_off_is_hidden_and_space_does_not_verify_past_it(open_review, qtbot):
    h = open_review(["a.png", "b.png"], PROPOSALS)
    panel = h.window.class_panel
    h.press(Key.Key_Tab)  # the person proposal is selected
    click_checkbox(h, qtbot, 1)  # cat off
    assert panel.list.item(1).checkState() == Qt.CheckState.Unchecked
    assert panel.current_class() == "person"  # the tick is not a click on the row
    assert h.state.items[0].box.label == "person" and h.state.items[0].pending  # no class given
    assert h.window.canvas.box_item(1) is None and h.window.canvas.box_item(0) is not None
    assert [r[0] for r in panel_rows(h)] == ["person"]
    assert "1 box hidden" in h.window.boxes_label.text()
    assert "(1)" in panel.list.item(1).text()  # the hidden class keeps its count
    assert QApplication.focusWidget() is h.window.canvas

    h.press(Key.Key_Space)
    assert h.controller.current == "a.png" and not h.voc_path("a.png").exists()
    assert "1 pending proposal is hidden" in h.window.message_label.text()
    h.press(Key.Key_S, Mod.ControlModifier)  # nor does Ctrl+S reject what is hidden
    assert not h.voc_path("a.png").exists() and h.state.items[1].pending

    h.press(Key.Key_Return)  # Enter accepts the person (shown), D leaves: saved, not verified
    h.press(Key.Key_D)
    h.wait_shown("b.png")
    assert xml(h, "a.png").count(b"<object>") == 1 and b'verified="yes"' not in xml(h, "a.png")
    h.press(Key.Key_A)
    h.wait_shown("a.png")
    assert h.state.items[1].pending  # the hidden cat is still waiting for a look

    click_checkbox(h, qtbot, 1)  # cat on again
    assert "hidden" not in h.window.boxes_label.text()
    h.press(Key.Key_Space)
    assert h.saved("a.png") == [("person", (10, 10, 50, 60)), ("cat", (100, 20, 150, 80))]
    assert h.voc("a.png").verified


def test_v_cycles_pending_only_accepted_only_and_shift_v_shows_everything(open_review):
    h = open_review(["a.png", "b.png"], PROPOSALS)
    h.press(Key.Key_Tab)
    h.press(Key.Key_Return)  # person accepted
    h.press(Key.Key_V)
    assert "only pending proposals" in h.window.message_label.text()
    assert [r[0] for r in panel_rows(h)] == ["cat"] and "1 box hidden" in h.window.boxes_label.text()
    h.press(Key.Key_V)
    assert [r[0] for r in panel_rows(h)] == ["person"]
    h.press(Key.Key_Space)  # the cat proposal is hidden: refused
    assert h.controller.current == "a.png" and not h.voc_path("a.png").exists()
    h.press(Key.Key_V, Mod.ShiftModifier)
    assert [r[0] for r in panel_rows(h)] == ["person", "cat"]
    h.press(Key.Key_V)  # only pending: Space accepts what is shown, the hidden boxes are accepted ones
    h.press(Key.Key_Space)
    assert h.saved("a.png") == [("person", (10, 10, 50, 60)), ("cat", (100, 20, 150, 80))]
    assert h.voc("a.png").verified and h.controller.current == "b.png"
    assert [r[0] for r in panel_rows(h)] == ["vehicle"]  # the filter holds on the next image


def test_the_view_survives_adding_a_class_to_the_project(open_review, qtbot):
    h = open_review(["a.png"], PROPOSALS)
    click_checkbox(h, qtbot, 1)
    h.window._add_to_project(["tower"])  # reopens the folder under the new class list
    h.wait_shown("a.png")
    assert h.window.class_panel.list.item(1).checkState() == Qt.CheckState.Unchecked
    assert h.state.view.hidden == frozenset({"cat"})


# ------------------------------------------------------------------ class picker


def open_twelve(open_review, proposals=None):
    h = open_review(["a.png"])
    settings = ProjectSettings(classes=list(TWELVE))
    put_proposals(h.root, settings, proposals or {"a.png": [proposal(10, 10, 50, 60, "person", 0.9)]})
    h.window.open_folder(h.root, settings)
    h.settings = settings
    h.wait_shown("a.png")
    h.window.canvas.setFocus()
    return h


def answer_picker(typed: str, seen: list) -> None:
    """Type into the class picker when it opens, then press Enter."""
    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ClassPicker)
        QTest.keyClicks(dialog.filter, typed)
        seen.append(dialog.rows())
        QTest.keyClick(dialog.filter, Key.Key_Return)

    QTimer.singleShot(0, answer)


def test_l_picks_the_eleventh_of_twelve_classes_by_typing(open_review):
    h = open_twelve(open_review)
    h.press(Key.Key_Tab)
    seen: list = []
    answer_picker("light", seen)
    h.press(Key.Key_L)
    assert seen == [["traffic light", '+ Add "light" to the project']]  # Enter takes the first
    assert h.state.items[0].box.label == "traffic light" and h.state.items[0].accepted
    assert h.window.class_panel.current_class() == "traffic light"
    h.press(Key.Key_S, Mod.ControlModifier)
    assert b"<name>traffic light</name>" in xml(h, "a.png")
    assert h.saved("a.png") == [("traffic light", (10, 10, 50, 60))]


def test_up_down_in_the_picker_and_esc_changes_nothing(open_review):
    h = open_twelve(open_review)
    h.press(Key.Key_Tab)
    seen: list = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        QTest.keyClicks(dialog.filter, "b")  # bicycle, bus, boat, bench, bird
        QTest.keyClick(dialog.filter, Key.Key_Down)
        QTest.keyClick(dialog.filter, Key.Key_Down)
        seen.append(dialog.list.currentItem().text())
        QTest.keyClick(dialog.filter, Key.Key_Escape)

    QTimer.singleShot(0, answer)
    h.press(Key.Key_L)
    assert seen == ["boat  [8]"]
    assert h.state.items[0].pending and h.state.items[0].box.label == "person"


def test_double_click_on_a_box_opens_the_picker(open_review):
    h = open_twelve(open_review)
    seen: list = []
    answer_picker("dog", seen)
    click_on_image(h, 30, 30, double=True)
    assert seen == [["dog"]]  # past the digits: no key to show
    h.press(Key.Key_D)  # the only image: saved on the spot
    assert h.saved("a.png") == [("dog", (10, 10, 50, 60))]  # the double-click moved nothing


def test_a_new_class_from_the_picker_joins_the_project_and_the_file(open_review):
    h = open_twelve(open_review)
    h.press(Key.Key_Tab)
    seen: list = []
    answer_picker("scooter", seen)
    h.press(Key.Key_L)
    assert seen == [['+ Add "scooter" to the project']]
    saved = json.loads(ProjectSettings.path_for(h.root).read_text(encoding="utf-8"))
    assert saved["classes"] == [*TWELVE, "scooter"]
    assert h.saved("a.png") == [("scooter", (10, 10, 50, 60))]  # written as the folder reopened
    h.wait_shown("a.png")
    assert h.window.class_panel.names()[-1] == "scooter"


def test_l_without_a_selected_box_says_so(open_review):
    h = open_review(["a.png"], PROPOSALS)
    h.press(Key.Key_L)
    assert "Select a box first" in h.window.message_label.text()
    assert QApplication.activeModalWidget() is None


# ------------------------------------------------------------------ VOC flags


def test_i_and_t_flag_the_selected_box_in_the_file_the_tag_and_the_panel(open_review):
    h = open_review(["a.png"], PROPOSALS)
    h.press(Key.Key_Tab)
    h.press(Key.Key_I)
    h.press(Key.Key_T)
    item = h.window.canvas.box_item(0)
    assert item.label_item.text() == "\u2713 person 0.90 [diff trunc]"
    assert panel_rows(h)[0] == ("person", "0.90", "accepted", "diff trunc")
    flags = h.window.box_tools.boxes_panel.table.model().index(0, 3)
    assert flags.data(Qt.ItemDataRole.ToolTipRole) == "difficult, truncated"
    h.press(Key.Key_S, Mod.ControlModifier)
    data = xml(h, "a.png")
    assert data.count(b"<difficult>1</difficult>") == 1 and data.count(b"<truncated>1</truncated>") == 1
    h.press(Key.Key_Z, Mod.ControlModifier, times=2)  # undo Ctrl+S's rejection of the cat, then the flag
    h.press(Key.Key_D)  # the only image: saved
    data = xml(h, "a.png")
    assert data.count(b"<difficult>1</difficult>") == 1 and b"<truncated>1</truncated>" not in data
    assert h.window.canvas.box_item(0).label_item.text() == "\u2713 person 0.90 [diff]"


def test_flags_read_from_a_voc_file_are_kept_and_can_be_cleared(open_review):
    flagged = (b"<annotation><filename>a.png</filename><size><width>200</width><height>150</height>"
               b"<depth>3</depth></size><object><name>cat</name><truncated>1</truncated>"
               b"<difficult>1</difficult><bndbox><xmin>11</xmin><ymin>11</ymin><xmax>50</xmax>"
               b"<ymax>60</ymax></bndbox></object></annotation>")
    h = open_review(["a.png"], files={"a.xml": flagged})
    assert h.window.canvas.box_item(0).label_item.text() == "cat [diff trunc]"
    h.press(Key.Key_Tab)
    h.press(Key.Key_I)
    h.press(Key.Key_S, Mod.ControlModifier)
    data = xml(h, "a.png")
    assert b"<truncated>1</truncated>" in data and b"<difficult>0</difficult>" in data
    assert [(b.difficult, b.truncated) for b in h.voc("a.png").boxes] == [(False, True)]


def test_flag_keys_without_a_selection_change_nothing(open_review):
    h = open_review(["a.png"], PROPOSALS)
    h.press(Key.Key_I)
    h.press(Key.Key_T)
    assert "Select a box first" in h.window.message_label.text()
    assert not h.state.can_undo


def test_the_grid_leaves_out_an_image_whose_pending_proposals_are_hidden(open_review, qtbot):
    proposals = {"a.png": PROPOSALS["a.png"], "b.png": PROPOSALS["b.png"],
                 "c.png": [proposal(5, 5, 25, 25, "cup", 0.5)]}
    h = open_review(["a.png", "b.png", "c.png"], proposals)
    click_checkbox(h, qtbot, 1)  # cat off: a.png has a pending cat nobody can see
    h.press(Key.Key_G)
    grid = h.window.grid
    assert grid.active and grid.triage.page == ["b.png", "c.png"]
    qtbot.waitUntil(lambda: not grid.triage.loading(), timeout=10_000)
    h.press(Key.Key_Space)
    assert h.voc("b.png").verified and h.voc("c.png").verified
    assert not h.voc_path("a.png").exists()
