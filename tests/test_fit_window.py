"""F and Shift+F in the window, with real keys and a tiny random SAM: the model runs on the fit
thread, once per image, the box moves, Ctrl+Z puts it back, and unselected boxes never move."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from autolabel_gui.core.images import load_image
from autolabel_gui.detection.segmenter import Segmenter
from PySide6.QtCore import Qt

from tests.fixtures.window import proposal

# One torch thread: on 2 shared cores two threads spin-wait on each other, and the tiny models' small
# matrices made a fit 100 times slower (measured: 5 fits 3.5 s on 2 threads, 0.03 s on 1, load 5).
pytestmark = pytest.mark.usefixtures("one_torch_thread")

Key = Qt.Key
Mod = Qt.KeyboardModifier
PROPOSALS = {"a.png": [proposal(20, 30, 90, 110, "person", 0.9), proposal(110, 20, 180, 90, "cat", 0.8)]}


class Watched:
    """The tiny SAM, recording the threads its image encoder and prompt decoder run on."""

    def __init__(self, folder: Path) -> None:
        self.inner = Segmenter.from_folder(folder)
        self.model_id = self.inner.model_id
        self.embed_threads: list[int] = []
        self.fit_threads: list[int] = []

    def embed(self, image):
        self.embed_threads.append(threading.get_ident())
        return self.inner.embed(image)

    def fit(self, embedding, boxes):
        self.fit_threads.append(threading.get_ident())
        return self.inner.fit(embedding, boxes)


def fit_and_wait(h, qtbot, modifier=Mod.NoModifier) -> None:
    with qtbot.waitSignal(h.window.fit_tool.done, timeout=30_000):
        h.press(Key.Key_F, modifier)


def expected_fit(tiny_sam: Path, image: Path, box) -> tuple[int, int, int, int] | None:
    segmenter = Segmenter.from_folder(tiny_sam)
    return segmenter.fit(segmenter.embed(load_image(image)), [box.xyxy])[0]


def test_f_fits_the_selected_box_off_the_ui_thread_and_undo_restores_it(open_review, qtbot, tiny_sam) -> None:
    h = open_review(["a.png"], PROPOSALS, segmenter=str(tiny_sam))
    watched = Watched(tiny_sam)
    h.window.fit_tool.load_segmenter = lambda _value: watched
    h.press(Key.Key_F)
    assert h.window.message_label.text().startswith("Select a box first")
    h.press(Key.Key_Tab)
    before = h.state.items[h.state.selected].box
    other = h.state.items[1].box
    fit_and_wait(h, qtbot)
    after = h.state.items[0].box
    assert after.xyxy == expected_fit(tiny_sam, h.root / "a.png", before)
    assert after.xyxy != before.xyxy and after.label == "person" and after.state.value == "accepted"
    assert h.state.items[1].box == other  # not selected: untouched
    assert h.window.message_label.text().startswith(f"fitted: {before.width:.0f}x{before.height:.0f} → ")
    main = threading.get_ident()
    assert watched.embed_threads and main not in watched.embed_threads + watched.fit_threads
    h.press(Key.Key_Tab)
    fit_and_wait(h, qtbot)  # a second box of the same image: its embedding is reused
    assert len(watched.embed_threads) == 1 and len(watched.fit_threads) == 2
    h.press(Key.Key_Z, Mod.ControlModifier)
    h.press(Key.Key_Z, Mod.ControlModifier)
    assert [i.box for i in h.state.items] == [before, other]


def test_shift_f_fits_accepted_boxes_only_and_saves_them(open_review, qtbot, tiny_sam) -> None:
    h = open_review(["a.png"], PROPOSALS, segmenter=str(tiny_sam))
    h.press(Key.Key_Tab)
    h.press(Key.Key_Return)  # accept the person; the cat stays a pending proposal, now selected
    assert h.state.items[0].accepted and h.state.selected == 1
    person, cat = (i.box for i in h.state.items)
    fit_and_wait(h, qtbot, Mod.ShiftModifier)
    fitted = h.state.items[0].box
    assert fitted.xyxy == expected_fit(tiny_sam, h.root / "a.png", person)
    assert h.state.items[1].box == cat and h.state.items[1].pending
    h.press(Key.Key_S, Mod.ControlModifier)
    assert h.saved("a.png") == [("person", fitted.xyxy)]


def test_without_a_segmenter_f_says_how_to_get_one(open_review, tmp_path) -> None:
    h = open_review(["a.png"], PROPOSALS, segmenter=str(tmp_path / "no-model"))
    h.press(Key.Key_Tab)
    before = h.state.items[0].box
    h.press(Key.Key_F)
    assert "autolabel-gui weights download --segmenter" in h.window.message_label.toolTip()
    assert h.window.fit_tool.pending == 0 and h.state.items[0].box == before


def test_an_answer_for_an_image_left_meanwhile_changes_nothing(open_review, qtbot, tiny_sam) -> None:
    h = open_review(["a.png", "b.png"], PROPOSALS, segmenter=str(tiny_sam))
    left = threading.Event()
    watched = Watched(tiny_sam)
    real_embed = watched.embed

    def embed_after_leaving(image):
        assert left.wait(30)  # the fit thread answers only once the user is on the next image
        return real_embed(image)

    watched.embed = embed_after_leaving
    h.window.fit_tool.load_segmenter = lambda _value: watched
    h.press(Key.Key_Tab)
    before = h.state.items[0].box
    h.press(Key.Key_F)
    h.press(Key.Key_D)
    h.wait_shown("b.png")
    with qtbot.waitSignal(h.window.fit_tool.done, timeout=30_000):
        left.set()
    assert "dropped" in h.window.message_label.toolTip()
    assert h.window.controller.review.session.get("a.png").items[0].box == before
