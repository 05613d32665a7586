"""The real groundingdino code path on the tiny random checkpoint (tests/fixtures/tiny_gdino.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from autolabel_gui.core.boxes import BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import DetectorUnavailable, Prepared
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.grounding_dino import GroundingDinoDetector, preprocess
from autolabel_gui.detection.ids import SCORE_FLOOR, model_id_for
from autolabel_gui.detection.pipeline import DetectionPipeline

from tests.fixtures.pipeline import SimpleFolder

pytestmark = pytest.mark.model

ONTOLOGY = Ontology.from_names(["person", "dog", "vehicle"], {"vehicle": "car . truck . bus"})
FLOOR = 0.3


def _image(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = rng.integers(0, 255, 3)
    for _ in range(6):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        img[y : y + rng.integers(8, height // 2), x : x + rng.integers(8, width // 2)] = rng.integers(0, 255, 3)
    return img


@pytest.fixture(scope="module")
def detector(tiny_gdino) -> GroundingDinoDetector:
    return create_detector(tiny_gdino.detector_config())


def _as_tuples(boxes):
    return [(b.label, b.score, *b.xyxy) for b in boxes]


def _assert_same(a, b, px: float = 1e-3, score: float = 1e-5) -> None:
    assert [x.label for x in a] == [x.label for x in b]
    for x, y in zip(a, b):
        assert x.score == pytest.approx(y.score, abs=score)
        assert np.allclose(x.xyxy, y.xyxy, atol=px)


def test_batch_of_two_sizes_gives_valid_proposals(detector) -> None:
    images = [_image(1, 120, 160), _image(2, 90, 200)]
    result = detector.detect(images, ONTOLOGY, FLOOR)
    assert len(result) == 2
    for img, boxes in zip(images, result):
        h, w = img.shape[:2]
        assert boxes, "the tiny model proposes boxes at this floor"
        for b in boxes:
            assert 0 <= b.x0 < b.x1 <= w and 0 <= b.y0 < b.y1 <= h
            assert b.label in ONTOLOGY.names
            assert FLOOR <= b.score <= 1.0
            assert b.state is BoxState.PROPOSED
        scores = [b.score for b in boxes]
        assert scores == sorted(scores, reverse=True)


def test_boxes_and_scores_are_the_package_own_predictions(detector) -> None:
    """Every box we return is a query of the package's own forward, scored by its class token."""
    img = _image(3, 120, 160)
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


def test_batched_equals_one_by_one(detector) -> None:
    images = [_image(4, 120, 160), _image(5, 120, 160), _image(6, 160, 100)]
    batched = detector.detect(images, ONTOLOGY, FLOOR)
    assert len(batched) == len(images)
    for img, boxes in zip(images, batched):
        assert boxes, "two empty lists would be equal: the tiny model proposes boxes at this floor"
        _assert_same(boxes, detector.detect([img], ONTOLOGY, FLOOR)[0])


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


def test_prepared_inputs_give_the_same_boxes_as_raw_arrays(tiny_gdino, detector) -> None:
    images = [_image(10, 120, 160), _image(11, 90, 200), _image(12, 120, 160)]
    prepared = detector.prepare(images[0])
    assert isinstance(prepared, Prepared) and (prepared.width, prepared.height) == (160, 120)
    assert torch.equal(prepared.data, preprocess(images[0], *detector.input_size))
    mixed = detector.detect([prepared, images[1], detector.prepare(images[2])], ONTOLOGY, FLOOR)
    assert mixed == detector.detect(images, ONTOLOGY, FLOOR)
    assert any(mixed)

    other = create_detector(tiny_gdino.detector_config(extra={"image_size": "128", "max_size": "200"}))
    with pytest.raises(ValueError, match="image #1: prepared as"):
        other.detect([images[0], prepared], ONTOLOGY, FLOOR)
    with pytest.raises(ValueError, match="expected an RGB uint8 array"):
        detector.prepare(np.zeros((50, 50), np.uint8))


def test_pipeline_prepares_on_decode_threads_with_the_same_results(tiny_gdino, detector, tmp_path, monkeypatch) -> None:
    from PIL import Image

    names = [f"im{i}.png" for i in range(6)]
    for i, name in enumerate(names):
        Image.fromarray(_image(20 + i, 120, 160) if i % 3 else _image(20 + i, 100, 180)).save(tmp_path / name)
    threads: list[int] = []
    real_prepare = detector.prepare

    def recording_prepare(image):
        threads.append(threading.get_ident())
        return real_prepare(image)

    monkeypatch.setattr(detector, "prepare", recording_prepare)
    pipeline = DetectionPipeline(SimpleFolder(tmp_path), ProposalCache(tmp_path / "c.sqlite"),
                                 tiny_gdino.detector_config(batch_size=2), ONTOLOGY, factory=lambda config: detector)
    pipeline.ensure_detector()
    results = list(pipeline.run(names))

    assert len(threads) == len(names) and threading.get_ident() not in threads
    raw = [load_image(tmp_path / n) for n in names]
    expected = [boxes for i in range(0, len(raw), 2) for boxes in detector.detect(raw[i:i + 2], ONTOLOGY, SCORE_FLOOR)]
    assert [r.boxes for r in results] == expected
    assert all(r.ok and not r.from_cache for r in results) and any(expected)


def test_floor_and_text_threshold_filter_scores(tiny_gdino, detector) -> None:
    img = _image(7, 120, 160)
    low = detector.detect([img], ONTOLOGY, 0.0)[0]
    high = detector.detect([img], ONTOLOGY, 0.6)[0]
    assert high and len(high) < len(low)
    assert all(b.score >= 0.6 for b in high)
    strict = create_detector(tiny_gdino.detector_config(text_threshold=0.6))
    assert strict.model_id != detector.model_id
    _assert_same(strict.detect([img], ONTOLOGY, 0.0)[0], high)


def test_sixty_classes_run_in_chunks_over_one_backbone_pass(detector) -> None:
    names = [f"class{i}" for i in range(60)]
    onto = Ontology.from_names(names, {n: f"{n} red big car with a cup" for n in names})
    assert len(detector.chunks(onto)) >= 2
    calls = {"backbone": 0, "transformer": 0}
    hooks = [
        detector.model.backbone.register_forward_hook(lambda *a: calls.__setitem__("backbone", calls["backbone"] + 1)),
        detector.model.transformer.register_forward_hook(
            lambda *a: calls.__setitem__("transformer", calls["transformer"] + 1)
        ),
    ]
    try:
        images = [_image(8, 120, 160), _image(9, 120, 160)]
        result = detector.detect(images, onto, FLOOR)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"backbone": 1, "transformer": len(detector.chunks(onto))}
    labels = {b.label for boxes in result for b in boxes}
    assert labels and labels <= set(names)
    assert all(b.score >= FLOOR for boxes in result for b in boxes)


def test_model_id_is_stable_and_tracks_what_changes_outputs(tiny_gdino, detector) -> None:
    again = create_detector(tiny_gdino.detector_config(text_encoder=None))  # named by the config file
    assert again.model_id == detector.model_id == model_id_for(tiny_gdino.detector_config())
    assert again.device == "cpu"
    assert detector.input_size == (96, 160)  # from the tiny config file
    bigger = create_detector(tiny_gdino.detector_config(extra={"image_size": "128", "max_size": "200"}))
    assert bigger.input_size == (128, 200)
    assert bigger.model_id != detector.model_id
    assert bigger.model_id == model_id_for(tiny_gdino.detector_config(extra={"image_size": "128", "max_size": "200"}))


def test_bad_image_is_named(detector) -> None:
    with pytest.raises(ValueError, match="image #1"):
        detector.detect([_image(1, 50, 50), np.zeros((50, 50), np.uint8)], ONTOLOGY, FLOOR)


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
