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
    if args.skip_text_encoder:
        return 0
    return _fetch_text_encoder(spec.text_encoder)


def _fetch_text_encoder(name: str) -> int:
    """Fill the Hugging Face cache now, so the first detection works offline later."""
    print(f"fetching the text encoder {name} into the Hugging Face cache", file=sys.stderr)
    try:
        from transformers import AutoTokenizer, BertModel

        AutoTokenizer.from_pretrained(name)
        BertModel.from_pretrained(name)
    except (OSError, ValueError) as exc:
        print(f"error: could not fetch {name}: {exc}\n"
              f"Download it elsewhere (huggingface.co/{name}) and pass --text-encoder DIR.", file=sys.stderr)
        return 1
    print(f"text encoder ready: {name}")
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
