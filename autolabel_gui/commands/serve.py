"""``autolabel-gui serve``: the proposal server (``app.serve``) until Ctrl+C or SIGTERM.

Exit status: 0 stopped, 2 usage, no model, no Ray Serve or it could not start.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.detection.base import DetectorUnavailable
from autolabel_gui.detection.catalogue import spec_for


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _problem(args: argparse.Namespace) -> str | None:
    if not 0 < args.port < 65536:
        return "--port must be from 1 to 65535"
    if args.replicas < 1:
        return "--replicas must be at least 1"
    if args.gpus_per_replica is not None and args.gpus_per_replica < 0:
        return "--gpus-per-replica cannot be negative"
    if not 0 <= args.batch_wait_ms <= 10_000:
        return "--batch-wait-ms must be from 0 to 10000"
    if not 0 < args.max_body_mb <= 4096:
        return "--max-body-mb must be above 0 and at most 4096"
    if args.max_pixels < 1:
        return "--max-pixels must be at least 1"
    return None


def run(args: argparse.Namespace) -> int:
    from autolabel_gui.app.cluster import ClusterError
    from autolabel_gui.app.serve import LOOPBACK, ServeError, ServeOptions, require_serve, start, stop
    from autolabel_gui.core.server_token import TokenError, digest, load_or_create_token, token_path
    from autolabel_gui.detection.wire import Limits

    problem = _problem(args)
    if problem:
        _err(problem)
        return 2
    try:
        config = ProjectSettings().with_args(args).detector_config()
        missing = spec_for(config.backend).missing(config)
        require_serve()
    except (ValueError, DetectorUnavailable, ServeError) as exc:
        _err(str(exc))
        return 2
    if missing:
        print(missing, file=sys.stderr)
        return 2
    try:
        token, made = load_or_create_token(args.token_file)
    except TokenError as exc:
        _err(str(exc))
        return 2
    token_file = args.token_file or token_path()
    limits = Limits(max_body=int(args.max_body_mb * 2**20), max_pixels=args.max_pixels)
    options = ServeOptions(host=args.host, port=args.port, replicas=args.replicas,
                           gpus_per_replica=args.gpus_per_replica, max_batch_size=args.max_batch_size,
                           batch_wait_s=args.batch_wait_ms / 1000, address=args.ray, limits=limits)
    print(f"starting the proposal server (Ray Serve, {args.replicas} replica(s)); loading the model…",
          file=sys.stderr)
    try:
        running = start(config, options, digest(token))
    except (ServeError, ClusterError, DetectorUnavailable) as exc:
        _err(str(exc))
        return 2
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    info = _live_info(running, args, token)
    print(f"proposal server on {running.url}: {info.model or info.title} on {info.device or '?'} "
          f"(model id {info.model_id})")
    print(f"token: {'made and ' if made else ''}kept in {token_file} (readable by you only); a reviewer on "
          f"another machine sets AUTOLABEL_SERVER_TOKEN to its content, or copies the file to the same place")
    if args.host not in LOOPBACK:
        print(f"listening on {args.host}: anyone who can reach this port and has the token gets proposals; "
              f"put TLS in front for untrusted networks (docs/scale.md)")
    print(f"reviewers: autolabel-gui FOLDER --server http://{_shown_host(args.host)}:{args.port}   "
          f"(Ctrl+C stops the server)", flush=True)
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        print("stopping the proposal server…", file=sys.stderr, flush=True)
        stop(running)
    return 0


def _live_info(running, args: argparse.Namespace, token: str):
    """What a replica says about itself (its device), asked over loopback; the driver's view if not."""
    from autolabel_gui.detection.server_client import ServerClient

    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    try:
        return ServerClient(f"http://{_shown_host(host)}:{args.port}", token, attempts=3).info()
    except DetectorUnavailable:
        return running.info


def _shown_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        import socket

        return socket.gethostname()
    return f"[{host}]" if ":" in host else host
