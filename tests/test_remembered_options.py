"""Every option of the window and of ``label`` that changes proposals is remembered for the folder.

The options are read from the parsers of ``cli.py``, so a new option fails here until it is either
remembered (``commands.options.REMEMBERED``, and saved by both commands) or named a per-run option
(``commands.options.PER_RUN``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from autolabel_gui.app import server_choice
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.setting_names import REMEMBERED
from autolabel_gui.cli import build_gui_parser, build_parser, parse_args
from autolabel_gui.commands import gui as gui_command
from autolabel_gui.commands import label as label_command
from autolabel_gui.commands.options import PER_RUN
from autolabel_gui.detection.models import model_named
from autolabel_gui.detection.wire import ServerInfo


def _label_parser() -> argparse.ArgumentParser:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["label"]
    raise AssertionError("no label subcommand")


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions if not isinstance(a, argparse._HelpAction)}


PARSERS = {"window": build_gui_parser(), "label": _label_parser()}

_MODEL = model_named("mm-grounding-dino-t")


def _sample(option: str, tmp: Path) -> tuple[list[str], dict[str, object]]:
    """Command-line words that set ``option`` to a value other than the default, and what
    ``project.json`` must then hold."""
    samples: dict[str, tuple[list[str], dict[str, object]]] = {
        "classes": (["--classes", "ant,bee"], {"classes": ["ant", "bee"]}),
        "prompt": (["--prompt", "cat=a small cat"], {"prompts": {"cat": "a small cat"}}),
        "box_threshold": (["--box-threshold", "0.42"], {"box_threshold": 0.42}),
        "text_threshold": (["--text-threshold", "0.31"], {"text_threshold": 0.31}),
        "batch_size": (["--batch-size", "3"], {"batch_size": 3}),
        "device": (["--device", "cpu"], {"device": "cpu"}),
        "precision": (["--precision", "fp16"], {"precision": "fp16"}),
        "model": (["--model", _MODEL.name], {"backend": _MODEL.backend, "weights": _MODEL.hub_id,
                                              "extra": {"revision": _MODEL.revision},
                                              "box_threshold": _MODEL.box_threshold}),
        "backend": (["--backend", "transformers"], {"backend": "transformers"}),
        "weights": (["--weights", str(tmp / "w.pth")], {"weights": str(tmp / "w.pth")}),
        "config": (["--config", str(tmp / "c.py")], {"config": str(tmp / "c.py")}),
        "text_encoder": (["--text-encoder", str(tmp / "bert")], {"text_encoder": str(tmp / "bert")}),
        "segmenter": (["--segmenter", "edgetam"], {"segmenter": "edgetam"}),
        "annotations": (["--annotations", str(tmp / "voc")], {"annotations_dir": str(tmp / "voc")}),
        "preview": (["--preview"], {"preview": True}),
        "server": (["--server", "gpu-box:8000"], {"backend": "server", "extra": {
            "url": "http://gpu-box:8000", "model_id": _SERVER.model_id, "model": _SERVER.model,
            "title": _SERVER.title}}),
    }
    assert option in samples, f"tests/test_remembered_options.py needs a sample value for --{option}"
    return samples[option]


_SERVER = ServerInfo(model_id="grounding_dino:0123456789abcdef0123", model="grounding-dino-t-ogc",
                     title="Grounding DINO T", device="cuda:0", precision="gpu-auto", max_body=1 << 26,
                     max_pixels=10**8, max_classes=1000)


@pytest.fixture(autouse=True)
def a_proposal_server(monkeypatch):
    """``--server`` asks the server which model it runs: this one answers without a network."""
    monkeypatch.setattr(server_choice, "fetch_info", lambda url: _SERVER)


def _saved(folder: Path) -> dict:
    return json.loads(ProjectSettings.path_for(folder).read_text(encoding="utf-8"))


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_option_is_remembered_or_said_to_be_per_run(command: str) -> None:
    options = _options(PARSERS[command])
    both = sorted(set(REMEMBERED) & set(PER_RUN))
    assert not both, f"options in both REMEMBERED and PER_RUN: {both}"
    unknown = sorted(options - set(REMEMBERED) - set(PER_RUN))
    assert not unknown, (f"{command} options {unknown} are neither remembered for the folder nor per run: "
                         "add them to app/setting_names.py REMEMBERED or commands/options.py PER_RUN")


def test_the_proposal_options_are_remembered() -> None:
    """The options that change proposals may never be moved to PER_RUN."""
    for name in ("model", "backend", "weights", "config", "text_encoder", "precision", "text_threshold",
                 "box_threshold", "classes", "prompt", "device"):
        assert name in REMEMBERED, name


def _remembered_of(command: str) -> list[str]:
    return sorted(_options(PARSERS[command]) & set(REMEMBERED))


@pytest.mark.parametrize("option", _remembered_of("window"))
def test_the_window_remembers(option: str, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    words, expected = _sample(option, tmp_path)
    args = parse_args([str(folder), *words])
    gui_command.folder_settings(folder, args)
    saved = _saved(folder)
    assert {k: saved[k] for k in expected} == expected


@pytest.mark.parametrize("option", _remembered_of("label"))
def test_label_remembers(option: str, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    monkeypatch.setattr(label_command, "spec_for", lambda name: SimpleNamespace(missing=lambda config: None))
    monkeypatch.setattr(label_command, "_label", lambda *a: 0)
    words, expected = _sample(option, tmp_path)
    classes = [] if option == "classes" else ["--classes", "cat,dog"]
    args = parse_args(["label", str(folder), *classes, *words])
    assert label_command.run(args) == 0
    saved = _saved(folder)
    assert {k: saved[k] for k in expected} == expected
