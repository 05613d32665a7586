"""``autolabel-gui stats FOLDER``: per-class counts, review progress and prompt quality as a table."""

from __future__ import annotations

import argparse
import sys

from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.stats import compute_stats, format_stats
from autolabel_gui.core.cache import CACHE_FILE, ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.detection.ids import run_id_for


def run(args: argparse.Namespace) -> int:
    try:
        settings = ProjectSettings.load(args.folder)
        folder = ImageFolder(args.folder, args.annotations or settings.annotations_path(args.folder))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # A report must not create state: open the cache only when the folder already has one.
    cache_path = folder.state_dir / CACHE_FILE
    cache = ProposalCache(cache_path) if cache_path.is_file() else None
    try:
        run_id = run_id_for(settings.detector_config(), settings.ontology()) if settings.classes else None
        stats = compute_stats(folder, settings.classes, cache, run_id)
    finally:
        if cache is not None:
            cache.close()
    print(f"folder: {folder.root}  ({stats.images} images)")
    print()
    sys.stdout.write(format_stats(stats))
    for problem in folder.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0
