"""ProposalCache: hits, misses, invalidation, concurrency, corruption, read-only folders."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.records import ImageKey, Outcome, ReviewRecord
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.ids import run_id_for

from tests.fixtures.hostile import child_sees_permissions, permission_bits_bite

BOXES = [Box(1.5, 2.0, 30.25, 40.0, "dog", 0.81, BoxState.PROPOSED),
         Box(0.0, 0.0, 5.0, 5.0, "person", 0.06, BoxState.PROPOSED)]


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a" / "b.jpg"
    path.parent.mkdir()
    path.write_bytes(b"not really a jpeg")
    return tmp_path, "a/b.jpg"


def test_put_then_get_roundtrips_boxes(tmp_path, image):
    root, rel = image
    key = ImageKey.from_path(root, rel)
    with ProposalCache(tmp_path / "c.sqlite") as cache:
        assert cache.get(key, "run1") is None
        cache.put(key, "run1", BOXES)
        assert cache.get(key, "run1") == BOXES
        assert cache.get(key, "run2") is None
        assert cache.cached_relpaths("run1") == {rel}
        assert cache.cached_relpaths("run2") == set()
    with ProposalCache(tmp_path / "c.sqlite") as reopened:
        assert reopened.get(key, "run1") == BOXES


def test_changed_file_is_a_miss(tmp_path, image):
    root, rel = image
    key = ImageKey.from_path(root, rel)
    cache = ProposalCache(tmp_path / "c.sqlite")
    cache.put(key, "run1", BOXES)
    (root / rel).write_bytes(b"another content, another size")
    os.utime(root / rel, ns=(key.mtime_ns + 10**9, key.mtime_ns + 10**9))
    changed = ImageKey.from_path(root, rel)
    assert changed != key
    assert cache.get(changed, "run1") is None
    assert cache.get(replace(key, mtime_ns=key.mtime_ns + 1), "run1") is None
    cache.put(changed, "run1", BOXES[:1])
    assert cache.get(changed, "run1") == BOXES[:1]
    assert cache.get(key, "run1") is None


def test_invalidate_drops_every_run_of_one_image(tmp_path):
    cache = ProposalCache(tmp_path / "c.sqlite")
    a, b = ImageKey("a.jpg", 1, 2), ImageKey("b.jpg", 1, 2)
    for run in ("r1", "r2"):
        cache.put(a, run, BOXES)
        cache.put(b, run, BOXES)
    cache.invalidate("a.jpg")
    assert cache.get(a, "r1") is None and cache.get(a, "r2") is None
    assert cache.get(b, "r1") == BOXES


def test_run_id_changes_with_prompts_weights_and_text_threshold_only(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"0" * 10)
    config = DetectorConfig(weights=str(weights), precision="fp32")
    onto = Ontology.from_names("person,dog")
    rid = run_id_for(config, onto)
    assert rid == run_id_for(config, Ontology.from_names(["person", "dog"]))
    assert rid != run_id_for(replace(config, precision="fast"), onto)
    assert rid == run_id_for(replace(config, device="cuda", batch_size=8, box_threshold=0.5), onto)
    assert rid != run_id_for(config, Ontology.from_names("person,dog", {"dog": "puppy"}))
    assert rid != run_id_for(config, Ontology.from_names("person,cat"))
    assert rid != run_id_for(replace(config, text_threshold=0.3), onto)
    assert rid != run_id_for(replace(config, precision="fp16"), onto)
    weights.write_bytes(b"1" * 11)
    assert rid != run_id_for(config, onto)


def test_run_id_follows_the_detector_model_id_without_importing_torch(tmp_path, monkeypatch):
    from autolabel_gui.detection import fingerprint, gdino_spec, ids

    weights, cfg, bert = tmp_path / "w.pth", tmp_path / "cfg.py", tmp_path / "bert"
    weights.write_bytes(b"0" * 10)
    bert.mkdir()
    (bert / "vocab.txt").write_text("a\n")
    cfg.write_text(f"hidden_dim = 256\ntext_encoder_type = 'bert-base-uncased'\ntext_encoder_type = {str(bert)!r}\n")
    config = DetectorConfig(weights=str(weights), config=str(cfg))
    onto = Ontology.from_names("person,dog")
    rid, mid = run_id_for(config, onto), ids.model_id_for(config)
    assert gdino_spec.config_text_encoder(cfg.read_text()) == str(bert)
    assert mid == ids.model_id_for(replace(config, text_encoder=str(bert))), "the config file's text encoder"

    os.utime(cfg, ns=(1, 1))
    assert (run_id_for(config, onto), ids.model_id_for(config)) == (rid, mid), "the config counts by content"
    changes = [
        lambda: (bert / "vocab.txt").write_text("a\nb\n"),
        lambda: cfg.write_text(cfg.read_text() + "image_size = 640\n"),
        lambda: monkeypatch.setattr(fingerprint, "SCORING_VERSION", "another scoring"),
    ]
    for change in changes:
        change()
        assert run_id_for(config, onto) != rid and ids.model_id_for(config) != mid
        rid, mid = run_id_for(config, onto), ids.model_id_for(config)

    probe = "import sys, autolabel_gui.detection.ids; print(sorted({'torch', 'groundingdino'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_review_records_roundtrip(tmp_path):
    cache = ProposalCache(tmp_path / "c.sqlite")
    rejected = [BOXES[0].with_state(BoxState.REJECTED)]
    record = ReviewRecord("run1", rejected, [Outcome("dog", 0.81, "rejected"), Outcome("cat", None, "accepted")])
    cache.put_review("x/é.jpg", record)
    assert cache.get_review("x/é.jpg") == record
    assert cache.get_review("other.jpg") is None
    assert list(cache.iter_reviews()) == [("x/é.jpg", record)]
    cache.invalidate("x/é.jpg")
    assert cache.get_review("x/é.jpg") == record, "re-detecting must not bring rejected boxes back"
    with pytest.raises(ValueError):
        Outcome("dog", 0.5, "maybe")


def test_two_threads_write_and_read_concurrently(tmp_path):
    cache = ProposalCache(tmp_path / "c.sqlite")
    errors: list[BaseException] = []

    def work(prefix: str) -> None:
        try:
            for i in range(150):
                key = ImageKey(f"{prefix}{i}.jpg", i, i)
                cache.put(key, "run", BOXES)
                assert cache.get(key, "run") == BOXES
        except BaseException as exc:  # surfaced below: an assert in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache.cached_relpaths("run")) == 300


def test_two_connections_like_two_processes_share_the_file(tmp_path):
    gui, headless = ProposalCache(tmp_path / "c.sqlite"), ProposalCache(tmp_path / "c.sqlite")
    key = ImageKey("a.jpg", 1, 1)
    headless.put(key, "run", BOXES)
    assert gui.get(key, "run") == BOXES
    gui.put_review("a.jpg", ReviewRecord("run"))
    assert headless.get_review("a.jpg") == ReviewRecord("run")


def test_corrupt_cache_file_is_moved_aside_with_a_warning(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 500)
    with caplog.at_level(logging.WARNING):
        cache = ProposalCache(path)
    assert cache.moved_aside is not None and cache.moved_aside.name.startswith("c.sqlite.corrupt-")
    assert cache.moved_aside.read_bytes() == b"this is not sqlite" * 500
    assert "corrupt" in caplog.text and str(cache.moved_aside) in caplog.text
    key = ImageKey("a.jpg", 1, 1)
    cache.put(key, "run", BOXES)
    assert cache.get(key, "run") == BOXES


def test_cache_corrupted_while_open_recovers(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    cache = ProposalCache(path)
    for i in range(200):
        cache.put(ImageKey(f"{i}.jpg", i, i), "run", BOXES * 20)
    cache.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    start = 3 * 4096  # keep the header and the two table roots: opening succeeds, reading fails
    data[start:] = b"\xff" * (len(data) - start)
    path.write_bytes(bytes(data))
    cache = ProposalCache(path)
    assert cache.moved_aside is None
    with caplog.at_level(logging.WARNING):
        assert cache.get(ImageKey("7.jpg", 7, 7), "run") is None
    assert cache.moved_aside is not None and "corrupt" in caplog.text
    cache.put(ImageKey("7.jpg", 7, 7), "run", BOXES)
    assert cache.get(ImageKey("7.jpg", 7, 7), "run") == BOXES


def test_for_folder_uses_the_state_dir(tmp_path):
    cache = ProposalCache.for_folder(tmp_path)
    assert cache.path == tmp_path / ".autolabel" / "cache.sqlite"


def test_for_folder_falls_back_to_user_cache_when_folder_is_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / ".autolabel").write_text("a file where the state folder should be")
    cache = ProposalCache.for_folder(folder)
    assert cache.path.is_relative_to(tmp_path / "usercache" / "autolabel-gui")
    assert (cache.path.parent / "folder.txt").read_text().strip() == str(folder.resolve())
    assert ProposalCache.for_folder(folder).path == cache.path, "the same folder maps to the same cache"


def test_for_folder_falls_back_when_folder_is_read_only(tmp_path):
    """Run in a child without root's permission override, so the 0555 bits bite even for root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    probe = ("import sys; from autolabel_gui.core.cache import ProposalCache; "
             "print(ProposalCache.for_folder(sys.argv[1]).path)")
    folder.chmod(0o555)
    try:
        if not child_sees_permissions(locked):
            pytest.skip("root here, and the permission override cannot be dropped")
        proc = subprocess.run([sys.executable, "-c", probe, str(folder)], preexec_fn=permission_bits_bite(),
                              env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "usercache")},
                              capture_output=True, text=True, check=True)
    finally:
        folder.chmod(0o755)
        locked.chmod(0o755)
    assert Path(proc.stdout.strip()).is_relative_to(tmp_path / "usercache" / "autolabel-gui")
    assert not (folder / ".autolabel").exists()


def test_outputs_remember_what_the_tool_wrote_and_old_caches_gain_the_table(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    # version 1's tables exactly (another text would be set aside: test_hostile_state)
    conn.executescript("CREATE TABLE proposals (relpath TEXT NOT NULL, run_id TEXT NOT NULL, size INTEGER NOT NULL, "
                       "mtime_ns INTEGER NOT NULL, boxes TEXT NOT NULL, created_ns INTEGER NOT NULL, "
                       "PRIMARY KEY (relpath, run_id)) WITHOUT ROWID;"
                       "CREATE TABLE reviews (relpath TEXT PRIMARY KEY, record TEXT NOT NULL, "
                       "updated_ns INTEGER NOT NULL) WITHOUT ROWID;"
                       "INSERT INTO proposals VALUES ('a.jpg', 'run', 1, 1, '[]', 0);"
                       "PRAGMA user_version=1;")
    conn.close()
    cache = ProposalCache(path)
    assert cache.get(ImageKey("a.jpg", 1, 1), "run") == [], "an older cache keeps its proposals"
    xml = tmp_path / "voc" / "a.xml"
    assert not cache.wrote("ab" * 32)
    cache.put_output(xml, "ab" * 32)
    assert cache.wrote("ab" * 32) and cache.output_digests() == {"ab" * 32}
