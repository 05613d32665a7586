"""DetectionPipeline logic with a fake detector: order, caching, bad images, memory, cancellation, OOM."""

from __future__ import annotations

import threading

import pytest
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable
from autolabel_gui.detection.ids import SCORE_FLOOR
from autolabel_gui.detection.pipeline import DetectionPipeline, is_out_of_memory
from PIL import Image

from tests.fixtures.pipeline import (
    CountingLoader,
    FakeFactory,
    SimpleFolder,
    expected_boxes,
    pil_loader,
    write_images,
)

ONTO = Ontology.from_names("person,dog")
NAMES = [f"img{i}.png" for i in range(1, 11)]


@pytest.fixture
def setup(pipeline_images, tmp_path):
    folder = SimpleFolder(pipeline_images, list(NAMES))
    cache = ProposalCache(tmp_path / "cache.sqlite")
    return folder, cache


def make(folder, cache, factory, *, onto=ONTO, loader=pil_loader, config=DetectorConfig(), **kw):
    events: list[str] = []
    p = DetectionPipeline(folder, cache, config, onto, factory=factory, loader=loader,
                          on_event=lambda kind, msg: events.append(f"{kind}: {msg}"), **kw)
    p.events = events
    return p


def test_misses_run_in_batches_in_order_and_hits_skip_the_model(setup):
    folder, cache = setup
    factory = FakeFactory()
    results = list(make(folder, cache, factory, batch_size=3).run(NAMES))
    assert [r.relpath for r in results] == NAMES
    assert all(r.ok and not r.from_cache for r in results)
    assert factory.calls == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert results[4].boxes == expected_boxes(4, (32, 48), ONTO, SCORE_FLOOR)
    assert cache.get(ImageKey.from_path(folder.root, "img5.png"), results and make(folder, cache, factory).run_id) \
        == results[4].boxes

    again = FakeFactory()
    cached = list(make(folder, cache, again, batch_size=3).run(NAMES))
    assert [(r.relpath, r.boxes) for r in cached] == [(r.relpath, r.boxes) for r in results]
    assert all(r.from_cache for r in cached)
    assert again.configs == [], "a fully cached folder must never build the model"


def test_changed_file_and_changed_prompts_run_again(setup):
    folder, cache = setup
    list(make(folder, cache, FakeFactory(), batch_size=4).run(NAMES))
    image = pil_loader(folder.root / "img4.png").copy()
    image[5, 5] = (255, 255, 255)
    Image.fromarray(image).save(folder.root / "img4.png")  # an edited image: new size and mtime
    factory = FakeFactory()
    results = list(make(folder, cache, factory, batch_size=4).run(NAMES))
    assert factory.calls == [[3]]
    assert [r.relpath for r in results if not r.from_cache] == ["img4.png"]

    other = FakeFactory()
    list(make(folder, cache, other, onto=Ontology.from_names("person,dog", {"dog": "puppy"}), batch_size=5).run(NAMES))
    assert other.calls == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_corrupt_and_missing_images_are_reported_and_the_run_goes_on(setup):
    folder, cache = setup
    (folder.root / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (folder.root / "img7.png").unlink()
    factory = FakeFactory()
    pipeline = make(folder, cache, factory, batch_size=4)
    results = {r.relpath: r for r in pipeline.run(NAMES)}
    assert set(results) == set(NAMES)
    assert str(folder.root / "img3.png") in results["img3.png"].error
    assert str(folder.root / "img7.png") in results["img7.png"].error
    assert "No such file" in results["img7.png"].error
    assert [n for n, r in results.items() if r.ok] == [n for n in NAMES if n not in ("img3.png", "img7.png")]
    assert cache.cached_relpaths(pipeline.run_id) == {n for n, r in results.items() if r.ok}


def test_decoded_images_alive_stay_bounded(tmp_path):
    names = [f"f{i}.png" for i in range(60)]
    write_images(tmp_path / "many", names)
    folder = SimpleFolder(tmp_path / "many", names)
    loader = CountingLoader()
    factory = FakeFactory(loader=loader)
    pulled: list[str] = []

    def source():
        for n in names:
            pulled.append(n)
            yield n

    run = make(folder, ProposalCache(tmp_path / "c.sqlite"), factory, loader=loader,
               batch_size=3, prefetch=2).run(source())
    first = next(run)
    assert first.relpath == "f0.png"
    assert len(pulled) <= 5, "paths are pulled lazily, only as far as the prefetch reaches"
    rest = list(run)
    assert len(rest) == 59 and all(r.ok for r in rest)
    assert len(loader.loaded) == 60
    assert loader.max_alive <= 5
    assert max(factory.built[0].alive_during_calls) <= 5


def test_prepare_runs_on_decode_threads_and_prepared_images_count_as_alive(tmp_path):
    names = [f"f{i}.png" for i in range(60)]
    write_images(tmp_path / "many", names)
    folder = SimpleFolder(tmp_path / "many", names)
    loader = CountingLoader()
    factory = FakeFactory(loader=loader, prepares=True)
    results = list(make(folder, ProposalCache(tmp_path / "c.sqlite"), factory, loader=loader,
                        batch_size=3, prefetch=2).run(names))
    detector = factory.built[0]

    assert [r.relpath for r in results] == names and all(r.ok for r in results)
    assert [r.boxes for r in results] == [expected_boxes(i, (32, 48), ONTO, SCORE_FLOOR) for i in range(60)]
    assert threading.get_ident() not in set(detector.prepare_threads), "prepare must run off the consuming thread"
    prepared = [flag for call in detector.prepared_in_calls for flag in call]
    # Images decoded before the model was built (at most the first batch + prefetch) stay raw.
    assert all(prepared[5:]) and len(detector.prepare_threads) == sum(prepared) >= 55
    assert loader.max_alive <= 5
    assert max(detector.alive_during_calls) <= 5

    plain = FakeFactory()
    unprepared = list(make(folder, ProposalCache(tmp_path / "c2.sqlite"), plain, batch_size=3, prefetch=2).run(names))
    assert [r.boxes for r in unprepared] == [r.boxes for r in results]
    assert plain.built[0].prepared_in_calls and not any(f for c in plain.built[0].prepared_in_calls for f in c)


def test_cancel_stops_after_the_batch_in_flight(setup):
    folder, cache = setup
    gate, cancel = threading.Event(), threading.Event()
    loader = CountingLoader()
    factory = FakeFactory(gate=gate)
    pipeline = make(folder, cache, factory, loader=loader, batch_size=2, prefetch=2)
    results: list = []
    t = threading.Thread(target=lambda: results.extend(pipeline.run(NAMES, cancel)))
    t.start()
    while not factory.built or not factory.built[0].started.wait(0.01):
        pass
    cancel.set()
    gate.set()
    t.join(10)
    assert not t.is_alive()
    assert [r.relpath for r in results] == NAMES[:2]
    assert factory.calls == [[0, 1]]
    assert len(loader.loaded) <= 4
    assert cache.cached_relpaths(pipeline.run_id) == set(NAMES[:2]), "the finished batch is committed"


def test_detector_exception_fails_only_the_bad_image(setup):
    folder, cache = setup
    factory = FakeFactory(fail_on={5})
    results = list(make(folder, cache, factory, batch_size=4).run(NAMES))
    bad = [r for r in results if not r.ok]
    assert [r.relpath for r in bad] == ["img6.png"]
    assert "ValueError" in bad[0].error and "image [5]" in bad[0].error
    assert [r.relpath for r in results] == NAMES
    assert len([r for r in results if r.ok]) == 9


def test_out_of_memory_lowers_the_batch_size(setup):
    folder, cache = setup
    factory = FakeFactory(oom_above=1)
    pipeline = make(folder, cache, factory, batch_size=4)
    results = list(pipeline.run(NAMES))
    assert all(r.ok for r in results)
    assert pipeline.batch_size == 1
    assert all(len(c) == 1 for c in factory.calls) and len(factory.calls) == 10
    assert any("batch size lowered to 2" in e for e in pipeline.events)
    assert any("batch size lowered to 1" in e for e in pipeline.events)


def test_out_of_memory_at_batch_one_falls_back_to_cpu(setup):
    folder, cache = setup
    factory = FakeFactory(oom_unless_cpu=True)
    pipeline = make(folder, cache, factory, config=DetectorConfig(device="cuda", precision="fp16"), batch_size=2)
    results = list(pipeline.run(NAMES))
    assert all(r.ok for r in results)
    assert [(c.device, c.precision) for c in factory.configs] == [("cuda", "fp16"), ("cpu", "fp32")]
    assert pipeline.detector.device == "cpu"
    assert any(e.startswith("warning: ") and "running on the CPU" in e for e in pipeline.events)
    assert [e.split(":")[0] for e in pipeline.events].count("ready") == 2
    import torch

    assert is_out_of_memory(torch.OutOfMemoryError("x")) and is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(RuntimeError("x"))
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 6442450944 bytes. Error code 12 (Cannot allocate memory)")
    assert is_out_of_memory(cpu) and is_out_of_memory(MemoryError()), "a CPU batch too big halves too"


def test_the_fast_path_falls_back_to_the_fast_path_on_the_cpu(setup):
    """Its run id names the fast path's arithmetic: the CPU fallback keeps it, not fp32."""
    folder, cache = setup
    factory = FakeFactory(oom_unless_cpu=True)
    pipeline = make(folder, cache, factory, config=DetectorConfig(device="cuda", precision="fast"), batch_size=1)
    assert all(r.ok for r in pipeline.run(NAMES))
    assert [(c.device, c.precision) for c in factory.configs] == [("cuda", "fast"), ("cpu", "fast")]


def test_unavailable_model_still_serves_hits_then_raises(setup):
    folder, cache = setup
    list(make(folder, cache, FakeFactory(), batch_size=5).run(NAMES[:3]))
    broken = FakeFactory()
    broken.error = FileNotFoundError("no checkpoint at /nowhere.pth")
    pipeline = make(folder, cache, broken, batch_size=5)
    got = []
    with pytest.raises(DetectorUnavailable, match="no checkpoint at /nowhere.pth"):
        for r in pipeline.run(NAMES):
            got.append(r.relpath)
    assert got == NAMES[:3]
    assert pipeline.lookup("img2.png") is not None and pipeline.lookup("img9.png") is None


def test_run_id_ignores_device_so_a_cpu_fallback_reuses_the_cache(setup):
    folder, cache = setup
    a = make(folder, cache, FakeFactory(), config=DetectorConfig(device="cuda", precision="fp32"))
    b = make(folder, cache, FakeFactory(), config=DetectorConfig(device="cpu", precision="fp32", batch_size=8))
    assert a.run_id == b.run_id
    # "auto" is another arithmetic on each (fp16 on CUDA, the fast path on a CPU): never one id
    c = make(folder, cache, FakeFactory(), config=DetectorConfig(device="cuda"))
    d = make(folder, cache, FakeFactory(), config=DetectorConfig(device="cpu"))
    assert c.run_id != d.run_id
