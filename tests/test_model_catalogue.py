"""The model catalogue (detection/models.json), ``autolabel-gui models`` and ``--model NAME``."""

from __future__ import annotations

import argparse

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import main, parse_args
from autolabel_gui.detection.catalogue import BACKENDS
from autolabel_gui.detection.models import all_models, default_model, model_named


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
