"""The model catalogue (detection/models.json), ``autolabel-gui models`` and ``--model NAME``."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import main, parse_args
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.catalogue import BACKENDS
from autolabel_gui.detection.models import all_models, default_model, model_named, model_of


def test_every_entry_is_complete_and_names_a_known_backend() -> None:
    names = [m.name for m in all_models()]
    assert len(names) == len(set(names)) >= 8
    for m in all_models():
        assert m.backend in BACKENDS and m.licence and m.download_mb > 0 and m.ap_source
        assert 0 < m.text_threshold <= m.box_threshold < 1
        assert (m.hub_id is None) == (m.revision is None)
    assert default_model().name == "grounding-dino-t-ogc" and default_model().backend == ProjectSettings().backend


def test_models_command_lists_every_model(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(m.name in out for m in all_models())
    assert "grounding-dino-t-ogc *" in out and "40.5 / 50.6" in out


def test_model_option_sets_backend_weights_and_thresholds_and_explicit_options_win() -> None:
    entry = model_named("mm-grounding-dino-t")
    settings = ProjectSettings(extra={"image_size": "96"}).with_args(parse_args(["label", "F", "--model", entry.name]))
    config = settings.detector_config()
    assert (config.backend, config.weights) == ("transformers", entry.hub_id)
    assert config.extra == {"image_size": "96", "revision": entry.revision}
    assert config.box_threshold == entry.box_threshold
    explicit = ProjectSettings().with_args(parse_args(["--model", entry.name, "--box-threshold", "0.5"]))
    assert explicit.box_threshold == 0.5 and explicit.backend == "transformers"
    with pytest.raises(SystemExit):
        parse_args(["label", "F", "--model", "no-such-model"])
    with pytest.raises(ValueError, match="unknown model"):
        ProjectSettings().with_args(argparse.Namespace(model="no-such-model"))


def test_download_of_a_hub_model_offline_fails_with_a_clear_message(capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = model_named("llmdet-t")
    assert main(["weights", "download", "--model", entry.name]) == 1
    err = capsys.readouterr().err
    assert entry.hub_id in err and "run this again: it resumes" in err and "--weights DIR" in err


def test_a_model_option_drops_a_hand_set_config_file_but_keeps_the_text_encoder() -> None:
    folder = ProjectSettings(weights="/models/swinb.pth", config="/models/swinb.py", text_encoder="/models/bert")
    picked = folder.with_args(parse_args(["label", "F", "--model", "grounding-dino-t-ogc"]))
    assert (picked.weights, picked.config, picked.text_encoder) == (None, None, "/models/bert")
    explicit = folder.with_args(parse_args(["label", "F", "--model", "grounding-dino-t-ogc", "--config", "/c.py"]))
    assert explicit.config == "/c.py"


def test_with_model_is_what_the_model_option_sets() -> None:
    folder = ProjectSettings(classes=["cat"], box_threshold=0.6, config="/c.py", extra={"image_size": "96"})
    for entry in all_models():
        assert folder.with_model(entry) == folder.with_args(argparse.Namespace(model=entry.name))


def test_model_of_finds_the_model_a_config_runs_whatever_its_thresholds() -> None:
    assert model_of(DetectorConfig()) == default_model()  # the default settings run the default model
    for entry in all_models():
        chosen = entry.apply(DetectorConfig(extra={"image_size": "96"}, text_encoder="/models/bert"))
        assert model_of(chosen) == entry
        assert model_of(replace(chosen, box_threshold=0.9, text_threshold=0.1)) == entry


def test_model_of_is_none_when_model_files_were_set_by_hand() -> None:
    hub = model_named("llmdet-t")
    assert model_of(DetectorConfig(weights="/models/groundingdino_swint_ogc.pth")) is None
    assert model_of(DetectorConfig(config="/models/GroundingDINO_SwinT_OGC.py")) is None
    assert model_of(DetectorConfig(backend="transformers", weights="/models/converted")) is None
    assert model_of(DetectorConfig(backend="transformers", weights=hub.hub_id)) is None  # no pinned revision
    assert model_of(DetectorConfig(backend="grounding_dino", weights=hub.hub_id, extra={"revision": "main"})) is None
