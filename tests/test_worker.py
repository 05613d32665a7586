"""DetectionController with pytest-qt: cache hits, priorities, errors, OOM fallback, stop."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.ids import SCORE_FLOOR
from autolabel_gui.detection.pipeline import DetectionPipeline
from autolabel_gui.gui.worker import DetectionController

from tests.fixtures.pipeline import FakeFactory, expected_boxes

SETTINGS = ProjectSettings(classes=["person", "dog"], batch_size=1)


class Recorder:
    """Every signal of a controller, in arrival order."""

    def __init__(self, controller: DetectionController) -> None:
        self.events: list[tuple] = []
        controller.model_state.connect(lambda st: self.events.append(("state", st.state.value, st.message)))
        controller.proposals_ready.connect(lambda r, b: self.events.append(("boxes", r, b)))
        controller.image_failed.connect(lambda r, e: self.events.append(("failed", r, e)))

    def of(self, kind: str) -> list[tuple]:
        return [e[1:] for e in self.events if e[0] == kind]

    def delivered(self) -> list[str]:
        return [e[1] for e in self.events if e[0] in ("boxes", "failed")]


@pytest.fixture
def folder(pipeline_images):
    return ImageFolder(pipeline_images)


@pytest.fixture
def cache(tmp_path):
    c = ProposalCache(tmp_path / "cache.sqlite")
    yield c
    c.close()


@pytest.fixture
def make(qtbot, folder, cache):
    made: list[DetectionController] = []

    def build(factory, settings=SETTINGS, cache_=None):
        controller = DetectionController(folder, cache_ or cache, settings, detector_factory=factory)
        made.append(controller)
        return controller, Recorder(controller)

    yield build
    for c in made:
        c.stop()


def _index(folder, rel):
    return folder.images.index(rel)


def test_cache_hits_are_served_without_a_model(qtbot, folder, cache, make):
    warm = DetectionPipeline(folder, cache, SETTINGS.detector_config(), SETTINGS.ontology(), factory=FakeFactory())
    list(warm.run(["img1.png", "img2.png", "img3.png"]))
    broken = FakeFactory()
    broken.error = DetectorUnavailable("no weights here")
    controller, rec = make(broken)
    controller.start()
    qtbot.waitUntil(lambda: ("unavailable", "no weights here") in rec.of("state"), timeout=10_000)
    assert rec.of("state")[0][0] == "loading"
    controller.prioritize("img1.png", ["img2.png", "img9.png", "img3.png"])
    qtbot.waitUntil(lambda: len(rec.of("boxes")) == 3, timeout=60_000)  # the first torch import
    assert [r for r, _ in rec.of("boxes")] == ["img1.png", "img2.png", "img3.png"]
    assert rec.of("boxes")[1][1] == expected_boxes(1, (32, 48), SETTINGS.ontology(), SCORE_FLOOR)
    controller.rerun("img1.png")
    controller.stop()
    assert broken.built == []
    assert warm.lookup("img1.png") is not None, "R without a model must keep the cached proposals"
    assert "img9.png" not in rec.delivered()


def test_current_image_first_then_upcoming_in_order(qtbot, folder, make):
    factory = FakeFactory()
    controller, rec = make(factory)
    controller.start()
    controller.prioritize("img5.png", ["img6.png", "img7.png"])
    qtbot.waitUntil(lambda: len(rec.delivered()) == 3, timeout=10_000)
    controller.stop()
    assert rec.delivered() == ["img5.png", "img6.png", "img7.png"]
    assert factory.calls == [[4], [5], [6]]
    assert rec.of("state")[:2] == [("loading", "loading the model (device auto)"),
                                    ("ready", rec.of("state")[1][1])]
    assert controller.position("img5.png") is None, "delivered: no longer waiting"


def test_navigation_drops_stale_work(qtbot, folder, make):
    gate = threading.Event()
    factory = FakeFactory(gate=gate)
    controller, rec = make(factory)
    controller.start()
    controller.prioritize("img1.png", [f"img{i}.png" for i in range(2, 11)])
    qtbot.waitUntil(lambda: bool(factory.built) and factory.built[0].started.is_set(), timeout=10_000)
    controller.prioritize("img8.png", ["img9.png"])
    gate.set()
    qtbot.waitUntil(lambda: "img9.png" in rec.delivered(), timeout=10_000)
    controller.stop()
    assert rec.delivered() == ["img1.png", "img8.png", "img9.png"]
    assert factory.calls == [[0], [7], [8]]


def test_the_queue_says_how_many_images_come_first(qtbot, folder, make):
    gate = threading.Event()
    factory = FakeFactory(gate=gate)
    controller, rec = make(factory)
    controller.start()
    controller.prioritize("img1.png", ["img2.png", "img3.png"])
    qtbot.waitUntil(lambda: bool(factory.built) and factory.built[0].started.is_set(), timeout=10_000)
    assert [controller.position(r) for r in ("img1.png", "img2.png", "img3.png", "img9.png")] == [0, 1, 2, None]
    # an image that needs no detection (its proposals are known) interrupts nothing: what the
    # pipeline has taken (img2 is decoded ahead) stays ahead of the new order
    controller.prioritize(None, ["img3.png", "img2.png"])
    assert [controller.position(r) for r in ("img1.png", "img2.png", "img3.png")] == [0, 1, 2]
    gate.set()
    qtbot.waitUntil(lambda: len(rec.delivered()) == 3, timeout=10_000)
    assert rec.delivered() == ["img1.png", "img2.png", "img3.png"]
    assert controller.position("img2.png") is None


def test_detector_exception_is_reported_and_the_next_image_processed(qtbot, folder, make):
    factory = FakeFactory(fail_on={2})
    controller, rec = make(factory)
    controller.start()
    controller.prioritize("img3.png", ["img4.png"])
    qtbot.waitUntil(lambda: len(rec.delivered()) == 2, timeout=10_000)
    assert rec.of("failed")[0][0] == "img3.png" and "ValueError" in rec.of("failed")[0][1]
    assert [r for r, _ in rec.of("boxes")] == ["img4.png"]


class _FlakyCache(ProposalCache):
    """A cache whose disk fails once, as a full or unplugged disk would."""

    failures = 1

    def put(self, key, run_id, boxes):
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        super().put(key, run_id, boxes)


def test_unexpected_error_is_emitted_and_the_thread_survives(qtbot, folder, tmp_path, make):
    controller, rec = make(FakeFactory(), cache_=_FlakyCache(tmp_path / "flaky.sqlite"))
    controller.start()
    controller.prioritize("img1.png", [])
    qtbot.waitUntil(lambda: any(s == "error" for s, _ in rec.of("state")), timeout=10_000)
    assert ("error", "OperationalError: disk I/O error") in rec.of("state")
    controller.prioritize("img2.png", [])
    qtbot.waitUntil(lambda: "img2.png" in rec.delivered(), timeout=10_000)
    assert rec.of("state")[-1] == ("ready", "model working again"), "the error is not left standing"


def test_cuda_out_of_memory_falls_back_to_cpu(qtbot, folder, make):
    factory = FakeFactory(oom_unless_cpu=True)
    controller, rec = make(factory, replace(SETTINGS, device="cuda", batch_size=2))
    controller.start()
    controller.prioritize("img1.png", ["img2.png", "img3.png"])
    qtbot.waitUntil(lambda: len(rec.of("boxes")) == 3, timeout=60_000)  # the first torch import
    controller.stop()
    assert [c.device for c in factory.configs] == ["cuda", "cpu"]
    messages = [m for _, m in rec.of("state")]
    assert any("batch size lowered to 1" in m for m in messages)
    assert any("running on the CPU" in m for m in messages)
    assert rec.of("failed") == []


def test_rerun_detects_again_and_reconfigure_keeps_the_model(qtbot, folder, make):
    factory = FakeFactory()
    controller, rec = make(factory)
    controller.start()
    controller.prioritize("img1.png", [])
    qtbot.waitUntil(lambda: len(rec.of("boxes")) == 1, timeout=10_000)
    controller.rerun("img1.png")
    qtbot.waitUntil(lambda: len(rec.of("boxes")) == 2, timeout=10_000)
    assert factory.calls == [[0], [0]]

    controller.reconfigure(replace(SETTINGS, prompts={"dog": "puppy"}, box_threshold=0.5))
    controller.prioritize("img1.png", ["img2.png"])
    qtbot.waitUntil(lambda: len(rec.of("boxes")) == 4, timeout=10_000)
    controller.stop()
    assert len(factory.built) == 1, "new prompts reuse the loaded model"
    assert factory.calls == [[0], [0], [0], [1]], "new prompts are a new run: nothing cached"


def test_stop_cancels_within_one_batch_and_joins(qtbot, folder, make):
    gate = threading.Event()
    factory = FakeFactory(gate=gate)
    controller, rec = make(factory)
    controller.start()
    controller.prioritize("img1.png", [f"img{i}.png" for i in range(2, 11)])
    qtbot.waitUntil(lambda: bool(factory.built) and factory.built[0].started.is_set(), timeout=10_000)
    interrupt = controller._queue.interrupt  # opened only once stop() has asked the run to end

    def open_gate_when_stopping() -> None:
        interrupt.wait(10)
        gate.set()

    opener = threading.Thread(target=open_gate_when_stopping)
    opener.start()
    controller.stop()
    opener.join()
    assert factory.calls == [[0]]


def test_no_classes_means_no_model_and_no_crash(qtbot, folder, make):
    factory = FakeFactory()
    controller, rec = make(factory, ProjectSettings())
    controller.start()
    qtbot.waitUntil(lambda: bool(rec.of("state")), timeout=10_000)
    assert rec.of("state")[0][0] == "unavailable" and "no classes" in rec.of("state")[0][1]
    controller.prioritize("img1.png", ["img2.png"])
    controller.reconfigure(SETTINGS)
    qtbot.waitUntil(lambda: len(rec.delivered()) == 2, timeout=10_000)
    assert factory.calls == [[0], [1]]


@pytest.mark.model
def test_real_tiny_model_through_the_worker_into_the_cache(qtbot, folder, cache, tiny_gdino):
    config = tiny_gdino.detector_config()
    settings = replace(SETTINGS, weights=config.weights, config=config.config, text_encoder=config.text_encoder,
                       device="cpu", precision="fp32", batch_size=2, extra=dict(config.extra))
    controller = DetectionController(folder, cache, settings)
    rec = Recorder(controller)
    controller.start()
    try:
        controller.prioritize("img2.png", ["img3.png", "img4.png"])
        qtbot.waitUntil(lambda: len(rec.delivered()) == 3, timeout=120_000)
    finally:
        controller.stop()
    assert rec.delivered() == ["img2.png", "img3.png", "img4.png"]
    assert [s for s, _ in rec.of("state")] == ["loading", "ready"]
    for _rel, boxes in rec.of("boxes"):
        assert boxes and all(b.label in ("person", "dog") and b.score >= SCORE_FLOOR for b in boxes)
        assert all(0 <= b.x0 <= b.x1 <= 48 and 0 <= b.y0 <= b.y1 <= 32 for b in boxes)
    pipeline = DetectionPipeline(folder, cache, settings.detector_config(), settings.ontology())
    assert pipeline.lookup("img3.png") == rec.of("boxes")[1][1]
