"""The bf16 and int8 product paths on both torch backends: what each runs (bf16 arithmetic with
the fused sampling; int8 linear layers with it) and what each refuses. How close their boxes
are to fp32 is the trained instrument's to say (``path_evidence``), not a random tiny model's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection import fast_sampling, runtime
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector
from torch.ao.nn.quantized import dynamic as quantized_dynamic

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
ONTOLOGY = Ontology.from_names(["person", "cat", "cup", "vehicle"])


@pytest.fixture
def sampled(monkeypatch) -> list[torch.dtype]:
    """The dtype of the values each call of the fused sampling got."""
    calls: list[torch.dtype] = []
    original = fast_sampling.sample

    def spy(value, *args):
        calls.append(value.dtype)
        return original(value, *args)

    monkeypatch.setattr(fast_sampling, "sample", spy)
    return calls


def linear_outputs(model: torch.nn.Module) -> tuple[list[torch.dtype], list]:
    """Hooks recording the output dtype of every float ``nn.Linear`` (none left after int8)."""
    dtypes: list[torch.dtype] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
               for m in model.modules() if type(m) is torch.nn.Linear]
    return dtypes, handles


@pytest.mark.model
@pytest.mark.parametrize("fixture", ["tiny_gdino", "tiny_hf"])
def test_bf16_runs_bf16_arithmetic_with_the_fused_sampling(fixture, request, sampled) -> None:
    model_files = request.getfixturevalue(fixture)
    detector = create_detector(model_files.detector_config(precision="bf16"))
    dtypes, handles = linear_outputs(detector.model)
    boxes = detector.detect([load_image(sorted(SAMPLES.glob("*.jpg"))[0])], ONTOLOGY, 0.05)[0]
    for handle in handles:
        handle.remove()
    assert detector.precision == "bf16" and boxes
    assert sampled and torch.bfloat16 in sampled  # the fused sampling ran, on bf16 values
    assert torch.bfloat16 in dtypes


@pytest.mark.model
@pytest.mark.parametrize("fixture", ["tiny_gdino", "tiny_hf"])
def test_int8_quantises_every_linear_layer_and_samples_fused(fixture, request, sampled) -> None:
    model_files = request.getfixturevalue(fixture)
    detector = create_detector(model_files.detector_config(precision="int8"))
    modules = list(detector.model.modules())
    assert not any(type(m) is torch.nn.Linear for m in modules)
    assert sum(isinstance(m, quantized_dynamic.Linear) for m in modules) > 10
    boxes = detector.detect([load_image(sorted(SAMPLES.glob("*.jpg"))[0])], ONTOLOGY, 0.05)[0]
    assert detector.precision == "int8" and boxes and sampled
    assert {b.label for b in boxes} <= set(ONTOLOGY.names)
    assert all(0 <= b.xyxy[0] < b.xyxy[2] and 0 <= b.xyxy[1] < b.xyxy[3] for b in boxes)


def test_int8_is_refused_off_the_cpu() -> None:
    with pytest.raises(DetectorUnavailable, match="int8 runs on the CPU only"):
        runtime.resolve_precision("int8", "cuda", "cuda")
    assert runtime.resolve_precision("int8", "cpu", "cpu") == "int8"
    assert runtime.resolve_precision("bf16", "cpu", "cpu") == "bf16"
