"""Issue 21, small defects of the headless commands seen in real use: each is an argparse error,
a message that says why, or output that does not depend on who runs the command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings, classes_from_arg
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.records import ImageKey

from tests.fixtures.datasets import VocObject, voc_xml, write_image
from tests.fixtures.hostile_side import run_cli


def _exit_code(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    return int(exited.value.code or 0)


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_gpus_per_worker_that_is_no_number_of_gpus_is_an_argparse_error(tmp_path: Path, value: str, capsys) -> None:
    assert _exit_code(["label", str(tmp_path), "--classes", "dog", "--ray", "local", "--gpus-per-worker", value]) == 2
    assert f"argument --gpus-per-worker: '{value}' is not a number of at least 0" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["label"], []], ids=["label", "window"])
def test_a_device_this_machine_lacks_is_refused_before_it_is_saved(tmp_path: Path, command: list[str],
                                                                 capsys, monkeypatch) -> None:
    from autolabel_gui.commands import gui

    def no_window(args) -> int:
        raise AssertionError("the window opened with --device cuda:99")

    monkeypatch.setattr(gui, "run", no_window)
    ProjectSettings(classes=["dog"]).save(tmp_path)
    before = ProjectSettings.path_for(tmp_path).read_bytes()
    assert _exit_code([*command, str(tmp_path), "--device", "cuda:99"]) == 2
    err = capsys.readouterr().err
    assert "argument --device: device 'cuda:99' asked for, but " in err, err
    assert ("CUDA is not available here" in err) or ("CUDA device(s)" in err)
    assert ProjectSettings.path_for(tmp_path).read_bytes() == before, "every later command would fail"


def test_classes_naming_an_existing_folder_is_refused_and_never_saved(tmp_path: Path, capsys,
                                                                       monkeypatch) -> None:
    photos = tmp_path / "photos"
    (photos / "dog").mkdir(parents=True)
    monkeypatch.chdir(photos)
    for value in (str(photos / "dog"), "dog"):
        assert main(["label", str(photos), "--classes", value]) == 2
        err = capsys.readouterr().err
        assert f"error: --classes {value}: {value} is a folder, not a class list" in err, err
        assert f"'{value},' for one class of that name" in err
    assert not ProjectSettings.path_for(photos).exists()
    assert main(["stats", str(photos), "--classes", "dog,"]) == 0  # the way to name that one class


def _voc(root: Path, stem: str, size: tuple[int, int], verified: bool = True) -> None:
    objects = (VocObject("cat", 2, 2, 20, 20),)
    (root / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", *size, objects, verified), encoding="utf-8")


def test_an_export_that_skips_every_image_says_why(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    for i, name in enumerate(["broken.jpg", "resized.jpg", "draft.jpg", "new.jpg"]):
        write_image(root / name, 40, 30, i)
    (root / "broken.xml").write_text("<annotation><object>", encoding="utf-8")
    _voc(root, "resized", (640, 480))
    _voc(root, "draft", (40, 30), verified=False)
    assert main(["export", str(root), "--format", "yolo", "--out", str(tmp_path / "out"), "--classes", "cat"]) == 1
    err = capsys.readouterr().err
    assert "warning: broken.jpg: skipped, " in err and "not valid XML" in err
    assert "warning: resized.jpg: skipped, its VOC file says 640x480 but the image is 40x30" in err
    assert (f"error: no verified images in {root} (of 4 images: 1 without a VOC file, 1 not verified, "
            "2 skipped, each said above)") in err
    assert not (tmp_path / "out").exists()


def test_stats_counts_the_same_whoever_runs_it(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"]):
        write_image(root / name, 40, 30, i)
    ProjectSettings(classes=["cat"]).save(root)
    with ProposalCache.for_folder(root) as cache:  # a colleague's model: a run id nobody here computes
        for name in ("a.jpg", "b.jpg"):
            cache.put(ImageKey.from_path(root, name), "run-of-a-colleague-s-gpu", [Box(1, 1, 9, 9, "cat", score=0.8)])
    assert main(["stats", str(root)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line.split()[-2] for line in out.splitlines() if "%" in line}
    assert rows["new"] == "1" and rows["proposals ready"] == "2", out


def test_coco_export_claims_no_licence_nobody_chose(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    write_image(root / "a.jpg", 40, 30, 0)
    _voc(root, "a", (40, 30))
    assert main(["export", str(root), "--format", "coco", "--out", str(tmp_path / "out"), "--classes", "cat"]) == 0
    data = json.loads((tmp_path / "out" / "annotations.json").read_text(encoding="utf-8"))
    assert data["licenses"] == []
    assert [im.get("license") for im in data["images"]] == [None]
    assert len(data["annotations"]) == 1


def test_export_progress_in_a_log_is_plain_lines(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i in range(3):
        write_image(root / f"{i}.jpg", 40, 30, i)
        _voc(root, str(i), (40, 30))
    r = run_cli(["export", str(root), "--format", "voc", "--out", str(tmp_path / "out"), "--classes", "cat"])
    assert r.returncode == 0, r.err
    assert "\r" not in r.err and "\x1b" not in r.err, repr(r.err)
    assert r.err.splitlines() == ["reading annotations: 3 of 3 img", "writing voc: 3 of 3 img"]


@pytest.mark.parametrize("value", ["/dev/null", "/dev/zero"])
def test_classes_naming_a_device_or_fifo_is_refused(value: str, tmp_path: Path) -> None:
    """A device is no class list (``label --classes /dev/null`` saved ``["/dev/null"]``)."""
    with pytest.raises(ValueError, match="not a regular file"):
        classes_from_arg(value)


def test_classes_naming_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "names"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        classes_from_arg(str(fifo))


@pytest.mark.parametrize("command", ["stats", "export"])
def test_stats_and_export_say_which_folder_settings_they_ignored(command: str, tmp_path: Path, capsys) -> None:
    """The settings notes reach every command, not the window and ``label`` alone."""
    folder = tmp_path / "photos"
    write_image(folder / "a.jpg", 40, 30, 0)
    path = ProjectSettings.path_for(folder)
    path.parent.mkdir()
    path.write_text(json.dumps({"classes": ["cat"], "box_threshold": 7, "batch_size": 100_000}), encoding="utf-8")
    extra = ["--format", "yolo", "--out", str(tmp_path / "out")] if command == "export" else []
    main([command, str(folder), *extra])
    err = capsys.readouterr().err
    assert "setting 'box_threshold' ignored" in err and "setting 'batch_size' ignored" in err, err


def test_a_folder_model_file_given_again_on_the_command_line_is_not_said_to_be_ignored(tmp_path: Path) -> None:
    """Seen under Xvfb: "setting 'weights' ignored … pass --weights FILE" printed with that very
    --weights on the command line. The note about a value the command line replaces goes."""
    from autolabel_gui.cli import parse_args

    folder = tmp_path / "photos"
    folder.mkdir()
    weights = tmp_path / "model.pth"
    weights.write_bytes(b"x")
    path = ProjectSettings.path_for(folder)
    path.parent.mkdir()
    path.write_text(json.dumps({"classes": ["cat"], "weights": str(weights), "box_threshold": 7}), encoding="utf-8")
    loaded = ProjectSettings.load(folder)
    assert any("setting 'weights' ignored" in n for n in loaded.notes)
    given = loaded.with_args(parse_args([str(folder), "--weights", str(weights)]))
    assert given.weights == str(weights)
    assert not any("setting 'weights' ignored" in n for n in given.notes)
    assert any("setting 'box_threshold' ignored" in n for n in given.notes), "the other notes stay"
