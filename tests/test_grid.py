"""Grid triage in the window, driven by real key presses: G, digits, clicks, Space, Esc."""

from __future__ import annotations

import time

import pytest
from autolabel_gui.app.session import Status
from autolabel_gui.core.boxes import BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.gui.grid_view import MARK_COLOR
from PySide6.QtCore import QEvent, QPointF, Qt

from tests.fixtures.pipeline import FakeDetector
from tests.fixtures.window import proposal, send_mouse

Key = Qt.Key

READY = [f"img{i:02d}.png" for i in range(9)]
WAITING = ["late1.png", "late2.png"]
IMAGES = ["img00.png", "img01.png", "img02.png", "late1.png", "img03.png", "img04.png", "img05.png",
          "late2.png", "img06.png", "img07.png", "img08.png"]
"""Nine images with proposals, two the model has not finished, in between."""


def _proposals(i: int) -> list:
    return [proposal(10 + i, 10, 60 + i, 70, "person", 0.9), proposal(100, 20 + i, 160, 90 + i, "cat", 0.5),
            proposal(20, 90, 60, 140, "cup", 0.2)]  # below the 0.35 threshold: not accepted


PROPOSALS = {rel: _proposals(i) for i, rel in enumerate(READY)}


def open_grid(open_review, images=IMAGES, proposals=PROPOSALS, **kw):
    h = open_review(images, proposals, **kw)
    h.press(Key.Key_G)
    grid = h.window.grid
    assert grid.active
    h.qtbot.waitUntil(lambda: not grid.triage.loading(), timeout=10_000)
    return h, grid


def test_a_page_of_nine_with_two_marked_verifies_seven_and_leaves_two(open_review):
    h, grid = open_grid(open_review)
    assert grid.triage.page == READY  # the two images still waiting are never on a page
    h.press(Key.Key_2)
    h.press(Key.Key_5)
    assert grid.triage.marked() == ["img01.png", "img04.png"]
    h.press(Key.Key_Space)
    verified = [rel for rel in READY if rel not in ("img01.png", "img04.png")]
    for rel in verified:
        i = READY.index(rel)
        assert h.voc(rel).verified
        assert h.saved(rel) == [("person", (10 + i, 10, 60 + i, 70)), ("cat", (100, 20 + i, 160, 90 + i))]
    for rel in ("img01.png", "img04.png", *WAITING):
        assert not h.voc_path(rel).exists()
    assert h.controller.files.counts()[Status.VERIFIED] == 7
    # no image left for another page: back to the single view, at the first marked image
    assert not grid.active
    h.wait_shown("img01.png")
    assert "7 image(s) verified" in h.window.message_label.text()
    # the marked image is reviewed singly as usual: its proposals still pending
    assert [it.box.state for it in h.state.items][:2] == [BoxState.PROPOSED, BoxState.PROPOSED]


def test_space_on_the_grid_does_what_space_does_on_one_image(open_review, tmp_path):
    """The same file and the same review record, whether Space was pressed in the grid or on the image."""
    results = []
    for root, grid_first in ((tmp_path / "a" / "images", True), (tmp_path / "b" / "images", False)):
        h = open_review(["img00.png"], {"img00.png": _proposals(0)}, root=root)
        if grid_first:
            h.press(Key.Key_G)
            grid = h.window.grid
            h.qtbot.waitUntil(lambda: not grid.triage.loading(), timeout=10_000)  # noqa: B023
        h.press(Key.Key_Space)
        h.close()
        text = h.voc_path("img00.png").read_text(encoding="utf-8").replace(str(root), "ROOT")
        record = ProposalCache.for_folder(root).get_review("img00.png")
        results.append((text, record.outcomes, record.rejected))
    assert 'verified="yes"' in results[0][0]
    assert results[0] == results[1]


def test_pages_turn_and_skip_the_marked_images(open_review):
    h, grid = open_grid(open_review)
    grid.set_columns(2)  # View ▸ Grid 2x2: the page is redone with four images
    h.qtbot.waitUntil(lambda: not grid.triage.loading(), timeout=10_000)
    assert grid.triage.page == READY[:4]
    h.press(Key.Key_1)
    h.press(Key.Key_Space)
    h.qtbot.waitUntil(lambda: not grid.triage.loading(), timeout=10_000)
    assert grid.triage.page == READY[4:8]
    assert h.voc("img01.png").verified and not h.voc_path("img00.png").exists()
    h.press(Key.Key_Space)
    h.qtbot.waitUntil(lambda: not grid.triage.loading(), timeout=10_000)
    assert grid.triage.page == ["img08.png"]  # img00 was set aside: it never comes back
    assert h.window.qsettings.value("grid/columns") in (2, "2")


def test_g_and_esc_go_back_to_the_single_image(open_review):
    h, grid = open_grid(open_review)
    h.press(Key.Key_Escape)
    assert not grid.active
    assert h.window.grid.stack.currentWidget() is h.window.canvas
    h.press(Key.Key_G)
    assert grid.active
    h.press(Key.Key_3)
    h.press(Key.Key_G)
    assert not grid.active
    h.wait_shown("img02.png")  # at the marked image
    assert not any(h.voc_path(rel).exists() for rel in IMAGES)  # leaving verifies nothing


def test_the_grid_line_in_the_status_bar_goes_with_the_grid(open_review):
    """Its "Space verifies the other N" would be wrong in the single view (Esc, G or a file-list click)."""
    h, grid = open_grid(open_review)
    h.press(Key.Key_2)
    assert "Grid: 1 of 9 marked" in h.window.message_label.text()
    h.press(Key.Key_Escape)
    assert not grid.active
    assert "Grid:" not in h.window.message_label.text()
    h.press(Key.Key_G)
    assert "Grid:" in h.window.message_label.text()
    h.window.file_panel.image_chosen.emit("img05.png")
    assert not grid.active
    assert "Grid:" not in h.window.message_label.text()


def test_digits_mark_tiles_instead_of_giving_classes(open_review):
    h, grid = open_grid(open_review)
    single = h.controller.state  # the single view's image, behind the grid (the panels show none)
    before = [it.box for it in single.items]
    h.press(Key.Key_4)
    assert grid.triage.tiles[3].marked
    assert [it.box for it in single.items] == before  # no class given, nothing accepted
    assert h.window.class_panel.current_class() == "person"
    h.press(Key.Key_4)
    assert not grid.triage.tiles[3].marked  # a second press takes the mark back
    h.press(Key.Key_Tab)
    h.press(Key.Key_Delete)  # keys of the single image do nothing to it while the grid is shown
    assert [it.box for it in single.items] == before and single.selected == -1


def test_a_click_marks_a_tile_and_the_mark_shows(open_review):
    h, grid = open_grid(open_review)
    view = grid.view
    rect = view.tile_rect(4)
    corner = (rect.x() + 2, rect.y() + rect.height() // 2)
    assert view.grab().toImage().pixelColor(*corner) != MARK_COLOR
    centre = QPointF(rect.center())
    send_mouse(view, QEvent.Type.MouseButtonPress, centre)
    assert grid.triage.marked() == ["img04.png"]
    assert view.grab().toImage().pixelColor(*corner) == MARK_COLOR


def test_g_without_any_ready_image_says_so(open_review):
    h = open_review(WAITING)
    h.press(Key.Key_G)
    assert not h.window.grid.active
    assert "No image for the grid" in h.window.message_label.text()


def test_space_waits_for_the_pictures(open_review):
    h = open_review(IMAGES, PROPOSALS)
    grid = h.window.grid
    h.press(Key.Key_G)
    grid.triage.tiles[0].shown = False  # as if its thumbnail were still decoding
    h.press(Key.Key_Space)
    assert "still loading" in h.window.message_label.text()
    assert not any(h.voc_path(rel).exists() for rel in IMAGES)


@pytest.mark.parametrize("threshold_key", [Key.Key_BracketLeft])
def test_the_threshold_changes_what_a_tile_shows_and_what_space_accepts(open_review, threshold_key):
    h, grid = open_grid(open_review, ["img00.png"], {"img00.png": _proposals(0)}, box_threshold=0.55)
    assert [b.label for b in grid.view.tiles()[0].boxes] == ["person"]
    h.press(threshold_key, times=4)
    assert [b.label for b in grid.view.tiles()[0].boxes] == ["person", "cat"]
    h.press(Key.Key_Space)
    assert [label for label, _ in h.saved("img00.png")] == ["person", "cat"]


def test_an_image_chosen_in_the_file_list_closes_the_grid(open_review):
    h, grid = open_grid(open_review)
    h.window.file_panel.image_chosen.emit("img05.png")
    assert not grid.active
    h.wait_shown("img05.png")


def test_an_image_whose_save_fails_stays_unverified_and_is_said(open_review, monkeypatch):
    import autolabel_gui.app.conflicts as writer_module  # the session writes VOC files through it

    real_write = writer_module.write_voc

    def write_voc(path, labels, **kwargs):
        if path.name == "img03.xml":
            raise OSError(28, "No space left on device")
        real_write(path, labels, **kwargs)

    monkeypatch.setattr(writer_module, "write_voc", write_voc)
    h, grid = open_grid(open_review)
    h.press(Key.Key_Space)
    assert not h.voc_path("img03.png").exists()
    assert sum(h.voc(rel).verified for rel in READY if rel != "img03.png") == 8
    assert h.controller.files.status(h.controller.files.row_of("img03.png")) is not Status.VERIFIED
    assert "1 image(s) not verified: img03.png" in h.window.message_label.text()
    assert not grid.active
    h.wait_shown("img03.png")  # the single view goes on at the image still to verify


class _SlowDetector(FakeDetector):
    """A model a little slower than the test: some images are finished while others wait."""

    def detect(self, images, ontology, score_floor):
        time.sleep(0.3 * len(images))
        return super().detect(images, ontology, score_floor)


def test_with_the_model_running_a_page_holds_only_the_images_it_has_finished(open_review, qtbot):
    images = [f"m{i}.png" for i in range(8)]
    h = open_review(images, detector_factory=lambda config: _SlowDetector(config.device))
    c, grid = h.controller, h.window.grid
    qtbot.waitUntil(lambda: len(c.review.progress.done) >= 2, timeout=60_000)
    done = set(c.review.progress.done)  # proposals arrive only while events are processed: not during the key
    h.press(Key.Key_G)
    assert grid.active
    assert set(grid.triage.page) == done
    qtbot.waitUntil(lambda: not grid.triage.loading(), timeout=10_000)
    h.press(Key.Key_Space)
    for rel in images:
        assert h.voc_path(rel).exists() == (rel in done)
    assert all(h.voc(rel).verified for rel in done)
