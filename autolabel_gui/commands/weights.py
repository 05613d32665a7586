"""``autolabel-gui weights {download,status}``: fetch the checkpoint, or say where it is looked for."""

from __future__ import annotations

import argparse
import sys

from autolabel_gui.detection import weights as w


def run(args: argparse.Namespace) -> int:
    if args.weights_command == "download":
        return _download(args)
    return _status()


def _download(args: argparse.Namespace) -> int:
    spec = w.load_manifest()
    print(f"downloading {spec.name} from {args.url or spec.url}", file=sys.stderr)
    try:
        path = w.download(dest=args.dest, url=args.url, spec=spec)
    except (w.WeightsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"weights ready: {path}")
    return 0


def _status() -> int:
    """Exit 0 when a checkpoint is found, 1 otherwise (usable in scripts)."""
    spec = w.load_manifest()
    print(f"checkpoint: {spec.name}")
    print(f"url:        {spec.url}")
    print(f"size:       {spec.size if spec.size is not None else 'unknown'} bytes")
    print(f"sha256:     {spec.sha256 or 'unknown'}")
    print("looked for, in order:")
    found = None
    for origin, path in w.candidates(None, spec):
        exists = path.is_file()
        print(f"  {'found  ' if exists else 'missing'}  {path}  ({origin})")
        if exists and found is None:
            found = path
    if found is None:
        print(w.missing_weights_message(), file=sys.stderr)
        return 1
    problem = w.verify(found, spec, check_hash=False)
    print(f"using: {found}" + (f"  WARNING: {problem}" if problem else "  (size matches the manifest)"))
    return 0
