"""Every precision path this CPU can run: speed, fidelity and, on a trained instrument, accuracy.

Prints, never asserts. Two parts in one run:

1. The full-size random model (``--images N``, 0 skips it): the package's unchanged SwinT-OGC
   architecture at 800 px, random weights (``tests/fixtures/tiny_gdino.py``, built once into
   ``--model-dir``; ``--weights/--config/--text-encoder`` measure real ones). Speed at the size
   users run, and agreement with fp32, free and forced:
     free    boxes the user would see: share of fp32's boxes that the path also proposes (same
             class, IoU >= 0.9), and the mean and max score difference of those pairs.
     forced  the same, with the path's two-stage query selection forced to fp32's picks. Random
             weights make the top-k selection over ~18k encoder tokens a field of near ties, so
             the free figure mostly measures which of two nearly equal tokens won.
2. The instrument (``--instrument-images N``, 0 skips it): a small Grounding DINO of the same
   package code, trained here on generated shapes (``benchmarks/instrument``, trained once and
   cached, minutes), run through the product's detector on held-out scenes: s/image, ratio to
   fp32, COCO AP and AP50 against the exact generated ground truth, agreement with fp32 (free),
   and the same at a half-size "preview" input. Random weights cannot tell accuracy; this can.

Paths (``PATHS``): the product's own ``--precision`` values, each built by ``create_detector``
exactly as the app builds it (bf16 only where the CPU has native bf16, emulated bf16 measured
~40x slower than fp32):
  fp32        the reference path
  fast        the default on a CPU: fused deformable sampling, fp32
  int8        ``fast`` with every nn.Linear dynamically quantised to int8 (``runtime.apply_path``)
  bf16        autocast bf16 with the fused sampler (which samples in fp32)

Every detector, full size and preview alike, runs each scene in turn, so load noise falls on all.
The last line is the ``auto`` path's ratio and AP difference, with ``auto`` what the product's
planner (``compute_path.plan_path``) makes of the measured figures on this CPU, reason included:
the bench never applies a rule of its own. ``--record FILE`` writes the per-path figures in
the shape ``autolabel_gui/detection/path_evidence.py`` reads (AP differences in points, 0..100),
fp32's AP as ``reference``, the machine, the date and the command (for the precision planner).

    .venv/bin/python benchmarks/bench_cpu.py [--images 3] [--instrument-images 100] [--threads 2]
        [--record FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autolabel_gui.core.atomic import atomic_write_text  # noqa: E402
from autolabel_gui.detection.cpu_features import CpuFeatures, this_cpu  # noqa: E402
from benchmarks.machine import cpu_name  # noqa: E402

BOX_THRESHOLD = 0.35
IMAGE_SIZE = (1066, 800)
CLASSES = ["person", "cat", "cup", "vehicle", "rocket", "dog"]
RECORDED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")
# A weakly trained instrument scores few boxes at the window's 0.35; agreement is counted lower.
INSTRUMENT_AGREEMENT = 0.1


@dataclass(frozen=True)
class PathSpec:
    """A precision path: a product ``--precision`` value, and the CPU feature it needs natively."""

    name: str
    native_bf16: bool = False  # skipped where the CPU has no native bf16 (emulated: ~40x slower)

    @property
    def int8(self) -> bool:
        return self.name == INT8_PATH


INT8_PATH = "int8"
PATHS = (PathSpec("fp32"), PathSpec("fast"), PathSpec(INT8_PATH), PathSpec("bf16", native_bf16=True))


def runnable(cpu: CpuFeatures) -> list[PathSpec]:
    return [p for p in PATHS if not p.native_bf16 or cpu.bf16_unit is not None]


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


def agreement(reference, candidate, threshold: float = BOX_THRESHOLD) -> tuple[int, int, list[float]]:
    """(fp32 boxes matched, fp32 boxes, |score differences| of the matches); greedy by score."""
    ref = [b for b in reference if b.score >= threshold]
    pool = [b for b in candidate if b.score >= threshold - 0.05]
    matched, diffs = 0, []
    for r in ref:
        best = max((c for c in pool if c.label == r.label), key=lambda c: iou(c.xyxy, r.xyxy), default=None)
        if best is not None and iou(best.xyxy, r.xyxy) >= 0.9:
            pool.remove(best)
            matched += 1
            diffs.append(abs(best.score - r.score))
    return matched, len(ref), diffs


def share(rows: list[tuple[int, int, list[float]]]) -> float | None:
    total = sum(r[1] for r in rows)
    return sum(r[0] for r in rows) / total if total else None


def summary(rows: list[tuple[int, int, list[float]]]) -> str:
    total = sum(r[1] for r in rows)
    diffs = [d for r in rows for d in r[2]]
    matched = share(rows)
    text = f"{100 * matched:5.1f}% of {total}" if matched is not None else "  n/a"
    score = f"|dscore| mean {sum(diffs) / len(diffs):.4f} max {max(diffs):.4f}" if diffs else ""
    return f"{text:>14} {score}"


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


def random_model_part(args: argparse.Namespace, paths: list[PathSpec]) -> None:
    """Speed at 800 px and free/forced agreement with fp32 on the full-size random model."""
    import numpy as np
    import torch
    from autolabel_gui.core.images import load_image
    from autolabel_gui.core.ontology import Ontology
    from autolabel_gui.detection.base import DetectorConfig
    from autolabel_gui.detection.catalogue import create_detector
    from PIL import Image

    weights, config, text_encoder = model_files(args)
    base = DetectorConfig(weights=weights, config=config, text_encoder=text_encoder, device="cpu")
    ontology = Ontology.from_names(CLASSES)
    samples = sorted((ROOT / "resources" / "samples").glob("*.jpg"))
    # the measurement size: 1066x800 (the model input is the same, 800 px shorter side)
    images = [np.asarray(Image.fromarray(load_image(p)).resize(IMAGE_SIZE)) for p in samples[: args.images]]
    print(f"\n== full-size random model: {len(images)} images "
          f"({', '.join(f'{i.shape[1]}x{i.shape[0]}' for i in images)}) resized to 800 px; "
          f"{len(CLASSES)} classes", flush=True)

    def create(precision: str):
        started = time.perf_counter()
        det = create_detector(replace(base, precision=precision))
        print(f"  loaded {precision} in {time.perf_counter() - started:.0f} s", flush=True)
        return det

    candidates = []
    for path in paths:
        det = create(path.name)
        candidates.append(Candidate(path.name, lambda imgs, det=det: det.detect(imgs, ontology, 0.05)))
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
        print(f"  image {n}: " + ", ".join(f"{c.name} {c.seconds[-1]:.2f} s" for c in candidates), flush=True)

    ref_time = sum(candidates[0].seconds) / len(images)
    print(f"\n{'path':<12}{'s/image':>9}{'ratio':>8}   {'free agreement':<50} | forced agreement")
    for c in candidates:
        per = sum(c.seconds) / len(images)
        free = summary(c.free) if c.free else "  (reference)"
        forced_ = summary(c.forced) if c.forced else ""
        print(f"{c.name:<12}{per:>9.2f}{ref_time / per:>7.2f}x   {free:<50} | {forced_}")


@dataclass
class Measured:
    """One path on the instrument at one input size."""

    seconds: float = 0.0
    found: list = field(default_factory=list)
    ap: dict[str, float] = field(default_factory=dict)
    agree: list[tuple[int, int, list[float]]] = field(default_factory=list)


def measure(detectors: dict[tuple[str, str], object], scenes, classes) -> dict[tuple[str, str], Measured]:
    """Every (size, path) detector on every scene, image by image in turn (so load noise falls on
    all); AP of each and its agreement with the first detector of its size (fp32)."""
    from autolabel_gui.core.ontology import Ontology
    from benchmarks.instrument.evaluate import SCORE_FLOOR, coco_ap

    ontology = Ontology.from_names(list(classes))
    out = {key: Measured() for key in detectors}
    for det in detectors.values():  # warm-up
        det.detect([scenes[0].image], ontology, SCORE_FLOOR)
    for scene in scenes:
        for key, det in detectors.items():
            started = time.perf_counter()
            boxes = det.detect([scene.image], ontology, SCORE_FLOOR)[0]
            out[key].seconds += time.perf_counter() - started
            out[key].found.append(boxes)
    for (size, _), m in out.items():
        reference = next(r for (s, _), r in out.items() if s == size)
        m.seconds /= len(scenes)
        m.ap = coco_ap(scenes, m.found, classes)
        m.agree = [agreement(r, c, INSTRUMENT_AGREEMENT) for r, c in zip(reference.found, m.found)]
    return out


def instrument_part(args: argparse.Namespace, paths: list[PathSpec]):
    """The paths on the trained instrument, at its input size and at half of it ("preview")."""
    from benchmarks.instrument.evaluate import SCORE_FLOOR, held_out
    from benchmarks.instrument.model import load_instrument
    from benchmarks.instrument.train import build_instrument
    from tqdm import tqdm

    if args.instrument:
        inst = load_instrument(args.instrument)
    else:
        inst = build_instrument(args.instrument_cache, progress=lambda **kw: tqdm(mininterval=5, **kw),
                                log=lambda m: print(m, flush=True))
    meta = json.loads((inst.folder / "meta.json").read_text(encoding="utf-8"))
    scenes = held_out(inst.spec, args.instrument_images)
    size = inst.spec.scenes.size
    sizes = {"full": size, "preview": size // 2}
    print(f"\n== instrument {inst.folder.name} ({meta['steps_done']} training steps, {meta['wall_s']} s wall): "
          f"{len(scenes)} held-out scenes of {size} px, classes {', '.join(inst.classes)}", flush=True)
    detectors = {(label, p.name): inst.detector(precision=p.name, text_threshold=SCORE_FLOOR,
                                                extra={"image_size": str(side), "max_size": str(side)})
                 for label, side in sizes.items() for p in paths}
    measured = measure(detectors, scenes, inst.classes)
    results = {label: {name: measured[(label, name)] for name in (p.name for p in paths)} for label in sizes}
    full, preview = results["full"], results["preview"]
    ref = full["fp32"]
    agree_title = f"agreement with fp32 (score >= {INSTRUMENT_AGREEMENT})"
    print(f"\n{'path':<12}{'s/image':>9}{'ratio':>8}{'AP':>8}{'AP50':>8}{'dAP':>8}   {agree_title:<50}"
          f"| preview {sizes['preview']} px: s/image, AP, dAP vs full size")
    for name, m in full.items():
        p = preview[name]
        agree = summary(m.agree) if name != "fp32" else "  (reference)"
        print(f"{name:<12}{m.seconds:>9.3f}{ref.seconds / m.seconds:>7.2f}x{m.ap['AP']:>8.3f}{m.ap['AP50']:>8.3f}"
              f"{m.ap['AP'] - ref.ap['AP']:>+8.3f}   {agree:<50}| {p.seconds:.3f} {p.ap['AP']:.3f} "
              f"{p.ap['AP'] - m.ap['AP']:+.3f}")
    return results, inst, meta


def evidence(results: dict[str, dict[str, Measured]], meta: dict, folder: str) -> dict:
    """The evidence file ``path_evidence.py`` reads: per path AP/AP50 differences in points and
    the speed ratio against fp32, fp32's own AP as ``reference``, where and how it was measured;
    ``auto`` is what the product's planner makes of these figures on this CPU."""
    import torch
    from autolabel_gui.detection.compute_path import plan_path
    from autolabel_gui.detection.path_evidence import parse_evidence

    full, preview = results["full"], results["preview"]
    ref = full["fp32"]

    def figures(m: Measured, base: Measured) -> dict[str, float | None]:
        return {"ap_delta": round(100 * (m.ap["AP"] - base.ap["AP"]), 2),
                "ap50_delta": round(100 * (m.ap["AP50"] - base.ap["AP50"]), 2),
                "ratio": round(base.seconds / m.seconds, 3), "s_per_image": round(m.seconds, 5),
                "agreement": share(m.agree)}

    points = {"ap": round(100 * ref.ap["AP"], 2), "ap50": round(100 * ref.ap["AP50"], 2)}
    data = {
        "paths": {name: {**figures(m, ref), "preview": figures(preview[name], m)}
                  for name, m in full.items() if name != "fp32"},
        "reference": {**points, "s_per_image": round(ref.seconds, 5),
                      "preview": {"ap": round(100 * preview["fp32"].ap["AP"], 2),
                                  "ap50": round(100 * preview["fp32"].ap["AP50"], 2)}},
        "machine": cpu_name(),
        "cpu_flags": sorted(f for f in RECORDED_FLAGS if f in this_cpu().flags),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "command": " ".join(["benchmarks/bench_cpu.py", *sys.argv[1:]]),
        "threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2),
        "note": (f"Instrument {folder} ({meta['steps_done']} training steps, {meta['wall_s']} s wall): fp32 AP "
                 f"{points['ap']} / AP50 {points['ap50']} points on {len(ref.found)} held-out scenes. "
                 "Differences in AP points (0..100); ratio = fp32 s/image over the path's; preview = the "
                 "same path at half the input size, against its full size."),
    }
    data["auto"] = plan_path("auto", "cpu", this_cpu(), parse_evidence(json.dumps(data))).text()
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="full-size random model images (0: skip that part)")
    parser.add_argument("--model-dir", default="~/.cache/autolabel-gui/bench-full-size")
    parser.add_argument("--weights")
    parser.add_argument("--config")
    parser.add_argument("--text-encoder")
    parser.add_argument("--instrument-images", type=int, default=100, help="held-out scenes (0: skip the instrument)")
    parser.add_argument("--instrument-cache", default="~/.cache/autolabel-gui-bench/instrument")
    parser.add_argument("--instrument", help="an instrument folder built earlier (default: build or reuse the "
                        "cached one for the current training settings)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 path")
    parser.add_argument("--record", type=Path, help="write the instrument's per-path figures here (JSON)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = this_cpu()
    paths = [p for p in runnable(cpu) if not (args.no_int8 and p.int8)]
    skipped = [p.name for p in PATHS if p not in paths]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16 {cpu.bf16_unit or 'no'}, "
          f"vnni {cpu.vnni_unit or 'no'}; "
          f"load average {os.getloadavg()[0]:.1f}; paths {', '.join(p.name for p in paths)}"
          + (f" (skipped: {', '.join(skipped)})" if skipped else ""), flush=True)
    if args.images > 0:
        random_model_part(args, paths)
    if args.instrument_images <= 0:
        return
    results, inst, meta = instrument_part(args, paths)
    full = results["full"]
    data = evidence(results, meta, inst.folder.name)
    if args.record:
        atomic_write_text(args.record, json.dumps(data, indent=1) + "\n")
        print(f"recorded in {args.record}")
    auto = data["auto"].split(":", 1)[0]
    ref, chosen = full["fp32"], full[auto]
    print(f"auto path on this CPU = {data['auto']}: {ref.seconds / chosen.seconds:.2f}x the fp32 reference "
          f"({chosen.seconds:.3f} vs {ref.seconds:.3f} s/image), AP {chosen.ap['AP']:.3f} vs {ref.ap['AP']:.3f} "
          f"(difference {chosen.ap['AP'] - ref.ap['AP']:+.3f}; AP50 {chosen.ap['AP50'] - ref.ap['AP50']:+.3f})")


if __name__ == "__main__":
    main()
