"""The opt-in preview size: a smaller model input, named less accurate wherever it is said, with
proposals cached apart from the full-size ones, remembered for the folder and switched off again.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import build_gui_parser
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.batch import BatchDetector
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.image_input import PREVIEW_SIDES


def test_preview_sets_the_smaller_input_and_its_own_run_id() -> None:
    full = ProjectSettings(classes=["cat"], weights="w.pth", extra={"image_size": "1024"})
    preview = replace(full, preview=True)
    assert preview.detector_config().extra == {"image_size": "400", "max_size": "667"}
    assert full.detector_config().extra == {"image_size": "1024"}  # the folder's own sides stay, for later
    assert model_id_for(preview.detector_config()) != model_id_for(full.detector_config())
    assert [g.run_id for g in preview.run_plan().groups] != [g.run_id for g in full.run_plan().groups]


def test_preview_is_remembered_and_a_bad_value_is_ignored(tmp_path) -> None:
    ProjectSettings(classes=["cat"], preview=True).save(tmp_path)
    assert json.loads(ProjectSettings.path_for(tmp_path).read_text())["preview"] is True
    assert ProjectSettings.load(tmp_path).preview is True
    ProjectSettings.path_for(tmp_path).write_text(json.dumps({"classes": ["cat"], "preview": "yes"}))
    loaded = ProjectSettings.load(tmp_path)
    assert loaded.preview is False and any("'preview' ignored" in note for note in loaded.notes)


def test_the_command_line_turns_it_on_and_off() -> None:
    parser = build_gui_parser()
    settings = ProjectSettings(classes=["cat"])
    on = settings.with_args(parser.parse_args(["--preview"]))
    assert on.preview is True
    assert on.with_args(parser.parse_args(["--no-preview"])).preview is False
    assert on.with_args(parser.parse_args([])).preview is True  # not given: the folder's choice stays
    assert "LESS ACCURATE" in parser.format_help()


def test_the_ready_message_says_preview_and_less_accurate() -> None:
    class Loaded:
        device, precision, model_id = "cpu", "fast", "x"

    events: list[str] = []
    config = ProjectSettings(classes=["cat"], precision="fast", preview=True).detector_config()
    BatchDetector(config, Ontology.from_names(["cat"]), factory=lambda c: Loaded(),
                  on_event=lambda kind, message: events.append(message)).ensure_detector()
    assert events[-1].startswith("model ready on cpu (fast path) in ")
    assert events[-1].endswith(", preview size 400 px: less accurate")


@pytest.mark.model
def test_the_detector_sees_the_preview_size(tiny_gdino) -> None:
    config: DetectorConfig = tiny_gdino.detector_config(extra=ProjectSettings(preview=True).detector_config().extra)
    assert create_detector(config).input_size == PREVIEW_SIDES
