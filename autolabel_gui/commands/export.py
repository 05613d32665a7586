"""``autolabel-gui export FOLDER --format yolo|coco|voc --out DIR``: a training-ready dataset."""

from __future__ import annotations

import argparse
import signal
import sys

from autolabel_gui.app.project import ProjectSettings, class_list_for
from autolabel_gui.commands.progress import PhaseProgress
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats.export import (
    ORIENTATION_NOTE,
    ExportError,
    NothingToExport,
    export_dataset,
)


def folder_classes(args: argparse.Namespace, settings: ProjectSettings, folder: ImageFolder) -> list[str]:
    """The class list of ``export`` and ``stats``; where it came from is said when it is the VOC files'."""
    classes, note = class_list_for(getattr(args, "classes", None), settings, folder)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return classes


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl+C, so the staging folder is removed on the way out."""
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> int:
    try:
        settings = ProjectSettings.load(args.folder)
        folder = ImageFolder(args.folder, args.annotations or settings.annotations_path(args.folder))
        for note in settings.notes:
            print(f"warning: {note}", file=sys.stderr)
        classes = folder_classes(args, settings, folder)
    except (ValueError, OSError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in folder.problems:
        print(f"warning: {problem}", file=sys.stderr)
    progress = PhaseProgress({"reading": "reading annotations", "writing": f"writing {args.format}"})
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = export_dataset(folder, args.format, args.out, classes, args.verified_only, progress,
                                include_by_rule=getattr(args, "include_rule_accepted", False))
    except NothingToExport as exc:
        for problem in exc.skipped:
            print(f"warning: {problem}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: writing the export failed, nothing was kept: {exc}", file=sys.stderr)
        return 1
    except (SystemExit, KeyboardInterrupt) as exc:
        print("interrupted: the export was stopped and nothing was kept", file=sys.stderr)
        return exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
    for problem in result.skipped:
        print(f"warning: {problem}", file=sys.stderr)
    for problem in result.dropped:
        print(f"note: {problem}", file=sys.stderr)
    if result.turned:
        shown = ", ".join(result.turned[:5]) + (", ..." if len(result.turned) > 5 else "")
        print(f"note: {len(result.turned)} images carry an EXIF orientation ({shown}): {ORIENTATION_NOTE}",
              file=sys.stderr)
    if result.by_rule_left_out:
        print(f"note: {result.by_rule_left_out} images accepted by rule (not seen by a person) were left out; "
              "--include-rule-accepted exports them", file=sys.stderr)
    if result.by_rule:
        print(f"note: {result.by_rule} of the exported images were accepted by rule, not verified by a person",
              file=sys.stderr)
    which = "verified" if args.verified_only else "labelled"
    if args.verified_only and result.by_rule:
        which = "verified or rule-accepted"
    skipped = f"; {len(result.skipped)} skipped (see the warnings above)" if result.skipped else ""
    print(f"exported {result.images} {which} images ({result.boxes} boxes, {result.negatives} without objects) "
          f"as {result.fmt.upper()} to {result.out}{skipped}")
    return 0
