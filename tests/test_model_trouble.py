"""Model trouble end to end: missing or wrong weights, a text encoder that cannot be loaded,
CUDA running out of memory, an exception inside the detector. Each is said clearly on stderr
(the window's side is in test_window_reliability.py) and no file the user has is touched.

The backend's own tests check each error message at the source (test_grounding_dino.py); here
the real command runs on the tiny checkpoint and the user-facing outcome is checked.
CUDA is not available here, so a GPU with too little memory is emulated around the real model:
it reports device ``cuda:0`` and raises torch's own OutOfMemoryError until the pipeline moves
it to the CPU, where the real model answers.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box, ImageLabels
from autolabel_gui.core.cache import ProposalCache, run_id_for
from autolabel_gui.core.project import ProjectSettings
from autolabel_gui.detection import base
from autolabel_gui.formats.voc import write_voc
from tests.fixtures.hostile import changed, label_args, small_model_settings, snapshot
from tests.fixtures.pipeline import write_images

pytestmark = pytest.mark.model


@pytest.fixture
def photos(tmp_path):
    """Five images (one wider), one verified VOC file the user saved, small model inputs."""
    folder = tmp_path / "photos"
    write_images(folder, ["a.png", "b.png", "c.png", "odd.png"], size=(64, 48))
    write_images(folder, ["ab wide.png"], size=(80, 48))  # in the first batch of four
    small_model_settings(folder)
    write_voc(tmp_path / "voc" / "a.xml", ImageLabels("a.png", 64, 48, boxes=[Box(2, 3, 30, 40, "dog")], verified=True))
    return folder


def _label(folder: Path, tiny_gdino, *overrides: str) -> list[str]:
    """``label`` on the tiny model, with ``--flag value`` pairs in ``overrides`` replacing its own."""
    args = label_args(tiny_gdino, batch=4)
    for flag, value in zip(overrides[::2], overrides[1::2]):
        args[args.index(flag) + 1] = value
    return ["label", str(folder), "--voc-dir", str(folder.parent / "voc"), *args]


@pytest.mark.parametrize("fault, words", [
    ("html", "not a readable PyTorch checkpoint"),
    ("truncated", "not a readable PyTorch checkpoint"),
    ("other_model", "weights missing"),
    ("missing", "weights not found"),
    ("text_encoder", "text encoder"),
])
def test_unusable_model_is_a_clear_message_and_nothing_is_touched(photos, tiny_gdino, tmp_path, capsys,
                                                                    fault, words):
    bad = tmp_path / "model.pth"
    extra: list[str] = ["--weights", str(bad)]
    if fault == "html":
        bad.write_bytes(b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>")
    elif fault == "truncated":
        data = tiny_gdino.weights_path.read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    elif fault == "other_model":
        torch.save({"model": {"backbone.fc.weight": torch.zeros(4, 4)}}, bad)
    elif fault == "text_encoder":
        broken = tmp_path / "bert"
        shutil.copytree(tiny_gdino.text_encoder_dir, broken)
        (broken / "config.json").write_text("{ this is not json", encoding="utf-8")
        (broken / "tokenizer.json").write_text("{ nor this", encoding="utf-8")
        extra = ["--text-encoder", str(broken)]
        bad = broken
    before = snapshot(photos, tmp_path / "voc")
    rc = main(_label(photos, tiny_gdino, *extra))
    _, err = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in err and words in err and str(bad) in err, err
    assert changed(before, snapshot(photos, tmp_path / "voc")) == []
    assert not (tmp_path / "voc" / "b.xml").exists()


class _TinyGpu:
    """The real tiny model behind a device that runs out of memory: every call on ``cuda:0`` raises
    torch.OutOfMemoryError; the CPU model answers. ``fail_width`` images make the model raise."""

    calls: list[tuple[str, int]] = []
    fail_width: int | None = None

    def __init__(self, config: base.DetectorConfig, real) -> None:
        self._on_gpu = config.device != "cpu"
        self._real = real(replace(config, device="cpu", precision="fp32"))

    @property
    def model_id(self) -> str:
        return self._real.model_id

    @property
    def device(self) -> str:
        return "cuda:0" if self._on_gpu else "cpu"

    def detect(self, images, ontology, score_floor):
        _TinyGpu.calls.append((self.device, len(images)))
        if self._on_gpu:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB (GPU 0; 1.00 GiB free)")
        if self.fail_width is not None and any(im.shape[1] == self.fail_width for im in images):
            raise ValueError("index 900 is out of bounds for dimension 0 with size 900")
        return self._real.detect(images, ontology, score_floor)


@pytest.fixture
def tiny_gpu(monkeypatch):
    import autolabel_gui.detection.grounding_dino  # noqa: F401  registers the real backend

    real = base._BACKENDS["grounding_dino"]
    _TinyGpu.calls = []
    monkeypatch.setattr(_TinyGpu, "fail_width", None)
    monkeypatch.setitem(base._BACKENDS, "grounding_dino", lambda config: _TinyGpu(config, real))
    return _TinyGpu


def test_cuda_out_of_memory_halves_the_batch_then_runs_on_the_cpu(photos, tiny_gdino, tiny_gpu, capsys):
    rc = main(_label(photos, tiny_gdino, "--device", "cuda"))
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "out of memory: batch size lowered to 2" in err and "batch size lowered to 1" in err
    assert "out of memory on cuda:0 even with one image: running on the CPU" in err
    assert "5 detected" in out and "0 failed" in out
    gpu_calls = [n for device, n in tiny_gpu.calls if device == "cuda:0"]
    assert gpu_calls == [4, 2, 1] and all(device == "cpu" for device, _ in tiny_gpu.calls[3:])
    settings = ProjectSettings.load(photos)
    with ProposalCache.for_folder(photos) as cache:
        cached = cache.cached_relpaths(run_id_for(settings.detector_config(), settings.ontology()))
    assert cached == {"a.png", "b.png", "c.png", "odd.png", "ab wide.png"}, "the CPU fallback shares the cache"


def test_an_exception_inside_the_model_fails_one_image_and_the_rest_go_on(photos, tiny_gdino, tiny_gpu, capsys):
    tiny_gpu.fail_width = 80
    before = snapshot(photos, photos.parent / "voc")
    rc = main(_label(photos, tiny_gdino))
    out, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in err
    line = next(ln for ln in err.splitlines() if "ab wide.png" in ln)
    assert "ValueError: index 900 is out of bounds" in line
    assert "4 detected" in out and "1 failed" in out
    assert changed(before, snapshot(photos, photos.parent / "voc")) == []
    assert {p.name for p in (photos.parent / "voc").iterdir()} == {"a.xml", "b.xml", "c.xml", "odd.xml"}
