"""``stats``: counts from the VOC files and the proposal cache of a known folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.stats import compute_stats
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import ImageKey, Outcome, ReviewRecord
from autolabel_gui.detection.ids import run_id_for

from tests.fixtures.datasets import CLASSES, LabelledFolder, VocObject, voc_xml


def _fill_cache(root: Path) -> None:
    settings = ProjectSettings.load(root)
    run_id = run_id_for(settings.detector_config(), settings.ontology())
    with ProposalCache.for_folder(root) as cache:
        cache.put(ImageKey.from_path(root, "new.jpg"), run_id, [Box(1, 1, 5, 5, "cat", 0.5)])
        cache.put(ImageKey.from_path(root, "new2.jpg"), "another-model", [Box(1, 1, 5, 5, "cat", 0.5)])
        cache.put_review("cat1.jpg", ReviewRecord(run_id, outcomes=[
            Outcome("cat", 0.9, "accepted"), Outcome("dog", 0.7, "edited"), Outcome("dog", 0.3, "rejected")]))
        cache.put_review("rot.jpg", ReviewRecord(run_id, outcomes=[
            Outcome("cat", 0.6, "accepted"), Outcome("cat", 0.2, "rejected"), Outcome("cat", None, "accepted")]))


def test_counts_of_a_known_folder(labelled_folder: LabelledFolder) -> None:
    root = labelled_folder.root
    (root / "extra.jpg").write_bytes((root / "new.jpg").read_bytes())
    (root / "extra.xml").write_text(voc_xml("extra.jpg", 40, 40, [VocObject("bird", 1, 1, 4, 4)], False))
    _fill_cache(root)
    settings = ProjectSettings.load(root)
    with ProposalCache.for_folder(root) as cache:
        stats = compute_stats(ImageFolder(root), CLASSES, cache, run_id_for(settings.detector_config(),
                                                                              settings.ontology()))
    assert stats.images == 9
    assert stats.statuses == {"new": 1, "proposals ready": 1, "in review": 2, "verified": 5, "accepted by rule": 0}
    assert list(stats.classes) == ["cat", "dog", "bird"]
    cat, dog, bird = stats.classes.values()
    assert (cat.boxes_verified, cat.boxes_unverified, cat.images) == (3, 1, 4)
    assert (dog.boxes_verified, dog.boxes_unverified, dog.images) == (2, 0, 2)
    assert (bird.boxes_verified, bird.boxes_unverified, bird.images) == (0, 1, 1)
    assert stats.outcomes == {"accepted": 2, "edited": 1, "rejected": 2} and stats.drawn == 1
    assert stats.mean_scores["accepted"] == pytest.approx(0.75)
    assert stats.mean_scores["rejected"] == pytest.approx(0.25)
    assert stats.mean_scores["edited"] == pytest.approx(0.7)


def test_command_prints_aligned_tables(labelled_folder: LabelledFolder, capsys) -> None:
    _fill_cache(labelled_folder.root)
    (labelled_folder.root / "unverified.xml").write_text("<annotation>")
    assert main(["stats", str(labelled_folder.root)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(ln.split() == ["verified", "5", "62.5%"] for ln in lines)
    assert any(ln.split() == ["in", "review", "1", "12.5%"] for ln in lines)
    assert any(ln.split() == ["cat", "3", "0", "3"] for ln in lines)
    assert any(ln.split() == ["rejected", "2", "40.0%", "0.250"] for ln in lines)
    assert "unverified.xml" in out
    start = next(i for i, ln in enumerate(lines) if ln.startswith("class"))
    header, rule, cat, dog = lines[start:start + 4]
    assert cat.startswith("cat ") and dog.startswith("dog ")
    assert len({len(header), len(rule), len(cat), len(dog)}) == 1  # the columns line up


def test_report_creates_no_state(labelled_folder: LabelledFolder, capsys) -> None:
    assert main(["stats", str(labelled_folder.root)]) == 0
    assert not (labelled_folder.root / ".autolabel" / "cache.sqlite").exists()
    assert "new" in capsys.readouterr().out
