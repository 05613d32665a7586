"""What fitting a box costs on this CPU, per segmenter of the catalogue. Prints, never asserts.

Each candidate is built at full size from its published architecture (the config values below,
from the model cards: SAM ViT-B, SAM-HQ ViT-B, SAM 2.1 Hiera-T and Hiera-S, EdgeTAM with its
RepViT-M1 encoder) with random weights: no weights can be downloaded here, and the arithmetic,
hence the cost, does not depend on their values. Each runs through the program's own
``detection.segmenter.Segmenter`` (processor, encoder, prompt decoder, ``post_process_masks``,
box of the mask) on a decoded 1024x768 photo-sized image:

- per image: ``embed`` (the image encoder, once per image in the window), median of N runs;
- per box: ``fit`` of one box prompt (prompt -> mask -> box), median of M runs, and the cost per
  box of one call with 8 boxes (Shift+F on an image with many accepted boxes).

Wall and process CPU seconds are both printed, with torch's thread count, the CPU's name and
the load average before and after (other processes on the machine make timings noisy). Usage:

    .venv/bin/python benchmarks/bench_fit.py [--images N] [--boxes M] [--only NAME ...] [--threads T]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_name  # noqa: E402

IMAGE_SIZE = (768, 1024)  # rows, columns


def _sam(hq: bool) -> tuple[Any, Any]:
    """SAM / SAM-HQ ViT-B: 12 layers of width 768, 12 heads, global attention at 2, 5, 8, 11 (the configs' defaults)."""
    import transformers
    from transformers import SamImageProcessor

    config = (transformers.SamHQConfig if hq else transformers.SamConfig)()
    assert config.vision_config.hidden_size == 768 and config.vision_config.num_hidden_layers == 12
    model = (transformers.SamHQModel if hq else transformers.SamModel)(config)
    processor = (transformers.SamHQProcessor if hq else transformers.SamProcessor)(image_processor=SamImageProcessor())
    return model, processor


def _sam2(blocks: list[int], global_blocks: list[int]) -> tuple[Any, Any]:
    """SAM 2.1 Hiera: T is stages [1, 2, 7, 2] with global attention in blocks 5, 7, 9; S is
    [1, 2, 11, 2] with 7, 10, 13; both 96 wide, 1024-pixel input (facebook/sam2.1-hiera-* config.json)."""
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessorFast,
        Sam2Model,
        Sam2Processor,
        Sam2VisionConfig,
    )

    backbone = Sam2HieraDetConfig(blocks_per_stage=blocks, global_attention_blocks=global_blocks)
    config = Sam2Config(vision_config=Sam2VisionConfig(backbone_config=backbone.to_dict()).to_dict())
    return Sam2Model(config), Sam2Processor(image_processor=Sam2ImageProcessorFast())


def _edgetam() -> tuple[Any, Any]:
    """EdgeTAM: timm's RepViT-M1 as image encoder (features at strides 4..32), SAM 2's decoder."""
    from transformers import EdgeTamConfig, EdgeTamModel, Sam2ImageProcessorFast, Sam2Processor

    backbone = {"model_type": "timm_wrapper", "architecture": "repvit_m1", "num_classes": 0,
                "model_args": {"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}}
    config = EdgeTamConfig(vision_config={"backbone_config": backbone})
    return EdgeTamModel(config), Sam2Processor(image_processor=Sam2ImageProcessorFast())


CANDIDATES: dict[str, tuple[str, Callable[[], tuple[Any, Any]]]] = {
    "sam-vit-base": ("sam", lambda: _sam(hq=False)),
    "sam-hq-vit-base": ("sam_hq", lambda: _sam(hq=True)),
    "sam2.1-hiera-tiny": ("sam2", lambda: _sam2([1, 2, 7, 2], [5, 7, 9])),
    "sam2.1-hiera-small": ("sam2", lambda: _sam2([1, 2, 11, 2], [7, 10, 13])),
    "edgetam": ("edgetam", _edgetam),
}


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``runs`` calls."""
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def measure(name: str, images: int, boxes: int) -> dict[str, float]:
    import numpy as np
    import torch
    from autolabel_gui.detection.segmenter import Segmenter
    from autolabel_gui.detection.segmenter_spec import FAMILIES

    family, build = CANDIDATES[name]
    torch.manual_seed(0)
    model, processor = build()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    segmenter = Segmenter(model, processor, FAMILIES[family], name)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*IMAGE_SIZE, 3), dtype=np.uint8)
    box = (200.0, 150.0, 620.0, 540.0)
    many = [(40.0 + 100 * i, 60.0 + 50 * i, 240.0 + 100 * i, 300.0 + 50 * i) for i in range(8)]
    embedding = segmenter.embed(image)  # warm-up
    segmenter.fit(embedding, [box])
    embed_wall, embed_cpu = timed(lambda: segmenter.embed(image), images)
    box_wall, box_cpu = timed(lambda: segmenter.fit(embedding, [box]), boxes)
    many_wall, many_cpu = timed(lambda: segmenter.fit(embedding, many), max(1, boxes // 2))
    return {"params_m": params, "embed_wall": embed_wall, "embed_cpu": embed_cpu, "box_wall": box_wall,
            "box_cpu": box_cpu, "box8_wall": many_wall / len(many), "box8_cpu": many_cpu / len(many)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="timed embeddings per model (median)")
    parser.add_argument("--boxes", type=int, default=6, help="timed one-box fits per model (median)")
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(CANDIDATES), help="these models only")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own; 1 on a busy machine, where threads spin-wait)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, image {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]}, "
          f"load average before {os.getloadavg()[0]:.2f}")
    print(f"{'model':<20} {'params':>8} {'embed wall':>11} {'embed cpu':>10} {'box wall':>9} {'box cpu':>8} "
          f"{'box/8 wall':>11}")
    rows: dict[str, dict[str, float]] = {}
    for name in args.only or CANDIDATES:
        try:
            rows[name] = r = measure(name, args.images, args.boxes)
        except Exception as exc:  # one family failing to build must not hide the others' figures
            print(f"{name:<20} failed: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        print(f"{name:<20} {r['params_m']:>7.1f}M {r['embed_wall']:>10.2f}s {r['embed_cpu']:>9.2f}s "
              f"{r['box_wall'] * 1000:>7.0f}ms {r['box_cpu'] * 1000:>6.0f}ms {r['box8_wall'] * 1000:>9.0f}ms",
              flush=True)
        gc.collect()
    if rows:
        base = min(rows, key=lambda n: rows[n]["embed_wall"])
        print(f"cheapest per image: {base}; embedding cost relative to it: " + ", ".join(
            f"{n} {r['embed_wall'] / rows[base]['embed_wall']:.1f}x" for n, r in rows.items()))
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
