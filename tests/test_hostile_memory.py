"""Issue 21, memory and hangs: what a folder's settings and label files may cost is bounded
before it is spent, and a bad address never makes a command wait for minutes.

Commands that load the model run as child processes bounded in time and memory
(``tests/fixtures/hostile_side.run_cli``); the decode budget has its own test file
(``tests/test_decode_memory.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.session import ReviewSession
from autolabel_gui.cli import main
from autolabel_gui.core.boxes import Box, ImageLabels
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.catalogue import create_detector
from autolabel_gui.formats.existing import load_existing_labels
from autolabel_gui.formats.voc import MAX_BOXES_PER_IMAGE, AnnotationError, write_voc
from PIL import Image

from tests.fixtures.hostile_side import MODEL_MEMORY_LIMIT, run_cli, run_python

REPO = Path(__file__).resolve().parents[1]
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
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats.existing import load_existing_labels
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
    # 6 MB: parsed, 4 million values would take 140 MB (the 150 MB file of the issue took 4.1 GB); the cap is 1 million
    (root / "annotations.json").write_bytes(b'{"images": [' + b"{}," * 2_000_000 + b"{}]}")
    r = run_python(_PEAK_GROWTH.format(root=str(root)))
    assert r.returncode == 0, r.err
    reason, growth = json.loads(r.out)
    assert reason == (f"{root / 'annotations.json'}: not read: about 4,000,003 JSON values in 6,000,016 bytes, "
                      "more than the 1,000,000 a COCO file may have (each costs memory when parsed)")
    assert growth < 40 << 20, f"RSS grew by {growth >> 20} MB: the file was parsed"


def test_a_coco_file_over_the_size_limit_is_refused_without_being_read(tmp_path: Path) -> None:
    root = _coco_folder(tmp_path)
    with open(root / "annotations.json", "wb") as fh:  # sparse: 33 MB long, nothing on disk
        fh.truncate(33 << 20)
    r = run_python(_PEAK_GROWTH.format(root=str(root)))
    assert r.returncode == 0, r.err
    reason, growth = json.loads(r.out)
    assert reason == (f"{root / 'annotations.json'}: not read: 34,603,008 bytes, more than the 33,554,432 bytes "
                      "such a file may have")
    assert growth < 40 << 20, f"RSS grew by {growth >> 20} MB: the file was read"


def test_a_coco_file_under_both_limits_does_not_cost_many_times_its_size(tmp_path: Path) -> None:
    """Image entries with distinct names cost ~290 bytes per counted value: a 60 MB file (1.33 M
    entries, under the old 128 MB and 4,000,000-value caps) kept 917 MB, and three of them kept
    the window 98 s and 2 GB. Under the new caps one file keeps at most what the session's cache
    counts for it (``_PARSED_BYTES_PER_VALUE``), at most ~300 MB; a file of this shape at 1.33 M
    entries is refused unparsed."""
    from autolabel_gui.formats import coco

    path = tmp_path / "annotations.json"
    n = 133_000  # 5.6 MB, 399,000 values: under both caps, parsed in ~1.5 s
    path.write_text('{"images":[' + ",".join(f'{{"id":{i},"file_name":"f{i}/{i}.jpg"}}' for i in range(n))
                    + '],"annotations":[],"categories":[]}')
    child = ("from autolabel_gui.formats import coco\n"
             "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
             f"r0 = rss(); idx = coco.load_index({str(path)!r}); print(rss() - r0, idx.estimated_bytes)\n")
    out = run_python(child)
    assert out.returncode == 0, out.err
    kept, estimated = (int(v) for v in out.out.split())
    assert kept <= estimated, f"{kept / 2**20:.0f} MB kept, {estimated / 2**20:.0f} MB counted"
    assert estimated <= coco.MAX_JSON_VALUES * coco._PARSED_BYTES_PER_VALUE <= 300 * 10**6
    with pytest.raises(AnnotationError, match="more than the 1,000,000 a COCO file may have"):
        path.write_text('{"images":[' + ",".join(f'{{"id":{i},"file_name":"{i}.jpg"}}' for i in range(340_000))
                        + "]}")
        coco.parse_coco(path)


def test_parsed_coco_files_kept_are_bounded_least_recently_used_first(tmp_path: Path, monkeypatch) -> None:
    """The parsed files were kept for the life of the process whatever their number; past
    ``KEPT_INDEX_BYTES`` (counted) the least recently used is dropped and parsed again if needed."""
    from autolabel_gui.formats import coco

    paths = []
    for name in "abc":
        path = tmp_path / name / "annotations.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(100)]}))
        paths.append(path)
    monkeypatch.setattr(coco, "_cache", coco.OrderedDict())
    first = coco.load_index(paths[0])
    monkeypatch.setattr(coco, "KEPT_INDEX_BYTES", first.estimated_bytes * 2)
    second = coco.load_index(paths[1])
    assert coco.load_index(paths[0]) is first  # used again: now the most recent
    coco.load_index(paths[2])
    assert coco.load_index(paths[0]) is first, "the most recently used file was dropped"
    assert coco.load_index(paths[1]) is not second, "three files kept past the bound"


# -- one image with a crowd of boxes -----------------------------------------------------------

def _crowd(count: int) -> list[Box]:
    return [Box(i % 600, (i // 600) * 4 % 440, i % 600 + 30, (i // 600) * 4 % 440 + 30, "cat") for i in range(count)]


def test_a_voc_file_over_the_box_cap_opens_read_only_naming_it_and_the_count(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("over.jpg", "at.jpg"):
        Image.new("RGB", (640, 480)).save(root / name)
    write_voc(root / "over.xml", ImageLabels("over.jpg", 640, 480, boxes=_crowd(MAX_BOXES_PER_IMAGE + 1)))
    write_voc(root / "at.xml", ImageLabels("at.jpg", 640, 480, boxes=_crowd(MAX_BOXES_PER_IMAGE)))
    before = (root / "over.xml").read_bytes()
    session = ReviewSession(ImageFolder(root), None, ["cat"], None, 0.35)

    over = session.open("over.jpg")
    assert over.state.read_only
    assert over.problem == (f"{root / 'over.xml'}: 2,001 boxes, more than the 2,000 one image may have (a crowd "
                            "that large cannot be reviewed box by box); opened read-only, the file is left as it is")
    at = session.open("at.jpg")
    assert not at.state.read_only and at.problem is None and len(at.state.accepted_boxes()) == 2000
    assert session.save("over.jpg", verify=True).error is not None
    assert (root / "over.xml").read_bytes() == before


def test_yolo_and_coco_labels_over_the_box_cap_are_refused_naming_the_count(tmp_path: Path) -> None:
    root = tmp_path / "yolo"
    root.mkdir()
    Image.new("RGB", (64, 48)).save(root / "a.jpg")
    (root / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n\n" * 2500, encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"a\.txt: 2,500 boxes, more than the 2,000 one image may have"):
        load_existing_labels(ImageFolder(root), "a.jpg", ["cat"])
    coco = _coco_folder(tmp_path)
    (coco / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": i, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in range(2001)]}))
    with pytest.raises(AnnotationError, match=r"annotations\.json: 2,001 boxes, more than the 2,000"):
        load_existing_labels(ImageFolder(coco), "a.jpg", [])


# -- a Ray address that cannot answer ------------------------------------------------------------

@pytest.mark.parametrize(("address", "why"), [
    ("256.1.1.1:99999", "'256.1.1.1:99999': the port must be a number from 1 to 65535"),
    ("256.1.1.1:6379", "'256.1.1.1:6379': 256.1.1.1 is not an IPv4 address"),
    ("10.0.0.1:0", "'10.0.0.1:0': the port must be a number from 1 to 65535"),
    ("head-node", "'head-node' is not auto, local or HOST:PORT"),
    ("[::g]:6379", "'[::g]:6379': [::g] is not an IPv6 address"),
    ("no-such-host.invalid:6379", "'no-such-host.invalid:6379': cannot resolve the host no-such-host.invalid"),
])
def test_a_ray_address_that_cannot_be_one_is_an_argparse_error(tmp_path: Path, address: str, why: str,
                                                             capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray is never imported for it
    with pytest.raises(SystemExit) as exited:
        main(["label", str(tmp_path), "--classes", "dog", "--ray", address])
    assert exited.value.code == 2
    assert f"argument --ray: {why}" in capsys.readouterr().err


_JOIN = """
import socket, sys, time
from autolabel_gui.app import cluster
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)  # accepts connections, never speaks: not a Ray cluster
closed = socket.socket()
closed.bind(("127.0.0.1", 0))
closed_port = closed.getsockname()[1]
closed.close()
ray = cluster.require_ray()
cluster.JOIN_TIMEOUT_S = {join_s}
for port in (closed_port, listener.getsockname()[1]):
    print("joining", flush=True)
    start = time.monotonic()
    try:
        cluster.connect_ray(ray, f"127.0.0.1:{{port}}")
    except cluster.ClusterError as exc:
        print(round(time.monotonic() - start), exc, flush=True)
"""


def test_a_ray_address_that_does_not_answer_is_given_up_in_bounded_time(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    r = run_python(_JOIN.format(join_s=3), timeout=60)
    assert r.returncode == 0, r.err
    refused, silent = [line for line in r.out.splitlines() if line != "joining"]
    assert refused.startswith("0 cannot reach a Ray cluster at '127.0.0.1:") and "nothing answers at" in refused
    assert silent.startswith("3 cannot reach") and "accepted a connection but did not let this run join within 3 s" \
        in silent, silent


@pytest.mark.timeout(90)
def test_sigterm_ends_a_run_waiting_to_join_a_ray_cluster() -> None:
    pytest.importorskip("ray")
    child = subprocess.Popen([sys.executable, "-c", _JOIN.format(join_s=300)], cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "joining\n"
        assert "nothing answers" in child.stdout.readline()
        assert child.stdout.readline() == "joining\n"
        time.sleep(3)  # inside Ray's retries
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=15) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_folder_batch_size_that_sizes_memory_is_bounded(tmp_path):
    """A folder's ``batch_size`` sizes the prepared inputs (about 2 x batch x 12.8 MB): bounded as the
    Settings dialog bounds it, a bigger one ignored with a note and never saved."""
    from autolabel_gui.app.project import MAX_BATCH_SIZE, ProjectSettings

    path = ProjectSettings.path_for(tmp_path)
    path.parent.mkdir()
    path.write_text(json.dumps({"classes": ["cat"], "batch_size": 100_000}), encoding="utf-8")
    settings = ProjectSettings.load(tmp_path)
    assert settings.batch_size == ProjectSettings().batch_size
    assert any("batch_size" in note and str(MAX_BATCH_SIZE) in note for note in settings.notes)
    assert ProjectSettings.load(tmp_path).batch_size <= MAX_BATCH_SIZE


# -- a batch of large model inputs ------------------------------------------------------------------

@pytest.mark.parametrize(("batch", "extra", "expected"), [
    (64, {"image_size": "2048", "max_size": "2048"}, 10),  # the folder that reached 23.6 GB: 50 MB an input
    (64, {}, 41),  # Grounding DINO's 800 x 1333: 12.8 MB an input
    (8, {}, 8),
    (4, {"image_size": "2048", "max_size": "2048"}, 4),
    (64, {"image_size": "not a size"}, 10),  # refused later by the model; counted as the largest
])
def test_the_batch_is_lowered_so_its_prepared_inputs_fit_the_budget(batch: int, extra: dict, expected: int,
                                                                     caplog) -> None:
    """batch_size 64 with image_size/max_size 2048, each within its own bound, made ``label``
    reach 23.6 GB resident (a global OOM kill): a batch and its prefetch of prepared inputs
    (12 bytes a pixel) now stay within ``PREPARED_INPUT_BUDGET``, and the log says so once."""
    from autolabel_gui.core.ontology import Ontology
    from autolabel_gui.detection.base import DetectorConfig
    from autolabel_gui.detection.batch import PREPARED_INPUT_BUDGET, BatchDetector, effective_batch_size

    assert effective_batch_size(batch, extra) == expected
    sides = [int(extra.get(k, d)) if str(extra.get(k, d)).isdigit() else 2048
             for k, d in (("image_size", 800), ("max_size", 1333))]
    assert expected == batch or 2 * expected * sides[0] * sides[1] * 12 <= PREPARED_INPUT_BUDGET
    model = BatchDetector(DetectorConfig(batch_size=batch, extra=extra), Ontology(()),
                          factory=lambda config: pytest.fail("no model is built"))
    assert model.batch_size == expected
    assert caplog.text.count("lowered to") == (expected < batch)
