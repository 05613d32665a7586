"""``autolabel-gui export FOLDER --format yolo|coco|voc --out DIR``: a training-ready dataset."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.formats.export import ORIENTATION_NOTE, ExportError, export_dataset, read_class_list


def run(args: argparse.Namespace) -> int:
    try:
        settings = ProjectSettings.load(args.folder)
        folder = ImageFolder(args.folder, args.annotations or settings.annotations_path(args.folder))
        classes = read_class_list(args.classes_file) if args.classes_file else settings.classes
    except (ValueError, OSError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bars: dict[str, tqdm] = {}

    def progress(phase: str, done: int, total: int) -> None:
        """One bar per phase: checking the annotation files, then writing the dataset."""
        if phase not in bars:
            desc = "reading annotations" if phase == "reading" else f"writing {args.format}"
            bars[phase] = tqdm(desc=desc, unit="img", file=sys.stderr, total=total)
        bars[phase].n = done
        bars[phase].refresh()

    try:
        result = export_dataset(folder, args.format, args.out, classes, args.verified_only, progress)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: writing the export failed, nothing was kept: {exc}", file=sys.stderr)
        return 1
    finally:
        for bar in bars.values():
            bar.close()
    for problem in result.skipped:
        print(f"warning: {problem}", file=sys.stderr)
    if result.turned:
        shown = ", ".join(result.turned[:5]) + (", ..." if len(result.turned) > 5 else "")
        print(f"note: {len(result.turned)} images carry an EXIF orientation ({shown}): {ORIENTATION_NOTE}",
              file=sys.stderr)
    which = "verified" if args.verified_only else "labelled"
    print(f"exported {result.images} {which} images ({result.boxes} boxes, {result.negatives} without objects) "
          f"as {result.fmt.upper()} to {result.out}")
    if result.images == 0:
        print(f"note: no {which} images found; nothing but the dataset skeleton was written", file=sys.stderr)
    return 0
