"""Review by exception in the window: O orders by confidence, Shift+A accepts by rule after an
audit reviewed with the usual keys, the batch is undone from the Review menu."""

from __future__ import annotations

from autolabel_gui.app.status import Status
from autolabel_gui.gui.file_list import RANGE_FILTER, UNSURE_FILTER
from autolabel_gui.gui.rule_dialog import RuleDialog
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from tests.fixtures.window import proposal

Key = Qt.Key
SURE = [f"sure{i}.png" for i in range(6)]
UNSURE = ["unsure0.png", "unsure1.png"]
IMAGES = [SURE[0], UNSURE[0], *SURE[1:4], UNSURE[1], *SURE[4:]]
PROPOSALS = {rel: [proposal(10, 10, 60, 70, "person", 0.93), proposal(100, 20, 160, 90, "cat", 0.1)]
             + ([proposal(20, 80, 70, 140, "cup", 0.55 if rel == "unsure1.png" else 0.7)] if rel in UNSURE else [])
             for rel in IMAGES}


def test_o_puts_the_unsure_images_first_and_space_follows(open_review):
    h = open_review(IMAGES, PROPOSALS)
    h.press(Key.Key_O)
    h.wait_shown("unsure1.png")  # the most hesitant (0.55, the band's middle) first
    assert "2 unsure, 6 sure" in h.window.message_label.text()
    panel = h.window.file_panel
    listed = lambda: [panel.proxy.index(i, 0).data() for i in range(panel.proxy.rowCount())]  # noqa: E731
    assert listed()[:3] == ["unsure1.png", "unsure0.png", "sure0.png"]  # the list follows the order
    h.press(Key.Key_Space)
    h.wait_shown("unsure0.png")
    panel.filter_box.setCurrentText(UNSURE_FILTER)
    assert listed() == ["unsure1.png", "unsure0.png"]
    assert "The model: 2 unsure, 6 sure; 2 shown" in panel.counts_label.text()
    panel.filter_box.setCurrentText(RANGE_FILTER)
    panel.range_low.setValue(0.5)
    panel.range_high.setValue(0.6)
    assert listed() == ["unsure1.png"] and panel.range_row.isVisibleTo(panel)
    h.press(Key.Key_O)
    panel.filter_box.setCurrentIndex(0)
    assert listed() == h.controller.review.folder.images  # folder order again


def test_accept_by_rule_with_an_audit_then_undo(open_review, monkeypatch):
    h = open_review(IMAGES, PROPOSALS)
    shown = []

    def run_dialog(dialog: RuleDialog) -> QDialog.DialogCode:
        shown.append((dialog.matches.text(), dialog.audit.value()))
        dialog.audit.setValue(2)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(RuleDialog, "exec", run_dialog)
    asked = []
    h.window.rule_flow.ask_confirm = lambda audit: asked.append(audit.result_text()) or True
    h.press(Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert shown == [(shown[0][0], 6)] and shown[0][0].startswith("6 images match")
    audit = h.window.rule_flow.run.audit
    assert audit is not None and len(audit.sample) == 2
    for rel in audit.sample:
        h.wait_shown(rel)
        assert h.controller.review.banner().text.startswith(f"audit {audit.sample.index(rel) + 1}/2")
        if rel == audit.sample[0]:
            h.press(Key.Key_Tab)
            h.press(Key.Key_Delete)  # the audit finds a wrong box
        h.press(Key.Key_Space)
    h.qtbot.waitUntil(lambda: bool(asked))
    assert asked and asked[0].startswith("1 of 2 changed; error rate <= 97.5% (95%)")  # sqrt(0.95)
    rest = [rel for rel in SURE if rel not in audit.sample]
    counts = h.controller.files.counts()
    assert counts[Status.RULE_ACCEPTED] == 4 and counts[Status.VERIFIED] == 2
    for rel in rest:
        labels = h.voc(rel)
        assert not labels.verified and "audit 1 of 2 changed" in labels.accepted_by_rule
    for rel in UNSURE:
        assert not h.voc_path(rel).exists()
    h.window.actions_by_id["undo_rule_batch"].trigger()
    for rel in rest:
        assert not h.voc_path(rel).exists()
    assert h.controller.files.counts()[Status.RULE_ACCEPTED] == 0
    assert "4 file(s) removed" in h.window.message_label.text()


def test_shift_a_during_the_audit_stops_it_and_accepts_nothing(open_review, monkeypatch):
    h = open_review(IMAGES, PROPOSALS)
    monkeypatch.setattr(RuleDialog, "exec", lambda dialog: QDialog.DialogCode.Accepted)
    flow = h.window.rule_flow
    flow.ask_stop = lambda audit: True
    h.press(Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    audit = flow.run.audit
    assert len(audit.sample) == 6  # the default: min(20, matches)
    h.press(Key.Key_Space)
    h.press(Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert flow.run.audit is None and h.controller.review.order is None
    assert sorted(p.name for p in h.root.glob("*.xml")) == [audit.sample[0].replace(".png", ".xml")]
    assert h.controller.files.counts()[Status.RULE_ACCEPTED] == 0


def test_the_grid_follows_the_order_and_its_tiles_say_boxes_and_lowest_score(open_review):
    h = open_review(IMAGES, PROPOSALS)
    h.press(Key.Key_O)
    h.wait_shown("unsure1.png")
    h.press(Key.Key_G)
    grid = h.window.grid
    assert grid.active and grid.triage.page[:2] == ["unsure1.png", "unsure0.png"]
    notes = [tile.note for tile in grid.view._tiles]
    assert notes[:3] == ["2 boxes, min 0.55", "2 boxes, min 0.70", "1 box, min 0.93"]
    assert h.window.message_label.text().startswith("Grid: 0 of 8 marked")


def test_a_threshold_moved_during_the_audit_keeps_the_audit_and_shift_a_asks_again(open_review, monkeypatch):
    """'[' pressed during the audit puts the threshold below the rule's low: the batch is refused
    with the reason (nothing accepted), the audit is kept, and Shift+A, once the threshold is back,
    asks again and accepts."""
    h = open_review(IMAGES, PROPOSALS)

    def run_dialog(dialog: RuleDialog) -> QDialog.DialogCode:
        dialog.audit.setValue(1)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(RuleDialog, "exec", run_dialog)
    asked = []
    flow = h.window.rule_flow
    flow.ask_confirm = lambda audit: asked.append(audit.result_text()) or True
    h.press(Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    audit = flow.run.audit
    h.wait_shown(audit.sample[0])
    review = h.controller.review
    review.set_threshold(0.05)
    h.press(Key.Key_Space)
    h.qtbot.waitUntil(lambda: bool(asked))
    assert "nothing accepted yet" in h.window.message_label.text()
    assert flow.run.audit is audit and h.controller.files.counts()[Status.RULE_ACCEPTED] == 0
    assert not any(h.voc_path(rel).exists() for rel in audit.rest())
    review.set_threshold(0.35)
    h.press(Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert len(asked) == 2 and flow.run.audit is None
    rest = [rel for rel in SURE if rel not in audit.sample]
    assert h.controller.files.counts()[Status.RULE_ACCEPTED] == len(rest)
    assert all([b.label for b in h.voc(rel).boxes] == ["person"] for rel in rest)
