"""A hostile folder (tests/fixtures/hostile.py) through the headless command and the listing/loading
core: every readable image is processed, every unreadable one is reported once with its reason,
nothing crashes, and no file that existed before is changed.

As root, permission bits do not stop reads, so the ``label`` subprocess starts without root's
permission override: the locked sub-folder and the unreadable file are then really unreadable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, image_size, load_image
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.ids import run_id_for
from autolabel_gui.formats.voc import read_voc

from tests.fixtures.hostile import (
    build_hostile_corpus,
    changed,
    child_sees_permissions,
    is_root,
    label_args,
    permission_bits_bite,
    small_model_settings,
    snapshot,
)

REPO = Path(__file__).resolve().parents[1]


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.mark.model
def test_label_command_goes_through_the_hostile_folder(tmp_path, tiny_gdino):
    corpus = build_hostile_corpus(tmp_path / "images", tmp_path / "voc")
    small_model_settings(corpus.root)
    if not child_sees_permissions(corpus.locked_dir):
        pytest.skip("cannot make a folder unreadable here (root, and the permission override cannot be dropped)")
    before = snapshot(corpus.root, corpus.voc_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "autolabel_gui", "label", str(corpus.root), "--voc-dir", str(corpus.voc_dir),
         *label_args(tiny_gdino, batch=4)],
        cwd=REPO, env=_child_env(), preexec_fn=permission_bits_bite(), capture_output=True, timeout=300,
    )
    out, err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    corpus.unlock()
    assert "Traceback" not in err, err
    assert proc.returncode == 1, f"bad images make the run report failure, and nothing else stops it:\n{err}"

    readable = corpus.readable_for(privileged=False)
    unreadable = corpus.unreadable_for(privileged=False)
    del unreadable["locked/inside.jpg"]  # never listed: its folder is reported instead
    for rel, words in unreadable.items():
        lines = [ln for ln in err.splitlines() if rel in ln and not ln.startswith("warning: ")]
        assert len(lines) == 1, f"{rel} must be reported exactly once, got {lines}"
        assert words in lines[0].lower(), f"{rel}: reason should say {words!r}: {lines[0]}"
    assert "locked: folder skipped, cannot be read (Permission denied)" in err
    for rel, words in corpus.folder_problems.items():
        assert any(rel in ln and words in ln for ln in err.splitlines()), f"{rel} ({words}) not reported:\n{err}"
    assert f"{len(readable) + len(unreadable)} images" in out and f"{len(readable)} detected" in out
    assert f"{len(unreadable)} failed" in out

    after = snapshot(corpus.root, corpus.voc_dir)
    assert changed(before, after) == [], "a file that existed before the run was changed"
    new = sorted(set(after) - set(before))
    folder = ImageFolder(corpus.root, corpus.voc_dir)
    expected_new = {folder.voc_path(rel): rel for rel in readable if rel not in corpus.vocs}
    assert set(new) == set(expected_new), "label writes a VOC file for each readable image without one, nothing else"
    for xml, rel in expected_new.items():
        labels = read_voc(xml)
        assert not labels.verified and (labels.width, labels.height) == readable[rel]
        assert all(0 <= b.x0 < b.x1 <= labels.width and 0 <= b.y0 < b.y1 <= labels.height for b in labels.boxes)

    settings = ProjectSettings.load(corpus.root)
    run_id = run_id_for(settings.detector_config(), settings.ontology())
    with ProposalCache(corpus.root / ".autolabel" / "cache.sqlite") as cache:
        assert cache.cached_relpaths(run_id) == set(readable)
        for rel, (w, h) in readable.items():
            boxes = cache.get(ImageKey.from_path(corpus.root, rel), run_id)
            assert boxes is not None and all(b.x1 <= w + 1e-3 and b.y1 <= h + 1e-3 for b in boxes), rel


def test_listing_and_loading_core_on_the_hostile_folder(tmp_path):
    """The core every caller uses: one listing problem per hazard, one ImageLoadError per bad file."""
    corpus = build_hostile_corpus(tmp_path / "images", tmp_path / "voc", huge=False)
    try:
        privileged = is_root()
        folder = ImageFolder(corpus.root, corpus.voc_dir)
        readable, unreadable = corpus.readable_for(privileged), corpus.unreadable_for(privileged)
        if not privileged:
            unreadable.pop("locked/inside.jpg")
        assert set(folder.images) == set(readable) | set(unreadable)
        for rel, words in corpus.folder_problems.items():
            assert sum(p.startswith(rel + ":") for p in folder.problems) == 1
            assert any(words in p for p in folder.problems)
        for rel, (w, h) in readable.items():
            rgb = load_image(folder.image_path(rel))
            assert rgb.shape == (h, w, 3) and rgb.dtype.name == "uint8", rel
            assert image_size(folder.image_path(rel)) == (w, h), rel
        for rel, words in unreadable.items():
            with pytest.raises(ImageLoadError) as info:
                load_image(folder.image_path(rel))
            assert str(folder.image_path(rel)) in str(info.value) and words in info.value.reason.lower(), rel
    finally:
        corpus.unlock()


def test_window_goes_through_the_hostile_folder(open_review, tmp_path, qtbot, monkeypatch):
    """Every image with D: readable ones shown at their oriented size, bad ones reported with the
    reason; no file changes until Space saves one."""
    from autolabel_gui.gui.main_window import MainWindow
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    corpus = build_hostile_corpus(tmp_path / "hostile", tmp_path / "voc")
    corpus.unlock()  # in-process as root the locked folder would be read anyway: list it like root does
    before = snapshot(corpus.root, corpus.voc_dir)
    messages: list[tuple[str, bool]] = []
    show = MainWindow.show_message
    monkeypatch.setattr(MainWindow, "show_message", lambda self, text, error=False: (
        messages.append((text, error)), show(self, text, error)))
    h = open_review([], root=corpus.root, annotations_dir=str(corpus.voc_dir))
    c = h.controller
    qtbot.waitUntil(lambda: QApplication.focusWidget() is h.window.canvas)  # keys reach the window
    readable, unreadable = corpus.readable_for(True), corpus.unreadable_for(True)
    assert set(c.review.folder.images) == set(readable) | set(unreadable)
    assert any("problem(s) while listing" in text for text, _ in messages)
    for i, rel in enumerate(c.review.folder.images):
        if i:
            h.press(Qt.Key.Key_D)
        path = str(c.review.folder.image_path(rel))
        qtbot.waitUntil(lambda rel=rel, path=path: c.current == rel and (c.image_on_canvas or any(
            path in text for text, error in messages if error)), timeout=60_000)
        qtbot.wait(20)  # a second report, if any, would arrive now
        reports = [text for text, error in messages if error and path in text]
        if rel in readable:
            assert c.image_on_canvas and (c.state.width, c.state.height) == readable[rel], rel
            assert reports == [], reports
        else:
            assert not c.image_on_canvas and c.state.read_only, rel
            assert len(reports) == 1 and unreadable[rel] in reports[0].lower(), (rel, reports)
    malformed, wrong_size = (str(c.review.folder.voc_path(r)) for r in ("vocs/malformed.jpg", "vocs/wrong_size.jpg"))
    assert any(malformed in text and "not valid XML" in text for text, error in messages if error)
    assert any(wrong_size in text and "640x480" in text for text, error in messages if error)
    h.press(Qt.Key.Key_D)
    assert changed(before, snapshot(corpus.root, corpus.voc_dir)) == [], "browsing changed a file"

    for rel in ("plain.jpg", "vocs/unknown_class.jpg", "vocs/outside.jpg", "vocs/wrong_size.jpg", "vocs/malformed.jpg"):
        c.review.go_to(rel)
        qtbot.waitUntil(lambda: c.image_on_canvas)
        h.press(Qt.Key.Key_Space)
    c.review.go_to("broken/truncated.jpg")  # its header is fine, its pixels are not: never verified unseen
    qtbot.waitUntil(lambda: c.state.read_only)
    h.press(Qt.Key.Key_Space)
    assert "not saved" in messages[-1][0] and messages[-1][1]
    edited = {c.review.folder.voc_path(r) for r in ("vocs/unknown_class.jpg", "vocs/outside.jpg")}
    after = snapshot(corpus.root, corpus.voc_dir)
    assert set(changed(before, after)) == edited, "only the files the user saved changed"
    assert set(after) - set(before) == {c.review.folder.voc_path("plain.jpg")}
    assert [b.label for b in read_voc(c.review.folder.voc_path("vocs/unknown_class.jpg")).boxes] == ["zebra"]
    assert [(b.label, b.xyxy) for b in read_voc(c.review.folder.voc_path("vocs/outside.jpg")).boxes] == [
        ("dog", (39.0, 29.0, 64.0, 48.0))]
    assert all(read_voc(p).verified for p in edited)
