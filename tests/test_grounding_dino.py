"""What only the ``grounding_dino`` backend does, on the tiny random checkpoint (tests/fixtures/tiny_gdino.py).

What every backend does (valid boxes, batches, prepared input, the pipeline, thresholds, chunks,
ids) is tests/test_backend_contract.py; here: the package's own forward and transforms, the text
encoder named by the config file, and what each missing or wrong model file says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.grounding_dino import GroundingDinoDetector, preprocess
from autolabel_gui.detection.ids import model_id_for

from tests.fixtures.backends import scene

pytestmark = pytest.mark.model

FLOOR = 0.3


@pytest.fixture(scope="module")
def detector(tiny_gdino) -> GroundingDinoDetector:
    return create_detector(tiny_gdino.detector_config())


def test_boxes_and_scores_are_the_package_own_predictions(detector) -> None:
    """Every box we return is a query of the package's own forward, scored by its class token."""
    img = scene(3, 120, 160)
    ours = detector.detect([img], Ontology.from_names(["dog"]), FLOOR)[0]
    tensor = preprocess(img, *detector.input_size)
    with torch.no_grad():
        out = detector.model(tensor[None], captions=["dog ."])
    dog_token = 1  # [CLS] dog . [SEP]
    scores = out["pred_logits"][0, :, dog_token].sigmoid()
    h, w = img.shape[:2]
    cx, cy, bw, bh = out["pred_boxes"][0].unbind(1)
    theirs = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * torch.tensor([w, h, w, h])
    theirs[:, 0::2] = theirs[:, 0::2].clamp(0, w)
    theirs[:, 1::2] = theirs[:, 1::2].clamp(0, h)
    assert ours and len(ours) <= int((scores >= FLOOR).sum())
    assert ours[0].score == pytest.approx(float(scores.max()), abs=1e-5)
    for b in ours:
        close = (theirs - torch.tensor(b.xyxy)).abs().max(dim=1).values < 1e-3
        assert close.any()
        assert float((scores[close] - b.score).abs().min()) < 1e-5


# Up to an aspect of 4 * max_size / size the package's own rule holds; longer strips are widened on
# purpose (gdino_spec.resized_size; test_hostile_side_files::test_strip_images_...).
@pytest.mark.parametrize("shape, size", [((120, 160), (96, 160)), ((333, 517), (800, 1333)), ((400, 90), (96, 160))])
def test_preprocess_is_bit_identical_to_the_package_transforms(shape, size) -> None:
    import groundingdino.datasets.transforms as T
    from PIL import Image

    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    img.reshape(-1, 3)[:256] = np.arange(256, dtype=np.uint8)[:, None]  # every value in every channel
    package = T.Compose([T.RandomResize([size[0]], max_size=size[1]), T.ToTensor(),
                         T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    expected, _ = package(Image.fromarray(img), None)
    got = preprocess(img, *size)
    assert got.dtype == expected.dtype and torch.equal(got, expected)


def test_the_text_encoder_the_config_file_names_gives_the_same_model_id(tiny_gdino, detector) -> None:
    again = create_detector(tiny_gdino.detector_config(text_encoder=None))  # named by the config file
    assert again.model_id == detector.model_id == model_id_for(tiny_gdino.detector_config())
    assert again.device == "cpu"


def test_prepare_is_the_package_preprocessing_at_the_config_file_size(detector) -> None:
    image = scene(10, 120, 160)
    assert detector.input_size == (96, 160)  # from the tiny config file
    assert torch.equal(detector.prepare(image).data, preprocess(image, *detector.input_size))


def test_missing_weights_say_what_to_do(tiny_gdino, tmp_path: Path) -> None:
    missing = tmp_path / "groundingdino_swint_ogc.pth"
    with pytest.raises(DetectorUnavailable) as err:
        create_detector(tiny_gdino.detector_config(weights=str(missing)))
    msg = str(err.value)
    assert str(missing) in msg and "autolabel-gui weights download" in msg and "--text-encoder" in msg


@pytest.mark.parametrize(
    "content, reason",
    [(b"<html>404 Not Found</html>", "not a readable PyTorch checkpoint"), (None, "weights missing")],
)
def test_wrong_checkpoint_is_named(tiny_gdino, tmp_path: Path, content, reason) -> None:
    bad = tmp_path / "model.pth"
    if content is None:
        torch.save({"model": {"layer.weight": torch.zeros(2)}}, bad)
    else:
        bad.write_bytes(content)
    with pytest.raises(DetectorUnavailable, match=reason) as err:
        create_detector(tiny_gdino.detector_config(weights=str(bad)))
    assert str(bad) in str(err.value)


def test_missing_text_encoder_is_named(tiny_gdino, tmp_path: Path) -> None:
    folder = tmp_path / "no-bert-here"
    with pytest.raises(DetectorUnavailable) as err:
        create_detector(tiny_gdino.detector_config(text_encoder=str(folder)))
    assert str(folder) in str(err.value) and "--text-encoder" in str(err.value)


def test_unreachable_default_text_encoder_is_explained(tiny_gdino) -> None:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("bert-base-uncased", "config.json"), str):
        pytest.skip("bert-base-uncased is in the local Hugging Face cache")
    with pytest.raises(DetectorUnavailable, match="bert-base-uncased.*Hugging Face"):
        create_detector(tiny_gdino.detector_config(text_encoder="bert-base-uncased"))


def test_missing_config_is_named(tiny_gdino, tmp_path: Path) -> None:
    cfg = tmp_path / "nope.py"
    with pytest.raises(DetectorUnavailable, match="config not found") as err:
        create_detector(tiny_gdino.detector_config(config=str(cfg)))
    assert str(cfg) in str(err.value)
