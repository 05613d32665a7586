"""YOLO, COCO and VOC export: layouts, boxes re-read by other tools, bytes, refusals."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
import yaml
from autolabel_gui.cli import main
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats.existing import load_existing_labels
from autolabel_gui.formats.export import ExportCancelled, export_dataset

from tests.fixtures.datasets import CLASSES, LabelledFolder, VocObject, voc_xml

# sub/a/img.jpg and sub/b/img.jpg must not collide once flattened.
FLAT = {"cat1.jpg": "cat1", "sub/a/img.jpg": "sub__a__img", "sub/b/img.jpg": "sub__b__img",
        "empty.png": "empty", "rot.jpg": "rot"}
SUFFIX = {"empty.png": ".png"}


def _expected(folder: LabelledFolder) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    """Flat stem -> sorted (class, continuous xyxy) of every verified image."""
    return {FLAT[rel]: sorted((o.label, o.xyxy) for o in im.objects) for rel, im in folder.verified().items()}


def _export(folder: LabelledFolder, fmt: str, out: Path, *extra: str) -> int:
    return main(["export", str(folder.root), "--format", fmt, "--out", str(out), *extra])


def _assert_boxes_close(got: dict, expected: dict, tol: float = 1.0) -> None:
    assert set(got) == set(expected)
    for stem, boxes in expected.items():
        found = sorted(got[stem])
        assert [label for label, _ in found] == [label for label, _ in boxes], stem
        for (_, a), (_, b) in zip(found, boxes):
            assert np.allclose(a, b, atol=tol), (stem, a, b)


def _assert_same_bytes(folder: LabelledFolder, images_dir: Path) -> None:
    for rel in folder.verified():
        name = FLAT[rel] + SUFFIX.get(rel, ".jpg")
        assert (images_dir / name).read_bytes() == (folder.root / rel).read_bytes(), rel


def test_yolo_layout_bytes_and_boxes_reimported_two_ways(labelled_folder: LabelledFolder, tmp_path: Path,
                                                          capsys) -> None:
    out = tmp_path / "yolo"
    assert _export(labelled_folder, "yolo", out) == 0
    assert "exported 5 verified images (5 boxes, 1 without objects)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["data.yaml", "images", "labels"]
    assert {p.stem for p in (out / "labels").iterdir()} == set(FLAT.values())
    assert (out / "labels" / "empty.txt").read_text() == ""
    _assert_same_bytes(labelled_folder, out / "images")
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(CLASSES)) and data["nc"] == 2
    assert (data["train"], data["val"]) == ("images", "images")

    ds = sv.DetectionDataset.from_yolo(str(out / "images"), str(out / "labels"), str(out / "data.yaml"))
    got = {Path(p).stem: [(ds.classes[c], tuple(xyxy)) for xyxy, c in zip(d.xyxy, d.class_id)]
           for p, d in ds.annotations.items()}
    _assert_boxes_close(got, _expected(labelled_folder))

    folder = ImageFolder(out / "images")
    ours = {Path(rel).stem: [(b.label, b.xyxy) for b in load_existing_labels(folder, rel, []).boxes]
            for rel in folder.images}
    _assert_boxes_close(ours, _expected(labelled_folder))


def test_coco_loads_in_pycocotools_with_the_voc_boxes(labelled_folder: LabelledFolder, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    out = tmp_path / "coco"
    assert _export(labelled_folder, "coco", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["annotations.json", "images"]
    _assert_same_bytes(labelled_folder, out / "images")
    api = COCO(str(out / "annotations.json"))
    assert [api.cats[i]["name"] for i in sorted(api.cats)] == CLASSES
    assert len(api.imgs) == 5 and len(api.anns) == 5
    by_stem = {Path(im["file_name"]).stem: im for im in api.imgs.values()}
    got = {}
    for rel, im in labelled_folder.verified().items():
        entry = by_stem[FLAT[rel]]
        assert (entry["width"], entry["height"]) == (im.width, im.height), rel  # rot.jpg: EXIF-oriented
        anns = api.loadAnns(api.getAnnIds(imgIds=[entry["id"]]))
        got[FLAT[rel]] = [(api.cats[a["category_id"]]["name"],
                           (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]))
                          for a in anns]
    assert got["empty"] == []
    _assert_boxes_close(got, _expected(labelled_folder), tol=1e-6)

    folder = ImageFolder(out / "images")  # annotations.json one level up is found by existing.py
    ours = {Path(rel).stem: [(b.label, b.xyxy) for b in load_existing_labels(folder, rel, []).boxes]
            for rel in folder.images}
    _assert_boxes_close(ours, _expected(labelled_folder), tol=1e-6)


def test_voc_reimports_in_supervision_and_keeps_flags(labelled_folder: LabelledFolder, tmp_path: Path) -> None:
    out = tmp_path / "voc"
    assert _export(labelled_folder, "voc", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["Annotations", "ImageSets", "JPEGImages", "labelmap.txt"]
    _assert_same_bytes(labelled_folder, out / "JPEGImages")
    ids = (out / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    assert sorted(ids) == sorted(FLAT.values())
    assert "cat:" in (out / "labelmap.txt").read_text() and "dog:" in (out / "labelmap.txt").read_text()

    ds = sv.DetectionDataset.from_pascal_voc(str(out / "JPEGImages"), str(out / "Annotations"))
    index = {name: i for i, name in enumerate(ds.classes)}
    names = {i: n for n, i in index.items()}
    got = {Path(p).stem: [(names[c], tuple(xyxy)) for xyxy, c in zip(d.xyxy, d.class_id)]
           for p, d in ds.annotations.items()}
    _assert_boxes_close(got, _expected(labelled_folder), tol=1e-6)

    root = ET.parse(out / "Annotations" / "cat1.xml").getroot()
    assert root.get("verified") == "yes" and root.findtext("filename") == "cat1.jpg"
    assert [o.findtext("difficult") for o in root.iter("object")] == ["0", "1"]


def test_voc_is_readable_by_torchvision_vocdetection(labelled_folder: LabelledFolder, tmp_path: Path,
                                                     capsys) -> None:
    """torchvision wants root/VOCdevkit/VOC2012 and '.jpg' images, and ignores EXIF orientation."""
    from PIL import ImageOps
    from torchvision.datasets import VOCDetection

    out = tmp_path / "VOCdevkit" / "VOC2012"
    assert _export(labelled_folder, "voc", out) == 0
    assert "1 images carry an EXIF orientation (rot.jpg)" in capsys.readouterr().err
    ds = VOCDetection(str(tmp_path), year="2012", image_set="trainval")
    loaded = set()
    for i, path in enumerate(ds.images):
        if Path(path).stem == "empty":  # a PNG: torchvision hard-codes .jpg (ADR 0007)
            continue
        image, target = ds[i]
        size = target["annotation"]["size"]
        assert ImageOps.exif_transpose(image).size == (int(size["width"]), int(size["height"]))
        loaded.add(Path(path).stem)
    assert loaded == set(FLAT.values()) - {"empty"}


def test_all_includes_unverified_and_classes_file_sets_the_order(labelled_folder: LabelledFolder,
                                                                 tmp_path: Path) -> None:
    classes = tmp_path / "classes.txt"
    classes.write_text("# order for the trainer\ndog\ncat\nbird\n")
    out = tmp_path / "yolo"
    assert _export(labelled_folder, "yolo", out, "--all", "--classes", str(classes)) == 0
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "dog", 1: "cat", 2: "bird"}
    assert {p.stem for p in (out / "labels").iterdir()} == set(FLAT.values()) | {"unverified"}
    # cat1: cat (id 1 now) first, then dog (id 0)
    assert [ln.split()[0] for ln in (out / "labels" / "cat1.txt").read_text().splitlines()] == ["1", "0"]


def test_refuses_a_non_empty_output_folder_and_leaves_it_alone(labelled_folder: LabelledFolder, tmp_path: Path,
                                                               capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _export(labelled_folder, "coco", out) == 1
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_empty_output_folder_is_used(labelled_folder: LabelledFolder, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert _export(labelled_folder, "yolo", out) == 0
    assert (out / "data.yaml").is_file()


def test_unknown_class_fails_naming_file_and_class_and_writes_nothing(labelled_folder: LabelledFolder,
                                                                      tmp_path: Path, capsys) -> None:
    bad = labelled_folder.root / "sub" / "b" / "img.xml"
    bad.write_text(voc_xml("img.jpg", 40, 50, [VocObject("bird", 1, 1, 5, 5)], True))
    out = tmp_path / "yolo"
    assert _export(labelled_folder, "yolo", out) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "'bird'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_output_inside_the_image_folder_is_refused(labelled_folder: LabelledFolder, capsys) -> None:
    assert _export(labelled_folder, "yolo", labelled_folder.root / "export") == 1
    assert "inside the image folder" in capsys.readouterr().err
    assert not (labelled_folder.root / "export").exists()


def test_unreadable_voc_is_skipped_with_a_warning(labelled_folder: LabelledFolder, tmp_path: Path, capsys) -> None:
    (labelled_folder.root / "cat1.xml").write_text("<annotation><size>")
    assert _export(labelled_folder, "coco", tmp_path / "coco") == 0
    err = capsys.readouterr().err
    assert "cat1.jpg: skipped" in err and "cat1.xml" in err
    names = {im["file_name"] for im in json.loads((tmp_path / "coco" / "annotations.json").read_text())["images"]}
    assert "cat1.jpg" not in names and len(names) == 4


def test_cancel_leaves_nothing(labelled_folder: LabelledFolder, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    out = tmp_path / "voc"
    with pytest.raises(ExportCancelled):
        export_dataset(ImageFolder(labelled_folder.root), "voc", out, CLASSES,
                       progress=lambda *call: calls.append(call),
                       should_stop=lambda: len(calls) >= 4)
    assert calls == [("reading", 0, 8), ("reading", 8, 8), ("writing", 0, 5), ("writing", 1, 5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_nothing_verified_says_so_and_writes_nothing(tmp_path: Path, capsys) -> None:
    from tests.fixtures.datasets import LAYOUT, make_labelled_folder

    folder = make_labelled_folder(tmp_path / "data", tuple(im for im in LAYOUT if not im.verified))
    assert _export(folder, "yolo", tmp_path / "y") == 1
    assert "no verified images" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "no dataset skeleton, no staging folder"


def test_progress_reaches_the_total(labelled_folder: LabelledFolder, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    result = export_dataset(ImageFolder(labelled_folder.root), "yolo", tmp_path / "y", CLASSES,
                            progress=lambda *call: calls.append(call))
    assert calls[-1] == ("writing", 5, 5) and result.images == 5 and result.negatives == 1
