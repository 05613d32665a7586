"""Files from elsewhere cannot make the tool run code or write where they say.

- A checkpoint is loaded with ``torch.load(weights_only=True)``: a pickle whose ``__reduce__``
  runs a function is refused and the function never runs.
- Names inside annotation files (VOC ``<path>``/``<filename>``/``<folder>``, COCO ``file_name``,
  YOLO class names) are never used as places to write: saving, ``label`` and every export
  format write only where the image's own relative path says.
- A downloaded checkpoint is verified (size, sha256) before it can be found and used.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.detection.weights import find_weights
from autolabel_gui.formats.export import export_dataset
from autolabel_gui.formats.voc import read_voc

from tests.fixtures.hostile import CodePayload, label_args, small_model_settings, snapshot
from tests.fixtures.pipeline import write_images


@pytest.mark.model
def test_a_checkpoint_that_would_run_code_is_refused_and_its_payload_never_runs(tmp_path, tiny_gdino, capsys):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "groundingdino_swint_ogc.pth"
    torch.save({"model": {"backbone.weight": torch.zeros(1)}, "extra": CodePayload(marker)}, evil)

    with pytest.raises(DetectorUnavailable) as info:
        create_detector(tiny_gdino.detector_config(weights=str(evil)))
    assert str(evil) in str(info.value) and "not a readable PyTorch checkpoint" in str(info.value)
    assert not marker.exists(), "the pickle payload ran while loading the checkpoint"

    folder = tmp_path / "photos"
    write_images(folder, ["a.png"], size=(64, 48))
    small_model_settings(folder)
    args = label_args(tiny_gdino)
    args[args.index("--weights") + 1] = str(evil)
    assert main(["label", str(folder), *args]) == 2
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err
    assert not marker.exists()

    torch.load(evil, weights_only=False)  # the file is live: a plain unpickle runs it
    assert marker.is_dir()


_EVIL_VOC = """<annotation verified="yes"><folder>../../..</folder><filename>../../evil.jpg</filename>
<path>{outside}/evil-path.xml</path><size><width>64</width><height>48</height><depth>3</depth></size>
<object><name>../../evil-class</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object>
</annotation>
"""


def _evil_names(outside: Path) -> list[str]:
    return [p.name for p in outside.rglob("*evil*")]


def test_names_inside_annotation_files_never_choose_where_anything_is_written(tmp_path, monkeypatch):
    """Save (the window's session), and YOLO/COCO/VOC export, with hostile names in every file."""
    from autolabel_gui.app.session import ReviewSession

    outside = tmp_path / "outside"
    root = tmp_path / "a" / "b" / "photos"
    cwd = tmp_path / "a" / "b" / "cwd"
    cwd.mkdir(parents=True)
    outside.mkdir()
    monkeypatch.chdir(cwd)  # a relative "../../evil" would land inside tmp_path, where we look
    write_images(root, ["voc.png", "coco.png", "yolo.png"], size=(64, 48))
    (root / "voc.xml").write_text(_EVIL_VOC.format(outside=outside), encoding="utf-8")
    (root / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "../../evil-coco/coco.png", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 20, 20]}],
        "categories": [{"id": 1, "name": "../../evil-coco-class"}]}), encoding="utf-8")
    (root / "yolo.txt").write_text("0 0.5 0.5 0.25 0.25\n", encoding="utf-8")
    (root / "classes.txt").write_text("../../../evil-yolo-class\n", encoding="utf-8")
    before = snapshot(tmp_path)

    folder = ImageFolder(root)
    session = ReviewSession(folder, None, ["dog"], None, 0.35)
    for rel in folder.images:
        opened = session.open(rel)
        assert opened.problem is None and opened.state.accepted_boxes(), rel
        assert session.save(rel, verify=True).error is None
    hostile_classes = ["../../evil-class", "../../evil-coco-class", "../../../evil-yolo-class"]
    for fmt in ("yolo", "coco", "voc"):
        result = export_dataset(folder, fmt, tmp_path / f"export-{fmt}", hostile_classes, verified_only=False)
        assert (result.images, result.boxes) == (3, 3)

    after = snapshot(tmp_path)
    allowed = {root} | {tmp_path / f"export-{fmt}" for fmt in ("yolo", "coco", "voc")}
    new = [p for p in set(after) - set(before) if not any(a in p.parents for a in allowed)]
    assert new == [], f"written outside the annotation and export folders: {new}"
    assert {p.name for p in set(after) - set(before) if p.parent == root} == {"coco.xml", "yolo.xml"}
    assert not any("evil" in p.name for p in set(after) - set(before))
    saved = read_voc(root / "voc.xml")
    assert saved.filename == "voc.png" and saved.path == str((root / "voc.png").absolute())
    assert [b.label for b in saved.boxes] == ["../../evil-class"] and saved.boxes[0].state is BoxState.ACCEPTED


class _Server(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def served(tmp_path):
    """An HTTP server on localhost serving ``tmp_path/served``."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Server, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_a_download_that_fails_verification_is_never_found_or_used(served, tmp_path, monkeypatch, capsys):
    folder, url = served
    (folder / "model.pth").write_bytes(b"<html>a captive portal page, not a checkpoint</html>")
    dest = tmp_path / "weights"
    monkeypatch.chdir(tmp_path)  # dest is ./weights: were the working directory looked at again, it would show
    monkeypatch.delenv("AUTOLABEL_WEIGHTS", raising=False)
    monkeypatch.setattr("autolabel_gui.detection.weights.user_weights_dir", lambda: tmp_path / "user-weights")
    monkeypatch.setattr("autolabel_gui.detection.weights.REPO_WEIGHTS_DIR", tmp_path / "repo-weights")

    rc = main(["weights", "download", "--dest", str(dest), "--url", f"{url}/model.pth"])
    err = capsys.readouterr().err
    assert rc != 0 and "rejected" in err and "expected" in err
    assert sorted(p.name for p in dest.iterdir()) == [], "neither the file nor a .part is kept"
    assert find_weights(None) is None

    photos = tmp_path / "photos"
    write_images(photos, ["a.png"], size=(64, 48))
    assert main(["label", str(photos), "--classes", "dog", "--no-progress"]) == 2
    assert "weights not found" in capsys.readouterr().err
    with ProposalCache.for_folder(photos) as cache:
        assert cache.cached_relpaths("any") == set()
