"""Memory over a whole folder: the seed tutorial's loop against DetectionPipeline + cache. Prints, never asserts.

Both run, each in a fresh process, over the SAME generated folder of JPEGs (default 300 at
1024x768):

(a) the seed tutorial's loop: ``cv2.imread`` each image, ``Model.predict_with_classes`` on it,
    and keep every decoded image and its detections in two dicts, as the tutorial does;
(b) ``DetectionPipeline`` over ``ImageFolder`` with a ``ProposalCache``, results consumed and
    dropped, as ``autolabel-gui label`` does (decode + prepare on two threads, bounded prefetch).

Printed: RSS after every 50 images, the growth per 100 images (least-squares slope over those
points), peak RSS above the level after model load and warm-up, images/second (after one untimed
warm-up image, model load excluded) and the ratio, how many of the pipeline's boxes are also in
the tutorial's output, and how much CPU other processes used meanwhile (a shared machine).

The model is the tiny random checkpoint of ``tests/fixtures/tiny_gdino.build_tiny_gdino``:
the memory effect is about what a loop keeps, not about the model's size, and the tiny model
keeps 300 images inside a few minutes on a CPU. Both loops feed it the tiny config's small
input size (the pipeline reads it from the config file; the tutorial's ``Model.preprocess_image``,
which hard-codes 800/1333, is given the same size), so images/second here is dominated by
decoding and preprocessing, the part the pipeline overlaps; see ``bench_detection.py`` for the
full-size model. Usage:

    .venv/bin/python benchmarks/bench_pipeline_memory.py [--images N] [--batch-size B] [--every K]
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

from benchmarks.bench_detection import BOX_THRESHOLD, SEED_CLASSES, TEXT_THRESHOLD, PeakRss, run_worker  # noqa: E402

IMAGE_SIZE = (1024, 768)
MB = 2**20


# ----------------------------------------------------------------------------- workers (subprocess)


def _tiny_input_size(config_path: str) -> tuple[int, int]:
    from groundingdino.util.slconfig import SLConfig

    cfg = SLConfig.fromfile(config_path)
    return int(cfg.image_size), int(cfg.max_size)


def _worker_seed(spec: dict) -> dict:
    """The tutorial's loop: every decoded image and its detections stay in dicts."""
    import cv2
    import groundingdino.datasets.transforms as T
    from groundingdino.util import inference
    from PIL import Image

    size, max_size = _tiny_input_size(spec["config"])

    def preprocess_image(image_bgr):  # the package's own, with the tiny model's input size
        transform = T.Compose([T.RandomResize([size], max_size=max_size), T.ToTensor(),
                               T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        return transform(Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)), None)[0]

    inference.Model.preprocess_image = staticmethod(preprocess_image)
    model = inference.Model(model_config_path=spec["config"], model_checkpoint_path=spec["weights"], device="cpu")
    classes = [f"all {c}s" for c in SEED_CLASSES]
    paths = spec["images"]
    images, annotations = {}, {}
    rss: list[tuple[int, float]] = []
    with PeakRss() as mem:
        model.predict_with_classes(image=cv2.imread(paths[0]), classes=classes,
                                   box_threshold=BOX_THRESHOLD, text_threshold=TEXT_THRESHOLD)  # warm-up
        rss.append((0, PeakRss.rss() / MB))
        t0 = time.perf_counter()
        for n, path in enumerate(paths, 1):
            image = cv2.imread(path)
            detections = model.predict_with_classes(image=image, classes=classes,
                                                    box_threshold=BOX_THRESHOLD, text_threshold=TEXT_THRESHOLD)
            images[Path(path).name] = image
            annotations[Path(path).name] = detections
            if n % spec["every"] == 0:
                rss.append((n, PeakRss.rss() / MB))
        seconds = time.perf_counter() - t0
    boxes = {name: d.xyxy.tolist() for name, d in annotations.items()}
    return {"seconds": seconds, "rss": rss, "peak_mb": mem.growth_mb, "boxes": boxes}


def _worker_pipeline(spec: dict) -> dict:
    """DetectionPipeline + cache over the folder; each result is dropped once it is counted."""
    from autolabel_gui.core.cache import ProposalCache
    from autolabel_gui.core.folder import ImageFolder
    from autolabel_gui.core.images import load_image
    from autolabel_gui.core.ontology import Ontology
    from autolabel_gui.detection.base import DetectorConfig
    from autolabel_gui.detection.pipeline import DetectionPipeline

    config = DetectorConfig(weights=spec["weights"], config=spec["config"], text_encoder=spec["text_encoder"],
                            device="cpu", precision="fp32", box_threshold=BOX_THRESHOLD,
                            text_threshold=TEXT_THRESHOLD, batch_size=spec["batch_size"])
    ontology = Ontology.from_names(SEED_CLASSES, {c: f"all {c}s" for c in SEED_CLASSES})
    folder = ImageFolder(Path(spec["folder"]))
    cache = ProposalCache(spec["cache"])
    pipeline = DetectionPipeline(folder, cache, config, ontology, on_event=lambda kind, msg: None)
    rss: list[tuple[int, float]] = []
    boxes: dict[str, list] = {}
    detector = pipeline.ensure_detector()
    with PeakRss() as mem:
        detector.detect([load_image(folder.image_path(folder.images[0]))], ontology, BOX_THRESHOLD)  # warm-up
        rss.append((0, PeakRss.rss() / MB))
        t0 = time.perf_counter()
        for n, result in enumerate(pipeline.run(folder.images), 1):
            if not result.ok:
                raise RuntimeError(result.error)
            boxes[result.relpath] = [list(b.xyxy) for b in result.boxes if b.score >= BOX_THRESHOLD]
            if n % spec["every"] == 0:
                rss.append((n, PeakRss.rss() / MB))
        seconds = time.perf_counter() - t0
    cache.close()
    return {"seconds": seconds, "rss": rss, "peak_mb": mem.growth_mb, "boxes": boxes,
            "cache_mb": os.path.getsize(spec["cache"]) / MB, "page_cache_mb": _sqlite_page_cache_cap_mb()}


def _sqlite_page_cache_cap_mb() -> float:
    """SQLite's default page cache limit per connection (``PRAGMA cache_size``; negative = KiB)."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    try:
        pages = conn.execute("PRAGMA cache_size").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return (-pages * 1024 if pages < 0 else pages * page_size) / MB


def _worker_main(spec_path: str) -> None:
    warnings.filterwarnings("ignore")
    spec = json.loads(Path(spec_path).read_text())
    out = _worker_seed(spec) if spec["kind"] == "seed" else _worker_pipeline(spec)
    Path(spec["result"]).write_text(json.dumps(out))


# ----------------------------------------------------------------------------- parent


def _make_folder(dest: Path, count: int) -> list[str]:
    """Photo-like JPEGs (smooth gradients, shapes, noise) so that they compress like photos."""
    import cv2
    import numpy as np

    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    w, h = IMAGE_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(count):
        base = rng.uniform(40, 200, 3) + rng.uniform(-60, 60, 3) * (xx[..., None] / w) \
            + rng.uniform(-60, 60, 3) * (yy[..., None] / h)
        image = base.astype(np.float32)
        for _ in range(12):
            x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
            cv2.rectangle(image, (x, y), (x + int(rng.integers(30, 300)), y + int(rng.integers(30, 300))),
                          rng.uniform(0, 255, 3).tolist(), -1)
        image += rng.normal(0, 6, image.shape).astype(np.float32)
        path = dest / f"img{i:04d}.jpg"
        cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(str(path))
    return paths


def _slope_per_100(points: list[tuple[int, float]]) -> float:
    """Least-squares RSS growth (MB) per 100 images over the checkpoints after the warm-up one."""
    pts = [p for p in points if p[0] > 0]
    if len(pts) < 2:
        return float("nan")
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    den = sum((x - mx) ** 2 for x, _ in pts)
    return 100 * sum((x - mx) * (y - my) for x, y in pts) / den


def _match(ours: dict[str, list], theirs: dict[str, list]) -> tuple[int, int]:
    """(pipeline boxes at the box threshold, how many are in the tutorial's output within 0.01 px)."""
    import numpy as np

    total = found = 0
    for name, boxes in ours.items():
        ref = np.asarray(theirs.get(name, []), dtype=np.float64).reshape(-1, 4)
        ref[:, 0::2] = ref[:, 0::2].clip(0, IMAGE_SIZE[0])  # the tutorial does not clamp, we do
        ref[:, 1::2] = ref[:, 1::2].clip(0, IMAGE_SIZE[1])
        for box in boxes:
            total += 1
            if len(ref) and np.abs(ref - np.asarray(box)).max(axis=1).min() < 0.01:
                found += 1
    return total, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300, help="JPEGs in the generated folder (default 300)")
    parser.add_argument("--batch-size", type=int, default=1, help="the pipeline's batch size (default 1, as label)")
    parser.add_argument("--every", type=int, default=50, help="print RSS after every K images (default 50)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args.worker)
        return
    warnings.filterwarnings("ignore")
    import torch
    from tests.fixtures.tiny_gdino import build_tiny_gdino

    with tempfile.TemporaryDirectory(prefix="bench_pipeline_memory_") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        model = build_tiny_gdino(work / "model")
        paths = _make_folder(work / "folder", args.images)
        mb = sum(os.path.getsize(p) for p in paths) / MB
        size, max_size = _tiny_input_size(str(model.config_path))
        print(f"{len(paths)} JPEGs {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} ({mb:.0f} MB on disk, "
              f"{IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3 / MB:.2f} MB each decoded), made with the model in "
              f"{time.perf_counter() - t0:.1f} s; torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"{os.cpu_count()} CPUs")
        print(f"model: the TINY random Grounding DINO of tests/fixtures/tiny_gdino.py at input {size}/{max_size} "
              f"in both loops; what this shows is what each loop KEEPS, which does not depend on the model's size")
        base = {"config": str(model.config_path), "weights": str(model.weights_path),
                "text_encoder": str(model.text_encoder_dir), "images": paths, "every": args.every}
        seed = run_worker(work, "seed", {**base, "kind": "seed"}, __file__)
        ours = run_worker(work, "pipeline", {**base, "kind": "pipeline", "folder": str(work / "folder"),
                                              "cache": str(work / "cache.sqlite"), "batch_size": args.batch_size},
                           __file__)

        print("\nRSS (MB) after N images (N=0: after model load and one warm-up image)")
        print(f"  {'N':>5}  {'(a) seed loop':>14}  {'(b) pipeline':>14}")
        for (n, a), (_, b) in zip(seed["rss"], ours["rss"]):
            print(f"  {n:>5}  {a:>14.1f}  {b:>14.1f}")
        rows = [("(a) seed tutorial loop (dicts)", seed), (f"(b) DetectionPipeline + cache, batch {args.batch_size}",
                                                           ours)]
        print()
        for label, r in rows:
            print(f"  {label:<40} {len(paths) / r['seconds']:6.2f} img/s ({r['seconds']:5.1f} s)   "
                  f"growth {_slope_per_100(r['rss']):7.1f} MB per 100 images   peak RSS above start "
                  f"{r['peak_mb']:7.1f} MB   [others used {r['others_cpu']:.0%} of the CPUs]")
        print(f"  speed ratio pipeline/seed {seed['seconds'] / ours['seconds']:.2f}x; peak RSS growth ratio "
              f"{ours['peak_mb'] / max(seed['peak_mb'], 1e-9):.3f}x")
        print(f"  the pipeline's small slope is SQLite's page cache filling as the proposal cache grows (cache "
              f"file {ours['cache_mb']:.1f} MB at the end); SQLite caps that page cache at "
              f"{ours['page_cache_mb']:.1f} MB per connection, so it levels off there")
        total, found = _match(ours["boxes"], seed["boxes"])
        print(f"  outputs: {found}/{total} of the pipeline's boxes (score >= {BOX_THRESHOLD}) are in the seed "
              f"loop's output (the tutorial keeps separator-scored boxes and duplicates too)")


if __name__ == "__main__":
    main()
