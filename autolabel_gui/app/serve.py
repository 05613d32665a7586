"""``autolabel-gui serve``: a Ray Serve application that holds the detector and answers proposal
requests over HTTP, so reviewers on laptops get proposals at the speed of one GPU machine.

Each replica builds the detector once through the catalogue (any model, any backend), with the
arithmetic the driver planned (``cluster.for_workers``), so its model id, and the run id of every
proposal it makes, is the one a local run of the same files computes. Requests from all reviewers
meet in Ray Serve's dynamic batching (``serve.batch``); a batch is cut by class list, and the
detector runs one forward pass per input shape (ADR 0010), as the local batcher does.

Each request is checked before the model sees it (``detection/wire.py``): the token (constant-
time digest comparison), the body size while it is read, the header's bounds, the image through
the local decoder's checks (``core.images.decode_image_bytes``: pixel limit, decode budget,
truncated data). Errors are a short JSON text and a status; paths and tracebacks go to the
server's log only, and the token goes nowhere. A request is idempotent: the answer to the same
image bytes and prompts is kept (``ANSWERS_KEPT``) and given again without running the model.

Ray Serve is an optional extra (``pip install 'autolabel-gui[cluster]'``), imported only here and
only when serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autolabel_gui.app.cluster import connect_ray, for_workers
from autolabel_gui.core.boxes import Box
from autolabel_gui.core.images import ImageLoadError, decode_image_bytes
from autolabel_gui.core.ontology import Ontology
from autolabel_gui.core.server_token import matches
from autolabel_gui.detection.base import DetectorConfig, Prepared
from autolabel_gui.detection.batch import BatchDetector
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.models import model_of
from autolabel_gui.detection.wire import (
    DETECT_PATH,
    HEALTH_PATH,
    INFO_PATH,
    Limits,
    ServerInfo,
    WireError,
    encode_error,
    encode_reply,
    parse_request,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "serve needs Ray Serve, an optional extra: pip install 'autolabel-gui[cluster]'"
APP_NAME = "autolabel-proposals"
STATS_PATH = "/v1/stats"
CPUS_PER_REPLICA = 0.5
"""As ``cluster.CPUS_PER_WORKER``: a replica that reserved every CPU would starve Ray's own tasks."""
ANSWERS_KEPT = 512
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class ServeError(RuntimeError):
    """Ray Serve is missing, or the application cannot start; the message says what to do."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    replicas: int = 1
    gpus_per_replica: float | None = None
    """None: one GPU each when the cluster has GPUs, else none."""
    max_batch_size: int = 8
    batch_wait_s: float = 0.01
    address: str = "local"
    limits: Limits = field(default_factory=Limits)
    max_queued: int = 64
    """Requests waiting beyond this are answered 503 (the client backs off and retries)."""


def require_serve() -> tuple[Any, Any]:
    """``ray`` and ``ray.serve``, or ServeError saying how to install them."""
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise ServeError(f"{INSTALL_HINT} ({exc})") from exc
    return ray, serve


def describe_model(config: DetectorConfig) -> ServerInfo:
    """What the server will say about itself, computed where the run id is: the driver.

    Device and precision are filled in by a replica once its model is loaded."""
    entry = model_of(config)
    # a file's name, never its path on the server
    title = entry.title if entry else f"{config.backend} {Path(config.weights).name if config.weights else ''}".strip()
    limits = Limits()
    return ServerInfo(model_id=model_id_for(config), model=entry.name if entry else "", title=title[:200],
                      device="", precision="", max_body=limits.max_body, max_pixels=limits.max_pixels,
                      max_classes=limits.max_classes)


# -- the replica -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Stats:
    images: int = 0
    batches: int = 0
    largest_batch: int = 0
    answered_again: int = 0
    model_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"images": self.images, "batches": self.batches, "largest_batch": self.largest_batch,
                "answered_again": self.answered_again, "model_seconds": round(self.model_seconds, 3)}


class ProposalServer:
    """One replica: the detector, the request checks and the batching (deployed by ``start``)."""

    def __init__(self, config: DetectorConfig, info: ServerInfo, token_digest: str, max_batch_size: int,
                 batch_wait_s: float) -> None:
        from ray import serve

        self.model = BatchDetector(config, Ontology(()), batch_size=max_batch_size)
        detector = self.model.ensure_detector()
        if detector.model_id != info.model_id:  # the replica would file proposals under another run
            log.warning("the replica's model id %s differs from the driver's %s", detector.model_id, info.model_id)
        self.info = replace(info, device=str(detector.device), precision=str(getattr(detector, "precision", "")))
        self.limits = Limits(info.max_body, info.max_pixels, info.max_classes)
        self._token_digest = token_digest
        self._model_pool = ThreadPoolExecutor(1, thread_name_prefix="autolabel-model")
        self._decode_pool = ThreadPoolExecutor(2, thread_name_prefix="autolabel-decode")
        self._answers: OrderedDict[tuple[str, str], list[Box]] = OrderedDict()
        self.stats = _Stats()
        self._batched = serve.batch(max_batch_size=max_batch_size,
                                    batch_wait_timeout_s=batch_wait_s)(self._detect_batch)

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response

        try:
            status, body = await self.handle(request)
        except Exception:  # the client learns that it failed, the log learns why
            log.exception("proposal request failed")
            status, body = 500, encode_error("internal error")
        return Response(body, status_code=status, media_type="application/json")

    async def handle(self, request: Any) -> tuple[int, bytes]:
        path, method = request.url.path, request.method
        if path == HEALTH_PATH:
            return 200, b'{"ok": true}'
        if not self._authorised(request.headers.get("authorization", "")):
            return 401, encode_error("missing or wrong token")
        routes = {INFO_PATH: ("GET", self._info), STATS_PATH: ("GET", self._stats), DETECT_PATH: ("POST", self._detect)}
        if path not in routes:
            return 404, encode_error("no such endpoint")
        wanted, handler = routes[path]
        if method != wanted:
            return 405, encode_error(f"use {wanted}")
        return await handler(request)

    def _authorised(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and matches(given.strip(), self._token_digest)

    async def _info(self, request: Any) -> tuple[int, bytes]:
        return 200, self.info.to_json()

    async def _stats(self, request: Any) -> tuple[int, bytes]:
        import json

        return 200, json.dumps(self.stats.as_dict()).encode()

    async def _detect(self, request: Any) -> tuple[int, bytes]:
        start = time.perf_counter()
        try:
            body = await self._read_body(request)
            req = parse_request(body, self.limits)
        except WireError as exc:
            return exc.status, encode_error(str(exc))
        del body
        if req.model_id != self.info.model_id:
            return 409, encode_error(f"this server runs {self.info.model or self.info.title}, not the model asked for")
        key = (hashlib.sha256(req.image).hexdigest(), repr(([(c.name, c.text) for c in req.ontology],
                                                            req.ontology.group_starts)))
        known = self._answers.get(key)
        if known is not None:
            self.stats.answered_again += 1
            return 200, encode_reply(self.info.model_id, known, time.perf_counter() - start)
        loop = asyncio.get_running_loop()
        try:
            prepared = await loop.run_in_executor(self._decode_pool, self._prepare, req.image)
        except ImageLoadError as exc:
            return 422, encode_error(exc.reason)
        out = await self._batched((prepared, req.ontology))
        if isinstance(out, str):
            log.warning("the model failed on an image: %s", out)
            return 500, encode_error("the model failed on this image")
        self._answers[key] = out
        while len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)
        return 200, encode_reply(self.info.model_id, out, time.perf_counter() - start)

    async def _read_body(self, request: Any) -> bytes:
        """The body, refused (413) as soon as it is over the limit, whatever Content-Length says."""
        limit = self.limits.max_body
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise WireError(413, f"request body over {limit / 2**20:.0f} MB" if declared.isdigit()
                            else "bad Content-Length")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise WireError(413, f"request body over {limit / 2**20:.0f} MB")
            chunks.append(chunk)
        return b"".join(chunks)

    def _prepare(self, data: bytes) -> Prepared | Any:
        image = decode_image_bytes(data, "upload", self.limits.max_pixels)
        prepare = getattr(self.model.detector, "prepare", None)
        return image if prepare is None else prepare(image)

    async def _detect_batch(self, items: list[tuple[Any, Ontology]]) -> list[list[Box] | str]:
        """One dynamic batch: cut by class list; the detector groups each part by input shape."""
        loop = asyncio.get_running_loop()
        out: list[list[Box] | str] = ["" for _ in items]
        by_ontology: dict[Ontology, list[int]] = {}
        for i, (_, ontology) in enumerate(items):
            by_ontology.setdefault(ontology, []).append(i)
        for ontology, indices in by_ontology.items():
            images = [items[i][0] for i in indices]
            start = time.perf_counter()
            results = await loop.run_in_executor(self._model_pool, self.model.detect, images, ontology)
            self.stats.model_seconds += time.perf_counter() - start
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(images))
            self.stats.images += len(images)
            for i, result in zip(indices, results):
                out[i] = result
        return out


# -- the driver ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Running:
    """A started server: its address, what it runs, and whether this process started Ray."""

    url: str
    info: ServerInfo
    started_ray: bool


def resolve_gpus(options: ServeOptions, resources: dict[str, float]) -> float:
    """GPUs per replica; ServeError when the replicas cannot fit (Ray would wait forever)."""
    have_gpus = float(resources.get("GPU", 0))
    have_cpus = float(resources.get("CPU", 0))
    gpus = options.gpus_per_replica if options.gpus_per_replica is not None else (1.0 if have_gpus >= 1 else 0.0)
    if options.replicas * gpus > have_gpus:
        raise ServeError(f"{options.replicas} replica(s) with {gpus:g} GPU(s) each need {options.replicas * gpus:g} "
                         f"GPUs; the cluster has {have_gpus:g} (set --replicas or --gpus-per-replica)")
    if options.replicas * CPUS_PER_REPLICA > have_cpus:
        raise ServeError(f"{options.replicas} replica(s) need {options.replicas * CPUS_PER_REPLICA:g} CPUs; the "
                         f"cluster has {have_cpus:g} (set --replicas)")
    return gpus


def start(config: DetectorConfig, options: ServeOptions, token_digest: str) -> Running:
    """Deploy the proposal server and wait until every replica has loaded its model."""
    ray, serve = require_serve()
    started = connect_ray(ray, options.address)
    try:
        gpus = resolve_gpus(options, ray.cluster_resources())
        info = replace(describe_model(config), max_body=options.limits.max_body,
                       max_pixels=options.limits.max_pixels, max_classes=options.limits.max_classes)
        for name in ("ray.serve", "ray.serve._private"):
            logging.getLogger(name).setLevel(logging.WARNING)
        serve.start(http_options={"host": options.host, "port": options.port})
        deployment = serve.deployment(
            ProposalServer,
            name="proposals",
            num_replicas=options.replicas,
            ray_actor_options={"num_cpus": CPUS_PER_REPLICA, "num_gpus": gpus},
            max_ongoing_requests=max(16, 2 * options.max_batch_size),
            max_queued_requests=options.max_queued,
            graceful_shutdown_timeout_s=2.0,
        )
        app = deployment.bind(for_workers(config), info, token_digest, options.max_batch_size, options.batch_wait_s)
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    except ray.exceptions.RayError as exc:
        if started:
            ray.shutdown()
        raise ServeError(f"the proposal server did not start: {_first_line(exc)}") from exc
    except BaseException:
        if started:
            ray.shutdown()
        raise
    host = f"[{options.host}]" if ":" in options.host else options.host
    return Running(f"http://{host}:{options.port}", info, started)


def stop(running: Running) -> None:
    """Take the application down: with the Ray this process started (everything goes with it, at
    once; Serve's own shutdown waits up to 30 s for its controller), else only this application,
    so other applications of a shared cluster keep running."""
    ray, serve = require_serve()
    if running.started_ray:
        ray.shutdown()
    else:
        serve.delete(APP_NAME)


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
