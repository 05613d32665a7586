"""``autolabel-gui label FOLDER``: pre-label a folder headless, resumable, optionally into VOC files.

Runs the same DetectionPipeline as the window, so proposals land in the same cache: the window
opens on a labelled folder instantly, and a rerun after Ctrl+C (or a crash) only does what is
left. With ``--ray`` the model runs on a Ray cluster (``app.cluster``) and its results come back
here as the same DetectionResults, so one loop turns either into cache rows, VOC files and counts.
Exit status: 0 all done, 1 some images or VOC files had problems, 2 usage, no model or no
cluster, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path

from autolabel_gui.app.cluster import ClusterError, ClusterOptions, label_on_ray, require_ray
from autolabel_gui.app.prelabel import VocWriter
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.leftovers import sweep_leftovers
from autolabel_gui.core.ontology import parse_prompt_args
from autolabel_gui.detection.base import DetectorUnavailable, DetectorUnreachable
from autolabel_gui.detection.catalogue import spec_for
from autolabel_gui.detection.pipeline import DetectionPipeline, DetectionResult


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        _err(f"{folder}: {'is not a folder' if folder.exists() else 'does not exist'}")
        return 2
    if args.ray is not None and args.server:
        _err("--ray and --server each say where the model runs: give one")
        return 2
    try:
        settings = ProjectSettings.load(folder).with_args(args)
        if args.server:
            settings = _with_server(settings, args.server)
        ontology = settings.ontology()
        unknown = sorted(set(parse_prompt_args(args.prompt)) - set(settings.classes))
    except ValueError as exc:
        _err(str(exc))
        return 2
    for line in settings.notes:
        print(f"warning: {line}", file=sys.stderr)
    if not settings.classes:
        _err("no classes: pass --classes person,dog (they are remembered for this folder)")
        return 2
    if unknown:
        _err(f"--prompt given for unknown class(es) {', '.join(unknown)}; "
             f"the classes are {', '.join(settings.classes)}")
        return 2
    cluster_problem = _check_cluster_args(args)
    if cluster_problem:
        _err(cluster_problem)
        return 2
    config = settings.detector_config()
    try:
        missing = spec_for(config.backend).missing(config)
    except DetectorUnavailable as exc:
        _err(str(exc))
        return 2
    if missing:
        print(missing, file=sys.stderr)
        return 2
    try:
        settings.save(folder)
    except (OSError, ValueError) as exc:
        print(f"warning: cannot save the settings in {folder}: {exc}", file=sys.stderr)
    images = ImageFolder(folder, annotations=args.voc_dir)
    for problem in images.problems:
        print(f"warning: {problem}", file=sys.stderr)
    sweep_leftovers(images)
    try:
        cache = ProposalCache(args.cache, chosen=True) if args.cache else ProposalCache.for_folder(folder)
    except (OSError, sqlite3.Error) as exc:
        where = args.cache or folder / ".autolabel"
        _err(f"cannot open the proposal cache {where}: {exc}; pass --cache FILE in a folder you can write to")
        return 2
    return _label(args, images, cache, settings, config, ontology)


def _with_server(settings: ProjectSettings, url: str) -> ProjectSettings:
    """``--server URL``: the server is asked which model it runs; ValueError when it cannot be used."""
    from autolabel_gui.app.server_choice import with_server

    try:
        return with_server(settings, url, offline_ok=False)[0]
    except DetectorUnavailable as exc:
        raise ValueError(f"--server {url}: {exc}") from None


def _label(args, images: ImageFolder, cache: ProposalCache, settings, config, ontology) -> int:
    from tqdm import tqdm

    bar = tqdm(total=len(images.images), unit="img", file=sys.stderr, dynamic_ncols=True,
               disable=True if args.no_progress else None)
    ready_at: list[float] = []

    def on_event(kind: str, message: str) -> None:
        if kind == "ready":
            ready_at.append(time.perf_counter())
        bar.write(message, file=sys.stderr)

    def note(message: str) -> None:
        bar.write(message, file=sys.stderr)

    writer = (VocWriter(images, cache, settings.box_threshold, note, settings.classes)
              if args.voc_dir is not None else None)
    counts: Counter[str] = Counter()
    cancel = threading.Event()
    start = time.perf_counter()
    results: Generator[DetectionResult, None, None]
    if args.ray is not None:
        options = ClusterOptions(args.ray, args.workers, args.gpus_per_worker)
        results = label_on_ray(images, images.images, cache, config, ontology, options, on_event,
                               settings.run_plan())
    else:
        results = DetectionPipeline(images, cache, config, ontology, on_event=on_event,
                                    plan=settings.run_plan()).run(images.images, cancel)
    try:
        for result in results:
            _account(result, counts, images, writer, note, settings.box_threshold)
            bar.update(1)
            bar.set_postfix(cached=counts["cached"], failed=counts["failed"], refresh=False)
    except DetectorUnreachable as exc:  # a proposal server that went away mid-folder
        bar.close()
        done = counts["detected"] + counts["cached"]
        _err(f"{exc}; {done} of {len(images.images)} images done and cached: run the same command again "
             f"when it is back to go on")
        return 2
    except (DetectorUnavailable, ClusterError) as exc:
        bar.close()
        _err(str(exc))
        return 2
    except (sqlite3.Error, OSError) as exc:  # a full disk, a cache file made read-only under us
        bar.close()
        _err(f"cannot write the proposal cache {cache.path}: {exc}; finished images stay cached")
        return 1
    except KeyboardInterrupt:
        cancel.set()
        results.close()
        bar.close()
        done = counts["detected"] + counts["cached"]
        print(f"interrupted after {done} of {len(images.images)} images; every finished image is "
              f"cached: run the same command again to go on", file=sys.stderr)
        return 130
    bar.close()
    end = time.perf_counter()
    detect_seconds = end - ready_at[0] if ready_at else 0.0
    _summary(cache, counts, end - start, detect_seconds, args.voc_dir, settings.box_threshold)
    return 1 if counts["failed"] or counts["voc_unreadable"] or counts["voc_failed"] else 0


def _check_cluster_args(args: argparse.Namespace) -> str | None:
    """Why the cluster options cannot work (Ray missing, a pool that makes no sense), or None."""
    if args.ray is None:
        given = [flag for flag, value in (("--workers", args.workers), ("--gpus-per-worker", args.gpus_per_worker))
                 if value is not None]
        return f"{' and '.join(given)} need(s) --ray ADDRESS" if given else None
    try:
        require_ray()
    except ClusterError as exc:
        return str(exc)
    return None


def _account(result: DetectionResult, counts: Counter, images: ImageFolder, writer: VocWriter | None, note,
             threshold: float) -> None:
    image_path = images.image_path(result.relpath)
    if result.error is not None:
        counts["failed"] += 1
        note(f"skipped {result.relpath}: {result.error.removeprefix(f'{image_path}: ')}")
        return
    boxes = result.boxes or []
    counts["cached" if result.from_cache else "detected"] += 1
    counts["boxes"] += sum(1 for b in boxes if b.passes(threshold))
    if writer is not None:
        counts["voc_" + writer.write(result.relpath, boxes).value] += 1


def _summary(cache: ProposalCache, counts: Counter, seconds: float, detect_seconds: float,
             voc_dir: Path | None, threshold: float) -> None:
    total = counts["detected"] + counts["cached"] + counts["failed"]
    rate = f" at {counts['detected'] / detect_seconds:.2f} img/s" if counts["detected"] and detect_seconds > 0 else ""
    print(f"{total} images in {seconds:.1f} s: {counts['detected']} detected{rate}, "
          f"{counts['cached']} from cache, {counts['failed']} failed; "
          f"{counts['boxes']} boxes at score >= {threshold:g}")
    print(f"proposals: {cache.path}")
    if voc_dir is not None:
        print(f"VOC files in {voc_dir}: {counts['voc_written']} written; left alone: {counts['voc_verified']} "
              f"verified, {counts['voc_kept']} written by someone else, {counts['voc_unreadable']} unreadable; "
              f"{counts['voc_failed']} could not be written")
