"""Links in a folder someone handed over (issue 21): a sub-folder or an annotation sub-folder
that leads out of the folder never makes a save, ``label`` or ``export`` write there, and an
image that is a link never puts a link (or someone's private photo) into a dataset."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.folder import ImageFolder, LeadsOutside
from autolabel_gui.formats.voc import read_voc, write_voc

from tests.fixtures.window import write_image

CLASSES = ["person", "dog"]


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) -> the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _labelimg_file(path: Path, image: str) -> None:
    """A file someone labelled with labelImg, in a folder that is not the one under review."""
    write_voc(path, ImageLabels(image, 200, 150, boxes=[Box(5, 5, 50, 50, "dog")], verified=True))


def test_a_sub_folder_link_out_of_the_folder_is_not_listed_and_never_written(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_image(elsewhere / "b.png")
    _labelimg_file(elsewhere / "b.xml", "b.png")
    before = _tree(elsewhere)
    root = tmp_path / "handed"
    write_image(root / "a.png")
    (root / "sub").symlink_to("../elsewhere")
    (root / "inside").symlink_to(root / "deeper", target_is_directory=True)
    write_image(root / "deeper" / "c.png", seed=2)

    folder = ImageFolder(root)
    assert folder.images == ["a.png", "deeper/c.png"], "a link that stays inside is still followed (once)"
    assert any(p.startswith("sub: folder skipped, it is a link that leads outside the folder") and
               str(elsewhere.resolve()) in p for p in folder.problems)

    # A window that still lists it (opened before the link was made) cannot save through it either.
    session = ReviewSession(folder, None, CLASSES, None, 0.35, user="alice")
    opened = session.open("sub/b.png")
    assert opened.state.read_only and "leads outside" in (opened.problem or "")
    with pytest.raises(LeadsOutside):
        session.voc.write("sub/b.png", ImageLabels("b.png", 200, 150, boxes=[]), None)
    assert _tree(elsewhere) == before


def test_an_annotation_sub_folder_link_out_is_reported_and_never_written(tmp_path: Path) -> None:
    anywhere = tmp_path / "any-dir"
    anywhere.mkdir()
    root = tmp_path / "handed"
    write_image(root / "sub" / "settings.png")
    write_image(root / "top.png", seed=1)
    (root / "ann").mkdir()
    (root / "ann" / "sub").symlink_to(anywhere)

    folder = ImageFolder(root, root / "ann")
    assert folder.images == ["sub/settings.png", "top.png"]
    assert any("ann/sub: leads outside the annotation folder" in p and "1 image(s)" in p for p in folder.problems)

    session = ReviewSession(folder, None, CLASSES, None, 0.35, user="alice")
    opened = session.open("sub/settings.png")
    assert opened.state.read_only and "leads outside" in (opened.problem or ""), "said at opening, not at Ctrl+S"
    session.open("top.png").state.add_box(Box(10, 10, 60, 60, "person", None, BoxState.ACCEPTED))
    assert session.save("top.png", verify=True).written
    assert read_voc(root / "ann" / "top.xml").verified, "the rest of the folder is saved as before"
    assert list(anywhere.iterdir()) == []


@pytest.mark.model
def test_label_voc_dir_never_writes_through_a_link_out(tmp_path: Path, tiny_gdino, capsys) -> None:
    anywhere = tmp_path / "any-dir"
    anywhere.mkdir()
    root = tmp_path / "photos"
    write_image(root / "sub" / "settings.png", size=(64, 48))
    write_image(root / "a.png", size=(64, 48), seed=1)
    ProjectSettings(extra={"image_size": "96", "max_size": "160"}).save(root)
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "sub").symlink_to(anywhere)

    rc = main(["label", str(root), "--voc-dir", str(voc), "--classes", "person,dog",
               "--weights", str(tiny_gdino.weights_path), "--config", str(tiny_gdino.config_path),
               "--text-encoder", str(tiny_gdino.text_encoder_dir), "--device", "cpu", "--precision", "fp32",
               "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert f"{voc / 'sub'}: leads outside the annotation folder" in err
    assert "no VOC file for sub/settings.png" in err
    assert "1 written" in out and "1 could not be written" in out
    assert (voc / "a.xml").is_file()
    assert list(anywhere.iterdir()) == []


def _verified(root: Path, rel: str) -> None:
    write_voc((root / rel).with_suffix(".xml"),
              ImageLabels(Path(rel).name, 200, 150, boxes=[Box(5, 5, 50, 50, "dog")], verified=True))


def _links_in(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_symlink()]


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco"])
def test_export_puts_real_files_only_and_says_which_links_it_skipped(tmp_path: Path, fmt: str, capsys) -> None:
    private = tmp_path / "home" / "private.png"
    write_image(private, seed=7)
    root = tmp_path / "handed"
    write_image(root / "a.png")
    write_image(root / ".originals" / "c.png", seed=3)
    (root / "b.png").symlink_to(private)  # absolute: the user's own photo
    (root / "c.png").symlink_to(".originals/c.png")  # relative: would dangle inside the dataset
    for rel in ("a.png", "b.png", "c.png"):
        _verified(root, rel)
    ProjectSettings(classes=CLASSES).save(root)
    out = tmp_path / "dataset"

    assert main(["export", str(root), "--format", fmt, "--out", str(out)]) == 0
    std = capsys.readouterr()
    assert f"b.png: skipped, the image is a link that leads outside the folder (to {private.resolve()})" in std.err
    assert "exported 2 verified images" in std.out and "; 1 skipped" in std.out
    assert _links_in(out) == []
    exported = {p.name: p.read_bytes() for p in out.rglob("*.png")}
    assert exported == {"a.png": (root / "a.png").read_bytes(), "c.png": (root / ".originals" / "c.png").read_bytes()}


def test_an_image_link_broken_after_listing_is_skipped_and_said(tmp_path: Path) -> None:
    from autolabel_gui.formats.export import export_dataset

    root = tmp_path / "handed"
    write_image(root / "a.png")
    write_image(root / ".originals" / "d.png", seed=4)
    (root / "d.png").symlink_to(".originals/d.png")
    for rel in ("a.png", "d.png"):
        _verified(root, rel)
    folder = ImageFolder(root)
    assert folder.images == ["a.png", "d.png"]
    (root / ".originals" / "d.png").unlink()

    result = export_dataset(folder, "yolo", tmp_path / "dataset", CLASSES)
    assert result.images == 1 and result.skipped == ["d.png: skipped, the image is a broken link"]
    assert _links_in(tmp_path / "dataset") == []


def test_an_export_with_every_image_skipped_says_why(tmp_path: Path, capsys) -> None:
    private = tmp_path / "home" / "private.png"
    write_image(private)
    root = tmp_path / "handed"
    root.mkdir()
    (root / "b.png").symlink_to(private)
    _verified(root, "b.png")
    ProjectSettings(classes=CLASSES).save(root)

    assert main(["export", str(root), "--format", "yolo", "--out", str(tmp_path / "dataset")]) == 1
    err = capsys.readouterr().err
    assert "warning: b.png: skipped, the image is a link that leads outside the folder" in err
    assert "(of 1 images: 1 skipped, each said above)" in err and not (tmp_path / "dataset").exists()
