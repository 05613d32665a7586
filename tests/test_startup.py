"""Start-up without waste (``lean_load``): the lean load gives the very model the plain load
gave, falls back where the checkpoint leaves holes, and the window's thread never imports torch.
The time it saves is ``benchmarks/bench_startup.py``'s to print.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from autolabel_gui.detection import grounding_dino, lean_load
from groundingdino.util.misc import clean_state_dict

from tests.fixtures.hostile import CodePayload

ROOT = Path(__file__).resolve().parents[1]


def tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return dict(itertools.chain(model.named_parameters(remove_duplicate=False),
                                model.named_buffers(remove_duplicate=False)))


def load(tiny, weights: Path, monkeypatch) -> tuple[torch.nn.Module, list[bool]]:
    """The product's load of ``weights``, and which builds it made (True: lean)."""
    builds: list[bool] = []
    build = grounding_dino._build

    def spy(cfg, config_path, lean):
        builds.append(lean)
        return build(cfg, config_path, lean)

    monkeypatch.setattr(grounding_dino, "_build", spy)
    cfg = grounding_dino._load_config(tiny.config_path, str(tiny.text_encoder_dir))
    return grounding_dino.load_model(cfg, weights, tiny.config_path, "cpu"), builds


def plain_load(tiny) -> torch.nn.Module:
    """What ``load_model`` did before: build with random initialisation, then copy the weights in."""
    cfg = grounding_dino._load_config(tiny.config_path, str(tiny.text_encoder_dir))
    cfg.text_encoder_type = str(tiny.text_encoder_dir)
    model = grounding_dino._build(cfg, tiny.config_path, lean=False)
    state = torch.load(str(tiny.weights_path), map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(clean_state_dict(state), strict=False)
    return model.eval()


@pytest.mark.model
def test_the_lean_load_gives_the_plain_loads_model(tiny_gdino, monkeypatch) -> None:
    model, builds = load(tiny_gdino, tiny_gdino.weights_path, monkeypatch)
    assert builds == [True]  # no second build: the checkpoint filled every parameter
    ours, theirs = tensors(model), tensors(plain_load(tiny_gdino))
    assert ours.keys() == theirs.keys() and len(ours) > 300
    different = [name for name in ours if ours[name].dtype != theirs[name].dtype
                 or not torch.equal(ours[name], theirs[name])]
    assert different == []
    assert not model.training


@pytest.mark.model
def test_a_checkpoint_without_the_text_encoder_is_built_the_plain_way(tiny_gdino, tmp_path, monkeypatch) -> None:
    """The text encoder's weights then come from its folder: the lean build would leave them empty."""
    state = torch.load(str(tiny_gdino.weights_path), weights_only=True)["model"]
    weights = tmp_path / "no_bert.pth"
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("bert.")}}, weights)
    model, builds = load(tiny_gdino, weights, monkeypatch)
    assert builds == [True, False] and lean_load.leftovers(model) == []
    from transformers import BertModel

    folder_bert = BertModel.from_pretrained(str(tiny_gdino.text_encoder_dir)).state_dict()
    assert all(torch.equal(value, folder_bert[name]) for name, value in model.bert.state_dict().items())


@pytest.mark.model
def test_fp16_and_legacy_checkpoints_still_give_the_fp32_model(tiny_gdino, tmp_path, monkeypatch) -> None:
    state = torch.load(str(tiny_gdino.weights_path), weights_only=True)["model"]
    half, legacy = tmp_path / "half.pth", tmp_path / "legacy.pth"
    torch.save({"model": {k: v.half() if v.is_floating_point() else v for k, v in state.items()}}, half)
    torch.save({"model": state}, legacy, _use_new_zipfile_serialization=False)  # the pre-1.6 format
    reference = tensors(plain_load(tiny_gdino))
    for weights, tolerance in ((half, 1e-3), (legacy, 0.0)):
        model, _ = load(tiny_gdino, weights, monkeypatch)
        loaded = tensors(model)
        assert all(loaded[n].dtype == reference[n].dtype for n in reference)
        assert all(torch.allclose(loaded[n].float(), reference[n].float(), atol=tolerance, rtol=tolerance)
                   for n in reference)


@pytest.mark.model
def test_a_checkpoint_of_meta_tensors_is_refused_as_not_a_checkpoint(tiny_gdino, tmp_path, monkeypatch) -> None:
    """``torch.load(map_location="cpu")`` keeps a saved meta tensor on meta; assigned, it would be
    a parameter with no values (a model with holes, or torch's "Cannot copy out of meta tensor")."""
    from autolabel_gui.detection.base import DetectorUnavailable

    state = torch.load(str(tiny_gdino.weights_path), weights_only=True)["model"]
    name = next(k for k in state if not k.startswith("bert.") and state[k].is_floating_point())
    state[name] = torch.empty(state[name].shape, device="meta")
    weights = tmp_path / "meta.pth"
    torch.save({"model": state}, weights)
    with pytest.raises(DetectorUnavailable, match="not a checkpoint") as refused:
        load(tiny_gdino, weights, monkeypatch)
    assert name in str(refused.value)


_TRUNCATE_AFTER_LOAD = """
import os, sys
from pathlib import Path
from autolabel_gui.detection import grounding_dino
from tests.fixtures.tiny_gdino import TinyGdino
tiny = TinyGdino.at(Path(sys.argv[1]))
cfg = grounding_dino._load_config(tiny.config_path, str(tiny.text_encoder_dir))
model = grounding_dino.load_model(cfg, Path(sys.argv[2]), tiny.config_path, "cpu")
os.truncate(sys.argv[2], 0)  # `cp new.pth old.pth` while the window runs, or the share drops the file
print(sum(float(p.float().sum()) for p in model.parameters()))
"""


@pytest.mark.model
def test_the_weights_file_changing_after_the_load_does_not_kill_the_program(tiny_gdino, tmp_path) -> None:
    """Memory-mapped, the checkpoint's tensors became the parameters: the file stayed the model's
    memory, and truncated in place the next read of a parameter died of SIGBUS, the window with
    every unsaved edit. The file is read once."""
    import os
    import shutil

    weights = tmp_path / "copy.pth"
    shutil.copyfile(tiny_gdino.weights_path, weights)
    done = subprocess.run([sys.executable, "-c", _TRUNCATE_AFTER_LOAD, str(tiny_gdino.weights_path.parent),
                           str(weights)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, f"died with {done.returncode}: {done.stderr[-500:]}"
    assert os.path.getsize(weights) == 0


def test_parameters_go_back_to_real_memory_after_the_build_even_on_error() -> None:
    with pytest.raises(ZeroDivisionError), lean_load.parameters_on_meta():
        assert torch.nn.Linear(3, 2).weight.is_meta
        _ = 1 / 0
    assert not torch.nn.Linear(3, 2).weight.is_meta


def test_the_window_and_its_worker_import_no_model_code() -> None:
    """torch, the model package and transformers are imported by the worker's first build
    (``catalogue.create_detector``), never by the window's thread while it opens."""
    code = ("import sys, autolabel_gui.gui.main_window, autolabel_gui.gui.worker, autolabel_gui.commands.gui;"
            "print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), "PATH": ""})
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert "PySide6" in loaded
    assert not {"torch", "groundingdino", "transformers", "torchvision", "matplotlib"} & loaded


def test_the_backend_keeps_the_packages_plotting_code_out() -> None:
    """matplotlib (about a second of start-up) is the package's training-time visualiser only."""
    code = ("import sys, warnings; warnings.simplefilter('ignore');"
            "import autolabel_gui.detection.grounding_dino, groundingdino.models;"
            "from groundingdino.util.visualizer import COCOVisualizer\n"
            "try:\n    COCOVisualizer()\nexcept RuntimeError as exc:\n    print('refused:', exc)\n"
            "print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert "refused: groundingdino.util.visualizer is not loaded by autolabel-gui" in out.stdout
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert "groundingdino" in loaded and "torch" in loaded and "matplotlib" not in loaded


def _gdino_load(tiny, weights: Path):
    from autolabel_gui.detection import grounding_dino

    cfg = grounding_dino._load_config(tiny.config_path, str(tiny.text_encoder_dir))
    return grounding_dino.load_model(cfg, weights, tiny.config_path, "cpu")


@pytest.mark.model
@pytest.mark.parametrize("fault", ["mis-shaped", "code", "extra-keys", "int-dtype", "not-tensors"])
def test_the_lean_load_of_a_hostile_checkpoint(fault: str, tiny_gdino, tmp_path: Path) -> None:
    """Refused with the reason (DetectorUnavailable), or loaded whole: never code run, never holes."""
    import torch
    from autolabel_gui.detection import lean_load
    from autolabel_gui.detection.base import DetectorUnavailable

    state = torch.load(str(tiny_gdino.weights_path), weights_only=True)["model"]
    name = next(k for k in state if not k.startswith("bert.") and state[k].dim() == 2)
    marker = tmp_path / "ran"
    content: object = {"model": state}
    if fault == "mis-shaped":
        state[name] = torch.zeros(state[name].shape[0] + 1, state[name].shape[1])
    elif fault == "code":
        content = {"model": state, "extra": CodePayload(marker)}
    elif fault == "extra-keys":
        state["attacker.weight"] = torch.zeros(10_000)
    elif fault == "int-dtype":
        state[name] = state[name].round().to(torch.int64)
    elif fault == "not-tensors":
        state[name] = [1.0, 2.0]
    weights = tmp_path / "bad.pth"
    torch.save(content, weights)
    refused = fault in ("mis-shaped", "code", "not-tensors")
    if refused:
        with pytest.raises(DetectorUnavailable):
            _gdino_load(tiny_gdino, weights)
        assert not marker.exists()
        return
    model = _gdino_load(tiny_gdino, weights)
    assert lean_load.leftovers(model) == []
    assert all(p.dtype == torch.float32 for p in model.parameters())
