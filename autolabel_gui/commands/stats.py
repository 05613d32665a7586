"""``autolabel-gui stats FOLDER``: per-class counts, review progress and prompt quality as a table.

A report: it reads the folder and never writes into it (the cache is opened read-only and a
corrupt one is left where it is).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from autolabel_gui.app.project import ProjectSettings, class_list_for
from autolabel_gui.app.stats import compute_stats, format_stats
from autolabel_gui.core.cache import CACHE_FILE, ProposalCache
from autolabel_gui.core.folder import ImageFolder


def run(args: argparse.Namespace) -> int:
    try:
        settings = ProjectSettings.load(args.folder)
        folder = ImageFolder(args.folder, args.annotations or settings.annotations_path(args.folder))
        classes, note = class_list_for(getattr(args, "classes", None), settings, folder)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in settings.notes:
        print(f"warning: {line}", file=sys.stderr)
    if note:
        print(f"note: {note}", file=sys.stderr)
    cache = _open_cache(folder)
    try:
        try:
            # proposals of any model count as ready: with the folder's run plan, the counts
            # depended on the model files and the hardware of whoever ran stats
            stats = compute_stats(folder, classes, cache)
        except sqlite3.Error as exc:
            print(f"warning: {folder.state_dir / CACHE_FILE}: not read ({exc}); counts from the VOC files only",
                  file=sys.stderr)
            stats = compute_stats(folder, classes, None, None)
    finally:
        if cache is not None:
            cache.close()
    print(f"folder: {folder.root}  ({stats.images} images)")
    print()
    sys.stdout.write(format_stats(stats))
    for problem in folder.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def _open_cache(folder: ImageFolder) -> ProposalCache | None:
    """The folder's cache, read-only; None (and why) when it is missing or cannot be read."""
    path = folder.state_dir / CACHE_FILE
    if not path.exists():
        return None
    try:
        return ProposalCache(path, read_only=True)
    except sqlite3.Error as exc:
        print(f"warning: {path}: not read ({exc}); counts from the VOC files only", file=sys.stderr)
        return None
