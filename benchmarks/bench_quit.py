"""How long the process lives after the window has closed: ``commands.gui.serve`` against a
plain interpreter exit (the baseline, in the same run).

Run: .venv/bin/python benchmarks/bench_quit.py [--runs 3]

Each run starts a child process that opens the real window offscreen on three images with torch
imported (as the detector does), closes it once it shows, and prints the moment ``closeEvent``
ended. The parent times from that moment until the child has exited. ``serve`` ends the
process at once (everything is saved by then); the baseline returns from ``app.exec()`` and
lets Python tear down torch and Qt, as the window did before.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    import torch  # noqa: F401  (the detector's import, whose teardown is the cost)
    from pathlib import Path
    from PySide6.QtCore import QSettings, QTimer
    from autolabel_gui.app.project import ProjectSettings
    from autolabel_gui.commands.gui import serve
    from autolabel_gui.gui.app import create_app
    from autolabel_gui.gui.main_window import MainWindow
    from tests.fixtures.window import no_model, write_image

    root = Path({root!r})
    for i in range(3):
        write_image(root / f"img{{i}}.png", seed=i)
    app = create_app()
    window = MainWindow(QSettings({ini!r}, QSettings.Format.IniFormat), detector_factory=no_model)
    window.show()
    window.open_folder(root, ProjectSettings(classes=["person"]))

    def close():
        window.close()
        print(f"closed {{time.time():.6f}}", flush=True)

    QTimer.singleShot(500, close)
    if {use_serve}:
        serve(app, window)
    app.exec()
    sys.exit(0)
""")


def time_after_close(use_serve: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        script = CHILD.format(repo=str(REPO), root=f"{tmp}/images", ini=f"{tmp}/q.ini", use_serve=use_serve)
        child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                 env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
        assert child.stdout is not None
        closed = None
        for line in child.stdout:
            if line.startswith("closed "):
                closed = float(line.split()[1])
        child.wait()
        ended = time.time()
        if closed is None:
            raise SystemExit(f"the child never closed its window (exit {child.returncode})")
        return ended - closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from benchmarks.machine import cpu_name

    print(f"CPU: {cpu_name()}; Python {platform.python_version()}")
    serve_s = statistics.median(time_after_close(True) for _ in range(args.runs))
    plain_s = statistics.median(time_after_close(False) for _ in range(args.runs))
    print(f"process alive after the window closed: serve {serve_s:.3f} s, plain exit {plain_s:.3f} s "
          f"(baseline / serve: {plain_s / serve_s:.0f}x), median of {args.runs}")


if __name__ == "__main__":
    main()
