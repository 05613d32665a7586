"""Regenerate review-proposals.png, review-accepted.png and settings.png (no model needed).

Run under Xvfb (what the README shows):
    Xvfb :55 -screen 0 1600x1000x24 &
    DISPLAY=:55 QT_QPA_PLATFORM=xcb .venv/bin/python docs/screenshots/make_review_screenshots.py
or offscreen with no QT_QPA_PLATFORM set.

Proposals are hand-placed in the cache of a copy of resources/samples (the real checkpoint is
not needed to show the review flow); the keys pressed are the ones an annotator would press.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from autolabel_gui.app.project import ProjectSettings  # noqa: E402
from autolabel_gui.core.boxes import Box, BoxState  # noqa: E402
from autolabel_gui.core.cache import ProposalCache  # noqa: E402
from autolabel_gui.core.records import ImageKey  # noqa: E402
from autolabel_gui.detection.base import DetectorUnavailable  # noqa: E402
from autolabel_gui.detection.ids import run_id_for  # noqa: E402
from autolabel_gui.detection.weights import missing_weights_message  # noqa: E402
from autolabel_gui.gui.app import create_app  # noqa: E402
from autolabel_gui.gui.main_window import MainWindow  # noqa: E402
from autolabel_gui.gui.settings_dialog import SettingsDialog  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

OUT = Path(__file__).resolve().parent


def no_model(_config):
    raise DetectorUnavailable(missing_weights_message())


def proposal(x0, y0, x1, y1, label, score) -> Box:
    return Box(x0, y0, x1, y1, label, score, BoxState.PROPOSED)


def save_small(widget: QWidget, name: str) -> None:
    """A 256-colour PNG: the screenshots stay well under 300 KB."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.png"
        widget.grab().save(str(raw))
        image = Image.open(raw).convert("RGB")
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            OUT / name, optimize=True)
    print(f"{OUT / name}: {(OUT / name).stat().st_size // 1024} KB")


def main() -> None:
    app = create_app()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "samples"
        shutil.copytree(REPO / "resources" / "samples", root, ignore=shutil.ignore_patterns("*.md"))
        settings = ProjectSettings(classes=["person", "cat", "cup", "vehicle"])
        run_id = run_id_for(settings.detector_config(), settings.ontology())
        with ProposalCache.for_folder(root) as cache:
            cache.put(ImageKey.from_path(root, "astronaut.jpg"), run_id, [
                proposal(25, 30, 365, 512, "person", 0.86), proposal(368, 0, 485, 330, "vehicle", 0.74),
                proposal(278, 344, 512, 512, "cup", 0.41), proposal(0, 0, 150, 260, "cat", 0.22)])
            cache.put(ImageKey.from_path(root, "chelsea_cat.jpg"), run_id, [proposal(40, 20, 420, 300, "cat", 0.9)])
        window = MainWindow(QSettings(str(Path(tmp) / "q.ini"), QSettings.Format.IniFormat), detector_factory=no_model)
        window.resize(1280, 800)
        window.show()
        window.open_folder(root, settings)
        end = time.perf_counter() + 1.5
        while time.perf_counter() < end:
            app.processEvents()

        window.activateWindow()  # under Xvfb with no window manager nothing else gives focus
        QTest.qWaitForWindowActive(window)
        window.canvas.setFocus()

        def key(k, modifier=Qt.KeyboardModifier.NoModifier) -> None:
            QTest.keyClick(window.canvas, k, modifier)
            app.processEvents()

        key(Qt.Key.Key_Tab)
        save_small(window, "review-proposals.png")
        key(Qt.Key.Key_Return)  # person
        key(Qt.Key.Key_Return)  # vehicle
        key(Qt.Key.Key_Delete)  # the helmet is no cup
        key(Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
        save_small(window, "review-accepted.png")
        prompts = {"vehicle": "car . truck . bus . rocket"}
        dialog = SettingsDialog(ProjectSettings(classes=settings.classes, prompts=prompts), window)
        dialog.show()
        app.processEvents()
        save_small(dialog, "settings.png")
        dialog.reject()
        window.close()


if __name__ == "__main__":
    main()
