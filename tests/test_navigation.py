"""Finding one's way: zoom to the selected box (Z), the zoom in the status bar, searching the
file list by name (Ctrl+K), File ▸ Open recent, and View ▸ Theme."""

from __future__ import annotations

import shutil

import pytest
from autolabel_gui.gui.colors import PALETTE, UNLABELLED_COLOR, contrast_ratio, text_color_on
from autolabel_gui.gui.recent import LIMIT, existing, pushed, recent_folders
from autolabel_gui.gui.theme import CANVAS_BACKGROUND, Theme, is_dark
from PySide6.QtCore import QPoint, QPointF, QRectF, QSettings, Qt
from PySide6.QtGui import QColor, QPalette, QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.fixtures.window import proposal, write_image

Key = Qt.Key
Mod = Qt.KeyboardModifier

BOXES = {"a.png": [proposal(10, 10, 50, 60, "person", 0.9), proposal(150, 100, 170, 112, "cat", 0.8)]}


def on_screen(canvas, xyxy: tuple[float, float, float, float]) -> QRectF:
    x0, y0, x1, y1 = xyxy
    return canvas.viewportTransform().mapRect(QRectF(x0, y0, x1 - x0, y1 - y0))


def zoom_text(h) -> str:
    return h.window.zoom_label.text()


@pytest.mark.parametrize("index", [0, 1])
def test_z_fits_the_selected_box_in_the_view(open_review, index):
    h = open_review(["a.png"], BOXES)
    canvas = h.window.canvas
    fitted = canvas.scale_factor()
    h.press(Key.Key_Tab, times=index + 1)
    assert h.state.selected == index
    h.press(Key.Key_Z)
    box = BOXES["a.png"][index]
    rect = on_screen(canvas, box.xyxy)
    view = QRectF(canvas.viewport().rect())
    assert canvas.scale_factor() > 2 * fitted
    assert view.contains(rect)
    # the box fills most of the view one way, with room left around it
    assert max(rect.width() / view.width(), rect.height() / view.height()) > 0.5
    assert zoom_text(h) == f"Zoom {round(canvas.scale_factor() * 100)}%"
    assert QApplication.focusWidget() is canvas


def test_z_without_a_selection_says_what_to_do_and_keeps_the_zoom(open_review):
    h = open_review(["a.png"], BOXES)
    before = h.window.canvas.scale_factor()
    h.press(Key.Key_Z)
    assert h.window.canvas.scale_factor() == before
    assert "Select a box first" in h.window.message_label.text()


def test_the_status_bar_shows_the_zoom_after_every_change(open_review):
    h = open_review(["a.png"], BOXES)
    canvas = h.window.canvas
    fitted = canvas.scale_factor()
    assert zoom_text(h) == f"Zoom {round(fitted * 100)}%"
    h.press(Key.Key_Plus)
    assert zoom_text(h) == f"Zoom {round(fitted * 125)}%"
    h.press(Key.Key_Minus)
    assert zoom_text(h) == f"Zoom {round(fitted * 100)}%"
    center = QPointF(canvas.viewport().rect().center())
    wheel = QWheelEvent(center, canvas.viewport().mapToGlobal(center), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Mod.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert canvas.scale_factor() > fitted * 1.1
    assert zoom_text(h) == f"Zoom {round(canvas.scale_factor() * 100)}%"
    h.press(Key.Key_F, Mod.ControlModifier)
    assert zoom_text(h) == f"Zoom {round(fitted * 100)}%"


NAMES = ["cat_01.png", "dog_02.png", "Cat_03.png", "bird_04.png"]


def shown_names(panel) -> list[str]:
    return [panel.model.relpath(panel.proxy.mapToSource(panel.proxy.index(r, 0)).row())
            for r in range(panel.proxy.rowCount())]


def test_ctrl_k_searches_names_and_esc_gives_the_keys_back(open_review):
    h = open_review(NAMES)
    panel = h.window.file_panel
    h.press(Key.Key_K, Mod.ControlModifier)
    assert QApplication.focusWidget() is panel.search
    h.type_text("CAT")
    assert shown_names(panel) == ["cat_01.png", "Cat_03.png"]  # any case
    h.press(Key.Key_Backspace, times=3)
    h.type_text("d")  # typed, not "next image"
    assert shown_names(panel) == ["bird_04.png", "dog_02.png"]
    assert h.controller.current == "bird_04.png"  # the first image, still
    h.press(Key.Key_Escape)
    assert QApplication.focusWidget() is h.window.canvas
    assert panel.search.text() == "d"  # the filter stays until cleared
    h.press(Key.Key_D)  # review keys work again
    h.wait_shown("cat_01.png")


def test_enter_in_the_search_opens_the_first_match(open_review):
    h = open_review(NAMES)
    h.press(Key.Key_K, Mod.ControlModifier)
    h.type_text("dog")
    h.press(Key.Key_Return)
    h.wait_shown("dog_02.png")
    assert QApplication.focusWidget() is h.window.canvas
    assert h.window.file_panel.view.currentIndex().data() == "dog_02.png"
    h.press(Key.Key_K, Mod.ControlModifier)
    h.type_text("_0")  # every name; the image on screen is one of them, so Enter stays there
    h.press(Key.Key_Return)
    assert h.controller.current == "dog_02.png"


@pytest.mark.parametrize("key", [Key.Key_Return, Key.Key_Escape])
def test_enter_and_esc_in_the_search_leave_the_selected_box_alone(open_review, key):
    h = open_review(["a.png"], BOXES)
    h.press(Key.Key_Tab)
    h.press(Key.Key_K, Mod.ControlModifier)
    h.type_text("a")
    h.press(key)  # not "accept the selected proposal", not "clear the selection"
    assert h.state.selected == 0
    assert [it.box.state.value for it in h.state.items] == ["proposed", "proposed"]
    assert QApplication.focusWidget() is h.window.canvas


def test_the_search_combines_with_the_status_filter(open_review, qtbot):
    h = open_review(NAMES)
    panel = h.window.file_panel
    h.press(Key.Key_D)
    h.wait_shown("cat_01.png")
    h.press(Key.Key_S, Mod.ControlModifier)  # verified
    qtbot.waitUntil(lambda: not h.controller.files.is_scanning())
    panel.filter_box.setCurrentIndex(1)  # "Not verified"
    panel.search.setText("cat")
    assert shown_names(panel) == ["Cat_03.png"]


def test_recent_folders_keep_the_last_opened_first(open_review, tmp_path):
    h = open_review(["a.png"])
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        write_image(folder / "x.png")
        h.window.open_folder_from_disk(folder)
    stored = recent_folders(h.window.qsettings)
    assert stored[:3] == [str(second.resolve()), str(first.resolve()), str(h.root.resolve())]
    menu = h.window.recent_menu
    menu.refresh()
    assert [a.text() for a in menu.actions()] == stored
    shutil.rmtree(second)  # gone: dropped from the menu and from the settings
    menu.refresh()
    assert [a.text() for a in menu.actions()] == [str(first.resolve()), str(h.root.resolve())]
    assert recent_folders(h.window.qsettings) == [str(first.resolve()), str(h.root.resolve())]
    menu.actions()[1].trigger()  # the images folder again, opened like File ▸ Open folder…
    h.wait_shown("a.png")
    assert h.controller.review.folder.root == h.root
    assert recent_folders(h.window.qsettings)[0] == str(h.root.resolve())


def test_the_recent_list_is_short_and_has_each_folder_once():
    recent: list[str] = []
    for n in [1, 2, 3, 2, *range(4, 12)]:
        recent = pushed(recent, f"/f{n}")
    assert recent == ["/f11", "/f10", "/f9", "/f8", "/f7", "/f6", "/f5", "/f4"]
    assert len(recent) == LIMIT
    assert existing(["/a", "/b", "/c"], lambda p: p.name != "b") == ["/a", "/c"]


@pytest.fixture
def restore_palette(qapp):
    saved = QPalette(QApplication.palette())
    yield
    QApplication.setPalette(saved)


def test_dark_theme_is_chosen_remembered_and_the_canvas_follows(open_review, restore_palette, tmp_path):
    h = open_review(["a.png"])
    window = h.window
    window.theme_menu.choices[Theme.DARK].trigger()
    QApplication.processEvents()  # the palette reaches the widgets as posted events
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert QApplication.palette().color(QPalette.ColorRole.WindowText).lightness() > 200
    assert window.palette().color(QPalette.ColorRole.Base).lightness() < 80  # widgets take it
    assert window.canvas.backgroundBrush().color() == CANVAS_BACKGROUND[True]
    pixel = window.canvas.grab().toImage().pixelColor(2, 2)  # a corner outside the image
    assert pixel.lightness() < 80
    assert window.qsettings.value("view/theme") == "dark"

    window.theme_menu.choices[Theme.LIGHT].trigger()
    QApplication.processEvents()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 200
    assert window.canvas.grab().toImage().pixelColor(2, 2).lightness() > 150
    window.theme_menu.choices[Theme.DARK].trigger()
    h.close()

    from autolabel_gui.gui.main_window import MainWindow

    again = MainWindow(QSettings(str(tmp_path / "qsettings.ini"), QSettings.Format.IniFormat))
    h.qtbot.addWidget(again)
    assert again.theme_menu.theme is Theme.DARK and again.theme_menu.choices[Theme.DARK].isChecked()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80


def test_system_theme_follows_the_desktop():
    assert is_dark(Theme.SYSTEM, Qt.ColorScheme.Dark)
    assert not is_dark(Theme.SYSTEM, Qt.ColorScheme.Light)
    assert not is_dark(Theme.SYSTEM, Qt.ColorScheme.Unknown)
    assert is_dark(Theme.DARK, Qt.ColorScheme.Light) and not is_dark(Theme.LIGHT, Qt.ColorScheme.Dark)


@pytest.mark.parametrize("color", [*PALETTE, UNLABELLED_COLOR.name()])
def test_every_class_tag_is_readable_as_small_text(color):
    """4.5:1 (WCAG AA for small text) between a tag's text and its class colour, in any theme:
    tags are painted in the class colour, not the theme's."""
    background = QColor(color)
    assert contrast_ratio(background, text_color_on(background)) >= 4.5
