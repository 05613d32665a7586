"""Box tools without Qt: the view filter in ReviewState, VOC flags as edits, the
boxes panel's rows and the class picker's list."""

from __future__ import annotations

import pytest
from autolabel_gui.app.box_rows import BoxRow, box_rows
from autolabel_gui.app.class_filter import matching_classes, new_class_name
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.review import Blocker, ReviewState
from autolabel_gui.core.view_filter import Show, ViewFilter
from autolabel_gui.formats.voc import parse_voc, voc_bytes


def proposal(x0, y0, x1, y1, label="cat", score=0.8) -> Box:
    return Box(x0, y0, x1, y1, label, score, BoxState.PROPOSED)


@pytest.fixture
def state() -> ReviewState:
    """A file box (person), then proposals dog 0.9, cat 0.5 and cat 0.2 (under the 0.3 threshold)."""
    s = ReviewState(200, 100, [Box(150, 50, 190, 90, "person")], threshold=0.3)
    s.set_proposals([proposal(10, 10, 30, 30, "cat", 0.5), proposal(50, 10, 70, 30, "dog", 0.9),
                     proposal(100, 10, 120, 30, "cat", 0.2)])
    return s


def labels(state: ReviewState, indices) -> list[str]:
    return [state.items[i].box.label for i in indices]


def test_a_hidden_class_is_not_shown_not_reachable_and_blocks_verifying(state):
    state.select(2)
    state.set_view(ViewFilter().with_class("cat", visible=False))
    assert state.selected == -1  # a hidden box is never the target of a key
    assert labels(state, state.visible_indices()) == ["person", "dog"]
    assert labels(state, state.hidden_indices()) == ["cat"]  # the 0.2 cat is the threshold's, not counted
    assert state.hidden_pending_count() == 1
    assert state.label_counts() == {"person": 1, "dog": 1, "cat": 1}  # the panel still lists cat
    for _ in range(3):
        state.select_next()
        assert state.items[state.selected].box.label != "cat"
    assert state.verify_blocker(model_runs=False) == Blocker.HIDDEN_PENDING
    # Space and Ctrl+S reach only what is shown, even when called without asking first
    assert state.accept_all_visible() == 1
    assert state.reject_visible_pending() == 0
    assert [b.label for b in state.accepted_boxes()] == ["person", "dog"]
    assert state.items[2].pending and state.items[3].pending
    state.set_view(ViewFilter())
    assert state.verify_blocker(model_runs=False) is None
    assert state.accept_all_visible() == 1
    assert [b.label for b in state.accepted_boxes()] == ["person", "dog", "cat"]


def test_a_hidden_class_without_pending_proposals_does_not_block(state):
    state.set_view(ViewFilter(frozenset({"person"})))
    assert state.hidden_indices() == [0] and state.hidden_pending_count() == 0
    assert state.verify_blocker(model_runs=False) is None
    assert state.accept_all_visible() == 2
    assert [b.label for b in state.accepted_boxes()] == ["person", "dog", "cat"]  # hidden, still saved


def test_show_only_pending_then_only_accepted(state):
    view = ViewFilter().next_show()
    assert view.show is Show.PENDING
    state.set_view(view)
    assert labels(state, state.visible_indices()) == ["dog", "cat"]
    assert state.verify_blocker(model_runs=False) is None  # accepted boxes hidden: nothing unseen
    state.select(1)
    assert state.accept_selected()
    assert state.selected == 2  # the next pending one; the accepted dog left the view
    assert state.accept_selected()
    assert state.selected == -1  # nothing shown is left to select
    state.set_view(view.next_show())
    assert labels(state, state.visible_indices()) == ["person", "dog", "cat"]
    assert view.next_show().next_show() == ViewFilter()


def test_only_accepted_hides_pending_proposals_and_blocks_verifying(state):
    state.set_view(ViewFilter(show=Show.ACCEPTED))
    assert labels(state, state.visible_indices()) == ["person"]
    assert state.hidden_pending_count() == 2
    assert state.verify_blocker(model_runs=False) == Blocker.HIDDEN_PENDING
    assert state.accept_all_visible() == 0


def test_read_only_and_waiting_come_before_hidden(state):
    state.set_view(ViewFilter(show=Show.ACCEPTED))
    fresh = ReviewState(10, 10)
    fresh.set_view(ViewFilter(show=Show.ACCEPTED))
    assert fresh.verify_blocker(model_runs=True) == "waiting for the model"
    state.read_only = True
    assert state.verify_blocker(model_runs=False) == "read-only"


def test_flags_toggle_accept_undo_and_reach_the_voc_bytes(state):
    state.select(1)  # the dog proposal
    assert state.toggle_difficult()
    assert state.items[1].accepted and state.items[1].box.difficult
    assert state.toggle_truncated()
    assert state.toggle_truncated()
    assert state.toggle_truncated()
    assert state.boxes_changed
    data = voc_bytes(ImageLabels("a.png", 200, 100, boxes=state.accepted_boxes()))
    assert b"<truncated>1</truncated>\n    <difficult>1</difficult>" in data
    back = parse_voc(data)
    assert [(b.label, b.difficult, b.truncated) for b in back.boxes] == [("person", False, False),
                                                                         ("dog", True, True)]
    assert state.undo()
    assert state.items[1].box.truncated is False  # the third toggle, undone
    assert state.undo() and state.undo()
    assert state.items[1].box.difficult and not state.items[1].box.truncated and state.items[1].accepted
    assert state.undo()
    assert state.items[1].pending  # before the first toggle: still a proposal


def test_flags_need_a_selected_box(state):
    state.select(-1)
    assert not state.toggle_difficult() and not state.toggle_truncated()
    assert not state.can_undo


def test_box_rows_follow_the_shown_boxes(state):
    state.select(1)
    state.toggle_difficult()
    state.add_box(Box(0, 60, 20, 90, "cup"))
    assert box_rows(state) == [
        BoxRow(0, "person", "", "file", ()),
        BoxRow(1, "dog", "0.90", "accepted", ("difficult",)),
        BoxRow(2, "cat", "0.50", "proposed", ()),
        BoxRow(4, "cup", "", "drawn", ()),
    ]
    state.set_view(ViewFilter(frozenset({"cat"})))
    assert [r.index for r in box_rows(state)] == [0, 1, 4]
    assert box_rows(None) == []


CLASSES = ["person", "bicycle", "car", "motorcycle", "bus", "train", "truck", "boat", "bench", "bird",
           "cat", "dog"]


def test_class_filter_prefix_first_then_contains():
    assert matching_classes(CLASSES, "") == CLASSES
    assert matching_classes(CLASSES, "b") == ["bicycle", "bus", "boat", "bench", "bird"]
    assert matching_classes(CLASSES, "CA") == ["car", "cat"]
    assert matching_classes(CLASSES, "t") == ["train", "truck", "motorcycle", "boat", "cat"]
    assert matching_classes(CLASSES, "zebra") == []


def test_new_class_name_only_for_names_not_in_the_project():
    assert new_class_name(CLASSES, "  traffic   light ") == "traffic light"
    assert new_class_name(CLASSES, "Cat") is None
    assert new_class_name(CLASSES, "   ") is None
