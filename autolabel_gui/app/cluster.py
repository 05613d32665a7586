"""``label --ray``: the model runs on a Ray cluster, the driver keeps the cache and the files.

The driver lists the folder and skips what the cache already holds for this run (file identity
checked, as locally); Ray Data hands the rest to a pool of actors (``map_batches`` with an actor
pool), each of which builds the detector once and decodes and detects its batches with the
same ``BatchDetector`` as the local pipeline. Results stream back to the driver, which commits
each image to the SQLite cache under the identity it saw when listing, and yields the same
``DetectionResult`` the local pipeline yields, so ``label`` turns both into VOC files and counts
in one loop. Workers never write: the cache stays one file on the driver's disk, and a killed
driver loses only the batches in flight.

Ray is an optional extra, imported only here and only when ``--ray`` is given.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autolabel_gui.app.ray_address import endpoint
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache, proposals_from_json, proposals_to_json
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable, MissingModelFiles
from autolabel_gui.detection.batch import BatchDetector, Decoded
from autolabel_gui.detection.compute_path import planned
from autolabel_gui.detection.pipeline import DetectionResult, FolderLike
from autolabel_gui.detection.run_plan import RunPlan
from autolabel_gui.detection.weights import find_weights

INSTALL_HINT = "--ray needs Ray, an optional extra: pip install 'autolabel-gui[cluster]'"
CPUS_PER_WORKER = 0.5
"""Each actor reserves half a CPU: a pool that reserved every CPU would leave none for the
tasks Ray Data schedules besides it, and the run would wait for them forever ("backpressured")."""
MAX_BLOCKS = 10_000
"""Enough blocks for any pool to share the work evenly, few enough for Ray to track."""
_DECODE_THREADS = 2
_REMOTE_ERROR = re.compile(r"^(?:[\w.]+\.)?(FolderNotVisible|DetectorUnavailable|MissingModelFiles): (.+)$",
                           re.MULTILINE)


class ClusterError(RuntimeError):
    """Ray is missing, no cluster answers, or the workers cannot run; the message says what to do."""


class FolderNotVisible(RuntimeError):
    """A worker cannot read the image folder at the path the driver gave it."""


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """Where to run and how big a pool; None means "what the cluster has" (see ``resolve``)."""

    address: str = "local"
    workers: int | None = None
    gpus_per_worker: float | None = None


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or ClusterError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the extra brings both; a bare ``ray`` lacks Ray Data)
    except ImportError as exc:
        raise ClusterError(f"{INSTALL_HINT} ({exc})") from exc
    return ray


# -- the workers -----------------------------------------------------------------------------


class DetectActor:
    """One member of the actor pool: checks it can see the folder, builds the detector once.

    Called by Ray Data with a batch ``{"relpath": [...]}``; returns per image the file identity it
    read (size, mtime_ns), the proposals as the cache's JSON, or the reason it has none.
    """

    def __init__(self, root: str, config: DetectorConfig, ontology: Ontology, batch_size: int) -> None:
        self.root = Path(root)
        if not (self.root.is_dir() and os.access(self.root, os.R_OK | os.X_OK)):
            raise FolderNotVisible(
                f"a worker on {socket.gethostname()} cannot read the image folder {self.root}: the images "
                f"must be on a file system that every worker sees at the same path")
        self.model = BatchDetector(config, ontology, batch_size=batch_size)
        self.model.ensure_detector()
        self._pool = ThreadPoolExecutor(_DECODE_THREADS, thread_name_prefix="autolabel-decode")

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        read = list(self._pool.map(self._read, [str(r) for r in batch["relpath"]]))
        outputs = self.model.detect_decoded([decoded for _, _, decoded in read])
        return {
            "relpath": [str(r) for r in batch["relpath"]],
            "size": [size for size, _, _ in read],
            "mtime_ns": [mtime for _, mtime, _ in read],
            "boxes": [None if isinstance(out, str) else proposals_to_json(out) for out in outputs],
            "error": [out if isinstance(out, str) else None for out in outputs],
        }

    def _read(self, rel: str) -> tuple[int, int, Decoded]:
        path = self.root / rel
        try:
            st = os.stat(path)
        except OSError as exc:
            return -1, -1, f"{path}: {exc.strerror or exc}"
        return st.st_size, st.st_mtime_ns, self.model.decode(path)


# -- the driver ------------------------------------------------------------------------------


def for_workers(config: DetectorConfig) -> DetectorConfig:
    """The config with absolute paths (workers do not share the driver's working directory) and
    the arithmetic this machine planned (``compute_path.planned``): the run id is computed here,
    from the user's config, so a worker with other hardware must run the path that id names,
    not re-plan ``auto`` for itself (a GPU worker would run fp16 under a CPU fast-path id).
    """
    def absolute(path: str | None) -> str | None:
        return os.path.abspath(os.path.expanduser(path)) if path and Path(path).expanduser().exists() else path

    weights = find_weights(config.weights)
    return replace(config, weights=os.path.abspath(weights) if weights else config.weights,
                   config=absolute(config.config), text_encoder=absolute(config.text_encoder),
                   precision=planned(config.precision, config.device))


def label_on_ray(folder: FolderLike, relpaths: list[str], cache: ProposalCache, config: DetectorConfig,
                 ontology: Ontology, options: ClusterOptions,
                 on_event: Callable[[str, str], None], plan: RunPlan | None = None,
                 ) -> Generator[DetectionResult, None, None]:
    """Yield one result per path, as ``DetectionPipeline.run`` does: cache hits first, then the
    cluster's results as they arrive, each committed to the cache before it is yielded.

    A folder with nothing left to do never contacts the cluster. Raises ClusterError when Ray
    cannot run the job, DetectorUnavailable when the workers cannot build the model.
    """
    plan = plan if plan is not None else RunPlan.single(config, ontology)
    todo: dict[str, ImageKey] = {}
    for rel in relpaths:
        try:
            key = ImageKey.from_path(folder.root, rel)
        except OSError as exc:
            yield DetectionResult(rel, error=f"{folder.image_path(rel)}: {exc.strerror or exc}")
            continue
        boxes = plan.lookup(cache, key)
        if boxes is not None:
            yield DetectionResult(rel, boxes, from_cache=True)
        else:
            todo[rel] = key
    if not todo:
        return
    ray = require_ray()
    started = connect_ray(ray, options.address)
    try:
        workers, gpus = resolve(options, ray.cluster_resources())
        rows = _dataset(ray, folder.root, sorted(todo), for_workers(config), plan.detection_ontology(),
                        workers, gpus).iter_rows()
        # "ready": the images/s the summary reports include the workers' start and model load.
        on_event("ready", f"{len(todo)} images to {workers} worker(s) on the Ray cluster ({gpus:g} GPU(s) each)")
        try:
            for row in rows:
                yield _commit(row, todo, folder, cache, plan)
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
    except ray.exceptions.RayError as exc:
        raise _explain(exc) from exc
    finally:
        if started:
            ray.shutdown()


def resolve(options: ClusterOptions, resources: dict[str, float]) -> tuple[int, float]:
    """Workers and GPUs per worker: one worker per GPU of the cluster by default, else one on a
    CPU; ClusterError when the pool cannot fit, since Ray would wait for it forever."""
    have_gpus = float(resources.get("GPU", 0))
    have_cpus = float(resources.get("CPU", 0))
    gpus = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if have_gpus >= 1 else 0.0)
    workers = options.workers or (max(1, int(have_gpus // gpus)) if gpus else 1)
    if workers * gpus > have_gpus:
        raise ClusterError(f"{workers} worker(s) with {gpus:g} GPU(s) each need {workers * gpus:g} GPUs; "
                           f"the cluster has {have_gpus:g} (set --workers or --gpus-per-worker)")
    if workers * CPUS_PER_WORKER > have_cpus:
        raise ClusterError(f"{workers} worker(s) need {workers * CPUS_PER_WORKER:g} CPUs; the cluster has "
                           f"{have_cpus:g} (set --workers)")
    return workers, gpus


def connect_ray(ray: Any, address: str) -> bool:
    """Join or start the cluster; True when this call started Ray (and must shut it down).

    A process that already initialised Ray (a notebook, a test) keeps using it, whatever the address.
    An address is first tried with a plain TCP connection (``CONNECT_TIMEOUT_S``), then joined on
    a helper thread for at most ``JOIN_TIMEOUT_S``: Ray retries an address that does not answer
    for minutes, and in the main thread it installs a SIGTERM handler that cannot run while it
    waits, so ``kill`` did nothing. On a helper thread Ray leaves SIGTERM alone.
    """
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    hint = "start one with `ray start --head` on a node that sees the images, or use --ray local"
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, **quiet)
            return True
        found = endpoint(address)
        if found is not None:
            _probe(*found)
        _join(ray, address, quiet)
    except (OSError, ValueError, RuntimeError) as exc:  # ConnectionError is an OSError
        raise ClusterError(f"cannot reach a Ray cluster at {address!r}: {exc}; {hint}") from exc
    return True


CONNECT_TIMEOUT_S = 10.0
"""How long the cluster's address may take to accept a TCP connection."""
JOIN_TIMEOUT_S = 120.0
"""How long joining a cluster that accepted the connection may take (Ray's own retries: minutes)."""


def _probe(host: str, port: int) -> None:
    """ConnectionError unless something accepts a TCP connection at ``host:port`` in time."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} within {CONNECT_TIMEOUT_S:g} s "
                              f"({exc.strerror or exc})") from None


def _join(ray: Any, address: str, quiet: dict[str, Any]) -> None:
    """``ray.init(address)`` on a daemon thread; ConnectionError when it has not joined in time."""
    outcome: list[BaseException | None] = []

    def join() -> None:
        try:
            ray.init(address=address, **quiet)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome.append(exc)

    worker_log = logging.getLogger("ray._private.worker")
    worker_log.addFilter(_no_sigterm_warning)  # the point of the thread, not the user's concern
    try:
        thread = threading.Thread(target=join, name="autolabel-ray-join", daemon=True)
        thread.start()
        thread.join(JOIN_TIMEOUT_S)
    finally:
        worker_log.removeFilter(_no_sigterm_warning)
    if not outcome:
        raise ConnectionError(f"it accepted a connection but did not let this run join within "
                              f"{JOIN_TIMEOUT_S:g} s (is it a Ray cluster, of a version this Ray can join?)")
    if outcome[0] is not None:
        raise outcome[0]


def _no_sigterm_warning(record: logging.LogRecord) -> bool:
    return "SIGTERM handler is not set" not in record.getMessage()


def _dataset(ray: Any, root: Path, relpaths: list[str], config: DetectorConfig, ontology: Ontology,
             workers: int, gpus: float) -> Any:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver has its own bar, across the cluster
    context.execution_options.preserve_order = False
    for name in ("ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    batch_size = max(1, config.batch_size)
    blocks = max(1, min(len(relpaths), math.ceil(len(relpaths) / batch_size), MAX_BLOCKS))
    items = ray.data.from_items([{"relpath": rel} for rel in relpaths], override_num_blocks=blocks)
    return items.map_batches(
        DetectActor,
        fn_constructor_kwargs={"root": os.path.abspath(root), "config": config, "ontology": ontology,
                               "batch_size": batch_size},
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=CPUS_PER_WORKER,
        num_gpus=gpus,
    )


def _commit(row: dict[str, Any], todo: dict[str, ImageKey], folder: FolderLike, cache: ProposalCache,
            plan: RunPlan) -> DetectionResult:
    """One streamed row into the cache under the identity the driver listed, as a local result.

    The workers detect every prompt group (one pass); each group gets its own cache row."""
    rel = str(row["relpath"])
    key = todo[rel]
    if row["error"] is not None:
        return DetectionResult(rel, error=str(row["error"]))
    if (int(row["size"]), int(row["mtime_ns"])) != (key.size, key.mtime_ns):
        return DetectionResult(rel, error=f"{folder.image_path(rel)}: the file changed while it was labelled "
                                          f"(or the workers see another file at that path); run again to label it")
    boxes: list[Box] = proposals_from_json(str(row["boxes"]))
    return DetectionResult(rel, plan.merge(plan.store(cache, key, [None] * len(plan.groups), boxes)))


def _explain(exc: Exception) -> Exception:
    """A worker's own reason (folder not visible, no model) out of Ray's wrapped traceback."""
    found = _REMOTE_ERROR.findall(str(exc))
    if found:
        kind, message = found[-1]
        known: dict[str, type[Exception]] = {"DetectorUnavailable": DetectorUnavailable,
                                             "MissingModelFiles": MissingModelFiles}
        return known.get(kind, ClusterError)(message)
    return ClusterError(f"the Ray job failed: {type(exc).__name__}: {exc}")
