"""Review rules when a folder is shared or changes under the reviewer (issue 19), without Qt:
a deleted VOC file, a class list that grows, pre-labels written by ``label --voc-dir``."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from autolabel_gui.app.prelabel import Prelabel, VocWriter
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.app.stats import compute_stats, format_stats
from autolabel_gui.app.status import Status, annotation_status
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import ImageKey, ReviewRecord
from autolabel_gui.core.review import Blocker
from autolabel_gui.formats.voc import read_voc

from tests.fixtures.images import ImageSpec, write_image
from tests.fixtures.review import review_of

OLD = ProjectSettings(classes=["dog", "cat"]).with_groups_kept()
NEW = replace(OLD, classes=["dog", "cat", "bottle"])
PROPOSALS = [Box(10.25, 10.5, 40.75, 30.25, "dog", 0.9, BoxState.PROPOSED),
             Box(3.6, 20.4, 60.5, 44.6, "cat", 0.6, BoxState.PROPOSED),
             Box(0, 0, 5, 5, "cat", 0.1, BoxState.PROPOSED)]
BOTTLE = [Box(20.4, 5.5, 30.6, 40.5, "bottle", 0.8, BoxState.PROPOSED)]


def _folder(tmp_path: Path, size=(64, 48)) -> tuple[ImageFolder, ProposalCache]:
    write_image(tmp_path / "a.png", ImageSpec(size=size, color=(90, 90, 90)))
    cache = ProposalCache.for_folder(tmp_path)
    key = ImageKey.from_path(tmp_path, "a.png")
    for group in NEW.run_plan().groups:  # the proposals of both groups, as the model left them
        cache.put(key, group.run_id, PROPOSALS if "dog" in group.names else BOTTLE)
    return ImageFolder(tmp_path), cache


def _verify(session: ReviewSession, rel: str) -> bool:
    """Space; True when the image was saved verified."""
    settings = ProjectSettings(classes=session.class_names)
    return review_of(session.folder, settings, session=session).accept_and_verify(rel)[1] is None


def _session(folder: ImageFolder, cache: ProposalCache, settings: ProjectSettings = OLD) -> ReviewSession:
    return ReviewSession(folder, cache, settings.classes, settings.run_plan(), settings.box_threshold)


def test_a_deleted_voc_file_brings_the_proposals_back_and_never_verifies_empty(tmp_path: Path) -> None:
    folder, cache = _folder(tmp_path)
    first = _session(folder, cache)
    assert _verify(first, "a.png")
    voc = folder.voc_path("a.png")
    assert len(read_voc(voc).boxes) == 2
    voc.unlink()

    again = _session(folder, cache)
    state = again.open("a.png").state
    assert state.pending_count() == 2, "the model's proposals are pending review again"
    assert state.model_proposals_above_threshold() == 2, "so the window does not say 'found nothing'"
    assert annotation_status(voc, True) is Status.PROPOSALS
    assert _verify(again, "a.png")
    assert [b.label for b in read_voc(voc).boxes] == ["dog", "cat"]


def test_a_rejection_still_stands_after_the_file_is_deleted(tmp_path: Path) -> None:
    folder, cache = _folder(tmp_path)
    first = _session(folder, cache)
    state = first.open("a.png").state
    state.select(next(i for i, it in enumerate(state.items) if it.box.label == "cat"))
    state.delete_selected()
    assert _verify(first, "a.png")
    folder.voc_path("a.png").unlink()
    state = _session(folder, cache).open("a.png").state
    assert [state.items[i].box.label for i in state.visible_indices() if state.items[i].pending] == ["dog"]
    assert state.verify_blocker(True) is None


def test_no_key_verifies_while_a_proposal_is_neither_shown_nor_reviewed(tmp_path: Path) -> None:
    folder, cache = _folder(tmp_path)
    state = _session(folder, cache).open("a.png").state
    state.items = tuple(it for it in state.items if it.box.label != "cat")  # lost from view somehow
    assert state.verify_blocker(True) == Blocker.UNSEEN_PROPOSALS


def test_a_verified_image_is_not_reopened_by_a_new_class_but_says_it_predates_it(tmp_path: Path) -> None:
    folder, cache = _folder(tmp_path)
    assert _verify(_session(folder, cache), "a.png")
    state = _session(folder, cache, NEW).open("a.png").state
    assert state.verified
    assert [state.items[i].box.label for i in state.visible_indices() if state.items[i].pending] == ["bottle"], \
        "old proposals stay decided"
    assert state.classes_added_since_verified(NEW.classes) == ["bottle"]

    stats = compute_stats(folder, NEW.classes, cache, NEW.run_plan())
    assert stats.verified_before == {"bottle": 1}
    assert "verified before 'bottle' was added: 1 image" in format_stats(stats)

    again = _session(folder, cache, NEW)
    assert _verify(again, "a.png")
    assert again.get("a.png").classes_added_since_verified(NEW.classes) == []
    assert compute_stats(folder, NEW.classes, cache, NEW.run_plan()).verified_before == {}
    assert sorted(b.label for b in read_voc(folder.voc_path("a.png")).boxes) == ["bottle", "cat", "dog"]


def test_prelabels_written_by_label_open_as_proposals_never_twice(tmp_path: Path) -> None:
    folder, cache = _folder(tmp_path)  # 64x48: label's integer boxes differ from the cached floats
    notes: list[str] = []
    writer = VocWriter(folder, cache, OLD.box_threshold, notes.append, OLD.classes)
    assert writer.write("a.png", PROPOSALS) is Prelabel.WRITTEN
    voc = folder.voc_path("a.png")
    assert len(read_voc(voc).boxes) == 2
    assert annotation_status(voc, True, cache.output_digests()) is Status.PROPOSALS

    session = _session(folder, cache)
    state = session.open("a.png").state
    assert state.accepted_boxes() == [] and state.pending_count() == 2
    assert [it.box.score for it in state.items if it.pending] == [0.9, 0.6, 0.1], "scores from the cache"
    state.set_threshold(0.7)
    assert state.pending_count() == 1, "the threshold applies to pre-labels"
    state.set_threshold(0.35)
    assert _verify(session, "a.png")
    labels = read_voc(voc)
    assert labels.verified and len(labels.boxes) == 2, "each object once"


def test_prelabels_without_cached_proposals_are_proposals_too(tmp_path: Path) -> None:
    folder, cache = _folder(tmp_path, size=(80, 60))
    VocWriter(folder, cache, OLD.box_threshold, print, OLD.classes).write("a.png", PROPOSALS)
    other = replace(OLD, text_threshold=0.3)  # another run: the cache has nothing for it
    state = _session(folder, cache, other).open("a.png").state
    assert state.accepted_boxes() == []
    assert [it.box.label for it in state.items if it.pending] == ["dog", "cat"]
    assert all(it.box.score is None for it in state.items)
    assert not state.model_done, "stand-ins: Space still waits for this model's own proposals"


def test_a_prelabel_file_someone_edited_is_their_work(tmp_path: Path) -> None:
    folder, cache = _folder(tmp_path)
    VocWriter(folder, cache, OLD.box_threshold, print, OLD.classes).write("a.png", PROPOSALS)
    voc = folder.voc_path("a.png")
    voc.write_bytes(voc.read_bytes().replace(b"<name>cat</name>", b"<name>dog</name>"))
    assert not cache.wrote(hashlib.sha256(voc.read_bytes()).hexdigest())
    state = _session(folder, cache).open("a.png").state
    assert sorted(b.label for b in state.accepted_boxes()) == ["dog", "dog"]
    assert annotation_status(voc, True, cache.output_digests()) is Status.IN_REVIEW


@pytest.fixture
def second_mount(tmp_path: Path):
    """``tmp_path/a`` mounted a second time at ``tmp_path/b`` (a bind mount: another path, the
    same files, as two machines mount one share); skipped where mounting is not allowed."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", str(first), str(second)],
                                           capture_output=True).returncode != 0:
        pytest.skip("bind mounts need root")
    yield first, second
    subprocess.run(["umount", "--lazy", str(second)], check=False)  # lazy: an open file does not keep it


def test_a_second_mount_of_the_folder_sees_prelabels_and_conflicts(second_mount) -> None:
    first, second = second_mount
    folder_a, cache_a = _folder(first)
    VocWriter(folder_a, cache_a, OLD.box_threshold, print, OLD.classes).write("a.png", PROPOSALS)
    folder_b = ImageFolder(second)
    cache_b = ProposalCache.for_folder(second)
    state = _session(folder_b, cache_b).open("a.png").state
    assert state.accepted_boxes() == [] and state.pending_count() == 2, "pre-labels, from the other mount too"

    on_a, on_b = _session(folder_a, cache_a), _session(folder_b, cache_b)
    on_a.open("a.png")
    on_b.open("a.png")
    assert _verify(on_b, "a.png")
    saved_by_b = folder_b.voc_path("a.png").read_bytes()
    state_a = on_a.get("a.png")
    state_a.add_box(Box(1, 1, 9, 9, "dog", None, BoxState.ACCEPTED))
    result = on_a.save("a.png", verify=True)
    assert result.conflict is not None, "B's save, seen through the other mount, is not replaced"
    assert folder_a.voc_path("a.png").read_bytes() == saved_by_b
    assert read_voc(result.conflict.mine_copy).boxes
    with cache_a as c:
        assert c._run(lambda conn: conn.execute("PRAGMA integrity_check").fetchone())[0] == "ok"
    cache_b.close()


def test_two_classes_added_one_after_the_other_are_two_groups_and_cancel_adds_nothing(open_review) -> None:
    """Seen under Xvfb: a second "+ Add" in the same window merged the first new class into its
    group and re-detected it; Cancel on the question still said "Added to the project"."""
    import json

    h = open_review(["a.png"])
    h.window._add_to_project(["bottle"])
    h.window._add_to_project(["chair"])
    saved = json.loads((h.root / ".autolabel" / "project.json").read_text())
    assert [[name for name, _ in g] for g in saved["prompt_groups"]][1:] == [["bottle"], ["chair"]]
    assert [sorted(g.names) for g in h.controller.review.session.plan.groups][1:] == [["bottle"], ["chair"]]
    assert [c.added for c in h.class_changes] == [("bottle",), ("chair",)]
    from autolabel_gui.gui.colors import class_colors

    colors = class_colors(h.controller.review.settings.classes)
    assert h.window.box_tools.boxes_panel.model._colors["chair"] == colors["chair"], "the boxes panel follows"

    h.class_change_answer = False
    h.window._add_to_project(["dog"])
    assert "dog" not in json.loads((h.root / ".autolabel" / "project.json").read_text())["classes"]
    assert "Added to the project" not in h.window.message_label.toolTip()


def _saved(root: Path) -> dict:
    import json

    return json.loads((root / ".autolabel" / "project.json").read_text())


def test_a_window_saves_only_what_it_changed_over_what_others_saved(tmp_path: Path) -> None:
    """Seen with two annotators: ] in one window wrote its whole settings and removed the classes
    the other had added."""
    start = ProjectSettings(classes=["dog", "cat"], weights="/models/theirs.pth")
    start.save(tmp_path)
    a = b = start
    a_new = replace(a, classes=["dog", "cat", "bottle"]).save_changes(tmp_path, a)
    b_new = replace(b, box_threshold=0.6).save_changes(tmp_path, b)
    assert _saved(tmp_path)["classes"] == ["dog", "cat", "bottle"] and _saved(tmp_path)["box_threshold"] == 0.6
    assert _saved(tmp_path)["weights"] == "/models/theirs.pth", "a value this window did not change stays"
    assert b_new.classes == ["dog", "cat", "bottle"], "the settings as saved"
    replace(b, classes=["dog", "cat", "chair"]).save_changes(tmp_path, b)  # b still had the old list
    replace(a_new, classes=["dog", "bottle"]).save_changes(tmp_path, a_new)
    saved = _saved(tmp_path)
    assert saved["classes"] == ["dog", "bottle", "chair"], "adds of both kept, the removal applied"
    assert [[n for n, _ in g] for g in saved["prompt_groups"]] == [["dog", "cat"], ["bottle"], ["chair"]]


def test_moving_the_threshold_in_one_window_keeps_classes_added_in_another(open_review) -> None:
    a = open_review(["a.png"])
    b = open_review(["a.png"], root=a.root)
    a.window._add_to_project(["bottle"])
    b.controller.review.set_threshold(0.6)
    b.controller.review.save_threshold()
    saved = _saved(a.root)
    assert "bottle" in saved["classes"] and saved["box_threshold"] == 0.6


def test_verified_class_lists_are_read_from_the_cache_as_untrusted(tmp_path: Path) -> None:
    cache = ProposalCache.for_folder(tmp_path)
    cache.put_review("good.png", ReviewRecord("r", [], [], ["dog", "cat"]))
    cache.put_review("none.png", ReviewRecord("r", [], [], None))
    for rel, text in (("broken.png", '{"verified_classes": ["dog"'), ("numbers.png", '{"verified_classes": [1, 2]}'),
                      ("text.png", '{"verified_classes": "dog"}'),
                      ("deep.png", '{"verified_classes": ' + "[" * 100_000 + "]" * 100_000 + "}")):
        cache._run(lambda c, rel=rel, text=text: c.execute("INSERT OR REPLACE INTO reviews VALUES (?, ?, 0)",
                                                             (rel, text)))
    assert cache.verified_classes() == {"good.png": ["dog", "cat"]}
