"""A class list that grows and shrinks without losing work: proposals cached per prompt group.

The instrument for exactness: on every backend's real code path (tiny random models), one detection
of two groups gives exactly the boxes of the two groups detected alone, so adding a class never
changes, and never needs to recompute, the proposals of the classes before it; that is part of the
backend contract (test_backend_contract.py::test_prompt_groups_are_detected_independently).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from autolabel_gui.app.class_change import class_change
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.ids import run_id_for
from autolabel_gui.detection.pipeline import DetectionPipeline

from tests.fixtures.pipeline import FakeFactory, SimpleFolder, pil_loader

NAMES = [f"img{i}.png" for i in range(1, 5)]


def _settings(classes: list[str], **kw) -> ProjectSettings:
    return ProjectSettings(classes=classes, **kw).with_groups_kept()


# ---------------------------------------------------------------------------- settings

def test_an_added_class_is_a_new_group_and_the_old_group_keeps_its_legacy_run_id() -> None:
    old = _settings(["dog", "cat"])
    new = replace(old, classes=["dog", "cat", "bottle"])
    assert [[c.name for c in g] for g in new.groups()] == [["dog", "cat"], ["bottle"]]
    legacy = run_id_for(old.detector_config(), old.ontology())
    assert old.run_plan().id == legacy, "a folder whose classes never changed keeps its cache"
    assert new.run_plan().groups[0].run_id == legacy


def test_a_removed_class_stays_in_its_group_and_a_changed_prompt_moves_it() -> None:
    s = _settings(["dog", "cat", "cow"])
    fewer = replace(s, classes=["dog", "cow"])
    assert [[c.name for c in g] for g in fewer.groups()] == [["dog", "cat", "cow"]]
    assert fewer.run_plan().groups[0].run_id == s.run_plan().groups[0].run_id
    assert fewer.run_plan().active == ("dog", "cow")
    prompt = replace(s, prompts={"cat": "small cat"})
    assert [[(c.name, c.text) for c in g] for g in prompt.groups()] == [
        [("dog", "dog"), ("cow", "cow")], [("cat", "small cat")]]


def test_groups_are_saved_and_loaded_and_a_legacy_file_gets_one_group(tmp_path: Path) -> None:
    (tmp_path / ".autolabel").mkdir()
    (tmp_path / ".autolabel" / "project.json").write_text('{"classes": ["dog", "cat"]}')
    legacy = ProjectSettings.load(tmp_path)
    assert legacy.prompt_groups == [[["dog", "dog"], ["cat", "cat"]]]
    grown = replace(legacy, classes=["dog", "cat", "bottle"])
    grown.save(tmp_path)
    again = ProjectSettings.load(tmp_path)
    assert again.prompt_groups == [[["dog", "dog"], ["cat", "cat"]], [["bottle", "bottle"]]]
    assert again.run_plan() == grown.run_plan()


@pytest.mark.parametrize("bad", ['"x"', '[["dog"]]', '[[["dog", "dog"], ["dog", "d2"]]]', '[[[1, 2]]]',
                                 '[[["' + "a" * 5000 + '", "b"]]]'])
def test_bad_prompt_groups_in_the_folder_file_are_ignored_with_a_note(tmp_path: Path, bad: str) -> None:
    (tmp_path / ".autolabel").mkdir()
    (tmp_path / ".autolabel" / "project.json").write_text('{"classes": ["dog"], "prompt_groups": ' + bad + "}")
    settings = ProjectSettings.load(tmp_path)
    assert any("prompt_groups" in n for n in settings.notes)
    assert [[c.name for c in g] for g in settings.groups()] == [["dog"]]


# ---------------------------------------------------------------------------- the pipeline

@pytest.fixture
def folder(pipeline_images) -> SimpleFolder:
    return SimpleFolder(pipeline_images, list(NAMES))


class RecordingFactory(FakeFactory):
    """Remembers the class names of every detect call."""

    def __init__(self) -> None:
        super().__init__()
        self.ontologies: list[list[str]] = []

    def __call__(self, config: DetectorConfig):
        detector = super().__call__(config)
        real = detector.detect

        def detect(images, ontology, floor):
            self.ontologies.append(ontology.names)
            return real(images, ontology, floor)

        detector.detect = detect
        return detector


def _run(folder, cache, settings: ProjectSettings, factory) -> dict:
    pipeline = DetectionPipeline(folder, cache, settings.detector_config(), settings.ontology(), factory=factory,
                                 loader=pil_loader, plan=settings.run_plan())
    return {r.relpath: r for r in pipeline.run(NAMES)}


def test_adding_a_class_detects_only_that_class_and_keeps_every_proposal(folder, tmp_path: Path) -> None:
    cache = ProposalCache(tmp_path / "c.sqlite")
    old = _settings(["person", "dog"])
    first = _run(folder, cache, old, RecordingFactory())
    new = replace(old, classes=["person", "dog", "bottle"])
    change = class_change(old, new, NAMES, cache, 12.0)
    assert [(g.classes, g.images) for g in change.to_detect] == [(("bottle",), len(NAMES))]
    assert "bottle: 4 images to detect for this class, about 1 minute here" in change.text()

    factory = RecordingFactory()
    second = _run(folder, cache, new, factory)
    assert factory.ontologies and all(names == ["bottle"] for names in factory.ontologies)
    for rel in NAMES:
        before = [b for b in second[rel].boxes if b.label != "bottle"]
        assert before == first[rel].boxes, "the proposals of the classes before are kept, unchanged"
        assert any(b.label == "bottle" for b in second[rel].boxes)

    removed = replace(new, classes=["person", "bottle"])
    assert class_change(new, removed, NAMES, cache, None).to_detect == ()
    third = _run(folder, cache, removed, RecordingFactory())
    for rel in NAMES:
        assert all(r.from_cache for r in third.values())
        assert third[rel].boxes == [b for b in second[rel].boxes if b.label != "dog"]


def test_a_fresh_image_detects_all_groups_in_one_call(folder, tmp_path: Path) -> None:
    cache = ProposalCache(tmp_path / "c.sqlite")
    settings = replace(_settings(["person", "dog"]), classes=["person", "dog", "bottle"])
    factory = RecordingFactory()
    results = _run(folder, cache, settings, factory)
    assert factory.ontologies and all(names == ["person", "dog", "bottle"] for names in factory.ontologies)
    plan = settings.run_plan()
    key = ImageKey.from_path(folder.root, NAMES[0])
    assert [len(cache.get(key, g.run_id) or []) for g in plan.groups] == [2, 1]
    assert plan.lookup(cache, key) == results[NAMES[0]].boxes


def test_groups_with_no_class_in_the_list_are_never_run(folder, tmp_path: Path) -> None:
    """Seen on a hostile project.json: 990 groups of classes not in the list cost a forward pass
    each per image, for proposals all thrown away."""
    groups = [[["person", "person"], ["dog", "dog"]]] + [[[f"ghost{i}", f"ghost{i}"]] for i in range(50)]
    settings = ProjectSettings(classes=["person", "dog"], prompt_groups=groups)
    assert [sorted(g.names) for g in settings.run_plan().groups] == [["dog", "person"]]
    factory = RecordingFactory()
    _run(folder, ProposalCache(tmp_path / "c.sqlite"), settings, factory)
    assert factory.ontologies and all(names == ["person", "dog"] for names in factory.ontologies)
