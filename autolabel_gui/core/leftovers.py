"""Temporary files that a killed save left in a folder under review, swept when it is opened.

``atomic_write_bytes`` never damages a target, but a process killed inside it leaves a hidden
``.NAME.*.tmp`` beside it. They pile up in the folders annotators look at, so the window and
``label`` remove old ones from the folders our files are written to: every folder a VOC file of
the folder lives in, and the state folder (``project.json``).
"""

from __future__ import annotations

from pathlib import Path

from autolabel_gui.core.atomic import sweep_stale_temp_files
from autolabel_gui.core.folder import ImageFolder, is_inside


def annotation_folders(images: ImageFolder) -> list[Path]:
    """The folders VOC files of ``images`` go to, and the state folder: one ``voc_path`` per
    sub-folder, not per image (100,000 images in one folder are one folder)."""
    one_per_subfolder: dict[str, str] = {}
    for rel in images.images:
        one_per_subfolder.setdefault(rel.rpartition("/")[0], rel)
    folders = {images.voc_path(rel).parent for rel in one_per_subfolder.values()}
    folders = {f for f in folders if is_inside(f, images.voc_root)}  # a link out: not ours to sweep
    folders.add(images.voc_root)
    if is_inside(images.state_dir, images.root):
        folders.add(images.state_dir)
    return sorted(folders)


def sweep_leftovers(images: ImageFolder, older_than_s: float = 600) -> list[Path]:
    """Remove stale temporary files of ours from ``annotation_folders(images)``."""
    return [p for folder in annotation_folders(images) for p in sweep_stale_temp_files(folder, older_than_s)]
