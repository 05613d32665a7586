"""Keys per verified image: the single-image Space flow against grid triage, in the real window.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_keys.py [--images 45] [--correct 0.8]

A folder where a share of the images (80% by default) is correct as proposed and each of the
others has one false proposal, the model's surest (so Tab selects it). Proposals are in the
cache, as after ``autolabel-gui label``. A scripted annotator who knows which images are wrong
reviews the folder twice, in two copies of it, pressing real keys on the window:

- single: correct image: Space; wrong image: Tab, Delete, Space.
- grid: G; per page, the digit of each wrong tile, then Space; the grid then returns to the
  first image set aside, and each is fixed as above (Tab, Delete, Space).

Counted: every key press. No wall time: the figure is the annotator's work, not the machine's.
Both runs must end with the same labels (checked and printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from autolabel_gui.app.project import ProjectSettings  # noqa: E402
from autolabel_gui.app.status import Status  # noqa: E402
from autolabel_gui.core.boxes import Box, BoxState  # noqa: E402
from autolabel_gui.core.cache import ProposalCache  # noqa: E402
from autolabel_gui.core.records import ImageKey  # noqa: E402
from autolabel_gui.detection.ids import run_id_for  # noqa: E402
from autolabel_gui.formats.voc import read_voc  # noqa: E402
from autolabel_gui.gui.main_window import MainWindow  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui_bench import no_model, wait_until  # noqa: E402

CLASSES = ["person", "cat", "cup", "vehicle"]
SIZE = (640, 480)
DIGITS = [getattr(Qt.Key, f"Key_{n}") for n in range(1, 10)]
FIX = (Qt.Key.Key_Tab, Qt.Key.Key_Delete, Qt.Key.Key_Space)
"""A wrong image: select the false proposal (the surest, so the first), reject it, verify."""




def build_folder(root: Path, count: int, wrong: set[str]) -> ProjectSettings:
    """``count`` images with three right proposals each; the ``wrong`` ones have a false one too."""
    rng = np.random.default_rng(1)
    settings = ProjectSettings(classes=list(CLASSES))
    run_id = run_id_for(settings.detector_config(), settings.ontology())
    root.mkdir(parents=True)
    with ProposalCache.for_folder(root) as cache:
        for i in range(count):
            rel = f"img{i:03d}.jpg"
            Image.fromarray(rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(root / rel, quality=80)
            boxes = [Box(40 + 150 * k, 60, 160 + 150 * k, 200, CLASSES[k], 0.9 - 0.1 * k, BoxState.PROPOSED)
                     for k in range(3)]
            if rel in wrong:
                boxes.append(Box(300, 300, 420, 420, "vehicle", 0.97, BoxState.PROPOSED))
            cache.put(ImageKey.from_path(root, rel), run_id, boxes)
    return settings


class Annotator:
    """Presses keys on the window as a person would, and counts them."""

    def __init__(self, app: QApplication, root: Path, settings: ProjectSettings, wrong: set[str]) -> None:
        self.app = app
        self.wrong = wrong
        self.keys: dict[str, int] = {}
        self.window = MainWindow(QSettings(str(root.parent / "qsettings.ini"), QSettings.Format.IniFormat),
                                 detector_factory=no_model)
        self.window.show()
        self.window.open_folder(root, settings)
        self.controller = self.window.controller
        assert self.controller is not None
        wait_until(app, lambda: self.controller.image_on_canvas)

    def press(self, key: Qt.Key, why: str) -> None:
        QTest.keyClick(QApplication.focusWidget() or self.window, key)
        self.app.processEvents()
        self.keys[why] = self.keys.get(why, 0) + 1

    def verified(self) -> int:
        return self.controller.files.counts()[Status.VERIFIED]

    def single_flow(self, total: int) -> None:
        """Space on each correct image, Tab, Delete, Space on each wrong one, until all are verified."""
        c = self.controller
        while self.verified() < total:
            wait_until(self.app, lambda: c.image_on_canvas)
            if c.current in self.wrong:
                for key in FIX:
                    self.press(key, "fix (Tab, Delete, Space)")
            else:
                self.press(Qt.Key.Key_Space, "Space")

    def grid_flow(self, total: int) -> None:
        """G, the digits of the wrong tiles and Space per page; then the set-aside ones singly."""
        grid = self.window.grid
        self.press(Qt.Key.Key_G, "G")
        while grid.active:
            wait_until(self.app, lambda: grid.triage is not None and not grid.triage.loading())
            assert grid.triage is not None
            for i, rel in enumerate(grid.triage.page):
                if rel in self.wrong:
                    self.press(DIGITS[i], "marking digits")
            self.press(Qt.Key.Key_Space, "Space (page)")
        self.single_flow(total)

    def labels(self, root: Path) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
        self.window.close()
        return {p.name: [(b.label, b.xyxy) for b in read_voc(p).boxes] for p in sorted(root.glob("*.xml"))}


def report(name: str, keys: dict[str, int], total: int) -> float:
    count = sum(keys.values())
    parts = ", ".join(f"{why} {n}" for why, n in keys.items())
    print(f"  {name:<7}: {count:4d} keys for {total} verified images = {count / total:.2f} keys per image   ({parts})")
    return count / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=45, help="images in the folder (default 45: five 3x3 pages)")
    parser.add_argument("--correct", type=float, default=0.8, help="share correct as proposed (default 0.8)")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    rels = [f"img{i:03d}.jpg" for i in range(args.images)]
    rng = np.random.default_rng(7)
    wrong = set(rng.choice(rels, size=round(args.images * (1 - args.correct)), replace=False).tolist())
    print(f"Keys per verified image: {args.images} images, {len(wrong)} with one false proposal "
          f"({100 * (1 - len(wrong) / args.images):.0f}% correct as proposed), 3x3 grid")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as tmp:
        for name in ("single", "grid"):
            root = Path(tmp) / name / "images"
            settings = build_folder(root, args.images, wrong)
            annotator = Annotator(app, root, settings, wrong)
            annotator.single_flow(args.images) if name == "single" else annotator.grid_flow(args.images)
            verified = annotator.verified()
            results[name] = (annotator.keys, verified, annotator.labels(root))
    single_keys, single_verified, single_labels = results["single"]
    grid_keys, grid_verified, grid_labels = results["grid"]
    per_single = report("single", single_keys, single_verified)
    per_grid = report("grid", grid_keys, grid_verified)
    print(f"  ratio  : single / grid = {per_single / per_grid:.2f}x fewer keys with the grid")
    same = single_labels == grid_labels and len(single_labels) == args.images
    print(f"  same labels in both runs ({len(single_labels)} files, false proposals gone): {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
