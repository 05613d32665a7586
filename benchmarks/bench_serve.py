"""The proposal server (``autolabel-gui serve``) against the local model. Prints, never asserts.

In one run, on the tiny random checkpoint of the tests (``--full-size``: the SwinT-OGC sizes, still
random; ``--device cuda`` on a GPU machine):

1. local detection, s/img: the pipeline a window runs (batch 1, model loaded before timing), with
   torch's default threads and with one thread (what a replica with a fractional CPU gets);
2. the same through the server, one client: s/img, and the overhead per request on loopback
   (encode, HTTP, decode on the server, batching wait, reply) = server s/img - local s/img;
3. throughput with 1, 2 and 4 concurrent clients (each a window's worker: batch 1, its own images),
   with dynamic batching (``--max-batch-size``) and with one request at a time (max batch 1).

Every image is distinct (the samples re-encoded with a mark), so the server's answers for
repeated bytes never flatter it. Server start-up and model loading are timed apart. Usage:

    .venv/bin/python benchmarks/bench_serve.py [--images N] [--max-batch-size B] [--full-size] [--device D]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
CLASSES = ["person", "cat", "cup"]


def _distinct_images(dest: Path, n: int, start: int = 0) -> list[str]:
    """``n`` JPEGs: the samples in turn, each with a mark of its index in one corner."""
    from PIL import Image

    photos = sorted((ROOT / "resources" / "samples").glob("*.jpg"))
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(start, start + n):
        with Image.open(photos[i % len(photos)]) as im:
            rgb = im.convert("RGB")
        rgb.putpixel((0, 0), (i % 256, (i // 256) % 256, 7))
        name = f"{i:04d}.jpg"
        rgb.save(dest / name, quality=95)
        names.append(name)
    return names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(folder: Path, names: list[str], settings, factory=None) -> float:
    """Seconds to detect ``names`` with a window's pipeline (batch 1), the model already built."""
    from autolabel_gui.core.cache import ProposalCache
    from autolabel_gui.core.folder import ImageFolder
    from autolabel_gui.detection.catalogue import create_detector
    from autolabel_gui.detection.pipeline import DetectionPipeline

    with tempfile.TemporaryDirectory() as tmp, ProposalCache(Path(tmp) / "cache.sqlite") as cache:
        pipeline = DetectionPipeline(ImageFolder(folder), cache, settings.detector_config(), settings.ontology(),
                                     factory=factory or create_detector, batch_size=1, plan=settings.run_plan())
        pipeline.ensure_detector()
        start = time.perf_counter()
        failed = [r.error for r in pipeline.run(names) if not r.ok]
        seconds = time.perf_counter() - start
    if failed:
        raise SystemExit(f"detection failed: {failed[0]}")
    return seconds


def _clients(work: Path, k: int, per_client: int, settings, first: int) -> float:
    """Images/s of ``k`` clients at once, each with ``per_client`` images of its own."""
    folders = []
    for c in range(k):
        folder = work / f"clients{k}-{first}" / f"c{c}"
        folders.append((folder, _distinct_images(folder, per_client, first + c * per_client)))
    errors: list[BaseException] = []

    def client(folder: Path, names: list[str]) -> None:
        try:
            _run(folder, names, settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=f) for f in folders]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise SystemExit(f"a client failed: {errors[0]}")
    return k * per_client / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24, help="images per measurement (default 24)")
    parser.add_argument("--max-batch-size", type=int, default=4, help="the server's dynamic batch (default 4)")
    parser.add_argument("--full-size", action="store_true", help="the SwinT-OGC sizes (random weights)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--model-dir", type=Path, default=None, help="reuse/build the model here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import ray
    import torch
    from autolabel_gui.app.project import ProjectSettings
    from autolabel_gui.app.serve import APP_NAME, ServeOptions, start
    from autolabel_gui.core.server_token import TOKEN_ENV, digest
    from autolabel_gui.detection.server_client import ServerClient
    from ray import serve
    from tests.fixtures.tiny_gdino import TinyGdino, build_tiny_gdino

    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or work / "model"
        tiny = (TinyGdino.at(model_dir) if (model_dir / "groundingdino_random.pth").exists()
                else build_tiny_gdino(model_dir, full_size=args.full_size))
        precision = "fp32" if args.device == "cpu" else "auto"
        config = tiny.detector_config(device=args.device, precision=precision)
        local = ProjectSettings(classes=CLASSES, batch_size=1, backend=config.backend, weights=config.weights,
                                config=config.config, text_encoder=config.text_encoder, device=args.device,
                                precision=precision)
        n = args.images
        folder = work / "photos"
        names = _distinct_images(folder, n)
        print(f"{n} images (the samples re-encoded, each distinct), {'full-size' if args.full_size else 'tiny'} "
              f"random Grounding DINO, device {args.device}, {os.cpu_count()} CPUs, torch {torch.get_num_threads()} "
              f"threads by default")

        import autolabel_gui.detection.grounding_dino  # noqa: F401  (torch and the model, before timing)

        _run(folder, names[:4], local)  # warm-up
        threads = torch.get_num_threads()
        runs: dict[int, list[float]] = {threads: [], 1: []}
        for count in (threads, 1, threads, 1):  # alternated: a busy machine weighs on both alike
            torch.set_num_threads(count)
            runs[count].append(_run(folder, names, local) / n)
        torch.set_num_threads(threads)
        local_s, local1_s = min(runs[threads]), min(runs[1])

        token = "bench-token-0123456789abcdef"
        os.environ[TOKEN_ENV] = token
        begin = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - begin
        port = _free_port()
        rows: list[tuple[str, float]] = []
        try:
            timings = {}
            for batch in (args.max_batch_size, 1):
                begin = time.perf_counter()
                running = start(config, ServeOptions(port=port, max_batch_size=batch, batch_wait_s=0.01,
                                                     gpus_per_replica=1.0 if args.device != "cpu" else 0.0),
                                digest(token))
                timings[batch] = time.perf_counter() - begin
                info = ServerClient(running.url, token).info()
                remote = ProjectSettings(classes=CLASSES, batch_size=1).with_server(running.url, info.model_id)
                if batch == args.max_batch_size:
                    _run(folder, names[:4], remote)  # warm-up
                    served_s = _run(folder, names, remote) / n
                    client = ServerClient(running.url, token)
                    begin = time.perf_counter()
                    for _ in range(50):
                        client.info()
                    round_trip = (time.perf_counter() - begin) / 50
                first = 10_000 * batch
                for k in (1, 2, 4):
                    per_client = max(1, n // k)
                    rows.append((f"{k} client(s), max batch {batch}", _clients(work, k, per_client, remote, first)))
                    first += 1000
                serve.delete(APP_NAME)
        finally:
            ray.shutdown()

    print(f"local detection:            {local_s:.3f} s/img (torch {threads} threads), "
          f"{local1_s:.3f} s/img (1 thread, as a replica)")
    print(f"through the server, 1 client: {served_s:.3f} s/img; overhead per request on loopback: "
          f"{served_s - local1_s:+.3f} s against the 1-thread local run; an authenticated /v1/info round "
          f"trip (HTTP, Ray Serve's proxy, the replica): {round_trip * 1000:.1f} ms")
    print(f"{'throughput':<34}{'img/s':>8}")
    for name, rate in rows:
        print(f"{name:<34}{rate:>8.2f}")
    print(f"fixed costs (not in the figures): ray.init {ray_start:.1f} s; server start with model load "
          + ", ".join(f"{t:.1f} s (max batch {b})" for b, t in timings.items()))


if __name__ == "__main__":
    main()
