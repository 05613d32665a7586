"""``autolabel-gui export FOLDER --format yolo|coco|voc --out DIR``: a training-ready dataset."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.project import ProjectSettings
from autolabel_gui.formats.export import ORIENTATION_NOTE, ExportError, export_dataset, read_class_list


def run(args: argparse.Namespace) -> int:
    try:
        settings = ProjectSettings.load(args.folder)
        folder = ImageFolder(args.folder, args.annotations or settings.annotations_dir)
        classes = read_class_list(args.classes_file) if args.classes_file else settings.classes
    except (ValueError, OSError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bars: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        """The bar appears once the plan is made, so a refusal prints only its message."""
        if not bars:
            bars.append(tqdm(desc=f"export {args.format}", unit="img", file=sys.stderr, total=total))
        bars[0].n = done
        bars[0].refresh()

    try:
        result = export_dataset(folder, args.format, args.out, classes, args.verified_only, progress)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: writing the export failed, nothing was kept: {exc}", file=sys.stderr)
        return 1
    finally:
        for bar in bars:
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
