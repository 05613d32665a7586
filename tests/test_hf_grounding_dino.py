"""What only the ``transformers`` backend does, on tiny random GD and MM-GD model folders (tests/fixtures/tiny_hf.py).

What every backend does is tests/test_backend_contract.py; here: the model class its config.json
names, transformers' own forward, the padded batch, the backbone run once for every chunk, the
folder as the model's identity, what a missing or broken folder says, and ``label`` end to end.
"""

from __future__ import annotations

import contextlib
import json
import shutil

import numpy as np
import pytest
import torch
from autolabel_gui.cli import main
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection import hf_grounding_dino
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector, spec_for
from autolabel_gui.detection.hf_grounding_dino import HfGroundingDinoDetector, pad_batch
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.image_input import preprocess_array
from autolabel_gui.formats.voc import read_voc
from PIL import Image

from tests.fixtures.backends import scene

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


def test_boxes_and_scores_are_the_model_own_predictions(detector) -> None:
    """Every box is a query of transformers' own forward (no backbone reuse), scored by its class token."""
    img = scene(3, 120, 160)
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


def test_reusing_the_backbone_output_changes_nothing(detector, monkeypatch) -> None:
    """The same boxes as a full forward per chunk (``_backbone_once`` off), for a prompt in several chunks."""
    names = [f"class{i}" for i in range(60)]
    onto = Ontology.from_names(names, {n: f"{n} red big car with a cup" for n in names})
    assert len(detector.chunks(onto)) >= 2
    images = [scene(8, 120, 160), scene(9, 120, 160)]
    result = detector.detect(images, onto, FLOOR)
    assert any(result)
    monkeypatch.setattr(hf_grounding_dino, "_backbone_once", lambda *a: contextlib.nullcontext())
    for ours, full in zip(result, detector.detect(images, onto, FLOOR)):
        _assert_same(ours, full)


def test_model_id_tracks_the_folder(tiny, detector, tmp_path) -> None:
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
        Image.fromarray(scene(30 + i, 120, 160)).save(folder / f"p{i}.png")
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
