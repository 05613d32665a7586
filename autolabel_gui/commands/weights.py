"""``autolabel-gui weights {download,status,convert}``: fetch the checkpoint, say where it is looked for,
or turn an original checkpoint into a transformers model folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autolabel_gui.detection import weights as w
from autolabel_gui.detection.models import model_named
from autolabel_gui.detection.segmenter_spec import segmenter_named


def run(args: argparse.Namespace) -> int:
    if args.weights_command == "download":
        return _download(args)
    if args.weights_command == "convert":
        return _convert(args)
    return _status()


def _convert(args: argparse.Namespace) -> int:
    """Exit 0 with the folder written, 1 when the inputs cannot be converted (the reason on stderr)."""
    from autolabel_gui.detection.convert_gdino import convert

    for label, path in (("checkpoint", args.checkpoint), ("--config", args.config),
                        ("--text-encoder", args.text_encoder)):
        if not Path(path).exists():
            print(f"error: {label} {path}: not found", file=sys.stderr)
            return 1
    try:
        report = convert(Path(args.checkpoint), Path(args.config), Path(args.text_encoder), Path(args.out))
    except (ValueError, OSError, SyntaxError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if report.unexpected:
        print(f"note: {len(report.unexpected)} checkpoint weights have no place in the transformers model "
              f"(e.g. {', '.join(report.unexpected[:3])})", file=sys.stderr)
    print(f"converted: {report.out}  (use: --backend transformers --weights {report.out})")
    return 0


def _download(args: argparse.Namespace) -> int:
    if getattr(args, "segmenter", None):
        segmenter = segmenter_named(args.segmenter)
        return _download_hub(segmenter.name, segmenter.hub_id, segmenter.revision, "--segmenter", "--segmenter")
    if args.model:
        entry = model_named(args.model)
        if entry.hub_id:
            return _download_hub(entry.name, entry.hub_id, entry.revision)
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


def _download_hub(name: str, hub_id: str, revision: str | None, flag: str = "--model",
                  folder_flag: str = "--weights") -> int:
    """Fetch a hub model into the Hugging Face cache; huggingface_hub shows progress and resumes
    an interrupted download from its partial files. ``flag`` picks it by name, ``folder_flag``
    takes a folder downloaded by hand."""
    print(f"downloading {name} ({hub_id}@{revision or 'main'}) into the Hugging Face cache", file=sys.stderr)
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(hub_id, revision=revision)
    except Exception as exc:  # offline, no such repo, network or disk errors: all "not downloaded"
        print(f"error: could not download {hub_id}: {type(exc).__name__}: {exc}\n"
              f"Check the network (and that HF_HUB_OFFLINE is not set), then run this again: it resumes. "
              f"Or download the folder elsewhere (huggingface-cli download {hub_id}) and pass "
              f"{folder_flag} DIR.",
              file=sys.stderr)
        return 1
    print(f"model ready: {path}  (use: {flag} {name})")
    return 0


def _fetch_text_encoder(name: str) -> int:
    """Fill the Hugging Face cache now, so the first detection works offline later (the hub's
    copy: a folder of that name in the working directory is never taken for it)."""
    from autolabel_gui.detection.base import DetectorUnavailable
    from autolabel_gui.detection.text_encoder import text_encoder_folder

    print(f"fetching the text encoder {name} into the Hugging Face cache", file=sys.stderr)
    try:
        folder = text_encoder_folder(name)
    except DetectorUnavailable as exc:
        print(f"error: could not fetch {name}: {exc}\n"
              f"Download it elsewhere (huggingface.co/{name}) and pass --text-encoder DIR.", file=sys.stderr)
        return 1
    print(f"text encoder ready: {folder}")
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
