"""Per-folder settings: one meaning of the annotation folder for the window, export and stats."""

from __future__ import annotations

import argparse
from pathlib import Path

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box, ImageLabels
from autolabel_gui.formats.voc import write_voc
from PIL import Image


def test_a_relative_annotation_folder_is_relative_to_the_image_folder(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    settings = ProjectSettings(annotations_dir="labels")
    assert settings.annotations_path(root) == root / "labels"
    assert ProjectSettings(annotations_dir=str(tmp_path / "x")).annotations_path(root) == tmp_path / "x"
    assert ProjectSettings().annotations_path(root) is None
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ProjectSettings(annotations_dir="~/voc").annotations_path(root) == tmp_path / "home" / "voc"


def test_annotations_typed_on_the_command_line_are_kept_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(annotations=Path("labels"))
    stored = ProjectSettings().with_args(args)
    assert stored.annotations_dir == str(tmp_path / "labels")
    assert stored.annotations_path(tmp_path / "elsewhere") == tmp_path / "labels"


def test_export_and_stats_find_a_relative_annotation_folder_from_any_directory(tmp_path, monkeypatch, capsys):
    root = tmp_path / "photos"
    root.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(root / "a.png")
    ProjectSettings(classes=["cat"], annotations_dir="labels").save(root)
    write_voc(root / "labels" / "a.xml", ImageLabels("a.png", 40, 30, boxes=[Box(2, 3, 20, 25, "cat")], verified=True))
    monkeypatch.chdir(tmp_path)  # "labels" here does not exist

    assert main(["stats", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines if line.startswith("verified")] == [["verified", "1", "100.0%"]]
    assert [line.split() for line in lines if line.startswith("cat ")] == [["cat", "1", "0", "1"]]
    assert main(["export", str(root), "--format", "yolo", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "labels" / "a.txt").read_text(encoding="utf-8").split()[0] == "0"
