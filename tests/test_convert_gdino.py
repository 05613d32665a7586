"""``weights convert``: the tiny random original checkpoint, converted, gives the original backend's boxes."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from autolabel_gui.cli import main
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.convert_gdino import hf_config_kwargs, read_original_config, rename
from autolabel_gui.formats.voc import read_voc

pytestmark = pytest.mark.model

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
ONTOLOGY = Ontology.from_names(["person", "cat", "cup", "vehicle"], {"vehicle": "car . truck . bus"})


@pytest.fixture(scope="module")
def converted(tiny_gdino, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "hf"
    code = main(["weights", "convert", str(tiny_gdino.weights_path), "--config", str(tiny_gdino.config_path),
                 "--text-encoder", str(tiny_gdino.text_encoder_dir), "--out", str(out)])
    assert code == 0
    return out


def _assert_same(a, b) -> None:
    assert [x.label for x in a] == [x.label for x in b]
    for x, y in zip(a, b):
        assert abs(x.score - y.score) <= 1e-3
        assert np.abs(np.array(x.xyxy) - np.array(y.xyxy)).max() <= 1.0


def test_converted_checkpoint_gives_the_original_boxes_on_real_photos(tiny_gdino, converted) -> None:
    original = create_detector(tiny_gdino.detector_config())
    ours = create_detector(DetectorConfig(backend="transformers", weights=str(converted), device="cpu",
                                          precision="fp32"))
    assert ours.input_size == original.input_size  # carried from the original config into the folder
    photos = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".jpg", ".png"))
    assert len(photos) >= 3
    found = 0
    for photo in photos:
        image = load_image(photo)
        expected = original.detect([image], ONTOLOGY, 0.3)[0]
        _assert_same(ours.detect([image], ONTOLOGY, 0.3)[0], expected)
        found += len(expected)
    assert found


def test_converted_folder_labels_a_folder_like_the_original(tiny_gdino, converted, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.jpg", "rocket.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    common = ["--classes", "person,rocket", "--device", "cpu", "--precision", "fp32", "--no-progress",
              "--box-threshold", "0.3"]
    assert main(["label", str(folder), *common, "--weights", str(tiny_gdino.weights_path), "--config",
                 str(tiny_gdino.config_path), "--text-encoder", str(tiny_gdino.text_encoder_dir),
                 "--voc-dir", str(tmp_path / "a"), "--cache", str(tmp_path / "a.sqlite")]) == 0
    assert main(["label", str(folder), *common, "--backend", "transformers", "--weights", str(converted),
                 "--voc-dir", str(tmp_path / "b"), "--cache", str(tmp_path / "b.sqlite")]) == 0
    for name in ("astronaut", "rocket"):
        a, b = read_voc(tmp_path / "a" / f"{name}.xml"), read_voc(tmp_path / "b" / f"{name}.xml")
        assert (a.width, a.height) == (b.width, b.height) and a.boxes
        assert [x.label for x in a.boxes] == [x.label for x in b.boxes]
        for x, y in zip(a.boxes, b.boxes):
            assert np.abs(np.array(x.xyxy) - np.array(y.xyxy)).max() <= 1.0


def test_renames_cover_each_part_of_the_model() -> None:
    assert rename("backbone.0.norm1.weight") == "model.backbone.conv_encoder.model.hidden_states_norms.stage2.weight"
    assert rename("transformer.encoder.fusion_layers.3.attn.values_l_proj.bias") == (
        "model.encoder.layers.3.fusion_layer.attn.values_text_proj.bias")
    assert rename("transformer.decoder.layers.5.catext_norm.weight") == (
        "model.decoder.layers.5.encoder_attn_text_layer_norm.weight")
    assert rename("bert.embeddings.position_ids") is None


def test_config_is_derived_from_the_original_config(tmp_path) -> None:
    cfg = tmp_path / "swinb.py"
    cfg.write_text('backbone = "swin_B_384_22k"\nhidden_dim = 256\nnum_queries = 900\nenc_layers = 6\n'
                   'dec_layers = 6\ndim_feedforward = 2048\nimport os\nos.system("echo never run")\n')
    kwargs = hf_config_kwargs(read_original_config(cfg), {})
    assert kwargs["backbone_config"]["embed_dim"] == 128 and kwargs["backbone_config"]["window_size"] == 12
    assert kwargs["backbone_config"]["depths"] == [2, 2, 18, 2] and kwargs["num_queries"] == 900
    cfg.write_text('backbone = "resnet50"\n')
    with pytest.raises(ValueError, match="not a Swin variant"):
        hf_config_kwargs(read_original_config(cfg), {})


def test_convert_usage_errors_exit_1(tmp_path, capsys) -> None:
    code = main(["weights", "convert", str(tmp_path / "none.pth"), "--config", str(tmp_path / "c.py"),
                 "--text-encoder", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 1 and "none.pth: not found" in capsys.readouterr().err


def _convert(tiny_gdino, out: Path, text_encoder: Path | None = None) -> int:
    return main(["weights", "convert", str(tiny_gdino.weights_path), "--config", str(tiny_gdino.config_path),
                 "--text-encoder", str(text_encoder or tiny_gdino.text_encoder_dir), "--out", str(out)])


def test_a_conversion_that_fails_half_way_leaves_no_folder(tiny_gdino, tmp_path, capsys) -> None:
    """The model is saved before the tokenizer is read: a text encoder with no tokenizer files
    fails after the weights are written (issue 21: a half-written folder was left)."""
    encoder = tmp_path / "bert-without-vocab"
    shutil.copytree(tiny_gdino.text_encoder_dir, encoder)
    for path in encoder.iterdir():
        if path.name != "config.json" and "model" not in path.name:
            path.unlink()
    out = tmp_path / "hf"
    assert _convert(tiny_gdino, out, encoder) == 1
    assert "error: " in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert-without-vocab"], "no folder, no staging folder"


def test_the_converted_folder_gets_the_umasks_modes_and_never_mixes_into_a_folder(tiny_gdino, tmp_path,
                                                                                   capsys) -> None:
    out = tmp_path / "hf"
    old = os.umask(0o027)
    try:
        assert _convert(tiny_gdino, out) == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes["model.safetensors"] == 0o640, "safetensors alone would write it 0600"
    assert set(modes.values()) == {0o640}
    assert stat.S_IMODE(out.stat().st_mode) == 0o750

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert _convert(tiny_gdino, out) == 1
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]
