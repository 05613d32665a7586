"""Where the time to the first proposals goes: imports, model build, weight read, loading the
weights, the first forward. Prints, never asserts.

Each measurement is a fresh child process (imports are only slow once), which builds the
detector through the product's own path (``BatchDetector``, as the window's worker and ``label``
do) and times its steps by wrapping the functions that do them:

  import torch           ``import torch``
  import model code      the backend module, groundingdino's model modules and transformers
  text encoder check     the tokenizer loaded once to fail early (``_text_encoder_folder``)
  model build            ``build_model`` (the package's; BERT's own ``from_pretrained`` inside)
    of it: BERT          ``BertModel.from_pretrained``
  weight read            ``torch.load`` of the checkpoint
  load_state_dict        copying (or assigning) the weights into the model
  model ready            from the first import to the detector built (the window's "model ready")
  first forward          the first ``detect`` of one 1066x800 image (one-off kernel set-up included)
  first proposal         from the first import to the first image's proposals
  second forward         the same image again: the steady speed, without the one-off set-up

Models: the tiny random Grounding DINO of the tests and the full-size random one (SwinT-OGC,
bert-base sizes; ~700 MB, built once into ``--model-dir``). The same script measures any
checkout: ``--root DIR`` imports autolabel_gui from DIR (e.g. ``git archive`` of an older
commit), so "before" and "after" run the same measurement on the same machine.

    .venv/bin/python benchmarks/bench_startup.py [--models tiny,full] [--runs 2] [--root DIR]
        [--precision auto] [--threads N] [--preview] [--window]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, sys, time, warnings
    started = time.perf_counter()
    sys.path.insert(0, {root!r})
    sys.path.insert(1, {tests_root!r})
    warnings.filterwarnings("ignore")
    spent = {{}}

    def add(name, seconds):
        spent[name] = spent.get(name, 0.0) + seconds

    def timed(owner, attr, name):
        original = getattr(owner, attr)
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(name, time.perf_counter() - t)
        setattr(owner, attr, wrapper)

    t = time.perf_counter()
    import torch
    add("import torch", time.perf_counter() - t)
    if {threads}:
        torch.set_num_threads({threads})
    t = time.perf_counter()
    from autolabel_gui.detection import grounding_dino  # first: it may keep plotting code out
    import groundingdino.models
    import transformers
    from transformers import BertModel
    add("import model code", time.perf_counter() - t)
    import numpy as np
    from PIL import Image
    from autolabel_gui.core.images import load_image
    from autolabel_gui.core.ontology import Ontology
    from autolabel_gui.detection.base import DetectorConfig
    from autolabel_gui.detection.batch import BatchDetector

    timed(grounding_dino, "_text_encoder_folder", "text encoder check")
    timed(groundingdino.models, "build_model", "model build")
    timed(BertModel, "from_pretrained", "  of it: BERT")
    timed(torch, "load", "weight read")
    timed(torch.nn.Module, "load_state_dict", "load_state_dict")
    config = DetectorConfig(weights={weights!r}, config={config!r}, text_encoder={text_encoder!r},
                            device="cpu", precision={precision!r}, extra={extra!r})
    events = []
    model = BatchDetector(config, Ontology.from_names(["person", "cat", "cup", "vehicle"]),
                          on_event=lambda kind, message: events.append(message))
    image = np.asarray(Image.fromarray(load_image({image!r})).resize((1066, 800)))
    t = time.perf_counter()
    model.ensure_detector()
    spent["model ready"] = time.perf_counter() - started
    t = time.perf_counter()
    boxes = model.detect([image])[0]
    spent["first forward"] = time.perf_counter() - t
    spent["first proposal"] = time.perf_counter() - started
    t = time.perf_counter()
    model.detect([image])
    spent["second forward"] = time.perf_counter() - t
    print("RESULT " + json.dumps({{"spent": spent, "boxes": len(boxes), "said": events[-1] if events else ""}}))
""")

def preview_extra() -> dict[str, str]:
    """The backend options of the preview size, as ``ProjectSettings(preview=True)`` sets them."""
    sys.path.insert(0, str(ROOT))
    from autolabel_gui.app.project import ProjectSettings

    return ProjectSettings(preview=True).detector_config().extra


WINDOW_CHILD = textwrap.dedent("""
    import sys, tempfile, time, warnings
    started = time.perf_counter()
    sys.path.insert(0, {root!r})
    sys.path.insert(1, {tests_root!r})
    warnings.filterwarnings("ignore")
    from pathlib import Path
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from autolabel_gui.app.model_progress import ModelState
    from autolabel_gui.app.project import ProjectSettings
    from autolabel_gui.gui.app import create_app
    from autolabel_gui.gui.main_window import MainWindow
    from tests.fixtures.window import write_image

    marks = {{}}

    def mark(name):
        marks.setdefault(name, time.perf_counter() - started)

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                mark("window painted")
            return False

    tmp = Path(tempfile.mkdtemp())
    for i in range(3):
        write_image(tmp / "photos" / f"img{{i}}.png", size=(1066, 800), seed=i)
    app = create_app()
    mark("Qt and the window's modules imported")
    window = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    painted = FirstPaint()
    window.installEventFilter(painted)
    settings = ProjectSettings(classes=["person", "cat"], weights={weights!r}, config={config!r},
                               text_encoder={text_encoder!r}, device="cpu", precision={precision!r})

    def on_state(status):
        if status.state is ModelState.READY:
            mark("model ready")
            marks["said"] = status.message
            QTimer.singleShot(0, app.quit)
        elif status.state in (ModelState.UNAVAILABLE, ModelState.ERROR):
            marks["said"] = status.message
            QTimer.singleShot(0, app.quit)

    window.open_folder(tmp / "photos", settings)  # then show, as commands/gui.py does
    window.controller.model_state.connect(on_state)
    window.show()
    mark("window shown")
    QTimer.singleShot(120_000, app.quit)
    app.exec()
    print("RESULT " + json.dumps(marks))
    sys.stdout.flush()
    import os
    os._exit(0)
""").replace("import sys, tempfile", "import json, sys, tempfile")

ORDER = ["import torch", "import model code", "text encoder check", "model build", "  of it: BERT",
         "weight read", "load_state_dict", "model ready", "first forward", "first proposal",
         "second forward"]


def model_files(kind: str, model_dir: Path) -> tuple[str, str, str]:
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.tiny_gdino import TinyGdino, build_tiny_gdino

    folder = model_dir / kind
    tiny = TinyGdino.at(folder)
    if not tiny.weights_path.is_file():
        print(f"building the random {kind} model in {folder} (once) ...", flush=True)
        tiny = build_tiny_gdino(folder, full_size=kind == "full")
    return str(tiny.weights_path), str(tiny.config_path), str(tiny.text_encoder_dir)


def run_once(root: Path, files: tuple[str, str, str], args: argparse.Namespace) -> dict:
    image = sorted((ROOT / "resources" / "samples").glob("*.jpg"))[0]
    code = CHILD.format(root=str(root), tests_root=str(ROOT), weights=files[0], config=files[1],
                        text_encoder=files[2], precision=args.precision, threads=args.threads, image=str(image),
                        extra=preview_extra() if args.preview else {})
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"the child failed:\n{out.stderr[-3000:]}")


def window_once(root: Path, files: tuple[str, str, str], args: argparse.Namespace) -> dict:
    """The window opened on a folder of three photos: seconds from the process start to each mark."""
    code = WINDOW_CHILD.format(root=str(root), tests_root=str(ROOT), weights=files[0], config=files[1],
                               text_encoder=files[2], precision=args.precision)
    env = {**os.environ, "PYTHONPATH": str(root), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"the window child failed:\n{out.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,full", help="tiny, full or both (comma-separated)")
    parser.add_argument("--runs", type=int, default=2, help="child processes per model; the median is printed")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose autolabel_gui is measured")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--preview", action="store_true", help="the preview size (400 px input, less accurate)")
    parser.add_argument("--window", action="store_true",
                        help="also open the window (offscreen) and time it to its first paint and to model ready")
    parser.add_argument("--model-dir", default="~/.cache/autolabel-gui/bench-startup")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    commit = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()[:70]
    sys.path.insert(0, str(ROOT))
    from benchmarks.machine import cpu_name

    print(f"{cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"measuring {root} ({commit or 'no git'}); "
          f"precision {args.precision}{', preview size' if args.preview else ''}, {args.runs} run(s) per model, median")
    for kind in args.models.split(","):
        files = model_files(kind, Path(args.model_dir).expanduser())
        runs = [run_once(root, files, args) for _ in range(max(1, args.runs))]
        print(f"\n{kind} model ({os.path.getsize(files[0]) / 2**20:.0f} MB checkpoint): {runs[-1]['said']}, "
              f"{runs[-1]['boxes']} proposals")
        for name in ORDER:
            values = [r["spent"][name] for r in runs if name in r["spent"]]
            if values:
                print(f"  {name:<22}{statistics.median(values):7.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")
        if args.window:
            shown = [window_once(root, files, args) for _ in range(max(1, args.runs))]
            print(f"  the window, offscreen, on 3 photos (the worker builds the model on its thread): "
                  f"{shown[-1].get('said', '')!r}")
            for name in ("Qt and the window's modules imported", "window shown", "window painted", "model ready"):
                values = [w[name] for w in shown if name in w]
                if values:
                    print(f"    {name:<38}{statistics.median(values):7.2f} s after start   "
                          f"({', '.join(f'{v:.2f}' for v in values)})")
            ready = [w["model ready"] - w["window painted"] for w in shown
                     if "model ready" in w and "window painted" in w]
            if ready:
                print(f"    {'from first paint to model ready':<38}{statistics.median(ready):7.2f} s")


if __name__ == "__main__":
    main()
