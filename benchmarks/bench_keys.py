"""Keys per image and the images a person looked at: Space alone, the grid, and review by
exception (confidence order, accept by rule with an audit), in the real window.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_keys.py [--images 45] [--correct 0.8]
     [--audit 20] [--seed 7]

The simulated folder and its error model (stated, since every figure depends on it): each image
has three right proposals and one proposal below the threshold (score U(0.05, 0.25): surely
nothing). A share of the images (``--correct``, 80% by default) is correct as proposed; each of
the others has one false proposal too. Confidence is informative but imperfect:

- a right proposal scores U(0.82, 0.98) with probability 0.95, else U(0.45, 0.80) (the model
  hesitates over something that is there);
- a false proposal scores U(0.40, 0.78) with probability 0.80, else U(0.80, 0.95) (a confident
  mistake, which no rule on scores can catch: only the audit measures it).

Proposals are in the cache, as after ``autolabel-gui label``. A scripted annotator who knows
which images are wrong reviews copies of the folder, pressing real keys on the window:

- single: a correct image: Space; a wrong one: Tab or Shift+Tab until the false box is selected
  (whichever is fewer), Delete, Space.
- grid: G; per page, the digit of each wrong tile, then Space; the images set aside are then
  fixed as above.
- rule: Shift+A, Enter (the dialog's default rule: every proposal >= 0.80 or <= 0.30, at least
  one box; audit of ``--audit``); the audit's images are reviewed as in "single"; Y accepts the
  batch; O orders the rest by confidence and they are reviewed as in "single".
- rule+grid: the same, with the audit and the rest reviewed as in "grid".

Counted: every key press; images a person looked at (every image not accepted by rule was shown
and verified); images accepted by rule that were wrong, beside the audit's 95% upper bound on
the error rate. No wall time: the figures are the annotator's work, not the machine's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from autolabel_gui.app.accept_rule import Audit, upper_bound  # noqa: E402
from autolabel_gui.app.project import ProjectSettings  # noqa: E402
from autolabel_gui.app.status import Status  # noqa: E402
from autolabel_gui.core.boxes import Box, BoxState  # noqa: E402
from autolabel_gui.core.cache import ProposalCache  # noqa: E402
from autolabel_gui.core.records import ImageKey  # noqa: E402
from autolabel_gui.detection.ids import run_id_for  # noqa: E402
from autolabel_gui.formats.voc import read_voc  # noqa: E402
from autolabel_gui.gui.main_window import MainWindow  # noqa: E402
from autolabel_gui.gui.rule_dialog import RuleDialog  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402

from gui_bench import no_model, wait_until  # noqa: E402

CLASSES = ["person", "cat", "cup", "vehicle"]
SIZE = (640, 480)
DIGITS = [getattr(Qt.Key, f"Key_{n}") for n in range(1, 10)]
FALSE_BOX = (300.0, 300.0, 420.0, 420.0)
"""Where a wrong image's false proposal is (the annotator knows it, and finds it by Tab)."""
FLOWS = ("single", "grid", "rule", "rule+grid")


def _score(rng: np.random.Generator, p_sure: float, sure: tuple[float, float], unsure: tuple[float, float]) -> float:
    return float(rng.uniform(*(sure if rng.random() < p_sure else unsure)))


def build_folder(root: Path, count: int, wrong: set[str]) -> ProjectSettings:
    """``count`` images with the error model of the module doc (the same scores in every copy)."""
    rng = np.random.default_rng(1)
    settings = ProjectSettings(classes=list(CLASSES))
    run_id = run_id_for(settings.detector_config(), settings.ontology())
    root.mkdir(parents=True)
    with ProposalCache.for_folder(root) as cache:
        for i in range(count):
            rel = f"img{i:03d}.jpg"
            Image.fromarray(rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(root / rel, quality=80)
            boxes = [Box(40 + 150 * k, 60, 160 + 150 * k, 200, CLASSES[k],
                         _score(rng, 0.95, (0.82, 0.98), (0.45, 0.80)), BoxState.PROPOSED) for k in range(3)]
            boxes.append(Box(40, 300, 100, 360, "cup", float(rng.uniform(0.05, 0.25)), BoxState.PROPOSED))
            false_score = _score(rng, 0.20, (0.80, 0.95), (0.40, 0.78))
            if rel in wrong:
                boxes.append(Box(*FALSE_BOX, "vehicle", false_score, BoxState.PROPOSED))
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
        self.audit: Audit | None = None
        wait_until(app, lambda: self.controller.image_on_canvas)

    def press(self, key: Qt.Key, why: str, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        QTest.keyClick(QApplication.focusWidget() or self.window, key, modifier)
        self.app.processEvents()
        self.count(why)

    def count(self, why: str) -> None:
        self.keys[why] = self.keys.get(why, 0) + 1

    def settled(self) -> int:
        counts = self.controller.files.counts()
        return counts[Status.VERIFIED] + counts[Status.RULE_ACCEPTED]

    def fix(self) -> None:
        """Select the false box with Tab or Shift+Tab (fewer presses), Delete it, Space."""
        state = self.controller.review.state
        assert state is not None
        shown = state.visible_indices()
        target = next(i for i in shown if state.items[i].box.xyxy == FALSE_BOX)
        forward = shown.index(target) + 1
        backward = len(shown) - shown.index(target)
        key, mod = ((Qt.Key.Key_Tab, Qt.KeyboardModifier.NoModifier) if forward <= backward
                    else (Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier))
        for _ in range(min(forward, backward)):
            self.press(key, "fix (Tab/Shift+Tab, Delete, Space)", mod)
        assert state.selected == target
        self.press(Qt.Key.Key_Delete, "fix (Tab/Shift+Tab, Delete, Space)")
        self.press(Qt.Key.Key_Space, "fix (Tab/Shift+Tab, Delete, Space)")

    def single_flow(self, done) -> None:
        """Space on each correct image, the fix on each wrong one, until ``done()``."""
        c = self.controller
        while not done():
            wait_until(self.app, lambda: c.image_on_canvas)
            if c.current in self.wrong:
                self.fix()
            else:
                self.press(Qt.Key.Key_Space, "Space")

    def grid_flow(self, done) -> None:
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
        self.single_flow(done)

    def rule_flow(self, total: int, audit_size: int, seed: int, with_grid: bool) -> None:
        """Shift+A, Enter; the audit as usual; Y; O; the rest as usual."""
        flow = self.window.rule_flow
        flow.seed = seed

        def run_dialog(dialog: RuleDialog) -> QDialog.DialogCode:
            dialog.audit.setValue(audit_size)
            self.count("rule dialog (Shift+A, Enter, Y)")  # Enter: the default rule, the audit size
            return QDialog.DialogCode.Accepted

        def confirm(audit: Audit) -> bool:
            self.audit = audit
            self.count("rule dialog (Shift+A, Enter, Y)")  # Y: accept the batch
            return True

        RuleDialog.exec = run_dialog  # type: ignore[method-assign]
        flow.ask_confirm = confirm
        self.press(Qt.Key.Key_A, "rule dialog (Shift+A, Enter, Y)", Qt.KeyboardModifier.ShiftModifier)
        review = self.controller.review
        audit_done = lambda: review.audit is None  # noqa: E731
        (self.grid_flow if with_grid else self.single_flow)(audit_done)
        self.press(Qt.Key.Key_O, "O (confidence order)")
        rest = lambda: self.settled() >= total  # noqa: E731
        (self.grid_flow if with_grid else self.single_flow)(rest)

    def labels(self, root: Path) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
        self.window.close()
        return {p.name: sorted((b.label, b.xyxy) for b in read_voc(p).boxes) for p in sorted(root.glob("*.xml"))}


@dataclass
class Figures:
    keys: dict[str, int]
    looked: int
    by_rule: list[str]
    audit: Audit | None
    labels: dict[str, list[tuple[str, tuple[float, ...]]]]


def report(name: str, f: Figures, total: int, wrong: set[str]) -> None:
    count = sum(f.keys.values())
    parts = ", ".join(f"{why} {n}" for why, n in f.keys.items())
    wrongly = [rel for rel in f.by_rule if rel in wrong]
    line = (f"  {name:<9}: {count:4d} keys / {total} images = {count / total:.2f} keys per image; "
            f"looked at {f.looked}/{total} = {100 * f.looked / total:.0f}%")
    if f.audit is not None:
        bound = upper_bound(f.audit.changed_count, len(f.audit.results))
        rate = len(wrongly) / len(f.by_rule) if f.by_rule else 0.0
        inside = "inside" if rate <= bound else "OUTSIDE"
        line += (f"; accepted by rule {len(f.by_rule)}, wrongly {len(wrongly)} ({100 * rate:.1f}%), audit "
                 f"{f.audit.changed_count} of {len(f.audit.results)} changed -> error rate <= {100 * bound:.1f}% "
                 f"(95%): {inside} the bound")
    else:
        line += "; accepted by rule 0, wrongly 0"
    print(line)
    print(f"             ({parts})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=45, help="images in the folder (default 45: five 3x3 pages)")
    parser.add_argument("--correct", type=float, default=0.8, help="share correct as proposed (default 0.8)")
    parser.add_argument("--audit", type=int, default=20, help="audit sample size (default 20, the dialog's)")
    parser.add_argument("--seed", type=int, default=7, help="the audit's seed (default 7)")
    parser.add_argument("--flows", default=",".join(FLOWS), help=f"which flows (default {','.join(FLOWS)})")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    rels = [f"img{i:03d}.jpg" for i in range(args.images)]
    rng = np.random.default_rng(7)
    wrong = set(rng.choice(rels, size=round(args.images * (1 - args.correct)), replace=False).tolist())
    print(f"Keys per image: {args.images} images, {len(wrong)} with one false proposal "
          f"({100 * (1 - len(wrong) / args.images):.0f}% correct as proposed), 3x3 grid, audit of {args.audit}; "
          f"fixing the wrong images alone costs about {3 * len(wrong) / args.images:.2f} keys per image")
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as tmp:
        for name in args.flows.split(","):
            root = Path(tmp) / name.replace("+", "-") / "images"
            settings = build_folder(root, args.images, wrong)
            annotator = Annotator(app, root, settings, wrong)
            every = lambda a=annotator: a.settled() >= args.images  # noqa: E731
            if name == "single":
                annotator.single_flow(every)
            elif name == "grid":
                annotator.grid_flow(every)
            else:
                annotator.rule_flow(args.images, args.audit, args.seed, with_grid=name == "rule+grid")
            statuses = annotator.controller.review.statuses
            by_rule = [rel for rel in rels if statuses.status_of(rel) is Status.RULE_ACCEPTED]
            results[name] = Figures(annotator.keys, args.images - len(by_rule), by_rule, annotator.audit,
                                    annotator.labels(root))
    for name, figures in results.items():
        report(name, figures, args.images, wrong)
    right = {f"{Path(rel).stem}.xml": sorted((CLASSES[k], (40.0 + 150 * k, 60.0, 160.0 + 150 * k, 200.0))
                                              for k in range(3)) for rel in rels}
    for name, figures in results.items():
        bad = sorted(xml for xml, boxes in figures.labels.items() if boxes != right[xml])
        expected = sorted(f"{Path(rel).stem}.xml" for rel in figures.by_rule if rel in wrong)
        ok = bad == expected and len(figures.labels) == args.images
        print(f"  {name:<9}: {len(figures.labels)} files; labels right except the wrongly accepted ones: "
              f"{'yes' if ok else 'NO ' + str(bad)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
