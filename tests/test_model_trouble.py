"""Model trouble end to end: missing or wrong weights, a text encoder that cannot be loaded,
CUDA running out of memory, an exception inside the detector. Each is said clearly on stderr
and in the window's status bar, and no file the user has is touched.

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
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.detection import base, catalogue
from autolabel_gui.detection.ids import run_id_for
from autolabel_gui.formats.voc import write_voc
from autolabel_gui.gui.worker import unavailable

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
    failures = 0
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
            _TinyGpu.failures += 1
            raise ValueError("index 900 is out of bounds for dimension 0 with size 900")
        return self._real.detect(images, ontology, score_floor)


@pytest.fixture
def tiny_gpu(monkeypatch):
    import autolabel_gui.detection.grounding_dino  # noqa: F401  registers the real backend
    from autolabel_gui.detection import runtime

    real = base._BACKENDS["grounding_dino"]
    monkeypatch.setattr(runtime, "resolve_device", lambda device: device)  # --device cuda is checked first
    _TinyGpu.calls = []
    _TinyGpu.failures = 0
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


MODEL_TIMEOUT_MS = 180_000


def _window_model(tiny_gdino, **overrides) -> dict:
    settings = dict(weights=str(tiny_gdino.weights_path), config=str(tiny_gdino.config_path),
                    text_encoder=str(tiny_gdino.text_encoder_dir), device="cpu", precision="fp32",
                    extra=dict(tiny_gdino.extra), box_threshold=0.3, batch_size=2)
    return {**settings, **overrides}


def test_window_with_a_wrong_checkpoint_says_so_and_the_review_goes_on(open_review, tiny_gdino, tmp_path, qtbot):
    from autolabel_gui.detection.catalogue import create_detector
    from PySide6.QtCore import Qt

    from tests.fixtures.window import proposal

    bad = tmp_path / "model.pth"
    bad.write_bytes(b"<html>404</html>")
    h = open_review(["a.png", "b.png"], {"a.png": [proposal(10, 10, 50, 60, "person", 0.9)]},
                    detector_factory=create_detector, **_window_model(tiny_gdino, weights=str(bad)))
    qtbot.waitUntil(lambda: "No model" in h.window.model_label.text(), timeout=MODEL_TIMEOUT_MS)
    assert "not a readable PyTorch checkpoint" in h.window.model_label.text()
    assert str(bad) in h.window.model_label.toolTip()
    h.press(Qt.Key.Key_Space)  # cached proposals are still reviewed and saved
    assert h.saved("a.png") == [("person", (10, 10, 50, 60))]
    h.wait_shown("b.png")
    h.press(Qt.Key.Key_W)
    h.drag((20, 20), (80, 70))
    h.press(Qt.Key.Key_Space)
    assert [label for label, _ in h.saved("b.png")] == ["person"], "drawing works without a model"


def test_window_through_emulated_cuda_oom_and_a_failing_image(open_review, tiny_gdino, tiny_gpu, qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from tests.fixtures.window import write_image

    write_image(tmp_path / "images" / "d.png", size=(120, 90))  # the model raises on this one
    tiny_gpu.fail_width = 120
    h = open_review(["a.png", "b.png", "c.png", "d.png"], detector_factory=catalogue.create_detector,
                    **_window_model(tiny_gdino, device="cuda"))
    qtbot.waitUntil(lambda: len(h.state.items) > 0, timeout=MODEL_TIMEOUT_MS)
    assert ("cuda:0", 1) in tiny_gpu.calls and any(device == "cpu" for device, _ in tiny_gpu.calls)
    qtbot.waitUntil(lambda: "ready on cpu" in h.window.model_label.text(), timeout=MODEL_TIMEOUT_MS)
    qtbot.waitUntil(lambda: tiny_gpu.failures > 0, timeout=MODEL_TIMEOUT_MS)  # failed while looking ahead
    qtbot.wait(50)
    h.controller.review.go_to("d.png")
    qtbot.waitUntil(lambda: "detection failed" in h.window.message_label.text(), timeout=10_000)
    assert "ValueError: index 900 is out of bounds" in h.window.message_label.toolTip()
    h.controller.review.go_to("b.png")
    qtbot.waitUntil(lambda: len(h.state.items) > 0, timeout=MODEL_TIMEOUT_MS)
    h.press(Qt.Key.Key_Space)
    assert h.voc("b.png").verified and h.saved("b.png")


def test_only_missing_model_files_offer_the_download(tiny_gdino, tmp_path):
    """The window's "run weights download" hint follows what went wrong, never the message's
    words: missing weights or text encoder are ``MissingModelFiles``; a wrong file is not."""
    with pytest.raises(base.MissingModelFiles, match="weights not found"):
        catalogue.create_detector(tiny_gdino.detector_config(weights=str(tmp_path / "absent.pth")))
    with pytest.raises(base.DetectorUnavailable) as folder:  # a folder the user named: no download makes it
        catalogue.create_detector(tiny_gdino.detector_config(text_encoder=str(tmp_path / "no-bert")))
    assert "text encoder folder not found" in str(folder.value) and not isinstance(folder.value, base.MissingModelFiles)
    html = tmp_path / "page.pth"
    html.write_bytes(b"<!DOCTYPE html><html><body>weights moved</body></html>")
    with pytest.raises(base.DetectorUnavailable) as info:
        catalogue.create_detector(tiny_gdino.detector_config(weights=str(html)))
    assert not isinstance(info.value, base.MissingModelFiles)
    assert unavailable(info.value).download_fixes is False
