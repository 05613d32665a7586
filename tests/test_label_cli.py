"""``autolabel-gui label`` end to end on the tiny real checkpoint: cache, VOC, bad files, resume."""

from __future__ import annotations

import _thread
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.ids import run_id_for
from autolabel_gui.formats.voc import read_voc, write_voc
from PIL import Image, ImageDraw

from tests.fixtures.pipeline import cache_rows

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.model


def _photos(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        im = Image.new("RGB", (64, 48), (30 * i % 256, 110, 200 - 15 * i))
        ImageDraw.Draw(im).rectangle([8 + 3 * i, 6, 40, 30], fill=(250, 220, 20))
        im.save(path)


def _small_model_folder(root: Path, names: list[str]) -> Path:
    """A folder whose settings ask the backend for small inputs, so the tiny model runs fast."""
    _photos(root, names)
    ProjectSettings(extra={"image_size": "96", "max_size": "160"}).save(root)
    return root


def _model_args(tiny_gdino, batch: int) -> list[str]:
    return ["--classes", "person,dog", "--weights", str(tiny_gdino.weights_path),
            "--config", str(tiny_gdino.config_path), "--text-encoder", str(tiny_gdino.text_encoder_dir),
            "--device", "cpu", "--precision", "fp32", "--batch-size", str(batch), "--no-progress"]


def test_label_writes_cache_and_voc_and_never_touches_other_peoples_files(tmp_path, tiny_gdino, capsys):
    folder = _small_model_folder(tmp_path / "photos", ["a1.png", "a2.png", "a3.png", "sub/b1.png"])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no jpeg")
    voc = tmp_path / "voc"
    write_voc(voc / "a1.xml", ImageLabels("a1.png", 64, 48, boxes=[Box(3, 3, 9, 9, "person")], verified=False))
    write_voc(voc / "a2.xml", ImageLabels("a2.png", 64, 48, boxes=[Box(1, 2, 30, 40, "dog")], verified=True))
    (voc / "a3.xml").write_text("<annotation><object><name>dog</name>", encoding="utf-8")
    before = {p: p.read_bytes() for p in voc.glob("*.xml")}

    rc = main(["label", str(folder), "--voc-dir", str(voc), *_model_args(tiny_gdino, batch=4)])
    out, err = capsys.readouterr()
    assert rc == 1, "a broken image and an unreadable VOC file make the run report failure"
    assert err.count("broken.jpg") == 1 and "skipped broken.jpg: " in err
    assert "a3.xml" in err and "not overwritten" in err
    assert "5 images" in out and "4 detected" in out and "1 failed" in out
    assert "1 written; left alone: 1 verified, 1 written by someone else, 1 unreadable" in out
    assert {p: p.read_bytes() for p in voc.glob("*.xml")} == before

    settings = ProjectSettings.load(folder)
    assert settings.classes == ["person", "dog"], "the window must see the classes the run used"
    run_id = run_id_for(settings.detector_config(), settings.ontology())
    cache = ProposalCache.for_folder(folder)
    assert cache.cached_relpaths(run_id) == {"a1.png", "a2.png", "a3.png", "sub/b1.png"}
    proposals = cache.get(ImageKey.from_path(folder, "sub/b1.png"), run_id)
    cache.close()

    def check_b1(threshold: float) -> None:
        labels = read_voc(voc / "sub" / "b1.xml")
        above = [b for b in proposals if b.score >= threshold]
        assert not labels.verified and (labels.width, labels.height) == (64, 48)
        assert len(labels.boxes) == len(above)
        assert [b.label for b in labels.boxes] == [b.label for b in above]
        assert all(b.state is BoxState.ACCEPTED for b in labels.boxes)
        assert all(abs(v - round(w)) <= 1 for b, a in zip(labels.boxes, above) for v, w in zip(b.xyxy, a.xyxy))

    check_b1(settings.box_threshold)
    assert len(proposals) > len([b for b in proposals if b.score >= 0.7]), "the next step needs fewer boxes"
    assert not (voc / "broken.xml").exists()

    rc = main(["label", str(folder), "--voc-dir", str(voc), "--box-threshold", "0.7", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "0 detected" in out and "4 from cache" in out
    assert "loading the model" not in err, "a fully cached folder never loads the model"
    check_b1(0.7)  # its own earlier output is replaced; everyone else's is still untouched
    assert {p: p.read_bytes() for p in voc.glob("*.xml")} == before


def test_missing_weights_is_a_clear_usage_error(tmp_path, capsys):
    _photos(tmp_path, ["x.png"])
    missing = tmp_path / "nowhere.pth"
    assert main(["label", str(tmp_path), "--classes", "dog", "--weights", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "groundingdino_swint_ogc.pth" in err and "bert-base-uncased" in err


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["label", str(tmp_path / "absent"), "--classes", "dog"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["label", str(tmp_path)]) == 2
    assert "no classes" in capsys.readouterr().err
    assert main(["label", str(tmp_path), "--classes", "dog", "--prompt", "cat=kitten"]) == 2
    assert "unknown class" in capsys.readouterr().err


def _wait_for_rows(db: Path, more_than: int, alive=lambda: True) -> None:
    while len(cache_rows(db)) <= more_than:
        assert alive(), "label ended before it could be interrupted"
        time.sleep(0.05)


def test_killed_and_interrupted_runs_resume_without_redoing_work(tmp_path, tiny_gdino, capsys):
    names = [f"p{i}.png" for i in range(5)]
    folder = _small_model_folder(tmp_path / "photos", names)
    db = folder / ".autolabel" / "cache.sqlite"
    args = ["label", str(folder), *_model_args(tiny_gdino, batch=1)]

    killed = subprocess.Popen([sys.executable, "-m", "autolabel_gui", *args], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(db, 0, alive=lambda: killed.poll() is None)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    after_kill = cache_rows(db)
    assert killed.returncode == -signal.SIGKILL and 1 <= len(after_kill) < len(names)

    # Ctrl+C: a real KeyboardInterrupt in the main thread once one more image is committed.
    running = threading.Event()

    def press_ctrl_c() -> None:
        _wait_for_rows(db, len(after_kill), alive=running.is_set)
        _thread.interrupt_main()

    running.set()
    watcher = threading.Thread(target=press_ctrl_c)
    watcher.start()
    try:
        assert main(args) == 130
    finally:
        running.clear()
        watcher.join()
    assert "run the same command again" in capsys.readouterr().err
    after_ctrl_c = cache_rows(db)
    assert len(after_kill) < len(after_ctrl_c) < len(names)
    assert {k: after_ctrl_c[k] for k in after_kill} == after_kill, "cached images were not run again"

    assert main(args) == 0
    out = capsys.readouterr().out
    final = cache_rows(db)
    assert set(final) == set(names)
    assert {k: final[k] for k in after_ctrl_c} == after_ctrl_c, "no image ran twice"
    assert f"{len(names) - len(after_ctrl_c)} detected" in out and f"{len(after_ctrl_c)} from cache" in out


def test_cache_that_cannot_be_written_is_reported_not_a_traceback(tmp_path, tiny_gdino, capsys):
    folder = _small_model_folder(tmp_path / "photos", ["a.png"])
    db = tmp_path / "ro.sqlite"
    ProposalCache(db).close()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TRIGGER no_writes BEFORE INSERT ON proposals BEGIN SELECT RAISE(ABORT, 'disk is full'); END")
    conn.commit()
    conn.close()
    assert main(["label", str(folder), "--cache", str(db), *_model_args(tiny_gdino, batch=1)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write the proposal cache {db}" in err and "disk is full" in err


def test_yolo_labels_beside_the_images_are_carried_into_the_voc_files(tmp_path, tiny_gdino, capsys):
    """Someone's YOLO boxes survive pre-labelling (twice), and proposals that repeat them are dropped."""
    folder = _small_model_folder(tmp_path / "photos", ["a1.png", "a2.png"])
    (folder / "classes.txt").write_text("person\ndog\n", encoding="utf-8")
    (folder / "a1.txt").write_text("1 0.5 0.5 0.5 0.5\n", encoding="utf-8")  # dog, x 16..48, y 12..36
    (folder / "a2.txt").write_text("7 0.5 0.5 0.5 0.5\n", encoding="utf-8")  # class 7 is not in classes.txt
    voc = tmp_path / "voc"
    args = ["label", str(folder), "--voc-dir", str(voc), *_model_args(tiny_gdino, batch=1),
            "--box-threshold", "0.05"]

    for _ in range(2):  # the rerun replaces its own file and must carry the YOLO box again
        rc = main(args)
        out, err = capsys.readouterr()
        labels = read_voc(voc / "a1.xml")
        yolo = [b for b in labels.boxes if b.score is None and b.label == "dog" and b.xyxy == (16, 12, 48, 36)]
        assert len(yolo) == 1, labels.boxes
        others = [b for b in labels.boxes if b is not yolo[0]]
        assert others, "the random model proposes boxes above 0.05"
        assert not [b for b in others if b.label == "dog" and b.iou(yolo[0]) >= 0.7]
        assert not (voc / "a2.xml").exists(), "a VOC file would hide the unreadable YOLO file for good"
        assert "a2" in err and rc == 1
