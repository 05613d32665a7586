"""``label --ray`` on a real local Ray cluster with the tiny checkpoint: what it writes equals the local run.

One cluster (2 CPUs, no dashboard) serves the module; ``--ray local`` in this process reuses it, as
it reuses any Ray the process already started. Bit-equal floats need the same arithmetic: the
actors run torch on one thread (Ray's rule for a fractional CPU), so the local runs compared with
them do too, and both use batches of one image (Ray composes batches its own way, and images
padded to another batch-mate's size come out equal only up to float noise). Then the cache rows
and the VOC files can be compared byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from autolabel_gui.app.cluster import ClusterError, ClusterOptions, DetectActor, FolderNotVisible, _dataset, _explain
from autolabel_gui.app.cluster import resolve as resolve_pool
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.cli import main

from tests.fixtures.hostile import build_hostile_corpus, label_args, small_model_settings, voc_files
from tests.fixtures.pipeline import SAMPLES, cache_rows, sample_photos

ray = pytest.importorskip("ray", reason="the cluster extra is not installed (pip install -e '.[cluster]')")

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def cluster():
    """A real local Ray cluster for the module: started once, shut down after."""
    if ray.is_initialized():  # pragma: no cover - another module left one running
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _photos(dest: Path, broken: bool = True) -> Path:
    """The bundled sample photos with the small model's settings."""
    small_model_settings(sample_photos(dest, broken))
    return dest


def _rows(folder: Path) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(folder / ".autolabel" / "cache.sqlite")
    try:
        return conn.execute("SELECT relpath, run_id, size, mtime_ns, boxes FROM proposals ORDER BY relpath").fetchall()
    finally:
        conn.close()


def _voc_bytes(voc_dir: Path, image_root: Path) -> dict[str, bytes]:
    """Each VOC file, with the image folder's path (the one thing two copies must differ in) masked."""
    return {str(p.relative_to(voc_dir)): p.read_bytes().replace(str(image_root).encode(), b"ROOT")
            for p in voc_files(voc_dir)}


def _skipped(err: str, root: Path) -> list[str]:
    return sorted(line.replace(str(root), "ROOT") for line in err.splitlines() if line.startswith("skipped "))


def test_cluster_run_writes_the_cache_rows_and_voc_bytes_of_the_local_run(tmp_path, tiny_gdino, cluster, capsys,
                                                                          one_torch_thread):
    local, remote = _photos(tmp_path / "local" / "photos"), _photos(tmp_path / "ray" / "photos")
    args = [*label_args(tiny_gdino, batch=1), "--classes", "person,cat,cup"]

    assert main(["label", str(local), "--voc-dir", str(local.parent / "voc"), *args]) == 1
    local_out, local_err = capsys.readouterr()
    assert main(["label", str(remote), "--voc-dir", str(remote.parent / "voc"), *args,
                 "--ray", "local", "--workers", "2"]) == 1, "the broken image makes both runs report failure"
    ray_out, ray_err = capsys.readouterr()

    photos = sorted(p.name for p in SAMPLES.glob("*.jpg"))
    assert [row[0] for row in _rows(remote)] == photos
    assert _rows(remote) == _rows(local), "same run id, file identity and proposals, to the last bit"
    voc = _voc_bytes(remote.parent / "voc", remote)
    assert sorted(voc) == [Path(p).with_suffix(".xml").name for p in photos]
    assert voc == _voc_bytes(local.parent / "voc", local)
    assert _skipped(ray_err, remote) == _skipped(local_err, local) and len(_skipped(ray_err, remote)) == 1
    assert "skipped broken.jpg: " in ray_err
    assert f"{len(photos) + 1} images" in ray_out and f"{len(photos)} detected" in ray_out and "1 failed" in ray_out
    assert ray.is_initialized(), "a Ray the process had started is left running for it"

    assert main(["label", str(remote), "--voc-dir", str(remote.parent / "voc"), *args, "--ray", "local"]) == 1
    out, err = capsys.readouterr()
    assert "0 detected" in out and f"{len(photos)} from cache" in out, "a rerun finds every photo in the cache"
    assert "1 images to 1 worker(s) on the Ray cluster" in err, "only the image that failed goes out again"
    assert "skipped broken.jpg: " in err


def test_killed_driver_loses_only_what_was_in_flight(tmp_path, tiny_gdino, cluster, capsys):
    """A driver joined to the cluster by its address is killed; the rerun finishes without redoing work."""
    folder = _photos(tmp_path / "photos", broken=False)
    db = folder / ".autolabel" / "cache.sqlite"
    args = ["label", str(folder), *label_args(tiny_gdino, batch=1), "--classes", "person,cat,cup", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, "-m", "autolabel_gui", *args, "--ray", cluster], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not cache_rows(db):
            assert driver.poll() is None, f"the driver ended before it was killed: {driver.stderr.read()}"
            time.sleep(0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.communicate(timeout=60)
    before = cache_rows(db)
    photos = sorted(p.name for p in SAMPLES.glob("*.jpg"))
    assert 1 <= len(before) < len(photos)

    assert main([*args, "--ray", "local"]) == 0
    out = capsys.readouterr().out
    after = cache_rows(db)
    assert sorted(after) == photos
    assert {rel: after[rel] for rel in before} == before, "an image committed before the kill never ran again"
    assert f"{len(photos) - len(before)} detected" in out and f"{len(before)} from cache" in out


def test_hostile_folder_is_reported_as_the_local_run_reports_it(tmp_path, tiny_gdino, cluster, capsys,
                                                                one_torch_thread):
    local = build_hostile_corpus(tmp_path / "local" / "images", tmp_path / "local" / "voc", huge=False)
    remote = build_hostile_corpus(tmp_path / "ray" / "images", tmp_path / "ray" / "voc", huge=False)
    runs = []
    for corpus, extra in ((local, []), (remote, ["--ray", "local", "--workers", "2"])):
        small_model_settings(corpus.root)
        rc = main(["label", str(corpus.root), "--voc-dir", str(corpus.voc_dir), *label_args(tiny_gdino, batch=1),
                   *extra])
        out, err = capsys.readouterr()
        corpus.unlock()
        assert "Traceback" not in err
        # Two corpora written one after the other: the same bytes, not the same mtimes.
        rows = [(rel, run_id, size, boxes) for rel, run_id, size, _, boxes in _rows(corpus.root)]
        runs.append((rc, out.splitlines()[0].split(" in ")[0], _skipped(err, corpus.root), rows))
    assert runs[1][0] == runs[0][0] == 1
    assert runs[1][1] == runs[0][1], "the same number of images"
    assert runs[1][2] == runs[0][2] and len(runs[1][2]) == len(remote.unreadable), "every broken file, once"
    assert runs[1][3] == runs[0][3]
    assert _voc_bytes(remote.voc_dir, remote.root) == _voc_bytes(local.voc_dir, local.root)


def test_a_worker_that_cannot_see_the_folder_says_so(tmp_path, tiny_gdino, cluster):
    settings = ProjectSettings(classes=["dog"])
    missing = tmp_path / "on-another-machine"
    with pytest.raises(FolderNotVisible, match="every worker sees"):
        DetectActor(str(missing), tiny_gdino.detector_config(), settings.ontology(), 1)

    rows = _dataset(ray, missing, ["a.jpg"], tiny_gdino.detector_config(), settings.ontology(), 1, 0.0).iter_rows()
    with pytest.raises(ray.exceptions.RayError) as raised:
        list(rows)
    explained = _explain(raised.value)
    assert isinstance(explained, ClusterError)
    assert str(missing) in str(explained) and "file system that every worker sees" in str(explained)
    assert "Traceback" not in str(explained)


def test_the_pool_must_fit_the_cluster():
    assert resolve_pool(ClusterOptions("auto"), {"CPU": 8.0, "GPU": 4.0}) == (4, 1.0), "one worker per GPU"
    assert resolve_pool(ClusterOptions("auto", 2, 0.5), {"CPU": 8.0, "GPU": 1.0}) == (2, 0.5)
    assert resolve_pool(ClusterOptions("local"), {"CPU": 2.0}) == (1, 0.0)
    with pytest.raises(ClusterError, match="need 2 GPUs; the cluster has 1"):
        resolve_pool(ClusterOptions("auto", 2, 1.0), {"CPU": 8.0, "GPU": 1.0})
    with pytest.raises(ClusterError, match="need 2 CPUs; the cluster has 1"):
        resolve_pool(ClusterOptions("local", 4), {"CPU": 1.0})


def test_cluster_options_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "a.jpg").write_bytes(b"")
    assert main(["label", str(tmp_path), "--classes", "dog", "--workers", "2"]) == 2
    assert "--workers need(s) --ray ADDRESS" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["label", str(tmp_path), "--classes", "dog", "--ray", "local", "--workers", "0"])
    assert exited.value.code == 2 and "argument --workers: 0 is not at least 1" in capsys.readouterr().err

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    assert main(["label", str(tmp_path), "--classes", "dog", "--ray", "auto"]) == 2
    assert "pip install 'autolabel-gui[cluster]'" in capsys.readouterr().err


def test_workers_run_the_path_the_run_id_names(monkeypatch):
    """``auto`` is planned once, where the run id is computed; a GPU worker must not re-plan it."""
    from autolabel_gui.app.cluster import for_workers
    from autolabel_gui.detection import compute_path
    from autolabel_gui.detection.base import DetectorConfig
    from autolabel_gui.detection.path_evidence import Evidence

    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: False)
    monkeypatch.setattr(compute_path, "shipped_evidence", lambda: Evidence())  # no path proven: fast on any CPU
    assert for_workers(DetectorConfig(precision="auto", device="auto")).precision == "fast"
    assert for_workers(DetectorConfig(precision="fp16", device="cuda")).precision == "fp16"
    monkeypatch.setattr(compute_path, "accelerator_expected", lambda device: True)
    assert for_workers(DetectorConfig(precision="auto", device="auto")).precision == "gpu-auto"
