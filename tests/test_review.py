"""ReviewState: the per-image review rules and undo/redo, without Qt."""

from __future__ import annotations

import pytest
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.records import Outcome, ReviewRecord
from autolabel_gui.core.review import DUPLICATE_OFFSET, Origin, ReviewState


def proposal(x0, y0, x1, y1, label="cat", score=0.8) -> Box:
    return Box(x0, y0, x1, y1, label, score, BoxState.PROPOSED)


def accepted(x0, y0, x1, y1, label="cat") -> Box:
    return Box(x0, y0, x1, y1, label)


@pytest.fixture
def state() -> ReviewState:
    """Three proposals (scores 0.9, 0.5, 0.2) on a 200x100 image, threshold 0.3."""
    s = ReviewState(200, 100, threshold=0.3)
    s.set_proposals([
        proposal(10, 10, 30, 30, "cat", 0.5),
        proposal(50, 10, 70, 30, "dog", 0.9),
        proposal(100, 10, 120, 30, "cat", 0.2),
    ])
    return s


def xyxy(boxes):
    return [(b.label, b.xyxy) for b in boxes]


def test_proposals_are_ordered_by_score_and_filtered_by_threshold(state):
    assert [it.box.score for it in state.items] == [0.9, 0.5, 0.2]
    assert state.visible_indices() == [0, 1]
    display = state.display_boxes()
    assert [b.state for b in display] == [BoxState.PROPOSED, BoxState.PROPOSED, BoxState.REJECTED]
    state.set_threshold(0.1)
    assert state.visible_indices() == [0, 1, 2]
    assert state.accepted_boxes() == []


def test_enter_accepts_selected_and_moves_to_next_pending(state):
    state.select(0)
    assert state.accept_selected()
    assert state.selected == 1
    assert xyxy(state.accepted_boxes()) == [("dog", (50, 10, 70, 30))]
    assert state.accepted_boxes()[0].score is None
    assert state.accept_selected()
    # nothing pending left that is visible: the selection stays on the last accepted box
    assert state.selected == 1
    assert not state.accept_selected()


def test_space_accepts_only_visible_proposals(state):
    assert state.accept_all_visible() == 2
    assert xyxy(state.accepted_boxes()) == [("dog", (50, 10, 70, 30)), ("cat", (10, 10, 30, 30))]
    state.set_threshold(0.1)
    assert state.accept_all_visible() == 1
    assert len(state.accepted_boxes()) == 3


def test_delete_rejects_proposal_and_remembers_it(state):
    state.select(0)
    assert state.delete_selected()
    assert state.items[0].rejected
    assert state.selected == 1
    assert state.visible_indices() == [1]
    record = state.record("run")
    assert record.rejected == [proposal(50, 10, 70, 30, "dog", 0.9).with_state(BoxState.REJECTED)]
    assert record.outcomes == [Outcome("dog", 0.9, "rejected")]
    # the same proposals delivered again (cache hit, other image and back): no change
    assert not state.set_proposals([
        proposal(10, 10, 30, 30, "cat", 0.5),
        proposal(50, 10, 70, 30, "dog", 0.9),
        proposal(100, 10, 120, 30, "cat", 0.2),
    ])


def test_rejected_proposal_does_not_come_back_on_reopen(state):
    state.select(0)
    state.delete_selected()
    record = state.record("run")
    again = ReviewState(200, 100, record=record, threshold=0.3)
    again.set_proposals([proposal(10, 10, 30, 30, "cat", 0.5), proposal(50.5, 10, 70, 30, "dog", 0.9)])
    assert xyxy(it.box for it in again.items) == [("cat", (10, 10, 30, 30))]
    assert again.record("run").outcomes == [Outcome("dog", 0.9, "rejected")]


def test_rerun_forgets_rejections_but_keeps_accepted(state):
    state.select(0)
    state.delete_selected()           # dog rejected
    state.select(1)
    state.accept_selected()           # cat 0.5 accepted
    state.set_proposals([proposal(50, 10, 70, 30, "dog", 0.9), proposal(10, 10, 30, 30, "cat", 0.5)], rerun=True)
    labels = [(it.box.label, it.box.state, it.origin) for it in state.items]
    assert labels == [("cat", BoxState.ACCEPTED, Origin.PROPOSAL), ("dog", BoxState.PROPOSED, Origin.PROPOSAL)]
    assert Outcome("dog", 0.9, "rejected") in state.record("run").outcomes


def test_delete_accepted_box_removes_it_and_selects_next():
    s = ReviewState(100, 100, [accepted(0, 0, 10, 10), accepted(20, 20, 30, 30, "dog"), accepted(40, 40, 50, 50)])
    s.select(1)
    assert s.delete_selected()
    assert xyxy(s.accepted_boxes()) == [("cat", (0, 0, 10, 10)), ("cat", (40, 40, 50, 50))]
    assert s.selected == 1
    s.select(1)
    s.delete_selected()
    assert s.selected == 0  # wrapped around
    s.delete_selected()
    assert s.selected == -1 and s.accepted_boxes() == []


def test_delete_accepted_proposal_turns_it_rejected(state):
    state.select(0)
    state.move_selected(5, 0)
    state.delete_selected()
    assert state.items[0].rejected
    assert state.items[0].box.xyxy == (50, 10, 70, 30)  # the detector's box is what was wrong
    assert state.record("r").outcomes == [Outcome("dog", 0.9, "rejected")]


def test_file_boxes_hide_duplicate_proposals():
    s = ReviewState(200, 100, [accepted(10, 10, 30, 30, "cat")], threshold=0.3)
    s.set_proposals([proposal(11, 10, 30, 30, "cat", 0.9),    # same object
                     proposal(11, 10, 30, 30, "dog", 0.9),    # other class: kept
                     proposal(20, 10, 40, 30, "cat", 0.8)])   # IoU 1/3: kept
    assert [(it.box.label, it.origin) for it in s.items] == [
        ("cat", Origin.FILE), ("dog", Origin.PROPOSAL), ("cat", Origin.PROPOSAL)]
    assert not s.boxes_changed and not s.record_changed


def test_tab_cycles_visible_boxes_in_list_order(state):
    state.select_next()
    assert state.selected == 0
    state.select_next()
    assert state.selected == 1
    state.select_next()
    assert state.selected == 0  # index 2 is below the threshold
    state.select_prev()
    assert state.selected == 1
    state.select(2)
    assert state.selected == -1  # a hidden box cannot be selected


def test_class_change_accepts_and_counts_as_edited(state):
    state.select(1)
    assert state.set_class("dog")
    assert state.items[1].accepted
    assert state.record("r").outcomes == [Outcome("cat", 0.5, "edited")]
    assert state.label_counts() == {"dog": 2}


def test_move_is_clamped_to_the_image(state):
    state.select(0)
    state.move_selected(-100, 0)
    assert state.items[0].box.xyxy == (0, 10, 20, 30)
    state.move_selected(1000, 1000)
    assert state.items[0].box.xyxy == (180, 80, 200, 100)
    assert state.items[0].accepted


def test_replace_box_from_canvas_drag_clamps_and_keeps_label(state):
    assert state.replace_box(1, Box(-5, 5, 25, 120, "whatever"))
    assert state.items[1].box.xyxy == (0, 5, 25, 100)
    assert state.items[1].box.label == "cat"
    assert state.selected == 1
    assert not state.replace_box(1, Box(300, 5, 400, 20, "x"))  # no area left inside the image


def test_draw_and_duplicate(state):
    assert state.add_box(Box(150, 50, 10, 90, "person"))
    assert state.selected == 3
    assert state.items[3].box.xyxy == (10, 50, 150, 90)
    assert state.items[3].origin is Origin.DRAWN
    assert state.duplicate_selected()
    assert state.selected == 4
    d = DUPLICATE_OFFSET
    assert state.items[4].box.xyxy == (10 + d, 50 + d, 150 + d, 90 + d)
    assert not state.add_box(Box(5, 5, 5, 50, "x"))
    assert state.record("r").outcomes == [Outcome("person", None, "accepted")] * 2


def test_unlimited_undo_and_redo_of_every_kind_of_edit(state):
    history = [state.items]
    state.select(0)
    state.accept_selected()
    history.append(state.items)
    state.select(1)
    state.delete_selected()
    history.append(state.items)
    state.select(0)
    state.move_selected(3, 4)
    history.append(state.items)
    state.replace_box(0, Box(0, 0, 90, 90, "dog"))
    history.append(state.items)
    state.set_class("cat")
    history.append(state.items)
    state.add_box(Box(1, 1, 9, 9, "cat"))
    history.append(state.items)
    state.duplicate_selected()
    history.append(state.items)
    state.set_threshold(0.0)
    state.accept_all_visible()
    history.append(state.items)
    for expected in reversed(history[:-1]):
        assert state.undo()
        assert state.items == expected
    assert not state.undo()
    for expected in history[1:]:
        assert state.redo()
        assert state.items == expected
    assert not state.redo()
    state.undo()
    state.move_selected(1, 0)
    assert not state.can_redo  # a new edit drops the redo branch


def test_changed_flags_follow_the_saved_state(state):
    assert not state.boxes_changed and not state.record_changed
    state.select(0)
    state.delete_selected()
    assert state.record_changed and not state.boxes_changed
    state.accept_selected()
    assert state.boxes_changed
    state.mark_saved(verified=True)
    assert not state.boxes_changed and not state.record_changed and state.verified
    state.undo()
    assert state.boxes_changed
    state.redo()
    assert not state.boxes_changed


def test_read_only_state_refuses_edits():
    s = ReviewState(100, 100, [accepted(0, 0, 10, 10)], read_only=True)
    s.select(0)
    assert not s.delete_selected()
    assert not s.move_selected(1, 1)
    assert not s.add_box(Box(20, 20, 30, 30, "cat"))
    assert not s.set_class("dog")
    assert s.accept_all_visible() == 0
    assert xyxy(s.accepted_boxes()) == [("cat", (0, 0, 10, 10))]


def test_outcomes_of_earlier_sessions_are_kept():
    old = ReviewRecord("r", [], [Outcome("cat", 0.7, "accepted")])
    s = ReviewState(100, 100, record=old, threshold=0.1)
    s.set_proposals([proposal(0, 0, 10, 10, "dog", 0.6)])
    s.select(0)
    s.accept_selected()
    assert s.record("r").outcomes == [Outcome("cat", 0.7, "accepted"), Outcome("dog", 0.6, "accepted")]
