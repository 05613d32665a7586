"""Labels a folder already has (VOC, YOLO, COCO) come back as accepted pixel boxes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from autolabel_gui.core.boxes import BoxState
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats import coco
from autolabel_gui.formats.existing import load_existing_labels
from autolabel_gui.formats.voc import AnnotationError

from tests.fixtures.datasets import VocObject, voc_xml, write_image


def _xyxy(labels):
    return [(b.label, round(b.x0, 3), round(b.y0, 3), round(b.x1, 3), round(b.y1, 3)) for b in labels.boxes]


def test_voc_wins_and_keeps_verified(tmp_path: Path) -> None:
    write_image(tmp_path / "x.jpg", 40, 30, 1)
    (tmp_path / "x.xml").write_text(voc_xml("x.jpg", 40, 30, [VocObject("dog", 2, 3, 10, 12)], True))
    (tmp_path / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    labels = load_existing_labels(ImageFolder(tmp_path), "x.jpg", ["cat", "dog"])
    assert labels is not None and labels.verified
    assert _xyxy(labels) == [("dog", 1.0, 2.0, 10.0, 12.0)]
    assert all(b.state is BoxState.ACCEPTED for b in labels.boxes)


def test_yolo_beside_image_with_classes_txt(tmp_path: Path) -> None:
    write_image(tmp_path / "x.jpg", 200, 100, 1)
    (tmp_path / "classes.txt").write_text("person\ncar\n")
    (tmp_path / "x.txt").write_text("1 0.5 0.5 0.2 0.4\n0 0.1 0.1 0.1 0.1\n\n")
    labels = load_existing_labels(ImageFolder(tmp_path), "x.jpg", ["ignored"])
    assert labels is not None and not labels.verified
    assert (labels.width, labels.height, labels.filename) == (200, 100, "x.jpg")
    assert _xyxy(labels) == [("car", 80.0, 30.0, 120.0, 70.0), ("person", 10.0, 5.0, 30.0, 15.0)]
    assert all(b.state is BoxState.ACCEPTED for b in labels.boxes)


def test_yolo_ultralytics_layout_opened_at_images_train(tmp_path: Path) -> None:
    """dataset/images/train opened; labels in dataset/labels/train, names in dataset/data.yaml."""
    data = tmp_path / "dataset"
    write_image(data / "images" / "train" / "a.png", 100, 50, 2)
    (data / "labels" / "train").mkdir(parents=True)
    (data / "labels" / "train" / "a.txt").write_text("2 0.25 0.5 0.5 1.0\n")
    (data / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/train\nnames:\n  0: a\n  1: b\n  2: truck\n")
    labels = load_existing_labels(ImageFolder(data / "images" / "train"), "a.png", [])
    assert labels is not None
    assert _xyxy(labels) == [("truck", 0.0, 0.0, 50.0, 50.0)]


def test_yolo_without_class_file_uses_given_names_and_polygons_become_boxes(tmp_path: Path) -> None:
    write_image(tmp_path / "x.jpg", 100, 100, 1)
    (tmp_path / "x.txt").write_text("1 0.1 0.2 0.5 0.2 0.3 0.6\n")
    labels = load_existing_labels(ImageFolder(tmp_path), "x.jpg", ["cat", "dog"])
    assert _xyxy(labels) == [("dog", 10.0, 20.0, 50.0, 60.0)]


def test_empty_yolo_file_is_a_reviewed_negative(tmp_path: Path) -> None:
    write_image(tmp_path / "x.jpg", 10, 10, 1)
    (tmp_path / "x.txt").write_text("")
    labels = load_existing_labels(ImageFolder(tmp_path), "x.jpg", ["cat"])
    assert labels is not None and labels.boxes == []


@pytest.mark.parametrize("text, reason", [
    ("5 0.5 0.5 0.1 0.1\n", "class id 5"),
    ("0 0.5 0.5\n", "line 1"),
    ("0 0.5 0.5 0.1 0.1\ncat 0.5 0.5 0.1 0.1\n", "line 2"),
    ("0 0.5 nan 0.1 0.1\n", "finite"),
])
def test_bad_yolo_file_raises_naming_it(tmp_path: Path, text: str, reason: str) -> None:
    write_image(tmp_path / "x.jpg", 10, 10, 1)
    (tmp_path / "x.txt").write_text(text)
    with pytest.raises(AnnotationError) as err:
        load_existing_labels(ImageFolder(tmp_path), "x.jpg", ["cat"])
    assert str(tmp_path / "x.txt") in str(err.value) and reason in str(err.value)


def _coco(path: Path, images: list[dict], annotations: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}]}))


def test_coco_roboflow_file_by_basename_and_negative(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg", 60, 40, 1)
    write_image(tmp_path / "b.jpg", 60, 40, 2)
    write_image(tmp_path / "c.jpg", 60, 40, 3)
    _coco(tmp_path / "_annotations.coco.json",
          [{"id": 1, "file_name": "a.jpg", "width": 60, "height": 40},
           {"id": 2, "file_name": "b.jpg", "width": 60, "height": 40}],
          [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10.5, 5, 20, 10]}])
    folder = ImageFolder(tmp_path)
    a = load_existing_labels(folder, "a.jpg", [])
    assert _xyxy(a) == [("dog", 10.5, 5.0, 30.5, 15.0)] and not a.verified
    assert a.boxes[0].state is BoxState.ACCEPTED
    assert load_existing_labels(folder, "b.jpg", []).boxes == []
    assert load_existing_labels(folder, "c.jpg", []) is None


def test_coco_instances_file_matches_relative_path_not_another_folders_namesake(tmp_path: Path) -> None:
    write_image(tmp_path / "x" / "img.jpg", 50, 50, 1)
    write_image(tmp_path / "y" / "img.jpg", 50, 50, 2)
    _coco(tmp_path / "annotations" / "instances_default.json",
          [{"id": 1, "file_name": "x/img.jpg", "width": 50, "height": 50},
           {"id": 2, "file_name": "y/img.jpg", "width": 50, "height": 50}],
          [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
           {"id": 2, "image_id": 2, "category_id": 7, "bbox": [5, 6, 7, 8]}])
    folder = ImageFolder(tmp_path)
    assert _xyxy(load_existing_labels(folder, "x/img.jpg", [])) == [("cat", 1.0, 2.0, 4.0, 6.0)]
    assert _xyxy(load_existing_labels(folder, "y/img.jpg", [])) == [("dog", 5.0, 6.0, 12.0, 14.0)]


def test_coco_index_is_parsed_once_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    _coco(path, [{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}], [])
    first = coco.load_index(path)
    assert coco.load_index(path) is first
    _coco(path, [{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9},
                 {"id": 2, "file_name": "b.jpg", "width": 9, "height": 9}], [])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = coco.load_index(path)
    assert second is not first and set(second.by_name) == {"a.jpg", "b.jpg"}


@pytest.mark.parametrize("content, reason", [
    ("{not json", "JSON"),
    ('{"annotations": []}', "images"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [], '
     '"annotations": [{"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1]}]}', "category_id 2"),
])
def test_bad_coco_file_raises_naming_it(tmp_path: Path, content: str, reason: str) -> None:
    write_image(tmp_path / "a.jpg", 10, 10, 1)
    (tmp_path / "annotations.json").write_text(content)
    with pytest.raises(AnnotationError) as err:
        load_existing_labels(ImageFolder(tmp_path), "a.jpg", [])
    assert str(tmp_path / "annotations.json") in str(err.value) and reason in str(err.value)


def test_nothing_found_is_none(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg", 10, 10, 1)
    (tmp_path / "notes.txt").write_text("hello")
    assert load_existing_labels(ImageFolder(tmp_path), "a.jpg", ["cat"]) is None


def test_a_yolo_file_is_not_shown_on_two_images_that_share_its_stem(tmp_path: Path, caplog) -> None:
    """``a.jpg`` and ``a.png`` both name ``a.txt``: its boxes go to neither, with a warning."""
    root = tmp_path / "f"
    write_image(root / "a.jpg", 64, 48, seed=1)
    write_image(root / "a.png", 100, 80, seed=2)
    write_image(root / "b.png", 64, 48, seed=3)
    (root / "classes.txt").write_text("cat\ndog\n")
    (root / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "b.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    folder = ImageFolder(root)
    on_jpg = load_existing_labels(folder, "a.jpg", ["cat", "dog"])
    on_png = load_existing_labels(folder, "a.png", ["cat", "dog"])
    assert not (on_jpg and on_jpg.boxes and on_png and on_png.boxes), "one YOLO file gave its boxes to two images"
    assert on_jpg is None and on_png is None
    assert "a.txt: its boxes belong to one of a.jpg, a.png; not used" in caplog.text
    on_b = load_existing_labels(folder, "b.png", ["cat", "dog"])  # a stem of its own: still used
    assert on_b is not None and [b.label for b in on_b.boxes] == ["dog"]
