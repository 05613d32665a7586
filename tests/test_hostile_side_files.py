"""Issue 10: the files around the images are untrusted. A shared folder can never run code, hang,
exhaust memory, crash a run or put one image's labels on another; reading commands never write
into it. Fixtures: tests/fixtures/hostile_side.py (child processes bounded in time and memory).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from autolabel_gui.app.project import ProjectSettings, classes_from_arg
from autolabel_gui.cli import main, parse_args
from autolabel_gui.core import images as images_mod
from autolabel_gui.core.atomic import atomic_write_bytes
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, load_image
from autolabel_gui.core.safe_read import UnsafeFileError, read_limited
from autolabel_gui.formats.existing import load_existing_labels
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.fixtures.datasets import VocObject, write_image
from tests.fixtures.hostile import changed, child_sees_permissions, permission_bits_bite, snapshot
from tests.fixtures.hostile_side import (
    BILLION_LAUGHS_YAML,
    EVIL_CONFIG,
    MODEL_MEMORY_LIMIT,
    build_side_folder,
    run_cli,
    run_python,
    verified_voc,
)

pytestmark = pytest.mark.timeout(120)


def _in_process(capsys, args: list[str]):
    """A command run in this process, without an interpreter and torch to start: same ``RunResult``.

    For commands whose inputs cannot hang or exhaust memory; ``run_cli`` bounds the others."""
    from tests.fixtures.hostile_side import RunResult

    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    return RunResult(code, captured.out, captured.err)


# -- 1. settings never cause code to run ------------------------------------------------------

def _evil_folder(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "shared"
    write_image(root / "a.jpg", 40, 30, 0)
    marker = tmp_path / "MARKER"
    (root / "evil.py").write_text(EVIL_CONFIG.format(marker=str(marker)), encoding="utf-8")
    (root / ".autolabel").mkdir()
    (root / ".autolabel/project.json").write_text(json.dumps(
        {"classes": ["cat"], "config": str(root / "evil.py"), "weights": "/dev/zero",
         "text_encoder": str(root / "enc"), "annotations_dir": "/etc"}), encoding="utf-8")
    return root, marker


def test_model_files_named_by_a_folder_are_ignored_with_a_reason(tmp_path: Path) -> None:
    root, _ = _evil_folder(tmp_path)
    s = ProjectSettings.load(root)
    assert (s.classes, s.config, s.weights, s.text_encoder, s.annotations_dir) == (["cat"], None, None, None, None)
    assert len(s.notes) == 4
    assert any("'config' ignored" in n and "--config" in n and "you have not chosen" in n for n in s.notes)
    assert any("'annotations_dir' ignored" in n and "outside the image folder" in n for n in s.notes)


def test_a_model_file_the_user_chose_outside_the_folder_is_used_from_its_settings(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    mine = tmp_path / "models" / "my.pth"
    mine.parent.mkdir()
    mine.write_bytes(b"x")
    args = parse_args([str(root), "--weights", str(mine), "--classes", "cat"])
    ProjectSettings.load(root).with_args(args).save(root)  # the user passed it: remembered
    again = ProjectSettings.load(root)
    assert again.weights == str(mine) and again.notes == []
    inside = root / "w.pth"
    inside.write_bytes(b"x")
    ProjectSettings.load(root).with_args(parse_args([str(root), "--weights", str(inside)])).save(root)
    reloaded = ProjectSettings.load(root)
    assert reloaded.weights is None and "inside the image folder" in reloaded.notes[0]


def test_a_model_config_is_never_executed_even_when_the_user_names_it(tmp_path: Path) -> None:
    from autolabel_gui.detection.gdino_spec import ConfigRefused, config_literals, package_config_path

    root, marker = _evil_folder(tmp_path)
    with pytest.raises(ConfigRefused, match=r"evil.py: line 1: only 'name = value' lines"):
        config_literals((root / "evil.py").read_text(), root / "evil.py")
    sneaky = f"x = __import__('pathlib').Path({str(marker)!r}).write_text('ran')\n"
    with pytest.raises(ConfigRefused, match="not a plain number"):
        config_literals(sneaky)
    with pytest.raises(ConfigRefused, match="inheritance"):
        config_literals("_base_ = ['other.py']\n")
    assert not marker.exists()
    package = config_literals(package_config_path().read_text())  # every shipped config still reads
    assert package["hidden_dim"] == 256 and package["return_interm_indices"] == [1, 2, 3]


@pytest.mark.model
@pytest.mark.timeout(900)  # the session's tiny model may be built inside this test
def test_label_on_a_folder_whose_settings_name_a_python_config_runs_no_code(tmp_path: Path, tiny_gdino,
                                                                            capsys) -> None:
    root, marker = _evil_folder(tmp_path)
    r = _in_process(capsys, ["label", str(root), "--weights", str(tiny_gdino.weights_path), "--text-encoder",
                             str(tiny_gdino.text_encoder_dir), "--device", "cpu", "--no-progress"])
    assert not marker.exists(), "a config file shipped with the folder was executed"
    assert "setting 'config' ignored" in r.err and "evil.py" in r.err, r.err
    assert "Traceback" not in r.err, r.err
    r2 = _in_process(capsys, ["label", str(root), "--config", str(root / "evil.py"), "--weights",
                              str(tiny_gdino.weights_path), "--text-encoder", str(tiny_gdino.text_encoder_dir),
                              "--device", "cpu", "--no-progress"])
    assert not marker.exists(), "a config file passed on the command line was executed"
    assert r2.returncode == 2 and "only 'name = value' lines" in r2.err, r2.err


# -- 2. undecodable names ---------------------------------------------------------------------

def test_an_undecodable_file_name_is_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_image(root / "ok.jpg", 40, 30, 0)
    verified_voc(root / "ok.xml", (40, 30), (VocObject("cat", 2, 2, 20, 20),))
    bad = os.fsencode(root) + b"/bad\xff.jpg"
    with open(bad, "wb") as fh:
        fh.write((root / "ok.jpg").read_bytes())
    folder = ImageFolder(root)
    assert folder.images == ["ok.jpg"]
    assert folder.problems == ["bad\\xff.jpg: skipped, its name is not valid UTF-8 (it cannot be written into "
                               "a label file or a dataset; rename it)"]
    r = run_cli(["export", str(root), "--format", "voc", "--out", str(tmp_path / "out"), "--classes", "cat"])
    assert r.returncode == 0 and "exported 1 verified images" in r.out and "bad\\xff.jpg" in r.err, r.err
    r = run_cli(["stats", str(root)])
    assert r.returncode == 0 and "bad\\xff.jpg" in r.err and "Traceback" not in r.err, r.err


# -- 3. one VOC file per image ----------------------------------------------------------------

_STEMS = st.sampled_from(["x", "X", "x.png", "X.PNG", "x.jpg", "x.png~2", "x.PNG~2", "a", "x.xml", "x~2"])
_EXTS = st.sampled_from([".jpg", ".JPG", ".png", ".Png", ".jpeg", ".tif"])
_NAMES = st.lists(st.tuples(st.sampled_from(["", "sub/", "SUB/"]), _STEMS, _EXTS).map("".join),
                  min_size=1, max_size=12, unique_by=str.casefold)


@settings(max_examples=150, deadline=None)
@given(names=_NAMES)
def test_voc_paths_are_one_to_one_case_insensitively_and_never_an_image(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel in names:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"")
        folder = ImageFolder(root)
        assert sorted(folder.images) == sorted(names)
        vocs = [str(folder.voc_path(rel).relative_to(root)).casefold() for rel in folder.images]
        assert len(set(vocs)) == len(vocs), dict(zip(folder.images, vocs))
        assert not set(vocs) & {rel.casefold() for rel in names}
        # adding images never takes a VOC file from an image that had it: natural names stay put
        natural = {rel: v for rel, v in zip(folder.images, vocs) if v == rel.rsplit(".", 1)[0].casefold() + ".xml"}
        (root / "zz-new.png.jpg").write_bytes(b"")
        folder.rescan()
        for rel, v in natural.items():
            assert str(folder.voc_path(rel).relative_to(root)).casefold() == v


def test_x_png_and_x_png_jpg_get_their_own_files(tmp_path: Path) -> None:
    for rel in ("x.jpg", "x.png", "x.png.jpg"):
        (tmp_path / rel).write_bytes(b"")
    folder = ImageFolder(tmp_path)
    assert {rel: folder.voc_path(rel).name for rel in folder.images} == {
        "x.jpg": "x.xml", "x.png.jpg": "x.png.xml", "x.png": "x.png~2.xml"}


# -- 4. annotation-side files that would hang or eat memory -----------------------------------

def test_read_limited_refuses_fifo_device_and_oversized_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafeFileError, match="FIFO"):
        read_limited(tmp_path / "fifo", 100)
    with pytest.raises(UnsafeFileError, match="a device"):
        read_limited("/dev/zero", 100)
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(UnsafeFileError, match="101 bytes"):
        read_limited(tmp_path / "big", 100)
    assert read_limited(tmp_path / "big", 101) == b"x" * 101


def test_export_and_stats_report_each_hostile_voc_file_and_go_on(tmp_path: Path) -> None:
    side = build_side_folder(tmp_path / "data")
    before = snapshot(side.root, skip_state=False)
    r = run_cli(["export", str(side.root), "--format", "yolo", "--out", str(tmp_path / "out"), "--classes", "cat"])
    assert r.returncode == 0, r.err
    assert "exported 2 verified images" in r.out
    for rel, bad in side.bad.items():
        assert any(rel in ln and bad in ln for ln in r.err.splitlines()), f"{bad} not reported:\n{r.err}"
    assert "FIFO" in r.err and "a device" in r.err and "73,400,320 bytes" in r.err and "a folder" in r.err
    r = run_cli(["stats", str(side.root)])
    assert r.returncode == 0 and all(bad in r.out for bad in side.bad.values()), r.out + r.err
    assert changed(before, snapshot(side.root, skip_state=False)) == []
    assert not (side.root / ".autolabel").exists(), "a reading command wrote into the dataset"


@pytest.mark.parametrize("kind", ["fifo", "zero", "huge", "deep"])
def test_a_hostile_project_json_is_an_error_naming_it(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "data"
    write_image(root / "a.jpg", 40, 30, 0)
    state = root / ".autolabel"
    state.mkdir()
    path = state / "project.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        os.symlink("/dev/zero", path)
    elif kind == "huge":
        with open(path, "wb") as fh:
            fh.truncate(2 << 20)
    else:
        path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    for args in (["stats", str(root)], ["export", str(root), "--format", "coco", "--out", str(tmp_path / "o")]):
        r = run_cli(args)
        assert r.returncode == 1 and "project.json" in r.err and "Traceback" not in r.err, r.err


def test_project_json_with_wrong_types_and_huge_values_falls_back_to_defaults(tmp_path: Path) -> None:
    path = ProjectSettings.path_for(tmp_path)
    path.parent.mkdir()
    path.write_text(json.dumps({"classes": ["cat", 5], "box_threshold": float("nan"), "text_threshold": 5,
                                "batch_size": True, "device": "foo", "prompts": {"cat": "x" * 100_000},
                                "extra": [1], "weights": ["a"], "unknown": 1}), encoding="utf-8")
    s = ProjectSettings.load(tmp_path)
    assert s == ProjectSettings()
    assert len(s.notes) == 8  # every known field but precision; unknown keys are dropped silently
    s.save(tmp_path)
    json.loads(path.read_text(encoding="utf-8"))  # strict JSON again (no NaN)


def test_yolo_and_coco_side_files_are_reported_for_their_images_only(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for sub in ("bomb", "deep", "bigclasses", "fine"):
        write_image(root / sub / "img.jpg", 40, 30, 0)
    for sub in ("bomb", "bigclasses", "fine"):
        (root / sub / "img.txt").write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    (root / "bomb/data.yaml").write_text(BILLION_LAUGHS_YAML, encoding="utf-8")
    (root / "fine/classes.txt").write_text("cat\n", encoding="utf-8")
    with open(root / "bigclasses/classes.txt", "wb") as fh:
        fh.truncate(1 << 30)  # 1 GB, sparse
    (root / "deep/annotations.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    code = f"""
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats.existing import load_existing_labels
from autolabel_gui.formats.voc import AnnotationError
folder = ImageFolder({str(root)!r})
for rel in folder.images:
    try:
        labels = load_existing_labels(folder, rel, [])
        print(rel, "ok", None if labels is None else [b.label for b in labels.boxes])
    except AnnotationError as exc:
        print(rel, "error", exc)
"""
    r = run_python(code)
    assert r.returncode == 0, r.err
    lines = dict(ln.split(" ", 1) for ln in r.out.splitlines())
    assert lines["fine/img.jpg"] == "ok ['cat']"
    assert lines["bomb/img.jpg"].startswith("error") and "aliases" in lines["bomb/img.jpg"]
    assert lines["deep/img.jpg"].startswith("error") and "nested too deeply" in lines["deep/img.jpg"]
    assert "classes.txt" in lines["bigclasses/img.jpg"] and "1,073,741,824 bytes" in lines["bigclasses/img.jpg"]


# -- 5. reading commands never write into the dataset -----------------------------------------

def _folder_with_cache(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_image(root / "a.jpg", 40, 30, 0)
    verified_voc(root / "a.xml", (40, 30))
    ProjectSettings(classes=["cat"]).save(root)
    ProposalCache.for_folder(root).close()
    return root


def test_stats_on_a_read_only_folder_reads_the_cache_read_only(tmp_path: Path) -> None:
    root = _folder_with_cache(tmp_path)
    for p in (root / ".autolabel", root):
        p.chmod(0o555)
    try:
        if not child_sees_permissions(tmp_path / "nowhere") and os.geteuid() == 0:
            (tmp_path / "probe").mkdir()
            (tmp_path / "probe").chmod(0)
            if not child_sees_permissions(tmp_path / "probe"):
                pytest.skip("cannot make a folder read-only here")
        r = run_cli(["stats", str(root)], preexec=permission_bits_bite())
    finally:
        for p in (root, root / ".autolabel"):
            p.chmod(0o755)
    assert r.returncode == 0 and "Traceback" not in r.err and "readonly" not in r.err, r.err
    assert "negatives: 1 of the 1 verified images have no objects" in r.out


def test_stats_leaves_a_corrupt_cache_where_it_is(tmp_path: Path) -> None:
    root = _folder_with_cache(tmp_path)
    cache = root / ".autolabel/cache.sqlite"
    cache.write_bytes(b"this is not a database" * 100)
    before = snapshot(root, skip_state=False)
    r = run_cli(["stats", str(root)])
    assert r.returncode == 0 and "cache.sqlite: not read" in r.err, r.err
    assert snapshot(root, skip_state=False) == before, "stats renamed or changed the cache"


# -- 6. smaller ones ----------------------------------------------------------------------------

def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header says ``width`` x ``height`` (1-bit): enough for every check before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
                     + chunk(b"IEND", b""))


def test_an_image_over_the_decode_budget_is_refused_before_decoding(tmp_path: Path) -> None:
    _png_header(tmp_path / "big.png", 22_000, 22_000)
    code = f"""
import resource
from autolabel_gui.core.images import load_image, ImageLoadError
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image({str(tmp_path / 'big.png')!r})
except ImageLoadError as exc:
    print(exc.reason)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""
    r = run_python(code)
    assert r.returncode == 0, r.err
    reason, peak_mb = r.out.splitlines()
    assert "too large to decode" in reason and "3.0 GB" in reason, r.out + r.err
    assert int(peak_mb) < 100, f"RSS grew by {peak_mb} MB: the image was decoded"


def test_decodes_on_two_threads_stay_within_the_budget(tmp_path: Path, monkeypatch) -> None:
    budget = images_mod.DecodeBudget(images_mod.decode_need((300, 200), "RGB", 200_000) * 3 // 2)
    monkeypatch.setattr(images_mod, "DECODE_BUDGET", budget)
    for i in range(6):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (200, 300, 3), np.uint8)).save(tmp_path / f"{i}.png")
    errors: list[Exception] = []

    def work(names: list[int]) -> None:
        try:
            for i in names:
                assert load_image(tmp_path / f"{i}.png").shape == (200, 300, 3)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=([0, 2, 4],)), threading.Thread(target=work, args=([1, 3, 5],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and budget.in_use == 0
    assert 0 < budget.peak <= budget.total
    monkeypatch.setattr(budget, "total", 1000)
    with pytest.raises(ImageLoadError, match="too large to decode"):
        load_image(tmp_path / "0.png")


def test_a_2_gb_junk_jpg_is_refused_without_being_read(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    with open(junk, "wb") as fh:
        fh.write(b"this is not a JPEG at all")
        fh.truncate(2 << 30)
    code = f"""
import resource
from autolabel_gui.core.images import load_image, ImageLoadError
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image({str(junk)!r})
except ImageLoadError as exc:
    print(exc.reason)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""
    r = run_python(code, timeout=30)
    assert r.returncode == 0, r.err
    reason, peak_mb = r.out.splitlines()
    assert "not an image" in reason and int(peak_mb) < 100, r.out + r.err


def test_strip_images_get_a_model_input_with_no_empty_side() -> None:
    from autolabel_gui.detection.gdino_spec import resized_size

    assert resized_size(1, 4000, 800, 1333) == (200, 1333)
    assert resized_size(4000, 1, 800, 1333) == (1333, 200)
    assert resized_size(640, 480, 800, 1333) == (1066, 800)  # the package's own rule, unchanged
    assert resized_size(1000, 3000, 800, 1333) == (444, 1332)


def _labelled(root: Path, objects: dict[str, tuple[VocObject, ...]], size=(40, 30)) -> None:
    for i, (rel, objs) in enumerate(objects.items()):
        write_image(root / rel, size[0], size[1], i)
        verified_voc((root / rel).with_suffix(".xml"), size, objs)


def test_boxes_with_no_area_are_left_out_of_every_format_and_said(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    _labelled(root, {"a.jpg": (VocObject("cat", 2, 2, 20, 20), VocObject("cat", 500, 500, 600, 600))})
    for fmt in ("yolo", "coco", "voc"):
        r = _in_process(capsys, ["export", str(root), "--format", fmt, "--out", str(tmp_path / fmt),
                                 "--classes", "cat"])
        assert r.returncode == 0 and "a.jpg: 1 box(es) with no area inside the image left out" in r.err, r.err
        assert "(1 boxes" in r.out
    assert len((tmp_path / "yolo/labels/a.txt").read_text().splitlines()) == 1
    coco = json.loads((tmp_path / "coco/annotations.json").read_text())
    assert len(coco["annotations"]) == 1 and all(a["bbox"][2] > 0 and a["bbox"][3] > 0 for a in coco["annotations"])


def test_a_line_break_in_a_file_name_does_not_split_trainval(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    _labelled(root, {"two\nlines.jpg": (VocObject("cat", 2, 2, 20, 20),), "plain.jpg": ()})
    r = _in_process(capsys, ["export", str(root), "--format", "voc", "--out", str(tmp_path / "v"), "--classes", "cat"])
    assert r.returncode == 0, r.err
    lines = (tmp_path / "v/ImageSets/Main/trainval.txt").read_text().splitlines()
    assert sorted(lines) == ["plain", "two_lines"]
    assert (tmp_path / "v/JPEGImages/two_lines.jpg").is_file()


def test_class_names_that_break_labelmap_are_refused_for_voc_only(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    _labelled(root, {"a.jpg": (VocObject("a:b", 2, 2, 20, 20), VocObject("#tag", 3, 3, 9, 9))})
    r = _in_process(capsys, ["export", str(root), "--format", "voc", "--out", str(tmp_path / "v")])
    assert r.returncode == 1 and "labelmap.txt" in r.err and "'a:b'" in r.err and "'#tag'" in r.err, r.err
    assert not (tmp_path / "v").exists()
    r = _in_process(capsys, ["export", str(root), "--format", "yolo", "--out", str(tmp_path / "y")])
    assert r.returncode == 0 and "using the 2 classes of its VOC files: #tag, a:b" in r.err, r.err


def test_sigterm_during_export_leaves_no_partial_and_a_stale_one_is_swept(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _labelled(root, {f"img{i:03d}.jpg": (VocObject("cat", 2, 2, 20, 20),) for i in range(400)})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.{dead.pid}.abcd1234.partial"
    (stale / "images").mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-m", "autolabel_gui", "export", str(root), "--format", "yolo",
                             "--out", str(tmp_path / "out"), "--classes", "cat"],
                            cwd=Path(__file__).resolve().parents[1], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    mine = None
    while time.monotonic() < deadline and mine is None and proc.poll() is None:
        mine = next((p for p in tmp_path.glob(f".out.{proc.pid}.*.partial")), None)
        time.sleep(0.005)
    if mine is None:
        proc.wait(60)
        pytest.skip("the export finished before it could be stopped")
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 128 + signal.SIGTERM and "nothing was kept" in err, err
    assert not stale.exists(), "the partial folder of a killed export was not swept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "a partial or half export was left"


@pytest.mark.parametrize("flag", [["--box-threshold", "nan"], ["--text-threshold", "inf"], ["--box-threshold", "5"],
                                  ["--text-threshold", "-1"], ["--device", "foo"], ["--batch-size", "0"]])
def test_invalid_model_options_are_refused_and_never_saved(tmp_path: Path, flag: list[str], capsys) -> None:
    write_image(tmp_path / "a.jpg", 40, 30, 0)
    with pytest.raises(SystemExit) as exc:
        main(["label", str(tmp_path), "--classes", "cat", *flag])
    assert exc.value.code == 2
    assert f"argument {flag[0]}" in capsys.readouterr().err
    assert not ProjectSettings.path_for(tmp_path).exists()
    with pytest.raises(ValueError, match="settings not saved"):
        ProjectSettings(box_threshold=float("nan")).save(tmp_path)
    assert not ProjectSettings.path_for(tmp_path).exists()


@pytest.mark.model
@pytest.mark.timeout(900)  # the session's tiny model may be built inside this test
def test_an_unwritable_cache_path_is_a_clear_message(tmp_path: Path, tiny_gdino) -> None:
    from tests.fixtures.hostile import label_args

    write_image(tmp_path / "data/a.jpg", 40, 30, 0)
    (tmp_path / "file").write_text("x")
    r = run_cli(["label", str(tmp_path / "data"), "--cache", str(tmp_path / "file/cache.sqlite"),
                 *label_args(tiny_gdino)], memory=MODEL_MEMORY_LIMIT, timeout=300)
    assert r.returncode == 2 and "cannot open the proposal cache" in r.err and "Traceback" not in r.err, r.err


def test_no_empty_cache_file_is_left_after_a_failed_create(tmp_path: Path, monkeypatch) -> None:
    def full(self):
        sqlite3.connect(self.path).execute("CREATE TABLE t(x)").connection.close()  # the file now exists
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ProposalCache, "_connect", full)
    with pytest.raises(sqlite3.OperationalError):
        ProposalCache(tmp_path / ".autolabel/cache.sqlite")
    assert list((tmp_path / ".autolabel").iterdir()) == []


# -- issue 9.3: modes and settings kept with the folder ----------------------------------------

@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_new_files_and_export_folders_follow_the_umask(tmp_path: Path, umask: int, file_mode: int,
                                                       dir_mode: int) -> None:
    root = tmp_path / "data"
    _labelled(root, {"a.jpg": (VocObject("cat", 2, 2, 20, 20),)})
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "new.xml", b"x")
        r = main(["export", str(root), "--format", "voc", "--out", str(tmp_path / "v"), "--classes", "cat"])
    finally:
        os.umask(old)
    assert r == 0
    assert stat.S_IMODE((tmp_path / "new.xml").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "v").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "v/Annotations").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "v/Annotations/a.xml").stat().st_mode) == file_mode


def test_a_replaced_file_keeps_its_mode_and_a_link_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "a.xml"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    users = tmp_path / "users_file.xml"
    users.write_bytes(b"the user's own file")
    os.symlink(users, tmp_path / "b.xml")
    atomic_write_bytes(tmp_path / "b.xml", b"labels")
    assert users.read_bytes() == b"the user's own file"
    assert not (tmp_path / "b.xml").is_symlink() and (tmp_path / "b.xml").read_bytes() == b"labels"


def test_classes_is_a_list_or_a_file_everywhere(tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("# mine\ncat\n\ndog\n", encoding="utf-8")
    assert classes_from_arg("cat, dog") == ["cat", "dog"]
    assert classes_from_arg(str(tmp_path / "names.txt")) == ["cat", "dog"]
    with pytest.raises(ValueError, match="no such file"):
        classes_from_arg(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="listed twice"):
        classes_from_arg("cat,cat")
    for argv in (["label", "F", "--classes", "a,b"], ["stats", "F", "--classes", "a,b"], ["F", "--classes", "a,b"],
                 ["export", "F", "--format", "voc", "--out", "o", "--classes", "a,b"]):
        assert parse_args(argv).classes == "a,b"


def test_the_window_command_keeps_its_options_with_the_folder(tmp_path: Path) -> None:
    from autolabel_gui.commands import gui

    args = parse_args([str(tmp_path), "--classes", "cat,dog", "--box-threshold", "0.5"])
    assert gui._gives_settings(args)
    gui._save(tmp_path, ProjectSettings.load(tmp_path).with_args(args))
    again = ProjectSettings.load(tmp_path)
    assert (again.classes, again.box_threshold) == (["cat", "dog"], 0.5)
    assert not gui._gives_settings(parse_args([str(tmp_path)]))


def test_export_and_stats_without_settings_take_the_classes_of_the_voc_files(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    _labelled(root, {"a.jpg": (VocObject("zebra", 2, 2, 20, 20), VocObject("ant", 3, 3, 9, 9)), "b.jpg": ()})
    r = _in_process(capsys, ["export", str(root), "--format", "yolo", "--out", str(tmp_path / "y")])
    assert r.returncode == 0 and "using the 2 classes of its VOC files: ant, zebra" in r.err, r.err
    assert "names:\n  0: ant\n  1: zebra" in (tmp_path / "y/data.yaml").read_text()
    r = _in_process(capsys, ["stats", str(root)])
    assert r.returncode == 0 and "ant, zebra" in r.err
    assert "negatives: 1 of the 2 verified images have no objects" in r.out
    assert not (root / ".autolabel").exists()
    assert load_existing_labels(ImageFolder(root), "b.jpg", []).verified


@pytest.mark.model
@pytest.mark.timeout(900)  # the session's tiny model may be built inside this test
def test_label_goes_through_every_side_hazard_and_labels_every_other_image(tmp_path: Path, tiny_gdino) -> None:
    from tests.fixtures.hostile import label_args, small_model_settings

    side = build_side_folder(tmp_path / "data")
    root = side.root
    for sub in ("bomb", "deep"):
        write_image(root / sub / "img.jpg", 40, 30, 7)
    (root / "bomb/img.txt").write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    (root / "bomb/data.yaml").write_text(BILLION_LAUGHS_YAML, encoding="utf-8")
    (root / "deep/annotations.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    Image.new("RGB", (1, 4000), (200, 10, 10)).save(root / "strip.png")
    with open(os.fsencode(root) + b"/bad\xff.jpg", "wb") as fh:
        fh.write((root / "good1.jpg").read_bytes())
    (root / "x.png.jpg").write_bytes((root / "good1.jpg").read_bytes())
    (root / "x.png").write_bytes((root / "strip.png").read_bytes())
    (root / "x.jpg").write_bytes((root / "good1.jpg").read_bytes())
    small_model_settings(root)
    before = snapshot(root)
    r = run_cli(["label", str(root), "--voc-dir", str(root), *label_args(tiny_gdino)], timeout=300,
                memory=MODEL_MEMORY_LIMIT)
    assert "Traceback" not in r.err, r.err
    assert r.returncode == 1, r.err
    for bad in (*side.bad.values(), "data.yaml", "annotations.json", "bad\\xff.jpg"):
        assert bad in r.err, f"{bad} not reported:\n{r.err}"
    assert "0 failed" in r.out, "every listed image is detected (the strip included)"
    new = {p.relative_to(root).as_posix() for p in set(snapshot(root)) - set(before)}
    assert new == {"strip.xml", "x.xml", "x.png.xml", "x.png~2.xml"}, new
    assert changed(before, snapshot(root)) == []
