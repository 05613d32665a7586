"""The ``transformers`` backend on tiny random GD and MM-GD model folders (tests/fixtures/tiny_hf.py)."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading

import numpy as np
import pytest
import torch
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection import hf_grounding_dino
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable, Prepared
from autolabel_gui.detection.catalogue import create_detector, spec_for
from autolabel_gui.detection.hf_grounding_dino import HfGroundingDinoDetector, pad_batch
from autolabel_gui.detection.ids import SCORE_FLOOR, model_id_for
from autolabel_gui.detection.image_input import preprocess_array
from autolabel_gui.detection.pipeline import DetectionPipeline
from autolabel_gui.formats.voc import read_voc
from PIL import Image

from tests.fixtures.pipeline import SimpleFolder
from tests.test_grounding_dino import _image

pytestmark = pytest.mark.model

ONTOLOGY = Ontology.from_names(["person", "dog", "vehicle"], {"vehicle": "car . truck . bus"})
FLOOR = 0.3


@pytest.fixture(scope="module", params=["tiny_hf", "tiny_mm_hf"])
def tiny(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def detector(tiny) -> HfGroundingDinoDetector:
    return create_detector(tiny.detector_config())


def _assert_same(a, b, px: float = 1e-3, score: float = 1e-5) -> None:
    assert [x.label for x in a] == [x.label for x in b]
    for x, y in zip(a, b):
        assert x.score == pytest.approx(y.score, abs=score)
        assert np.allclose(x.xyxy, y.xyxy, atol=px)


def test_both_model_classes_are_loaded_from_config_json(tiny, detector) -> None:
    model_type = json.loads((tiny.folder / "config.json").read_text())["model_type"]
    expected = {"grounding-dino": "GroundingDinoForObjectDetection",
                "mm-grounding-dino": "MMGroundingDinoForObjectDetection"}[model_type]
    assert type(detector.model).__name__ == expected
    assert detector.input_size == (96, 160)  # from the folder's preprocessor_config.json


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


def test_boxes_and_scores_are_the_model_own_predictions(detector) -> None:
    """Every box is a query of transformers' own forward (no backbone reuse), scored by its class token."""
    img = _image(3, 120, 160)
    ours = detector.detect([img], Ontology.from_names(["dog"]), FLOOR)[0]
    chunk = detector.chunks(Ontology.from_names(["dog"]))[0]
    assert chunk.caption == "dog ." and chunk.spans == ((1,),)  # [CLS] dog . [SEP]
    pixels = torch.from_numpy(preprocess_array(img, *detector.input_size))[None]
    with torch.no_grad():
        out = detector.model(pixel_values=pixels, input_ids=torch.tensor([chunk.input_ids]))
    scores = out.logits[0, :, 1].sigmoid()
    h, w = img.shape[:2]
    cx, cy, bw, bh = out.pred_boxes[0].unbind(1)
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
    images = [_image(4, 120, 160), _image(5, 120, 160), _image(6, 160, 100), _image(13, 90, 200)]
    batched = detector.detect(images, ONTOLOGY, FLOOR)
    for img, boxes in zip(images, batched):
        _assert_same(boxes, detector.detect([img], ONTOLOGY, FLOOR)[0], px=1e-2, score=1e-4)


def test_images_of_one_input_shape_share_one_forward_pass(detector) -> None:
    calls: list[int] = []
    hook = detector.model.model.backbone.conv_encoder.register_forward_hook(
        lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        detector.detect([_image(4, 120, 160), _image(5, 120, 160), _image(6, 160, 100)], ONTOLOGY, FLOOR)
    finally:
        hook.remove()
    assert sorted(calls) == [1, 2]


def test_pad_batch_masks_exactly_the_image_pixels() -> None:
    a, b = torch.ones(3, 4, 6), torch.full((3, 5, 2), 2.0)
    values, mask = pad_batch([a, b], "cpu")
    assert values.shape == (2, 3, 5, 6) and mask.shape == (2, 5, 6)
    assert int(mask[0].sum()) == 24 and int(mask[1].sum()) == 10
    assert torch.equal(values[0, :, :4, :6], a) and float(values[0, :, 4:].abs().sum()) == 0
    assert torch.equal(values[1, :, :5, :2], b) and float(values[1, :, :, 2:].abs().sum()) == 0


def test_preprocess_is_bit_identical_to_the_original_backend() -> None:
    from autolabel_gui.detection.grounding_dino import preprocess

    cases = [((120, 160), (96, 160)), ((333, 517), (800, 1333)), ((1000, 90), (96, 160)), ((96, 97), (96, 160))]
    for shape, size in cases:
        rng = np.random.default_rng(sum(shape))
        img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        img.reshape(-1, 3)[:256] = np.arange(256, dtype=np.uint8)[:, None]
        assert torch.equal(torch.from_numpy(preprocess_array(img, *size)), preprocess(img, *size))


def test_prepared_inputs_give_the_same_boxes_as_raw_arrays(tiny, detector) -> None:
    images = [_image(10, 120, 160), _image(11, 90, 200), _image(12, 120, 160)]
    prepared = detector.prepare(images[0])
    assert isinstance(prepared, Prepared) and (prepared.width, prepared.height) == (160, 120)
    mixed = detector.detect([prepared, images[1], detector.prepare(images[2])], ONTOLOGY, FLOOR)
    assert mixed == detector.detect(images, ONTOLOGY, FLOOR)
    assert any(mixed)
    other = create_detector(tiny.detector_config(extra={"image_size": "128", "max_size": "200"}))
    assert other.input_size == (128, 200) and other.model_id != detector.model_id
    with pytest.raises(ValueError, match="image #1: prepared as"):
        other.detect([images[0], prepared], ONTOLOGY, FLOOR)


def test_pipeline_prepares_on_decode_threads_with_the_same_results(tiny, detector, tmp_path, monkeypatch) -> None:
    names = [f"im{i}.png" for i in range(4)]
    for i, name in enumerate(names):
        Image.fromarray(_image(20 + i, 120, 160) if i % 2 else _image(20 + i, 100, 180)).save(tmp_path / name)
    threads: list[int] = []
    real_prepare = detector.prepare

    def recording_prepare(image):
        threads.append(threading.get_ident())
        return real_prepare(image)

    monkeypatch.setattr(detector, "prepare", recording_prepare)
    pipeline = DetectionPipeline(SimpleFolder(tmp_path), ProposalCache(tmp_path / "c.sqlite"),
                                 tiny.detector_config(batch_size=2), ONTOLOGY, factory=lambda config: detector)
    pipeline.ensure_detector()
    results = list(pipeline.run(names))
    assert len(threads) == len(names) and threading.get_ident() not in threads
    raw = [load_image(tmp_path / n) for n in names]
    expected = [boxes for i in range(0, len(raw), 2) for boxes in detector.detect(raw[i:i + 2], ONTOLOGY, SCORE_FLOOR)]
    assert [r.boxes for r in results] == expected
    assert all(r.ok and not r.from_cache for r in results) and any(expected)


def test_floor_and_text_threshold_filter_scores(tiny, detector) -> None:
    img = _image(7, 120, 160)
    low = detector.detect([img], ONTOLOGY, 0.0)[0]
    high = detector.detect([img], ONTOLOGY, 0.6)[0]
    assert high and len(high) < len(low)
    assert all(b.score >= 0.6 for b in high)
    strict = create_detector(tiny.detector_config(text_threshold=0.6))
    assert strict.model_id != detector.model_id
    _assert_same(strict.detect([img], ONTOLOGY, 0.0)[0], high)


def test_sixty_classes_run_in_chunks_over_one_backbone_pass(detector, monkeypatch) -> None:
    names = [f"class{i}" for i in range(60)]
    onto = Ontology.from_names(names, {n: f"{n} red big car with a cup" for n in names})
    chunks = detector.chunks(onto)
    assert len(chunks) >= 2 and all(len(c.input_ids) <= 256 for c in chunks)
    assert sorted(i for c in chunks for i in c.class_ids) == list(range(60))
    calls = {"backbone": 0, "forward": 0}
    hooks = [
        detector.model.model.backbone.conv_encoder.register_forward_hook(
            lambda *a: calls.__setitem__("backbone", calls["backbone"] + 1)),
        detector.model.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1)),
    ]
    images = [_image(8, 120, 160), _image(9, 120, 160)]
    try:
        result = detector.detect(images, onto, FLOOR)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"backbone": 1, "forward": len(chunks)}
    labels = {b.label for boxes in result for b in boxes}
    assert labels and labels <= set(names)
    # Reusing the backbone output changes nothing: the same as a full forward per chunk.
    monkeypatch.setattr(hf_grounding_dino, "_backbone_once", lambda *a: contextlib.nullcontext())
    for ours, full in zip(result, detector.detect(images, onto, FLOOR)):
        _assert_same(ours, full)


def test_model_id_is_stable_and_tracks_the_folder(tiny, detector, tmp_path) -> None:
    assert detector.model_id == model_id_for(tiny.detector_config())
    assert detector.model_id.startswith("transformers:")
    assert model_id_for(tiny.detector_config(device="cuda", batch_size=8)) == detector.model_id
    copy = shutil.copytree(tiny.folder, tmp_path / "copy")
    with open(copy / "model.safetensors", "ab") as f:
        f.write(b"\0")
    assert model_id_for(tiny.detector_config(weights=str(copy))) != detector.model_id


def test_missing_model_says_what_to_do(tmp_path) -> None:
    spec = spec_for("transformers")
    for config in (DetectorConfig(backend="transformers"),
                   DetectorConfig(backend="transformers", weights=str(tmp_path / "nope")),
                   DetectorConfig(backend="transformers", weights="someone/not-cached-model")):
        message = spec.missing(config)
        assert message and "--weights HF_DIR" in message and "autolabel-gui weights download --model" in message
        with pytest.raises(DetectorUnavailable):
            create_detector(config)
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    config = DetectorConfig(backend="transformers", weights=str(tmp_path / "bert"))
    assert "'bert' is not one this backend runs" in spec.missing(config)
    with pytest.raises(DetectorUnavailable, match="not one this backend runs"):
        create_detector(config)


def test_broken_weights_are_named(tiny, tmp_path) -> None:
    broken = shutil.copytree(tiny.folder, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"<html>404</html>")
    with pytest.raises(DetectorUnavailable, match="cannot load") as err:
        create_detector(DetectorConfig(backend="transformers", weights=str(broken), device="cpu"))
    assert str(broken) in str(err.value)


def test_label_command_runs_the_transformers_backend(tiny, tmp_path, capsys) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(_image(30 + i, 120, 160)).save(folder / f"p{i}.png")
    voc = tmp_path / "voc"
    code = main(["label", str(folder), "--classes", "person,dog", "--backend", "transformers",
                 "--weights", str(tiny.folder), "--device", "cpu", "--precision", "fp32", "--batch-size", "2",
                 "--box-threshold", "0.3", "--voc-dir", str(voc), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    written = sorted(voc.glob("*.xml"))
    assert [p.stem for p in written] == ["p0", "p1", "p2"]
    labels = [read_voc(p) for p in written]
    assert any(lab.boxes for lab in labels)
    assert all(b.label in ("person", "dog") and 0 <= b.x0 < b.x1 <= 160 for lab in labels for b in lab.boxes)
    assert json.loads((folder / ".autolabel" / "project.json").read_text())["backend"] == "transformers"
