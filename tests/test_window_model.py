"""The window with the real (tiny, random) Grounding DINO checkpoint: proposals computed by the
worker thread arrive on the canvas, Space saves them, R brings a rejected proposal back."""

from __future__ import annotations

from autolabel_gui.core.boxes import BoxState
from autolabel_gui.formats.voc import voc_corners
from PySide6.QtCore import Qt

from tests.fixtures.window import WINDOW_CLASSES

Key = Qt.Key
MODEL_TIMEOUT_MS = 180_000  # the model loads on the worker thread; CI machines are slow


def model_settings(tiny_gdino) -> dict:
    return dict(weights=str(tiny_gdino.weights_path), config=str(tiny_gdino.config_path),
                text_encoder=str(tiny_gdino.text_encoder_dir), device="cpu", precision="fp32",
                extra=dict(tiny_gdino.extra), box_threshold=0.3)


def visible(state):
    return [state.items[i].box for i in state.visible_indices()]


def test_real_model_proposals_are_reviewed_and_saved(open_review, tiny_gdino, qtbot):
    from autolabel_gui.detection.catalogue import create_detector

    h = open_review(["a.png", "b.png"], detector_factory=create_detector, **model_settings(tiny_gdino))
    qtbot.waitUntil(lambda: "ready" in h.window.model_label.text(), timeout=MODEL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(h.state.items) > 0, timeout=MODEL_TIMEOUT_MS)
    state = h.state
    assert all(it.box.state is BoxState.PROPOSED and it.box.label in WINDOW_CLASSES
               for it in state.items)
    shown = visible(state)
    assert shown, "the random model gives scores around 0.15..0.9: some pass 0.3"
    canvas = h.window.canvas
    assert all(canvas.box_item(i) is not None for i in state.visible_indices())

    # Reject the surest proposal; R forgets the rejection and the same model proposes it again.
    h.press(Key.Key_Tab)
    rejected = state.items[state.selected].box
    h.press(Key.Key_Delete)
    assert rejected not in visible(state)
    with qtbot.waitSignal(h.controller.detection.proposals_ready, timeout=MODEL_TIMEOUT_MS):
        h.press(Key.Key_R)
    qtbot.waitUntil(lambda: any(b.xyxy == rejected.xyxy for b in visible(h.state)), timeout=5_000)

    expected = [(b.label, voc_corners(b, 200, 150)) for b in visible(h.state)]
    h.press(Key.Key_Space)
    labels = h.voc("a.png")
    assert labels.verified
    assert [(b.label, (b.x0 + 1, b.y0 + 1, b.x1, b.y1)) for b in labels.boxes] == expected
    h.wait_shown("b.png")


def test_adding_a_class_keeps_every_proposal_and_the_model(open_review, tiny_gdino, qtbot):
    """Issue 19: "+ Add" once took "Proposals 15/46" to 0/46, reloaded the model and wiped the
    pending proposals on screen. Now only the new class is detected, by the same model."""
    from autolabel_gui.core.cache import ProposalCache
    from autolabel_gui.core.records import ImageKey
    from autolabel_gui.detection.catalogue import create_detector

    built = []

    def counting_factory(config):
        built.append(config)
        return create_detector(config)

    h = open_review(["a.png", "b.png"], detector_factory=counting_factory, **model_settings(tiny_gdino))
    qtbot.waitUntil(lambda: h.window.progress_label.text().startswith("Proposals 2/2"), timeout=MODEL_TIMEOUT_MS)
    before = [it.box for it in h.state.items]
    assert before and len(built) == 1
    old_group = h.controller.review.session.plan.groups[0]
    key = ImageKey.from_path(h.root, "b.png")
    with ProposalCache.for_folder(h.root) as cache:
        cached = cache.get(key, old_group.run_id)

    h.window._add_to_project(["bottle"])
    [change] = h.class_changes
    assert [(g.classes, g.images) for g in change.to_detect] == [(("bottle",), 2)]
    assert [it.box for it in h.state.items][:len(before)] == before, "nothing on screen is lost"
    qtbot.waitUntil(lambda: h.window.progress_label.text().startswith("Proposals 2/2"), timeout=MODEL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: h.state.model_done, timeout=MODEL_TIMEOUT_MS)
    assert len(built) == 1, "the model is not loaded again for a new class"
    assert [b for b in (it.box for it in h.state.items) if b.label != "bottle"] == before
    with ProposalCache.for_folder(h.root) as cache:
        assert cached is not None and cache.get(key, old_group.run_id) == cached, "the old rows are kept"
        assert cache.get(key, h.controller.review.session.plan.groups[1].run_id) is not None
