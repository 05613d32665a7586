"""Issue 21, memory and hangs: what a folder's settings and label files may cost is bounded
before it is spent, and a bad address never makes a command wait for minutes.

Commands that load the model run as child processes bounded in time and memory
(``tests/fixtures/hostile_side.run_cli``); the decode budget has its own test file
(``tests/test_decode_memory.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector
from PIL import Image

from tests.fixtures.hostile_side import MODEL_MEMORY_LIMIT, run_cli, run_python

pytestmark = pytest.mark.timeout(300)


# -- folder settings that size memory ----------------------------------------------------------

def _settings_file(root: Path, data: dict) -> Path:
    path = ProjectSettings.path_for(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_folder_input_size_that_sizes_memory_is_ignored_with_a_note(tmp_path: Path) -> None:
    path = _settings_file(tmp_path, {"extra": {"image_size": "12000", "max_size": "99999999", "revision": "v1"}})
    settings = ProjectSettings.load(tmp_path)
    assert settings.notes == [
        f"{path}: setting 'extra.image_size' ignored: '12000' is not a whole number of pixels from 32 to 2048",
        f"{path}: setting 'extra.max_size' ignored: '99999999' is not a whole number of pixels from 32 to 2048",
    ]
    assert settings.extra == {"revision": "v1"}, "the other options of the table are kept"
    with pytest.raises(ValueError, match="extra: image_size: '12000' is not a whole number"):
        ProjectSettings(extra={"image_size": "12000"}).save(tmp_path)  # nor can it be saved


def test_an_input_size_out_of_range_is_refused_by_the_detector_too(tiny_gdino) -> None:
    with pytest.raises(DetectorUnavailable, match="image_size: '12000' is not a whole number of pixels from 32 to"):
        create_detector(tiny_gdino.detector_config(extra={"image_size": "12000", "max_size": "12000"}))


def test_label_on_a_folder_asking_for_a_12000_px_input_runs_at_the_model_size(tmp_path: Path, tiny_gdino) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    Image.new("RGB", (64, 48), (200, 90, 40)).save(root / "a.png")
    _settings_file(root, {"classes": ["cat"], "extra": {"image_size": "12000", "max_size": "12000"}})
    r = run_cli(["label", str(root), "--weights", str(tiny_gdino.weights_path), "--config",
                 str(tiny_gdino.config_path), "--text-encoder", str(tiny_gdino.text_encoder_dir), "--device", "cpu",
                 "--no-progress"], timeout=240, memory=MODEL_MEMORY_LIMIT)
    assert r.returncode == 0, r.err
    assert "setting 'extra.image_size' ignored: '12000' is not a whole number of pixels from 32 to 2048" in r.err
    assert "1 detected" in r.out, r.out


# -- label files that cost many times their size -------------------------------------------------

_PEAK_GROWTH = """
import json
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
from autolabel_gui.formats.voc import AnnotationError
folder = ImageFolder({root!r})
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
base = hwm()
try:
    load_existing_labels(folder, "a.jpg", [])
    reason = "read"
except AnnotationError as exc:
    reason = str(exc)
print(json.dumps([reason, hwm() - base]))
"""


def _coco_folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    Image.new("RGB", (40, 30)).save(root / "a.jpg")
    return root


def test_a_coco_file_of_millions_of_empty_objects_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    root = _coco_folder(tmp_path)
    # 6 MB: parsed, 4 million values would take 140 MB (the 150 MB file of the issue took 4.1 GB)
    (root / "annotations.json").write_bytes(b'{"images": [' + b"{}," * 2_000_000 + b"{}]}")
    r = run_python(_PEAK_GROWTH.format(root=str(root)))
    assert r.returncode == 0, r.err
    reason, growth = json.loads(r.out)
    assert reason == (f"{root / 'annotations.json'}: not read: about 4,000,003 JSON values in 6,000,016 bytes, "
                      "more than the 4,000,000 a COCO file may have (each costs memory when parsed)")
    assert growth < 40 << 20, f"RSS grew by {growth >> 20} MB: the file was parsed"


def test_a_coco_file_over_the_size_limit_is_refused_without_being_read(tmp_path: Path) -> None:
    root = _coco_folder(tmp_path)
    with open(root / "annotations.json", "wb") as fh:  # sparse: 129 MB long, nothing on disk
        fh.truncate(129 << 20)
    r = run_python(_PEAK_GROWTH.format(root=str(root)))
    assert r.returncode == 0, r.err
    reason, growth = json.loads(r.out)
    assert reason == (f"{root / 'annotations.json'}: not read: 135,266,304 bytes, more than the 134,217,728 bytes "
                      "such a file may have")
    assert growth < 40 << 20, f"RSS grew by {growth >> 20} MB: the file was read"

