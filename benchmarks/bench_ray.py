"""``label`` on one machine against ``label --ray local`` with 1 and 2 workers. Prints, never asserts.

The same folder (the bundled sample photos, copied to N images) is labelled three times, each
into a fresh cache (``--cache``), with the tiny random checkpoint of the tests on the CPU:

1. the local pipeline (torch with its default threads, decoding on 2 threads beside the model);
2. ``--ray local --workers 1`` and 3. ``--workers 2`` on a local Ray cluster started once
   beforehand, whose start (``ray.init``) and stop are timed apart: the fixed cost of the cluster.

Each figure is images / wall seconds of the whole ``label`` call, model loading included (the
local run loads one model, each actor its own; torch is imported before any timing), so ratios
against the local baseline measured in the same run are comparable; on a machine shared with
other work they are noisy. Usage:

    .venv/bin/python benchmarks/bench_ray.py [--images N] [--batch-size B] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _folder(dest: Path, n: int) -> Path:
    photos = sorted((ROOT / "resources" / "samples").glob("*.jpg"))
    dest.mkdir(parents=True)
    for i in range(n):
        shutil.copy2(photos[i % len(photos)], dest / f"{i:04d}_{photos[i % len(photos)].name}")
    return dest


def _label(folder: Path, cache: Path, model_args: list[str], extra: list[str]) -> float:
    from autolabel_gui.cli import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        rc = main(["label", str(folder), "--cache", str(cache), *model_args, *extra])
    seconds = time.perf_counter() - start
    if rc != 0:
        raise SystemExit(f"label {' '.join(extra)} failed ({rc}): {out.getvalue()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24, help="images in the folder (default 24)")
    parser.add_argument("--batch-size", type=int, default=2, help="images per forward pass (default 2)")
    parser.add_argument("--model-dir", type=Path, default=None, help="reuse/build the tiny model here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import ray
    from tests.fixtures.tiny_gdino import build_tiny_gdino

    with tempfile.TemporaryDirectory(prefix="bench_ray_") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or work / "model"
        built = (model_dir / "groundingdino_random.pth").exists()
        tiny = build_tiny_gdino(model_dir) if not built else None
        weights = tiny.weights_path if tiny else model_dir / "groundingdino_random.pth"
        config = tiny.config_path if tiny else model_dir / "gdino_config.py"
        bert = tiny.text_encoder_dir if tiny else model_dir / "bert"
        model_args = ["--classes", "person,cat,cup", "--weights", str(weights), "--config", str(config),
                      "--text-encoder", str(bert), "--device", "cpu", "--precision", "fp32",
                      "--batch-size", str(args.batch_size), "--no-progress"]
        folder = _folder(work / "photos", args.images)
        print(f"{args.images} images (the samples, copied), tiny random Grounding DINO on the CPU, "
              f"batch {args.batch_size}, {os.cpu_count()} CPUs")

        import autolabel_gui.detection.grounding_dino  # noqa: F401  (torch and the model package, imported
        # before timing: the actors' processes have them loaded by the time they count, so must the local run)

        local = _label(folder, work / "local.sqlite", model_args, [])
        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        cluster_start = time.perf_counter() - start
        try:
            one = _label(folder, work / "ray1.sqlite", model_args, ["--ray", "local", "--workers", "1"])
            two = _label(folder, work / "ray2.sqlite", model_args, ["--ray", "local", "--workers", "2"])
        finally:
            start = time.perf_counter()
            ray.shutdown()
            cluster_stop = time.perf_counter() - start

    rows = [("local pipeline", local), ("--ray local, 1 worker", one), ("--ray local, 2 workers", two)]
    print(f"{'run':<26}{'seconds':>9}{'img/s':>9}{'vs local':>10}")
    for name, seconds in rows:
        print(f"{name:<26}{seconds:>9.1f}{args.images / seconds:>9.2f}{local / seconds:>9.2f}x")
    print(f"fixed cost of the cluster: ray.init {cluster_start:.1f} s, ray.shutdown {cluster_stop:.1f} s "
          f"(not in the figures above)")


if __name__ == "__main__":
    main()
