"""The CPU fast path against the reference fp32 path: speed and fidelity. Prints, never asserts.

Model: the package's unchanged SwinT-OGC architecture. No trained checkpoint can be downloaded
here, so by default it is the random full-size model of ``tests/fixtures/tiny_gdino.py``
(built once into ``--model-dir``); pass ``--weights/--config/--text-encoder`` to measure real ones.

Candidates, each a detector of its own, timed image by image in turn (so load noise falls on all):
  fp32        the reference path (``--precision fp32``)
  fast        the default on a CPU (``--precision fast``): fused deformable sampling, fp32
  fast+int8   ``fast`` with every nn.Linear dynamically quantised to int8 (not a product option)
  bf16        autocast bf16, only where the CPU has native bf16 (emulated bf16 runs ~40x slower)

Fidelity, against fp32 on the same images, at the window's box threshold (0.35):
  free        boxes the user would see: share of fp32's boxes that the candidate also proposes
              (same class, IoU >= 0.9), and the mean and max score difference of those pairs.
  forced      the same, with the candidate's two-stage query selection forced to fp32's picks.
              Random weights make the top-k selection over ~18k encoder tokens a field of near
              ties, so the free figure mostly measures which of two nearly equal tokens won; the
              forced figure measures everything after the selection: what a trained model's
              confident picks would see.
Accuracy needs a trained model; with ``--weights`` the free figure is agreement with the
reference, still not accuracy. The last line is the default fast path's ratio and fidelity.

    .venv/bin/python benchmarks/bench_cpu.py [--images 3] [--model-dir DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BOX_THRESHOLD = 0.35
IMAGE_SIZE = (1066, 800)
CLASSES = ["person", "cat", "cup", "vehicle", "rocket", "dog"]


@dataclass
class Candidate:
    name: str
    detect: Callable
    seconds: list[float] = field(default_factory=list)
    free: list[tuple[int, int, list[float]]] = field(default_factory=list)
    forced: list[tuple[int, int, list[float]]] = field(default_factory=list)


class ForcedSelection:
    """Stands in for ``torch`` inside the package's transformer module: records the top-k query
    selection of one run and replays it in another (the only ``torch.topk`` there)."""

    def __init__(self, torch_module) -> None:
        self._torch = torch_module
        self.recorded: list = []
        self.replay: list | None = None

    def __getattr__(self, name: str):
        return getattr(self._torch, name)

    def topk(self, values, k, dim=-1, **kwargs):
        if self.replay is not None:
            picked = self.replay.pop(0).to(values.device)
            return values.gather(dim, picked), picked
        out = self._torch.topk(values, k, dim=dim, **kwargs)
        self.recorded.append(out[1].clone())
        return out


@contextlib.contextmanager
def forced(selection: ForcedSelection, replay: list | None) -> Iterator[None]:
    from groundingdino.models.GroundingDINO import transformer

    original = transformer.torch
    transformer.torch = selection
    selection.recorded, selection.replay = [], (list(replay) if replay is not None else None)
    try:
        yield
    finally:
        transformer.torch = original


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def agreement(reference, candidate) -> tuple[int, int, list[float]]:
    """(fp32 boxes matched, fp32 boxes, |score differences| of the matches); greedy by score."""
    ref = [b for b in reference if b.score >= BOX_THRESHOLD]
    pool = [b for b in candidate if b.score >= BOX_THRESHOLD - 0.05]
    matched, diffs = 0, []
    for r in ref:
        best = max((c for c in pool if c.label == r.label), key=lambda c: iou(c.xyxy, r.xyxy), default=None)
        if best is not None and iou(best.xyxy, r.xyxy) >= 0.9:
            pool.remove(best)
            matched += 1
            diffs.append(abs(best.score - r.score))
    return matched, len(ref), diffs


def summary(rows: list[tuple[int, int, list[float]]]) -> str:
    matched = sum(r[0] for r in rows)
    total = sum(r[1] for r in rows)
    diffs = [d for r in rows for d in r[2]]
    share = f"{100 * matched / total:5.1f}% of {total}" if total else "  n/a"
    score = f"|dscore| mean {sum(diffs) / len(diffs):.4f} max {max(diffs):.4f}" if diffs else ""
    return f"{share:>14} {score}"


def model_files(args: argparse.Namespace):
    from tests.fixtures.tiny_gdino import TinyGdino, build_tiny_gdino

    if args.weights:
        return args.weights, args.config, args.text_encoder
    folder = Path(args.model_dir).expanduser()
    tiny = TinyGdino.at(folder)
    if not tiny.weights_path.is_file():
        print(f"building the random full-size model in {folder} (once; ~700 MB) ...", flush=True)
        tiny = build_tiny_gdino(folder, full_size=True)
    return str(tiny.weights_path), str(tiny.config_path), str(tiny.text_encoder_dir)


def native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--model-dir", default="~/.cache/autolabel-gui/bench-full-size")
    parser.add_argument("--weights")
    parser.add_argument("--config")
    parser.add_argument("--text-encoder")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 candidate")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import numpy as np
    import torch
    from autolabel_gui.core.images import load_image
    from autolabel_gui.core.ontology import Ontology
    from autolabel_gui.detection.base import DetectorConfig
    from autolabel_gui.detection.catalogue import create_detector
    from PIL import Image

    if args.threads:
        torch.set_num_threads(args.threads)
    weights, config, text_encoder = model_files(args)
    base = DetectorConfig(weights=weights, config=config, text_encoder=text_encoder, device="cpu")
    ontology = Ontology.from_names(CLASSES)
    samples = sorted((ROOT / "resources" / "samples").glob("*.jpg"))
    # the measurement size: 1066x800 (the model input is the same, 800 px shorter side)
    images = [np.asarray(Image.fromarray(load_image(p)).resize(IMAGE_SIZE)) for p in samples[: max(1, args.images)]]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}; {len(images)} images "
          f"({', '.join(f'{i.shape[1]}x{i.shape[0]}' for i in images)}) resized to 800 px; "
          f"{len(CLASSES)} classes", flush=True)

    def detector(precision: str):
        started = time.perf_counter()
        det = create_detector(replace(base, precision=precision))
        print(f"  loaded {precision} in {time.perf_counter() - started:.0f} s", flush=True)
        return det

    reference = detector("fp32")
    candidates = [Candidate("fp32 (reference)", lambda imgs: reference.detect(imgs, ontology, 0.05))]
    fast = detector("fast")
    candidates.append(Candidate("fast (default)", lambda imgs: fast.detect(imgs, ontology, 0.05)))
    if not args.no_int8:
        int8 = detector("fast")
        torch.ao.quantization.quantize_dynamic(int8.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        candidates.append(Candidate("fast+int8 linear", lambda imgs: int8.detect(imgs, ontology, 0.05)))
    if native_bf16():
        bf16 = detector("bf16")
        candidates.append(Candidate("bf16 autocast", lambda imgs: bf16.detect(imgs, ontology, 0.05)))
    else:
        print("  bf16: skipped, this CPU has no native bf16 (no avx512_bf16/amx_bf16; emulated bf16 "
              "matmul measured ~40x slower than fp32 here)")

    selection = ForcedSelection(torch)
    for c in candidates:  # warm-up: one-off kernel set-up costs seconds on the first pass
        c.detect(images[:1])
    for n, image in enumerate(images, 1):
        with forced(selection, None):
            started = time.perf_counter()
            ref_boxes = candidates[0].detect([image])[0]
            candidates[0].seconds.append(time.perf_counter() - started)
            picks = selection.recorded
        for c in candidates[1:]:
            started = time.perf_counter()
            boxes = c.detect([image])[0]
            c.seconds.append(time.perf_counter() - started)
            c.free.append(agreement(ref_boxes, boxes))
            with forced(selection, picks):
                c.forced.append(agreement(ref_boxes, c.detect([image])[0]))
        print(f"  image {n}: " + ", ".join(f"{c.name.split()[0]} {c.seconds[-1]:.2f} s" for c in candidates),
              flush=True)

    ref_time = sum(candidates[0].seconds) / len(images)
    print(f"\n{'path':<18}{'s/image':>9}{'ratio':>8}   {'free agreement':<50} | forced agreement")
    for c in candidates:
        per = sum(c.seconds) / len(images)
        free = summary(c.free) if c.free else "  (reference)"
        forced_ = summary(c.forced) if c.forced else ""
        print(f"{c.name:<18}{per:>9.2f}{ref_time / per:>7.2f}x   {free:<50} | {forced_}")
    default = candidates[1]
    per = sum(default.seconds) / len(images)
    print(f"default fast path: {ref_time / per:.2f}x the fp32 reference ({per:.2f} vs {ref_time:.2f} s/image), "
          f"box agreement free {summary(default.free).strip()}, forced {summary(default.forced).strip()}")


if __name__ == "__main__":
    main()
