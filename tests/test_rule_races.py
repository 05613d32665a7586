"""Accept by rule in a shared folder with racing hands: other windows and tools saving, images
replaced or broken mid-audit, the threshold moved, undo (attack round 3, docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from autolabel_gui.app.accept_rule import AcceptRule, Audit
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.rule_batch import RuleRun
from autolabel_gui.app.stats import compute_stats
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import ImageKey
from autolabel_gui.formats.voc import read_voc

from tests.fixtures.images import ImageSpec, write_image
from tests.fixtures.review import annotator_review, review_of

SETTINGS = ProjectSettings(classes=["dog", "cat"], box_threshold=0.35)


def _box(x: float, label: str, score: float) -> Box:
    return Box(x, 10, x + 20, 40, label, score, BoxState.PROPOSED)


def _folder(tmp_path: Path, sure: int) -> ImageFolder:
    """``sure`` images whose proposals are a 0.92 dog and a 0.1 cat: all match the default rule."""
    cache = ProposalCache.for_folder(tmp_path)
    run = SETTINGS.run_plan().groups[0].run_id
    for i in range(sure):
        rel = f"{i:02d}.png"
        write_image(tmp_path / rel, ImageSpec(size=(120, 80), color=(i * 5, 90, 90)))
        cache.put(ImageKey.from_path(tmp_path, rel), run, [_box(5, "dog", 0.92), _box(60, "cat", 0.1)])
    cache.close()
    return ImageFolder(tmp_path)


def _audit_all(review, audit: Audit) -> None:
    for _ in range(len(audit.sample) + 2):
        if audit.finished or review.current not in audit.sample:
            return
        review.accept_all_and_next()


# ---------------------------------------------------------------- accept by rule, racing


def test_a_threshold_change_during_the_audit_does_not_accept_boxes_the_rule_rejected(tmp_path: Path) -> None:
    """The rule must bracket the threshold (ADR 0018) so that the boxes accepted are exactly those
    >= high. The threshold may change while the audit runs ("[" and the slider are not blocked):
    apply() must check again, not write the 0.1 cats as accepted boxes."""
    folder = _folder(tmp_path, sure=6)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    audit = run.start_audit(AcceptRule(0.8, 0.3, 1), 2, seed=3)
    review.set_threshold(0.05)  # "[" pressed a few times, or the slider
    _audit_all(review, audit)
    assert audit.finished
    try:
        batch = run.apply()
    except ValueError:
        return  # refused: the rule no longer brackets the threshold
    for rel in batch.written:
        assert [b.label for b in read_voc(folder.voc_path(rel)).boxes] == ["dog"], rel


def test_proposals_that_changed_since_the_count_are_not_accepted_unseen(tmp_path: Path) -> None:
    """The image was replaced on disk during the audit and the model proposed again: an unsure 0.6
    box now. The rule no longer holds for it, so the batch must not accept it unseen."""
    folder = _folder(tmp_path, sure=6)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    audit = run.start_audit(AcceptRule(0.8, 0.3, 1), 2, seed=3)
    victim = audit.rest()[0]
    write_image(tmp_path / victim, ImageSpec(size=(120, 80), color=(1, 2, 250)))
    cache = ProposalCache.for_folder(tmp_path)
    cache.put(ImageKey.from_path(tmp_path, victim), SETTINGS.run_plan().groups[0].run_id,
              [_box(5, "dog", 0.92), _box(40, "cat", 0.6)])
    cache.close()
    _audit_all(review, audit)
    batch = run.apply()
    if victim in batch.written:
        labels = read_voc(folder.voc_path(victim))
        assert sorted(b.label for b in labels.boxes) == ["dog"], "an unsure 0.6 box was accepted unseen"


def test_an_audit_image_another_annotator_verified_does_not_leave_the_audit_stuck(tmp_path: Path) -> None:
    """Bob verifies one of Alice's audit images first. Alice's audit must still be able to end
    (count his review, or draw another): not wait forever for an image it never offers again."""
    folder = _folder(tmp_path, sure=8)
    alice = annotator_review(folder, SETTINGS, "alice", 1)
    bob = annotator_review(folder, SETTINGS, "bob", 2)
    alice.start("07.png")
    bob.start("06.png")
    run = RuleRun(alice)
    audit = run.start_audit(AcceptRule(), 3, seed=4)
    theirs = next(rel for rel in audit.sample if rel != alice.current)
    bob.go_to(theirs)
    bob.accept_all_and_next()
    assert read_voc(folder.voc_path(theirs)).verified
    bob.close()
    alice.scan_leases()
    alice.statuses.rescan(theirs)
    for _ in range(6):
        if audit.finished:
            break
        alice.accept_all_and_next()
    alice.close()
    assert audit.finished, f"audit stuck at {len(audit.results)} of {len(audit.sample)}: {audit.remaining()}"



def test_a_persons_unverified_file_saved_during_the_audit_is_not_taken_over_by_the_batch(tmp_path: Path) -> None:
    """Carol (another tool, or a window without leases) saves her half-done boxes for an image the
    batch will accept, without verifying. Her file is a person's work: the batch must skip it,
    not mark her boxes "accepted by rule" (hidden from "next unverified") and then let undo delete them."""
    from autolabel_gui.formats.voc import write_voc

    folder = _folder(tmp_path, sure=6)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    audit = run.start_audit(AcceptRule(), 2, seed=9)
    _audit_all(review, audit)
    carols = next(rel for rel in audit.rest() if rel not in review.session.opened())  # the window never showed it
    theirs = ImageLabels.for_image(folder.image_path(carols), 120, 80, [Box(70, 50, 100, 75, "cat")])
    write_voc(folder.voc_path(carols), theirs)  # in review, not verified
    batch = run.apply()
    kept = read_voc(folder.voc_path(carols))
    undone = run.undo(batch)
    still = folder.voc_path(carols).exists()
    review.close()
    assert still and carols not in undone.removed, "the batch's undo deleted Carol's file"
    assert carols not in batch.written, f"written over Carol's file: {kept.accepted_by_rule!r}, {kept.boxes}"


def test_two_windows_accepting_by_rule_at_once_never_write_over_each_other(tmp_path: Path) -> None:
    """Alice's and Bob's batches cover the same matches; the second skips what the first wrote,
    so each undo removes only its own files and every file names one batch."""
    folder = _folder(tmp_path, sure=8)
    alice = annotator_review(folder, SETTINGS, "alice", 1)
    bob = annotator_review(folder, SETTINGS, "bob", 2)
    alice.start("00.png")
    bob.start("00.png")
    runs = RuleRun(alice), RuleRun(bob)
    audits = [run.start_audit(AcceptRule(), 0, seed=1) for run in runs]
    assert all(a.finished for a in audits)
    first = runs[0].apply()
    second = runs[1].apply()
    overlap = sorted(set(first.written) & set(second.written))
    runs[1].undo(second)
    gone = [rel for rel in first.written if not folder.voc_path(rel).exists()]
    alice.close()
    bob.close()
    assert first.written and not gone, f"Bob's batch re-wrote {overlap}; his undo removed Alice's {gone}"


def test_undoing_a_batch_does_not_turn_the_rules_acceptances_into_a_persons(tmp_path: Path) -> None:
    """The rule's outcomes are left out of the prompt statistics (no person decided them, ADR
    0018). Undo keeps the review record without its files' acceptances: the outcomes must not
    stay behind as if a person had accepted every proposal."""
    folder = _folder(tmp_path, sure=5)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    run.start_audit(AcceptRule(), 0, seed=2)
    batch = run.apply()
    assert batch.written
    assert compute_stats(folder, SETTINGS.classes, review.cache).outcomes["accepted"] == 0
    run.undo(batch)
    stats = compute_stats(folder, SETTINGS.classes, review.cache)
    review.close()
    assert stats.outcomes["accepted"] == 0, f"{stats.outcomes['accepted']} acceptances counted as a person's"


@pytest.mark.parametrize("kind", ["link-out", "file", "fifo"])
def test_a_hostile_rule_batches_entry_is_never_written_through(kind: str, tmp_path: Path) -> None:
    """``.autolabel/rule-batches`` a link out of the folder, a plain file or a FIFO: the batch is
    applied (its files are the trail too), the record is not kept and that is said; nothing
    is written outside, nothing hangs."""
    import os

    root = tmp_path / "photos"
    root.mkdir()
    folder = _folder(root, sure=3)
    outside = tmp_path / "outside"
    outside.mkdir()
    entry = folder.state_dir / "rule-batches"
    folder.state_dir.mkdir(exist_ok=True)
    if kind == "link-out":
        entry.symlink_to(outside, target_is_directory=True)
    elif kind == "file":
        entry.write_text("not a folder")
    else:
        os.mkfifo(entry)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    run.start_audit(AcceptRule(), 0, seed=2)
    batch = run.apply()
    review.close()
    assert batch.written and list(outside.iterdir()) == []
    assert any("record not kept" in text for text, error in review.listener.messages if error)


def test_a_grid_verify_that_was_not_saved_is_not_counted_by_the_audit(tmp_path: Path) -> None:
    """Space on the grid (``accept_and_verify``) counts the audit image even when its save did not
    happen (Carol saved the image after it was opened: a conflict, hers stays). The audit then
    reports it "reviewed, unchanged", though nobody's verification of the proposals was saved."""
    from autolabel_gui.formats.voc import write_voc

    folder = _folder(tmp_path, sure=6)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    audit = run.start_audit(AcceptRule(), 3, seed=4)
    target = next(rel for rel in audit.sample if rel != review.current)
    review.open_state(target)  # the grid opened its page
    carols = ImageLabels.for_image(folder.image_path(target), 120, 80, [Box(70, 50, 100, 75, "cat")])
    write_voc(folder.voc_path(target), carols)
    _count, why = review.accept_and_verify(target)
    review.close()
    assert why is not None  # not saved: a conflict
    assert target not in audit.results, "counted as audited though its verification was not saved"


def test_an_audit_image_deleted_from_the_folder_does_not_leave_the_audit_stuck(tmp_path: Path) -> None:
    """A sampled image is removed (or replaced by a broken file) by someone else while the audit
    runs: it can never be verified, so the audit must still be able to end (draw another, or
    leave it out and say so), not wait for it forever."""
    folder = _folder(tmp_path, sure=8)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    audit = run.start_audit(AcceptRule(), 3, seed=4)
    gone = next(rel for rel in audit.sample if rel != review.current)
    (tmp_path / gone).write_bytes(b"not an image any more")
    for _ in range(8):
        if audit.finished:
            break
        before = review.current
        review.accept_all_and_next()
        if review.current == before:  # refused (read-only): the user moves on
            review.next_unverified()
    review.close()
    assert audit.finished, f"audit stuck at {len(audit.results)} of {len(audit.sample)}: {audit.remaining()}"
    assert audit.dropped == {gone: "the image changed since the rule matched it"}
    assert "1 sampled image left out: the image changed since the rule matched it" in audit.result_text()
