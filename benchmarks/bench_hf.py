"""The ``transformers`` backend against the original one on the same full-size weights. Prints, never asserts.

The full-size Swin-T architecture with random weights (``tiny_gdino.build_tiny_gdino(full_size=True)``:
the package's unchanged SwinT-OGC config, a bert-base-sized random text encoder), converted with
``weights convert`` into a transformers folder, so both backends run exactly the same model.
Images/s on the CPU of the original backend at batch 1 and of the transformers backend at batch
1 and B (``Detector.detect`` on decoded 800x600 images, two classes, after one untimed warm-up
batch), each in a fresh process, with its peak RSS (absolute, and growth above the level after
loading) and the share of the machine's CPU that other processes used meanwhile (timings are
noise above ~10%). Also: whether the two backends' boxes agree on the first image. Usage:

    .venv/bin/python benchmarks/bench_hf.py [--images N] [--batch-size B] [--precision fast] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_detection import PeakRss, _prepare_images, run_worker  # noqa: E402

CLASSES = ["person", "dog"]


def _worker(spec: dict) -> dict:
    import numpy as np
    from autolabel_gui.core.images import load_image
    from autolabel_gui.core.ontology import Ontology
    from autolabel_gui.detection.base import DetectorConfig
    from autolabel_gui.detection.catalogue import create_detector

    config = DetectorConfig(**spec["config"])
    detector = create_detector(config)
    images = [load_image(Path(p)) for p in spec["images"]]
    ontology = Ontology.from_names(CLASSES)
    batch = spec["batch"]
    detector.detect(images[:batch], ontology, 0.05)  # warm-up
    boxes: list = []
    with PeakRss() as rss:
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            boxes.extend(detector.detect(images[i:i + batch], ontology, 0.05))
        seconds = time.perf_counter() - start
    first = [(b.label, round(b.score, 5), *np.round(b.xyxy, 2).tolist()) for b in boxes[0]]
    return {"seconds": seconds, "images": len(images), "growth_mb": rss.growth_mb,
            "peak_mb": rss.peak_bytes / 2**20, "first": first}


def _worker_main(spec_path: str) -> None:
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    spec = json.loads(Path(spec_path).read_text())
    Path(spec["result"]).write_text(json.dumps(_worker(spec)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--precision", default="fp32", help="fp32 (the reference path) or fast (the CPU fast path)")
    parser.add_argument("--model-dir", help="reuse a full-size random model built by build_tiny_gdino (full_size=True)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args.worker)
        return
    warnings.filterwarnings("ignore")
    from autolabel_gui.detection.convert_gdino import convert
    from tests.fixtures.tiny_gdino import TinyGdino, build_tiny_gdino

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        if args.model_dir:
            model = TinyGdino.at(Path(args.model_dir))
        else:
            model = build_tiny_gdino(work / "orig", full_size=True)
        hf_dir = convert(model.weights_path, model.config_path, model.text_encoder_dir, work / "hf").out
        print(f"built full-size random Swin-T model and converted it in {time.perf_counter() - t0:.0f} s")
        images = _prepare_images(work / "images", args.images)
        common = {"device": "cpu", "precision": args.precision}
        runs = [
            ("original     batch 1", {"backend": "grounding_dino", "weights": str(model.weights_path),
                                      "config": str(model.config_path), "text_encoder": str(model.text_encoder_dir),
                                      **common}, 1),
            ("transformers batch 1", {"backend": "transformers", "weights": str(hf_dir), **common}, 1),
            (f"transformers batch {args.batch_size}", {"backend": "transformers", "weights": str(hf_dir), **common},
             args.batch_size),
        ]
        results = {}
        print(f"{len(images)} images of 800x600, classes {CLASSES}, precision {args.precision}, CPU threads: "
              f"{os.environ.get('BENCH_THREADS', 'torch default')}, cores: {os.cpu_count()}")
        for name, config, batch in runs:
            r = run_worker(work, name.replace(" ", "_"), {"config": config, "images": images, "batch": batch},
                           script=__file__)
            results[name] = r
            print(f"{name}: {r['images'] / r['seconds']:.3f} images/s  ({r['seconds']:.1f} s)  peak RSS "
                  f"{r['peak_mb']:.0f} MB (+{r['growth_mb']:.0f} MB during the loop)  "
                  f"other processes used {100 * r['others_cpu']:.0f}% of the CPU")
        a, b = results["original     batch 1"]["first"], results["transformers batch 1"]["first"]
        same = len(a) == len(b) and all(x[0] == y[0] and abs(x[1] - y[1]) <= 1e-3
                                        and max(abs(p - q) for p, q in zip(x[2:], y[2:])) <= 1.0
                                        for x, y in zip(a, b))
        print(f"first image: original {len(a)} boxes, transformers {len(b)} boxes, same within 1 px / 1e-3: {same}")


if __name__ == "__main__":
    main()
