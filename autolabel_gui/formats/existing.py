"""Labels a folder already has, in whatever format they came: VOC, then YOLO, then COCO.

Users open folders that were labelled elsewhere; their boxes must show up as accepted work,
not be buried under fresh proposals. VOC wins because it is what this tool writes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from autolabel_gui.core.boxes import ImageLabels
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import image_size
from autolabel_gui.formats import coco, yolo
from autolabel_gui.formats.voc import check_box_count, read_voc

log = logging.getLogger(__name__)


def load_existing_labels(folder: ImageFolder, rel: str, class_names: list[str]) -> ImageLabels | None:
    """The labels image ``rel`` already has, or None when no annotation file mentions it.

    Boxes come back ACCEPTED; ``verified`` is True only when a VOC file says so. A file that
    exists but cannot be parsed raises ``AnnotationError`` naming it; an unreadable image
    raises ``ImageLoadError`` (YOLO and COCO-without-size need the image size).
    ``class_names`` is the class list for YOLO files with no ``classes.txt``/``data.yaml``.
    A VOC path that leads out of the annotation folder (a link) raises OSError: the window then
    opens the image read-only, saying why, instead of failing at the first save.
    """
    voc = folder.checked_voc_path(rel)
    if voc.exists():
        return read_voc(voc)
    return load_foreign_labels(folder, rel, class_names)


def load_foreign_labels(folder: ImageFolder, rel: str, class_names: list[str]) -> ImageLabels | None:
    """The YOLO or COCO labels beside image ``rel``, ignoring VOC (what ``label`` carries over)."""
    image = folder.image_path(rel).absolute()
    return _from_yolo(folder, rel, image, class_names) or _from_coco(folder, rel, image)


def _from_yolo(folder: ImageFolder, rel: str, image: Path, class_names: list[str]) -> ImageLabels | None:
    sharing = folder.images_sharing_stem(rel)
    for label_file in yolo.label_candidates(image):
        if not label_file.exists():
            continue
        if sharing:  # a.jpg and a.png both name a.txt: it is used for neither
            log.warning("%s: its boxes belong to one of %s; not used", label_file.name,
                        ", ".join(r.rsplit("/", 1)[-1] for r in sharing))
            return None
        # Look up to two levels above the opened folder: ``dataset/data.yaml`` for ``dataset/images/train``.
        class_file = yolo.find_class_file(label_file, image, folder.root.absolute().parent.parent)
        names = yolo.read_class_file(class_file) if class_file is not None else list(class_names)
        width, height = image_size(image)
        return ImageLabels.for_image(image, width, height, yolo.read_yolo_labels(label_file, width, height, names))
    return None


def _from_coco(folder: ImageFolder, rel: str, image: Path) -> ImageLabels | None:
    """Search the image's folder and its parents up to one above the root, then ``root/annotations``."""
    root = folder.root.absolute()
    dirs = [image.parent, *(p for p in image.parent.parents if p == root or root in p.parents), root.parent]
    dirs.append(root / "annotations")
    seen: set[Path] = set()
    for d in dirs:
        if d in seen:
            continue
        seen.add(d)
        for path in coco.coco_files(d):
            index = coco.load_index(path)
            names = [image.relative_to(d).as_posix()] if d in image.parents else []
            names.append(rel)
            entry = index.lookup(names)
            if entry is None:
                continue
            check_box_count(path, len(entry.boxes))
            width, height = (entry.width, entry.height) if entry.width and entry.height else image_size(image)
            boxes = [b.clamped(width, height) for b in entry.boxes]
            return ImageLabels.for_image(image, width, height, [b for b in boxes if b.area > 0])
    return None
