"""The CPU fast path (``fast_sampling``, ``compute_path``): the same sum as the reference sampling,
the reference path untouched, and its own run id; the same boxes on both paths is part of the
backend contract (test_backend_contract.py).

Tolerances: ``sample`` adds the same products in another order, so it differs from the
reference by float rounding only: ~1e-6 relative. The boxes of the tiny models (the contract) are checked at
1e-4 in score and 1e-2 px, two orders of magnitude above what was measured (2e-7 and 6e-5 px),
and far below what separates two different proposals.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection import compute_path, fast_sampling
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.path_evidence import Evidence
from groundingdino.models.GroundingDINO import ms_deform_attn

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
ONTOLOGY = Ontology.from_names(["person", "cat", "cup", "vehicle"])
SHAPES = [(13, 17), (7, 9), (4, 5), (2, 3)]


def _inputs(seed: int, batch: int = 2, queries: int = 40, heads: int = 4, dims: int = 8, points: int = 3):
    g = torch.Generator().manual_seed(seed)
    length = sum(h * w for h, w in SHAPES)
    value = torch.randn(batch, length, heads, dims, generator=g)
    # locations beyond [0, 1] on purpose: corners outside the map must read zeros
    locations = torch.rand(batch, queries, heads, len(SHAPES), points, 2, generator=g) * 1.4 - 0.2
    weights = torch.rand(batch, queries, heads, len(SHAPES), points, generator=g)
    weights = weights / weights.sum((-1, -2), keepdim=True)
    return value, locations, weights


def _reference(value, locations, weights):
    original = ms_deform_attn.multi_scale_deformable_attn_pytorch
    original = getattr(original, "__wrapped__", original)
    return original(value, torch.tensor(SHAPES), locations, weights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sample_is_the_reference_sum(seed) -> None:
    value, locations, weights = _inputs(seed)
    ours = fast_sampling.sample(value, SHAPES, locations, weights)
    theirs = _reference(value, locations, weights)
    assert ours.shape == theirs.shape == (2, 40, 4 * 8)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5)
    assert theirs.abs().max() > 0.1  # a real signal, not two zero tensors


def test_points_outside_every_map_read_zero() -> None:
    value, locations, weights = _inputs(3, batch=1, queries=5)
    locations = torch.full_like(locations, 1.5)
    assert fast_sampling.sample(value, SHAPES, locations, weights).abs().max() == 0
    assert _reference(value, locations, weights).abs().max() == 0


def test_a_pixel_centre_reads_that_pixel_exactly() -> None:
    """One point on the centre of pixel (row 2, col 5) of level 0 with weight 1 reads that value."""
    value, locations, weights = _inputs(4, batch=1, queries=1, heads=1, points=1)
    h, w = SHAPES[0]
    locations[:] = torch.tensor([(5 + 0.5) / w, (2 + 0.5) / h])
    weights = torch.zeros_like(weights)
    weights[..., 0, 0] = 1.0
    out = fast_sampling.sample(value, SHAPES, locations, weights)
    assert torch.allclose(out[0, 0], value[0, 2 * w + 5, 0], atol=1e-6)


def test_transformers_sampler_is_replaced_by_the_same_sum() -> None:
    from transformers.models.grounding_dino.modeling_grounding_dino import MultiScaleDeformableAttention

    value, locations, weights = _inputs(5)
    shapes = torch.tensor(SHAPES)
    starts = torch.cat([shapes.new_zeros(1), (shapes[:, 0] * shapes[:, 1]).cumsum(0)[:-1]])
    args = (value, shapes, SHAPES, starts, locations, weights, 64)
    theirs = MultiScaleDeformableAttention()(*args)
    assert torch.allclose(fast_sampling.HfSampling()(*args), theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.model
def test_fp32_detections_are_bit_identical_to_the_package_sampling(tiny_gdino, monkeypatch) -> None:
    """The fast path off is the exact old path: same bits as with the package's function restored."""
    detector = create_detector(tiny_gdino.detector_config(precision="fp32"))
    image = load_image(sorted(SAMPLES.glob("*.jpg"))[0])
    ours = detector.detect([image], ONTOLOGY, 0.05)[0]
    dispatch = ms_deform_attn.multi_scale_deformable_attn_pytorch
    monkeypatch.setattr(ms_deform_attn, "multi_scale_deformable_attn_pytorch", dispatch.__wrapped__)
    theirs = detector.detect([image], ONTOLOGY, 0.05)[0]
    assert ours and [(b.label, b.score, b.xyxy) for b in ours] == [(b.label, b.score, b.xyxy) for b in theirs]


@pytest.mark.model
@pytest.mark.parametrize("fixture", ["tiny_hf", "tiny_mm_hf"])  # Grounding DINO, MM-Grounding-DINO (LLMDet)
def test_the_fast_path_swaps_the_transformers_sampler(fixture, request) -> None:
    """Same boxes on both paths: test_backend_contract.py, on every backend."""
    tiny_hf = request.getfixturevalue(fixture)
    reference = create_detector(tiny_hf.detector_config(precision="fp32"))
    fast = create_detector(tiny_hf.detector_config(precision="fast"))
    assert sum(isinstance(m, fast_sampling.HfSampling) for m in fast.model.modules()) > 0
    assert not any(isinstance(m, fast_sampling.HfSampling) for m in reference.model.modules())


def test_auto_is_the_fast_path_on_a_cpu_and_the_run_id_says_so(monkeypatch) -> None:
    config = DetectorConfig(weights="w.pth", device="auto", precision="auto")
    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: False)
    monkeypatch.setattr(compute_path, "shipped_evidence", lambda: Evidence())  # bf16/int8 not proven
    assert compute_path.planned("auto", "auto") == "fast"
    cpu_auto = model_id_for(config)
    assert cpu_auto == model_id_for(replace(config, precision="fast"))
    assert cpu_auto != model_id_for(replace(config, precision="fp32"))
    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: True)
    assert compute_path.planned("auto", "auto") == "gpu-auto"
    assert compute_path.id_part("auto", "auto") == "auto"  # the id GPU caches had before the fast path
    assert model_id_for(config) not in (cpu_auto, model_id_for(replace(config, precision="fp32")))


def test_the_accelerator_guess_reads_the_device_as_asked(monkeypatch) -> None:
    assert compute_path.accelerator_expected("cpu") is False
    assert compute_path.accelerator_expected("cuda:1") is True
    monkeypatch.setattr(compute_path.sys, "platform", "linux")
    monkeypatch.setattr(compute_path, "_torch_gpu_builds", lambda: frozenset({"cuda"}))
    monkeypatch.setattr(compute_path, "_gpu_driver", lambda builds: False)
    assert compute_path.accelerator_expected("auto") is False  # a CUDA build without a driver: the CPU
    monkeypatch.setattr(compute_path, "_gpu_driver", lambda builds: True)
    assert compute_path.accelerator_expected("auto") is True


def test_a_planned_value_is_never_planned_again(monkeypatch) -> None:
    """A Ray worker gets the driver's plan: a CPU worker must not turn gpu-auto into fast."""
    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: False)
    assert compute_path.planned("gpu-auto", "auto") == "gpu-auto"
    assert compute_path.planned("fast", "cuda") == "fast"


def test_sample_builds_its_indices_on_the_value_device() -> None:
    """On a GPU the index tensors must live beside the values ('meta' stands in for one here)."""
    value, locations, weights = _inputs(7)
    out = fast_sampling.sample(value.to("meta"), SHAPES, locations.to("meta"), weights.to("meta"))
    assert out.device.type == "meta" and out.shape == (2, 40, 32)


def test_the_ready_message_names_the_path() -> None:
    from autolabel_gui.detection.batch import BatchDetector

    class Loaded:
        device, precision, model_id = "cpu", "fast", "x"

    events: list[tuple[str, str]] = []
    model = BatchDetector(DetectorConfig(device="cpu", precision="fast"), ONTOLOGY, factory=lambda config: Loaded(),
                          on_event=lambda kind, message: events.append((kind, message)))
    model.ensure_detector()
    assert events[-1][0] == "ready" and events[-1][1].startswith("model ready on cpu (fast path) in ")
