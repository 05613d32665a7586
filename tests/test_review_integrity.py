"""The reviewer is faster than the model: nothing is verified that the model has not seen.

These run the real DetectionController and DetectionPipeline with a deliberately slow fake
detector, press real keys on the window, and read the VOC files back.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from autolabel_gui.app.image_statuses import ModelMark
from autolabel_gui.app.model_progress import ModelProgress, ModelState, detection_order, waiting_text
from autolabel_gui.app.stats import compute_stats
from autolabel_gui.app.status import Status
from autolabel_gui.core.boxes import BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.review import ReviewState
from autolabel_gui.formats.voc import read_voc
from PySide6.QtCore import Qt

from tests.fixtures.pipeline import FakeDetector, expected_boxes, image_index
from tests.fixtures.window import proposal

Key = Qt.Key
Mod = Qt.KeyboardModifier
REPO = Path(__file__).resolve().parents[1]


class SlowFactory:
    """Builds FakeDetectors that take ``seconds`` per image, like a CPU model, only shorter;
    ``gate`` (when given) holds every forward pass until it is set."""

    def __init__(self, seconds: float, gate: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.gate = gate
        self.detected: list[int] = []

    def __call__(self, config):
        factory = self

        class Slow(FakeDetector):
            def detect(self, images, ontology, score_floor):
                if factory.gate is not None:
                    factory.gate.wait(30)
                time.sleep(factory.seconds * len(images))
                out = super().detect(images, ontology, score_floor)
                factory.detected.extend(image_index(im) for im in images)
                return out

        return Slow(config.device)


def names(n: int) -> list[str]:
    return [f"img{i:02d}.png" for i in range(1, n + 1)]


def expected_saved(h, rel: str) -> list[tuple[str, tuple[float, ...]]]:
    """What Space must save for ``rel``: the fake model's proposals at the window's threshold."""
    from autolabel_gui.core.images import load_image

    index = image_index(load_image(h.root / rel))
    boxes = expected_boxes(index, (150, 200), h.settings.ontology(), 0.05)
    return sorted((b.label, (float(int(b.x0)), float(int(b.y0)), float(int(b.x1 + 0.999)), float(int(b.y1 + 0.999))))
                  for b in boxes if b.score >= h.settings.box_threshold)


def test_space_held_down_faster_than_the_model_never_verifies_an_unseen_image(open_review, qtbot):
    factory = SlowFactory(0.15)
    images = names(12)
    h = open_review(images, detector_factory=factory)
    c = h.controller
    delivered: list[str] = []
    c.detection.proposals_ready.connect(lambda rel, boxes: delivered.append(rel))
    refusals = 0
    deadline = time.monotonic() + 120
    while c.files.counts()[Status.VERIFIED] < len(images) and time.monotonic() < deadline:
        rel = c.current
        h.press(Key.Key_Space)  # about every 20 ms: far faster than the model
        if c.current == rel and not (h.root / (Path(rel).stem + ".xml")).exists():
            refusals += 1
            said = h.window.message_label.text()  # refused, or (since) told that the proposals arrived
            assert said.startswith("Not verified: the model has not seen this image") or "arrived" in said
            if not h.state.model_done:  # (the proposals may have arrived since)
                assert c.banner.isVisible() and c.banner.urgent and "Not verified" in c.banner.text()
        qtbot.wait(20)
    assert c.files.counts()[Status.VERIFIED] == len(images)
    assert refusals > 0, "the reviewer overtook the model at least once"
    for rel in images:
        labels = h.voc(rel)
        assert labels.verified
        assert sorted((b.label, b.xyxy) for b in labels.boxes) == expected_saved(h, rel), rel
        assert rel in delivered or rel in c.review.progress.done


def test_proposals_arriving_after_a_refused_space_are_not_accepted(open_review, qtbot):
    gate = threading.Event()
    h = open_review(names(3), detector_factory=SlowFactory(0.0, gate))
    c = h.controller
    qtbot.waitUntil(lambda: c.detection.state.state.value == "ready", timeout=60_000)
    h.press(Key.Key_Space)
    assert c.current == "img01.png" and not h.voc_path("img01.png").exists()
    assert "Not verified" in h.window.message_label.text()
    gate.set()
    qtbot.waitUntil(lambda: h.state.model_done, timeout=30_000)
    assert h.state.pending_count() > 0 and h.state.accepted_boxes() == []
    assert not h.voc_path("img01.png").exists()
    qtbot.waitUntil(lambda: not c.banner.isVisible(), timeout=5_000)
    h.press(Key.Key_Space)  # now the reviewer has seen them
    assert h.voc("img01.png").verified and sorted(h.saved("img01.png")) == expected_saved(h, "img01.png")


def test_space_right_after_r_waits_for_the_new_run(open_review, qtbot):
    """R forgets the proposals and detects again: a Space pressed before the new ones came must not
    verify the old ones (the new run then lands on a verified image, unseen)."""
    gate = threading.Event()
    gate.set()
    h = open_review(names(2), detector_factory=SlowFactory(0.0, gate))
    c = h.controller
    qtbot.waitUntil(lambda: h.window.progress_label.text() == "Proposals 2/2", timeout=60_000)
    gate.clear()  # the new run is held
    h.press(Key.Key_R)
    h.press(Key.Key_Space)
    assert c.current == "img01.png" and not h.voc_path("img01.png").exists()
    assert "Not verified" in h.window.message_label.text()
    gate.set()
    qtbot.waitUntil(lambda: h.state.model_done, timeout=30_000)
    assert not h.voc_path("img01.png").exists()
    h.press(Key.Key_Space)
    assert h.voc("img01.png").verified and sorted(h.saved("img01.png")) == expected_saved(h, "img01.png")


def test_the_canvas_says_where_the_model_is_and_when_it_found_nothing(open_review, qtbot):
    gate = threading.Event()
    h = open_review(names(4), detector_factory=SlowFactory(0.0, gate))
    c = h.controller
    qtbot.waitUntil(lambda: "Detecting" in c.banner.text(), timeout=60_000)
    assert c.banner.isVisible() and not c.banner.urgent
    assert "0 of 4 images done" in c.banner.text()
    assert h.window.progress_label.text() == "Proposals 0/4"
    h.press(Key.Key_D)  # img02: queued behind the image in flight
    qtbot.waitUntil(lambda: "Queued for the model" in c.banner.text(), timeout=5_000)
    assert "ahead" in c.banner.text()
    gate.set()
    qtbot.waitUntil(lambda: h.window.progress_label.text() == "Proposals 4/4", timeout=30_000)
    assert not c.banner.isVisible()
    assert c.review.progress.total == 4, "one figure whose denominator never moves"
    c.review.set_threshold(0.99)  # the slider hides every proposal: nothing found above it
    qtbot.waitUntil(lambda: c.banner.isVisible(), timeout=5_000)
    assert "found nothing" in c.banner.text()


def test_the_model_goes_through_the_whole_folder_without_navigation(open_review, qtbot):
    images = names(30)
    factory = SlowFactory(0.0)
    h = open_review(images, detector_factory=factory)
    c = h.controller
    qtbot.waitUntil(lambda: len(c.review.progress.done) == 30, timeout=120_000)
    assert c.current == "img01.png"
    assert len(factory.detected) == 30, "each image once"
    with ProposalCache.for_folder(h.root) as cache:
        assert cache.cached_relpaths(c.review.run_id) == set(images)
    model = c.files
    assert all(model.statuses.model_mark(rel) is ModelMark.READY for rel in images)


def test_the_file_list_marks_waiting_failed_and_unreadable_images(open_review, qtbot):
    gate = threading.Event()
    files = {"broken.png": b"\x89PNG\r\n\x1a\nnot an image"}
    h = open_review(["a.png", "c.png"], files=files, detector_factory=SlowFactory(0.0, gate))
    c = h.controller
    model = c.files
    from PySide6.QtCore import Qt as _Qt

    row_c = model.row_of("c.png")
    assert model.statuses.model_mark("c.png") is ModelMark.WAITING
    assert model.data(model.index(row_c), _Qt.ItemDataRole.FontRole).italic()
    assert "waiting for the model" in model.data(model.index(row_c), _Qt.ItemDataRole.ToolTipRole)
    gate.set()
    progress = c.review.progress
    qtbot.waitUntil(lambda: progress.finished("broken.png") and progress.finished("c.png"), timeout=30_000)
    assert model.statuses.model_mark("c.png") is ModelMark.READY
    assert model.data(model.index(row_c), _Qt.ItemDataRole.FontRole) is None
    assert model.statuses.model_mark("broken.png") is ModelMark.FAILED
    row_b = model.row_of("broken.png")
    assert "detection failed" in model.data(model.index(row_b), _Qt.ItemDataRole.ToolTipRole)
    h.press(Key.Key_D)  # a.png -> broken.png: it does not decode
    qtbot.waitUntil(lambda: model.status(row_b) is Status.UNREADABLE, timeout=10_000)
    assert "cannot be read" in model.data(model.index(row_b), _Qt.ItemDataRole.ToolTipRole)
    assert h.window.progress_label.text() == "Proposals 2/3 · 1 failed"


def test_ctrl_s_records_visible_pending_proposals_as_rejected_for_stats(open_review):
    proposals = {"a.png": [proposal(10, 10, 50, 60, "person", 0.9), proposal(100, 20, 150, 80, "cat", 0.6),
                           proposal(20, 90, 60, 140, "cup", 0.2)]}
    h = open_review(["a.png", "b.png"], proposals)
    h.press(Key.Key_Tab)
    h.press(Key.Key_Return)  # person accepted; cat pending and shown; cup below the threshold
    h.press(Key.Key_S, Mod.ControlModifier)
    assert h.saved("a.png") == [("person", (10, 10, 50, 60))] and h.voc("a.png").verified
    assert "1 pending proposal recorded as rejected" in h.window.message_label.text()
    run_id = h.controller.review.run_id
    h.close()
    with ProposalCache.for_folder(h.root) as cache:
        stats = compute_stats(ImageFolder(h.root), h.settings.classes, cache, run_id)
    assert stats.outcomes == {"accepted": 1, "edited": 0, "rejected": 1}


def test_manual_review_verifies_without_waiting_and_says_so(open_review, qtbot):
    gate = threading.Event()
    h = open_review(["a.png", "b.png"], detector_factory=SlowFactory(0.0, gate))
    c = h.controller
    h.press(Key.Key_Space)
    assert not h.voc_path("a.png").exists()
    h.window.actions_by_id["manual_review"].trigger()
    assert c.review.manual and "Manual review" in h.window.message_label.text()
    assert not c.banner.isVisible()
    h.press(Key.Key_Space)
    assert h.voc("a.png").verified and h.saved("a.png") == []
    gate.set()


def test_a_read_only_image_folder_is_said_at_once_and_edits_go_to_the_folder_chosen(
        open_review, monkeypatch, tmp_path, qtbot):
    from tests.test_disk_trouble import DiskTrouble

    root = tmp_path / "images"
    asked: list[tuple[Path, str]] = []
    monkeypatch.setattr("autolabel_gui.gui.main_window.folder_writable", lambda p: Path(p) != root)
    trouble = DiskTrouble(monkeypatch, root)
    trouble.read_only()
    from autolabel_gui.gui import main_window

    monkeypatch.setattr(main_window.MainWindow, "_choose_annotation_folder",
                        lambda self, r, why: asked.append((r, why)) or None)
    proposals = {"a.png": [proposal(10, 10, 50, 60, "person", 0.9)]}
    h = open_review(["a.png", "b.png"], proposals, root=root)
    assert asked and asked[0][0] == root and "read-only" in asked[0][1]
    assert "read-only" in h.window.message_label.text()
    h.press(Key.Key_Space)  # the save fails: the edit stays in memory
    assert h.controller.current == "a.png" and not list(root.glob("*.xml"))
    elsewhere = tmp_path / "labels"
    elsewhere.mkdir()
    h.window.ask_annotation_folder = lambda r, why: elsewhere
    h.window.actions_by_id["annotation_folder"].trigger()
    labels = read_voc(elsewhere / "a.xml")
    assert [(b.label, b.xyxy) for b in labels.boxes] == [("person", (10, 10, 50, 60))]
    assert labels.verified, "saved with the intent it had: Space verifies"
    assert not list(root.glob("*.xml"))


def test_closing_does_not_wait_for_a_forward_pass(tmp_path):
    """The window closes and the process ends long before the model's 60 s image is done;
    what was saved is whole."""
    script = textwrap.dedent(f"""
        import sys, time, threading
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from PySide6.QtCore import QSettings, QTimer
        from autolabel_gui.gui.app import create_app
        from autolabel_gui.gui.main_window import MainWindow
        from autolabel_gui.app.project import ProjectSettings
        from autolabel_gui.commands.gui import serve
        from tests.fixtures.pipeline import FakeDetector
        from tests.fixtures.window import write_image, proposal

        started = threading.Event()
        class Stuck(FakeDetector):
            def detect(self, images, ontology, floor):
                started.set()
                time.sleep(60)
                return super().detect(images, ontology, floor)

        root = Path({str(tmp_path / "images")!r})
        for i in range(3):
            write_image(root / f"img{{i}}.png", seed=i)
        app = create_app()
        window = MainWindow(QSettings({str(tmp_path / "q.ini")!r}, QSettings.Format.IniFormat),
                            detector_factory=lambda config: Stuck(config.device))
        window.show()
        window.open_folder(root, ProjectSettings(classes=["person"]))
        def close_when_busy():
            if not started.is_set():
                QTimer.singleShot(50, close_when_busy)
                return
            window.controller.review.edit(lambda s: s.add_box(proposal(1, 1, 20, 20, "person", None)))
            print("closing", flush=True)
            window.close()
        QTimer.singleShot(50, close_when_busy)
        sys.exit(serve(app, window))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the process waited for the forward pass")
    assert "closing" in out, err
    assert proc.returncode == 0, err
    saved = read_voc(tmp_path / "images" / "img0.xml")
    assert [(b.label, b.xyxy) for b in saved.boxes] == [("person", (1, 1, 20, 20))] and not saved.verified


def test_model_progress_rules():
    images = [f"{c}.png" for c in "abcdef"]
    progress = ModelProgress.of(images, {"b.png", "zzz.png"})
    assert progress.total == 6 and progress.done == {"b.png"}
    assert detection_order(images, 2, progress) == ["d.png", "e.png", "f.png", "a.png"]
    progress.fail("d.png", "boom")
    assert detection_order(images, 2, progress) == ["e.png", "f.png", "a.png"]
    assert progress.text(True) == "Proposals 1/6 · 1 failed"
    assert progress.text(False) == "Proposals 1/6 · 1 failed (model off)"
    assert "Detecting" in waiting_text(ModelState.READY, 0, progress)
    assert "2 images ahead" in waiting_text(ModelState.READY, 2, progress)
    assert "Loading the model" in waiting_text(ModelState.LOADING, None, progress)
    assert "not working right now" in waiting_text(ModelState.ERROR, 0, progress), "not 'Detecting…'"
    assert waiting_text(ModelState.READY, 0, progress).endswith("(model: 2 of 6 images done)")
    done = ModelProgress.of(images, set(images))  # every image done: only a rerun (R) waits
    assert waiting_text(ModelState.READY, 0, done) == "Detecting… proposals for this image are coming"


def test_verify_blocker_rules():
    state = ReviewState(10, 10)
    assert state.verify_blocker(model_runs=True) == "waiting for the model"
    assert state.verify_blocker(model_runs=False) is None
    state.set_proposals([proposal(1, 1, 5, 5, "cat", 0.9)])
    assert state.verify_blocker(model_runs=True) is None
    assert state.reject_visible_pending() == 1
    assert [it.box.state for it in state.items] == [BoxState.REJECTED]
    assert state.undo() and state.items[0].pending
    verified = ReviewState(10, 10, verified=True)
    assert verified.verify_blocker(model_runs=True) is None, "verified earlier by a person"
    assert ReviewState(10, 10, read_only=True).verify_blocker(model_runs=False) == "read-only"
