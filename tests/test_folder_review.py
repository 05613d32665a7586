"""The open folder's rules without a window (``app.folder_review``): Space, Ctrl+S and the grid
through one gate, navigation around verified and held images, what the model is asked to do,
the statuses the file list reads, and what the listener is told."""

from __future__ import annotations

from pathlib import Path

from autolabel_gui.app.folder_review import NOTHING_FOUND, FolderReview
from autolabel_gui.app.image_statuses import ModelMark
from autolabel_gui.app.model_progress import ModelState, ModelStatus
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.status import Status
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import ImageKey
from autolabel_gui.core.review import Blocker
from autolabel_gui.core.view_filter import ViewFilter
from autolabel_gui.formats.voc import read_voc

from tests.fixtures.images import ImageSpec, write_image
from tests.fixtures.review import Recorder, StillModel, annotator_leases, annotator_review, review_of

SETTINGS = ProjectSettings(classes=["dog", "cat"])
DOG = Box(10, 10, 40, 30, "dog", 0.9, BoxState.PROPOSED)
CAT = Box(50, 20, 90, 60, "cat", 0.6, BoxState.PROPOSED)
NOISE = Box(0, 0, 5, 5, "cat", 0.1, BoxState.PROPOSED)


def _folder(tmp_path: Path, names: list[str], with_proposals: set[str] = frozenset()) -> ImageFolder:
    """Images ``names``; those in ``with_proposals`` have the model's proposals in the cache."""
    for i, rel in enumerate(names):
        write_image(tmp_path / rel, ImageSpec(size=(120, 80), color=(i * 20, 90, 90)))
    cache = ProposalCache.for_folder(tmp_path)
    run = SETTINGS.run_plan().groups[0].run_id
    for rel in with_proposals:
        cache.put(ImageKey.from_path(tmp_path, rel), run, [DOG, CAT, NOISE])
    cache.close()
    return ImageFolder(tmp_path)


def _listener(review: FolderReview) -> Recorder:
    assert isinstance(review.listener, Recorder)
    return review.listener


def _model(review: FolderReview) -> StillModel:
    assert isinstance(review.model, StillModel)
    return review.model


def test_space_before_the_model_saw_the_image_is_refused_and_the_proposals_are_then_shown(tmp_path):
    folder = _folder(tmp_path, ["a.png", "b.png"])
    review = review_of(folder, SETTINGS)
    heard = _listener(review)
    review.start()
    assert review.current == "a.png" and heard.opened_images == ["a.png"]
    assert _model(review).queued[-1] == ("a.png", ["b.png"]), "the image on screen first, then the folder"
    review.accept_all_and_next()
    assert review.current == "a.png" and not folder.voc_path("a.png").exists()
    assert heard.errors[-1].startswith("Not verified: the model has not seen this image yet")
    banner = review.banner()
    assert banner.urgent and banner.waiting and "Not verified" in banner.text

    review.proposals_ready("a.png", [DOG, CAT, NOISE])
    assert not review.banner().urgent and not review.banner().waiting
    assert heard.messages[-1] == ("a.png: 2 proposal(s) arrived; look at them, then Space verifies.", False)
    assert review.statuses.status_of("a.png") is Status.PROPOSALS
    assert review.statuses.model_mark("a.png") is ModelMark.READY and review.progress_text() == "Proposals 1/2"
    review.accept_all_and_next()
    saved = read_voc(folder.voc_path("a.png"))
    assert saved.verified and [(b.label, b.xyxy) for b in saved.boxes] == [("dog", (10.0, 10.0, 40.0, 30.0)),
                                                                          ("cat", (50.0, 20.0, 90.0, 60.0))]
    assert review.current == "b.png" and review.statuses.status_of("a.png") is Status.VERIFIED
    assert "a.png" in heard.rows and review.statuses.counts()[Status.VERIFIED] == 1


def test_without_a_model_space_verifies_at_once_and_nothing_waits(tmp_path):
    folder = _folder(tmp_path, ["a.png", "b.png"])
    review = review_of(folder, SETTINGS, model_runs=False)
    review.start()
    assert not review.model_runs and not review.banner().waiting
    review.accept_all_and_next()
    assert read_voc(folder.voc_path("a.png")).verified and review.current == "b.png"


def test_manual_review_tells_the_model_to_stop_and_space_stops_waiting(tmp_path):
    folder = _folder(tmp_path, ["a.png", "b.png"])
    review = review_of(folder, SETTINGS)
    review.start()
    review.set_manual(True)
    assert _model(review).queued[-1] == (None, []) and "(model off)" in _listener(review).progress[-1]
    review.verify_current()
    assert read_voc(folder.voc_path("a.png")).verified


def test_next_unverified_skips_verified_images_and_those_another_annotator_holds(tmp_path):
    folder = _folder(tmp_path, ["a.png", "b.png", "c.png", "d.png"], {"a.png", "b.png", "c.png", "d.png"})
    alice = annotator_leases(folder, "alice", 1)
    bob = annotator_review(folder, SETTINGS, "bob", 2)
    alice_review = review_of(ImageFolder(tmp_path), SETTINGS, leases=alice)
    alice_review.start("c.png")
    bob.start("a.png")
    bob.accept_all_and_next()
    assert bob.current == "b.png"
    bob.accept_all_and_next()
    assert bob.current == "d.png", "c.png is open in alice's window"
    assert "held by alice" in bob.statuses.tooltip("c.png")
    assert not bob.eligible_for_grid("c.png") and bob.eligible_for_grid("d.png")
    refused, why = bob.accept_and_verify("c.png")
    assert refused == 0 and why is not None and "held by alice" in why and not folder.voc_path("c.png").exists()


def test_space_never_takes_a_reviewer_to_an_image_another_window_verified_since_its_list_was_read(tmp_path):
    """Seen with two windows under Xvfb: Alice verified images with Space faster than Bob's list
    knew, and Bob's Space went to them and verified them again (his name in their save records).
    Bob's next unverified skips them; his list learns of an image when a lease he saw goes, or
    when his next unverified reads it on the way (an image held only between two of his lease
    scans is not seen before that)."""
    folder = _folder(tmp_path, ["a.png", "b.png", "c.png", "d.png"], {"a.png", "b.png", "c.png", "d.png"})
    alice = annotator_review(folder, SETTINGS, "alice", 1)
    bob = annotator_review(folder, SETTINGS, "bob", 2)
    bob.start("a.png")
    bob.statuses.scan_batch()  # his list was read before alice started
    alice.start("b.png")
    bob.scan_leases()
    alice.accept_all_and_next()  # b.png verified, on to c.png
    alice.accept_all_and_next()  # c.png verified, on to d.png
    alice.close()
    saved_by_alice = folder.voc_path("c.png").read_bytes()
    bob.scan_leases()  # alice's leases went: the list reads those images again
    assert bob.statuses.status_of("b.png") is Status.VERIFIED
    bob.accept_all_and_next()  # a.png verified; the next unverified is d.png
    assert bob.current == "d.png" and bob.statuses.status_of("c.png") is Status.VERIFIED
    assert bob.statuses.counts()[Status.VERIFIED] == 3
    assert folder.voc_path("c.png").read_bytes() == saved_by_alice
    bob.close()


def test_next_unverified_reads_the_file_of_the_image_it_is_about_to_open(tmp_path):
    """Another tool (no leases) verified c.png after this window read its list: next unverified
    reads the candidate's file before it goes there, and the list is told."""
    folder = _folder(tmp_path, ["a.png", "b.png", "c.png"], {"a.png", "b.png", "c.png"})
    review = review_of(folder, SETTINGS)
    review.start("a.png")
    review.statuses.scan_batch()
    other = review_of(ImageFolder(tmp_path), SETTINGS)
    other.start("b.png")
    other.accept_all_and_next()
    other.close()
    review.accept_all_and_next()
    assert review.current == "c.png" and review.statuses.status_of("b.png") is Status.VERIFIED
    assert "b.png" in _listener(review).rows
    review.close()


def test_the_grid_and_space_share_one_gate(tmp_path):
    folder = _folder(tmp_path, ["a.png", "b.png"], {"a.png"})
    review = review_of(folder, SETTINGS)
    review.start("a.png")
    assert review.accept_and_verify("b.png") == (0, Blocker.WAITING_FOR_MODEL.value)
    review.set_view(ViewFilter(hidden=frozenset({"cat"})))
    assert review.accept_and_verify("a.png") == (0, Blocker.HIDDEN_PENDING.value)
    review.verify_current()
    assert "hidden by the view" in _listener(review).errors[-1] and not folder.voc_path("a.png").exists()
    review.set_view(ViewFilter())
    assert review.accept_and_verify("a.png") == (2, None)
    assert review.statuses.status_of("a.png") is Status.VERIFIED and read_voc(folder.voc_path("a.png")).verified


def test_ctrl_s_records_the_pending_proposals_as_rejected(tmp_path):
    folder = _folder(tmp_path, ["a.png"], {"a.png"})
    review = review_of(folder, SETTINGS)
    review.start()
    review.verify_current()
    assert read_voc(folder.voc_path("a.png")).boxes == [] and read_voc(folder.voc_path("a.png")).verified
    assert "2 pending proposals recorded as rejected" in _listener(review).messages[-1][0]


def test_a_failed_detection_finishes_the_image_and_is_said(tmp_path):
    folder = _folder(tmp_path, ["a.png", "b.png"])
    review = review_of(folder, SETTINGS)
    review.start()
    review.detection_failed("a.png", "CUDA error")
    assert review.statuses.model_mark("a.png") is ModelMark.FAILED and "1 failed" in review.progress_text()
    assert _listener(review).errors[-1] == "a.png: detection failed: CUDA error"
    assert not review.banner().waiting and review.banner().text != NOTHING_FOUND
    review.accept_all_and_next()
    assert read_voc(folder.voc_path("a.png")).verified, "the annotator's word is all there is for it"


def test_found_nothing_is_said_only_when_no_proposal_passes_the_threshold(tmp_path):
    folder = _folder(tmp_path, ["a.png"], {"a.png"})
    review = review_of(folder, SETTINGS)
    review.start()
    assert review.banner().text == ""
    review.set_threshold(0.95)
    assert review.banner().text == NOTHING_FOUND
    review.set_threshold(0.5)
    assert review.banner().text == ""


def test_rerun_waits_for_the_new_proposals_before_space(tmp_path):
    folder = _folder(tmp_path, ["a.png"], {"a.png"})
    review = review_of(folder, SETTINGS)
    review.start()
    review.rerun()
    assert _model(review).reruns == ["a.png"] and review.banner().waiting
    review.accept_all_and_next()
    assert not folder.voc_path("a.png").exists()
    review.proposals_ready("a.png", [DOG])
    assert _listener(review).messages[-2:] == [("a.png: 1 proposal(s) from the new run.", False),
                                              ("a.png: 1 proposal(s) arrived; look at them, then Space verifies.",
                                               False)]
    review.accept_all_and_next()
    assert [b.label for b in read_voc(folder.voc_path("a.png")).boxes] == ["dog"]


def test_a_new_class_keeps_the_file_lists_live_progress(tmp_path):
    """The file list reads the model's progress through ``statuses``: a class change refills the
    same sets, so nobody holds a stale copy."""
    folder = _folder(tmp_path, ["a.png", "b.png"], {"a.png"})
    review = review_of(folder, SETTINGS)
    review.start()
    done = review.statuses.done
    assert done is review.progress.done and "a.png" in done
    review.apply_classes(ProjectSettings(classes=["dog", "cat", "bottle"]))
    assert review.statuses.done is review.progress.done is done
    assert "a.png" not in done, "the new class has not been detected on it yet"
    assert review.state is not None and review.state.waits_for_model(True)
    assert None in _listener(review).rows


def test_a_model_that_becomes_unavailable_stops_the_waiting(tmp_path):
    folder = _folder(tmp_path, ["a.png"])
    review = review_of(folder, SETTINGS)
    review.start()
    assert review.banner().waiting
    _model(review).status = ModelStatus(ModelState.UNAVAILABLE, "weights not found", download_fixes=True)
    review.model_changed()
    assert not review.banner().waiting and not review.model_runs
    assert "(model off)" in _listener(review).progress[-1]
