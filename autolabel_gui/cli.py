"""The one command line: ``autolabel-gui [FOLDER]`` opens the window, subcommands work headless.

Every subcommand's arguments are declared here; its work lives in ``autolabel_gui.commands.<name>``
and is imported only when that subcommand runs, so ``--help`` and the window never pay for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path

from autolabel_gui.commands import options
from autolabel_gui.commands.models import (
    backend_help,
    backend_names,
    model_names,
    segmenter_names,
    servable_backends,
)
from autolabel_gui.formats.registry import EXPORT_FORMATS

SUBCOMMANDS = ("label", "serve", "weights", "models", "export", "stats")


CLASSES_HELP = "class names: a comma-separated list (person,dog) or a file with one name a line"


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """Model options shared by the window and ``label``; on the window they override folder settings."""
    g = p.add_argument_group("model")
    g.add_argument("--classes", help=CLASSES_HELP + " (remembered for the folder)")
    g.add_argument("--prompt", action="append", metavar="CLASS=TEXT", help="prompt for a class (repeatable)")
    g.add_argument("--box-threshold", type=options.threshold, default=None, help="minimum box score (default 0.35)")
    g.add_argument("--text-threshold", type=options.threshold, default=None,
                   help="minimum class token score (default 0.25)")
    g.add_argument("--batch-size", type=options.batch_size, default=None, help="images per forward pass")
    g.add_argument("--device", type=options.device, default=None, help="auto, cpu, cuda, cuda:N or mps (default auto)")
    g.add_argument("--precision", default=None, choices=options.PRECISIONS, help=options.PRECISION_HELP)
    g.add_argument("--preview", action=argparse.BooleanOptionalAction, default=None, help=options.PREVIEW_HELP)
    g.add_argument("--model", default=None, choices=model_names(), metavar="NAME",
                   help="a model from `autolabel-gui models` (sets backend, weights and thresholds)")
    g.add_argument("--backend", default=None, choices=backend_names(), help=backend_help())
    g.add_argument("--weights", help="grounding_dino: the checkpoint (.pth); transformers: a model folder or hub id")
    g.add_argument("--config", help="Grounding DINO config (.py); default: the package's SwinT-OGC config")
    g.add_argument("--text-encoder", help="bert-base-uncased or a local folder holding it")
    g.add_argument("--server", metavar="URL", default=None,
                   help="take proposals from a proposal server (`autolabel-gui serve` on a GPU machine), e.g. "
                        "http://gpu-box:8000; its token comes from AUTOLABEL_SERVER_TOKEN or your config folder")


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, choices=model_names(), metavar="NAME",
                   help="a model from `autolabel-gui models` (sets backend, weights and thresholds)")
    g.add_argument("--backend", default=None, choices=servable_backends(),
                   help="the model's backend (default: the --model's, else grounding_dino)")
    g.add_argument("--weights", help="grounding_dino: the checkpoint (.pth); transformers: a model folder or hub id")
    g.add_argument("--config", help="Grounding DINO config (.py); default: the package's SwinT-OGC config")
    g.add_argument("--text-encoder", help="bert-base-uncased or a local folder holding it")
    g.add_argument("--text-threshold", type=options.threshold, default=None,
                   help="minimum class token score (default 0.25)")
    g.add_argument("--device", type=options.device, default=None, help="auto, cpu, cuda, cuda:N or mps (default auto)")
    g.add_argument("--precision", default=None, choices=options.PRECISIONS, help=options.PRECISION_HELP)
    h = p.add_argument_group("server")
    h.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface, "
                        "put TLS in front: docs/scale.md)")
    h.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    h.add_argument("--replicas", type=int, default=1, metavar="N", help="model replicas (default 1)")
    h.add_argument("--gpus-per-replica", type=float, default=None, metavar="G",
                   help="GPUs each replica reserves (default 1 when the cluster has GPUs, else 0)")
    h.add_argument("--max-batch-size", type=options.batch_size, default=8, metavar="N",
                   help="most images of all reviewers' requests in one forward pass (default 8)")
    h.add_argument("--batch-wait-ms", type=float, default=10.0, metavar="MS",
                   help="how long a request waits for batch-mates (default 10)")
    h.add_argument("--ray", metavar="ADDRESS", default="local",
                   help="the Ray cluster: local (start one here, default), auto or its address")
    h.add_argument("--token-file", type=Path, default=None,
                   help="the access token's file (default: server-token in your config folder; made when missing)")
    h.add_argument("--max-body-mb", type=float, default=64.0, metavar="MB", help="largest request (default 64)")
    h.add_argument("--max-pixels", type=int, default=100_000_000, metavar="N",
                   help="largest image in pixels (default 100,000,000)")


def build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autolabel-gui",
        description="Review Grounding DINO proposals and save verified Pascal VOC boxes.",
        epilog="headless subcommands: " + ", ".join(SUBCOMMANDS) + " (autolabel-gui SUBCOMMAND --help)",
    )
    parser.add_argument("folder", nargs="?", type=Path, help="folder of images to open in the window")
    parser.add_argument("--annotations", type=Path, default=None,
                        help="folder for VOC files (default: next to the images)")
    _add_model_options(parser)
    parser.add_argument("--segmenter", default=None, metavar="NAME_OR_DIR",
                        help="the segmenter F fits boxes with: a name from `autolabel-gui models` "
                             "or a Hugging Face model folder (remembered for the folder)")
    parser.set_defaults(command="gui")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The headless subcommands (a positional FOLDER and subparsers cannot share one parser)."""
    parser = argparse.ArgumentParser(prog="autolabel-gui")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(SUBCOMMANDS) + "}", required=True)

    label = sub.add_parser("label", help="pre-label a folder headless (resumable)")
    label.add_argument("folder", type=Path)
    label.add_argument("--voc-dir", type=Path, default=None,
                       help="write unverified VOC files here (never over verified or unreadable ones)")
    label.add_argument("--cache", type=Path, default=None,
                       help="proposal cache file (default FOLDER/.autolabel/cache.sqlite)")
    label.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_model_options(label)
    cluster = label.add_argument_group("cluster (pip install 'autolabel-gui[cluster]')")
    cluster.add_argument("--ray", metavar="ADDRESS", type=options.ray_address, default=None,
                         help="run the model on a Ray cluster: auto (join the running one), local (start one "
                              "here) or its address; the images must be on a file system every worker sees at "
                              "the same path")
    cluster.add_argument("--workers", type=options.workers, default=None, metavar="N",
                         help="model actors (default: one per GPU of the cluster, or one)")
    cluster.add_argument("--gpus-per-worker", type=options.gpus_per_worker, default=None, metavar="G",
                         help="GPUs each worker reserves (default 1 when the cluster has GPUs, else 0)")

    serve = sub.add_parser("serve", help="serve proposals to reviewers over HTTP (Ray Serve; one GPU machine, "
                                         "many annotators)")
    _add_serve_options(serve)

    weights = sub.add_parser("weights", help="show or download the model weights")
    wsub = weights.add_subparsers(dest="weights_command", metavar="{download,status,convert}")
    wdl = wsub.add_parser("download", help="download the SwinT-OGC checkpoint into weights/, or --model NAME")
    wdl.add_argument("--model", default=None, choices=model_names(), metavar="NAME",
                     help="a model from `autolabel-gui models`, fetched into the Hugging Face cache (resumable)")
    wdl.add_argument("--segmenter", default=None, choices=segmenter_names(), metavar="NAME",
                     help="a segmenter from `autolabel-gui models` (F fits boxes with it), fetched likewise")
    wdl.add_argument("--dest", type=Path, default=None, help="target folder (default: weights/)")
    wdl.add_argument("--url", default=None, help="override the manifest's URL (a mirror)")
    wdl.add_argument("--skip-text-encoder", action="store_true",
                     help="do not pre-fetch bert-base-uncased into the Hugging Face cache")
    wsub.add_parser("status", help="say where weights are looked for and what was found")
    wconv = wsub.add_parser("convert", help="turn an original Grounding DINO .pth into a transformers model folder")
    wconv.add_argument("checkpoint", type=Path, help="original checkpoint, e.g. groundingdino_swint_ogc.pth")
    wconv.add_argument("--config", required=True, type=Path, help="its original config (.py; read, never run)")
    wconv.add_argument("--text-encoder", required=True, type=Path,
                       help="local bert-base-uncased folder (config and tokenizer)")
    wconv.add_argument("--out", required=True, type=Path, help="the transformers model folder to write")

    sub.add_parser("models", help="list the models you can pick with --model")

    export = sub.add_parser("export", help="export reviewed labels as " + ", ".join(EXPORT_FORMATS).upper())
    export.add_argument("folder", type=Path)
    export.add_argument("--format", required=True, choices=list(EXPORT_FORMATS))
    export.add_argument("--out", required=True, type=Path)
    which = export.add_mutually_exclusive_group()
    which.add_argument("--verified-only", dest="verified_only", action="store_true", default=True,
                       help="export verified images only (default)")
    which.add_argument("--all", dest="verified_only", action="store_false", help="export every labelled image")
    export.add_argument("--include-rule-accepted", action="store_true",
                        help="with --verified-only, also export the images accepted by a rule after an audit "
                             "(not seen by a person; left out by default)")
    export.add_argument("--classes", default=None,
                        help=CLASSES_HELP + " (default: the folder's class list, else the classes in its VOC files)")
    export.add_argument("--annotations", type=Path, default=None, help="folder holding the VOC files")

    stats = sub.add_parser("stats", help="per-class counts, statuses and how well the prompts work")
    stats.add_argument("folder", type=Path)
    stats.add_argument("--annotations", type=Path, default=None, help="folder holding the VOC files")
    stats.add_argument("--classes", default=None,
                       help=CLASSES_HELP + " (default: the folder's class list, else the classes in its VOC files)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return build_parser().parse_args(argv)
    return build_gui_parser().parse_args(argv)


def quiet_library_warnings() -> None:
    """Deprecation chatter from torch/timm/transformers internals is not the user's to act on."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="torch.meshgrid")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_library_warnings()
    module = importlib.import_module(f"autolabel_gui.commands.{args.command}")
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
