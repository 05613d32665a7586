"""Models the user did not choose (issue 21): a ``bert-base-uncased/`` (or a checkpoint, or a hub
id's folder) in the working directory never supplies the model, and a text encoder with code of
its own is refused without asking, its code never run."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.detection import weights as w
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.hf_spec import model_folder

from tests.fixtures.window import write_image

REPO = Path(__file__).resolve().parents[1]
HUB_NAME = "bert-base-uncased"


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty Hugging Face cache of this test's own (the hub is offline in tests)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def _put_in_hub_cache(cache: Path, name: str, files: Path) -> Path:
    """``files`` as the cached snapshot of hub repository ``name`` (huggingface_hub's layout)."""
    commit = "0" * 40
    repo = cache / f"models--{name.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(files, repo / "snapshots" / commit)
    return repo / "snapshots" / commit


@pytest.mark.model
def test_a_bert_base_uncased_folder_in_the_working_directory_is_never_the_text_encoder(
        tiny_gdino, tmp_path: Path, hf_cache: Path, monkeypatch) -> None:
    handed = tmp_path / "handed"
    shutil.copytree(tiny_gdino.text_encoder_dir, handed / HUB_NAME)  # loads, and fits the tiny checkpoint
    monkeypatch.chdir(handed)
    with pytest.raises(DetectorUnavailable, match="bert-base-uncased: not in the Hugging Face cache") as info:
        create_detector(tiny_gdino.detector_config(text_encoder=HUB_NAME))
    assert "a folder of that name in the working directory is not used" in str(info.value)


@pytest.mark.model
def test_the_default_name_loads_the_hugging_face_cache_copy_whatever_the_working_directory_holds(
        tiny_gdino, tmp_path: Path, hf_cache: Path, monkeypatch) -> None:
    _put_in_hub_cache(hf_cache, HUB_NAME, tiny_gdino.text_encoder_dir)
    handed = tmp_path / "handed"
    (handed / HUB_NAME).mkdir(parents=True)
    (handed / HUB_NAME / "config.json").write_text("{ the folder's own, not a config", encoding="utf-8")
    monkeypatch.chdir(handed)
    detector = create_detector(tiny_gdino.detector_config(text_encoder=HUB_NAME))
    assert detector.model_id


def _folder_with_custom_code(source: Path, dest: Path) -> Path:
    """A BERT folder whose tokenizer asks for a class of its own code, which leaves a marker."""
    shutil.copytree(source, dest)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (dest / name).unlink(missing_ok=True)
    (dest / "tokenizer_config.json").write_text(
        '{"tokenizer_class": "HandedTokenizer", "auto_map": {"AutoTokenizer": ["handed.HandedTokenizer", null]}}',
        encoding="utf-8")
    (dest / "handed.py").write_text(
        "from pathlib import Path\n"
        "Path(__file__).with_name('CODE_RAN').write_text('the folder ran its code')\n"
        "from transformers import BertTokenizer\n"
        "class HandedTokenizer(BertTokenizer):\n"
        "    pass\n", encoding="utf-8")
    return dest


def _run_answering_yes(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The command with "y" waiting on stdin, as a user at a terminal might type it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "autolabel_gui", *args], input="y\n", capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


@pytest.mark.model
@pytest.mark.parametrize("command", ["label", "convert"])
def test_a_text_encoder_with_custom_code_is_refused_and_never_asked(tiny_gdino, tmp_path: Path,
                                                                    command: str) -> None:
    encoder = _folder_with_custom_code(tiny_gdino.text_encoder_dir, tmp_path / "encoder")
    model = ["--config", str(tiny_gdino.config_path), "--text-encoder", str(encoder)]
    if command == "label":
        photos = tmp_path / "photos"
        write_image(photos / "a.png", size=(64, 48))
        args = ["label", str(photos), "--classes", "dog", "--weights", str(tiny_gdino.weights_path), *model,
                "--device", "cpu", "--precision", "fp32", "--no-progress"]
    else:
        args = ["weights", "convert", str(tiny_gdino.weights_path), *model, "--out", str(tmp_path / "hf")]
    done = _run_answering_yes(args, tmp_path)
    output = done.stdout + done.stderr
    assert not (encoder / "CODE_RAN").exists(), "the folder's code ran"
    assert "custom code" in output and "custom code is refused" in output
    assert "[y/N]" not in output, "nobody may be asked"
    assert done.returncode == (2 if command == "label" else 1) and "Traceback" not in output
    assert not (tmp_path / "hf").exists()


def test_a_hub_id_never_resolves_against_the_working_directory(tmp_path: Path, hf_cache: Path, monkeypatch) -> None:
    local = tmp_path / "IDEA-Research" / "grounding-dino-tiny"
    local.mkdir(parents=True)
    (local / "config.json").write_text('{"model_type": "grounding-dino"}', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = DetectorConfig(backend="transformers", weights="IDEA-Research/grounding-dino-tiny")
    assert model_folder(config) is None
    cached = _put_in_hub_cache(hf_cache, "IDEA-Research/grounding-dino-tiny", local)
    assert model_folder(config) == cached
    assert model_folder(DetectorConfig(backend="transformers", weights=str(local))) == local, "a path the user gave"


def test_a_checkpoint_in_the_working_directory_is_not_looked_for(tmp_path: Path, monkeypatch) -> None:
    name = w.load_manifest().name
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / name).write_bytes(b"the folder's own checkpoint")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(w, "REPO_WEIGHTS_DIR", tmp_path / "repo" / "weights")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(w.ENV_VAR, raising=False)
    assert w.find_weights() is None
    assert all(path.parent != tmp_path / "weights" for _, path in w.candidates())


def test_model_paths_typed_relative_are_kept_absolute_and_the_default_name_stays_a_name(
        tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "my-bert").mkdir()
    (tmp_path / HUB_NAME).mkdir()
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(text_encoder="my-bert", weights="missing.pth")
    assert ProjectSettings().with_args(args).text_encoder == str(tmp_path / "my-bert")
    assert ProjectSettings().with_args(args).weights == "missing.pth"
    args = argparse.Namespace(text_encoder=HUB_NAME)
    assert ProjectSettings().with_args(args).text_encoder == HUB_NAME
