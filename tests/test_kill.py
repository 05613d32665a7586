"""SIGKILL at random moments loses nothing: no file is half-written, the cache opens, a rerun
finishes the rest.

Kill moments are drawn from a seeded generator (``AUTOLABEL_SEED`` replays a run); the default
run kills a few times, ``AUTOLABEL_LONG=1`` many more.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from autolabel_gui.cli import main
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.formats.voc import read_voc
from PIL import Image, ImageDraw

from tests.fixtures.hostile import label_args, scaled, seed, small_model_settings, voc_files
from tests.fixtures.pipeline import cache_rows

REPO = Path(__file__).resolve().parents[1]


def _photos(root: Path, count: int) -> list[str]:
    names = [f"frame{i:03d}.png" for i in range(count)]
    for i, name in enumerate(names):
        im = Image.new("RGB", (64, 48), (17 * i % 256, 120, 220 - 7 * i % 200))
        ImageDraw.Draw(im).rectangle([4 + i % 20, 5, 44, 30], fill=(250, 230, 30))
        im.save(root / name)
    return names


def _assert_consistent(folder: Path, voc: Path, db: Path, names: list[str]) -> None:
    """After a kill: every VOC file parses and belongs to a cached image; the cache is intact."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    with ProposalCache(db) as cache:
        assert cache.moved_aside is None, "the cache had to be thrown away"
    cached = set(cache_rows(db))
    assert cached <= set(names)
    for xml in voc_files(voc):
        labels = read_voc(xml)  # raises on a half-written file
        assert (labels.width, labels.height) == (64, 48) and not labels.verified
        assert xml.stem + ".png" in cached, f"{xml.name} written for an image whose proposals were not committed"


@pytest.mark.model
@pytest.mark.scalable
def test_label_killed_at_random_moments_resumes_and_leaves_every_file_whole(tmp_path, tiny_gdino, capsys):
    rng = random.Random(seed())
    folder, voc = tmp_path / "photos", tmp_path / "voc"
    folder.mkdir()
    names = _photos(folder, scaled(24, 60))
    small_model_settings(folder)
    db = folder / ".autolabel" / "cache.sqlite"
    args = ["label", str(folder), "--voc-dir", str(voc), *label_args(tiny_gdino, batch=1)]
    kills = 0
    for _ in range(scaled(2, 10)):
        done = len(cache_rows(db))
        proc = subprocess.Popen([sys.executable, "-m", "autolabel_gui", *args], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill after a random number of committed images plus a random fraction of the next one,
        # so the moment falls anywhere in the detect -> cache -> VOC cycle, on any machine speed.
        target = done + rng.randint(1, 4)
        while len(cache_rows(db)) < target and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        _assert_consistent(folder, voc, db, names)
    assert kills >= 1
    before_rerun = cache_rows(db)
    assert 0 < len(before_rerun) < len(names)

    assert main(args) == 0
    out = capsys.readouterr().out
    final = cache_rows(db)
    assert set(final) == set(names)
    assert {k: final[k] for k in before_rerun} == before_rerun, "an image cached before a kill ran again"
    assert f"{len(names) - len(before_rerun)} detected" in out
    _assert_consistent(folder, voc, db, names)
    assert {p.stem for p in voc_files(voc)} == {Path(n).stem for n in names}
    print(f"label killed {kills} times (seed {seed()}); "
          f"{len(before_rerun)} of {len(names)} images done before the rerun")


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from autolabel_gui.core.atomic import atomic_write_bytes

    folder, size = Path(sys.argv[1]), int(sys.argv[2])
    generation = 0
    while True:
        generation += 1
        for i in range(4):
            head = f"target {i} generation {generation:09d}\\n".encode()
            atomic_write_bytes(folder / f"target{i}.bin", head + bytes([generation % 251]) * (size - len(head)))
            print(generation, flush=True)
""")


def _whole(path: Path, size: int) -> bool:
    data = path.read_bytes()
    if len(data) != size:
        return False
    head, _, body = data.partition(b"\n")
    generation = int(head.split()[-1])
    return head.startswith(f"target {path.stem[-1]} ".encode()) and body == bytes([generation % 251]) * len(body)


@pytest.mark.scalable
def test_a_process_killed_inside_atomic_write_never_leaves_a_half_written_target(tmp_path):
    rng = random.Random(seed())
    size = 4 << 20
    folder = tmp_path / "targets"
    folder.mkdir()
    kills = scaled(8, 40)
    torn_tmp = 0
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), str(size)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.readline()  # at least one file written in this round
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        for target in sorted(folder.glob("target*.bin")):
            assert _whole(target, size), f"{target.name} is half-written after a kill"
        leftovers = [p for p in folder.iterdir() if p.name.startswith(".")]
        torn_tmp += len(leftovers)
        for p in leftovers:  # a kill leaves the hidden temporary file behind, never the target
            p.unlink()
    assert len(list(folder.glob("target*.bin"))) == 4
    print(f"{kills} kills inside atomic_write_bytes; {torn_tmp} hidden temporary files left behind, no torn target")


_WINDOW_SESSION = textwrap.dedent("""
    import sys
    from pathlib import Path

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from autolabel_gui.app.project import ProjectSettings
    from autolabel_gui.gui.main_window import MainWindow
    from tests.fixtures.window import no_model

    root, qsettings = Path(sys.argv[1]), sys.argv[2]
    app = QApplication([])
    window = MainWindow(QSettings(qsettings, QSettings.Format.IniFormat), detector_factory=no_model)
    window.show()
    window.open_folder(root, ProjectSettings.load(root))
    c = window.controller
    while True:
        while not (c.image_on_canvas and c.state is not None and len(c.state.items) == 2):
            app.processEvents()
        if c.state.verified:  # done by an earlier session
            if not c.review.next_unverified():
                break
            continue
        rel = c.current
        window.canvas.setFocus()
        for key in (Qt.Key.Key_Tab, Qt.Key.Key_Right, Qt.Key.Key_Space):  # move the first box 1 px, verify
            QTest.keyClick(window.canvas, key)
        print(rel, flush=True)
        if c.current == rel:
            break  # every image is verified
""")


@pytest.mark.scalable
def test_window_session_killed_at_random_moments_keeps_every_saved_file_whole(tmp_path):
    from autolabel_gui.app.project import ProjectSettings
    from autolabel_gui.core.boxes import Box, BoxState

    from tests.fixtures.window import WINDOW_CLASSES, put_proposals

    rng = random.Random(seed())
    root = tmp_path / "images"
    root.mkdir()
    names = _photos(root, scaled(150, 600))
    settings = ProjectSettings(classes=list(WINDOW_CLASSES))
    settings.save(root)
    proposals = {n: [Box(2 + i % 9, 3, 30, 40, "person", 0.9, BoxState.PROPOSED),
                     Box(35, 10, 60, 44, "cat", 0.8, BoxState.PROPOSED)] for i, n in enumerate(names)}
    put_proposals(root, settings, proposals)
    expected = {n: [("person", (3 + i % 9, 3, 31, 40)), ("cat", (35, 10, 60, 44))] for i, n in enumerate(names)}

    def saved(xml: Path):
        labels = read_voc(xml)  # raises on a half-written file
        return labels.verified, [(b.label, b.xyxy) for b in labels.boxes]

    logged: list[str] = []
    kills = 0
    for _ in range(scaled(3, 10)):
        proc = subprocess.Popen([sys.executable, "-c", _WINDOW_SESSION, str(root), str(tmp_path / "q.ini")],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        first = proc.stdout.readline()
        if not first:
            break
        logged.append(first.split()[0])
        time.sleep(rng.uniform(0.02, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        kills += proc.returncode == -signal.SIGKILL
        logged += out.split()
        files = {p.stem + ".png": saved(p) for p in root.glob("*.xml")}
        for rel in logged:
            assert files[rel] == (True, expected[rel]), f"{rel}: the verified file does not hold what was saved"
        unlogged = set(files) - set(logged)  # saved, then killed before saying so: one per kill at most
        assert len(unlogged) <= kills and all(files[r] == (True, expected[r]) for r in unlogged)
        assert not [p for p in root.iterdir() if p.name.endswith(".tmp") and not p.name.startswith(".")]
    assert kills >= 2 and len(set(logged)) < len(names)
    print(f"window killed {kills} times (seed {seed()}); {len(set(logged))} of {len(names)} images verified")
