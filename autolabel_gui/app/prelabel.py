"""Pre-labelling into VOC files: what ``label --voc-dir`` writes for each image, and what it never overwrites."""

from __future__ import annotations

import enum
import hashlib
from pathlib import Path

from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, image_size
from autolabel_gui.core.review import without_duplicates
from autolabel_gui.formats.existing import load_foreign_labels
from autolabel_gui.formats.voc import AnnotationError, parse_voc, read_label_file, voc_bytes, write_voc


class Prelabel(str, enum.Enum):
    """What ``VocWriter.write`` did to an image's VOC file (``label`` counts each)."""

    WRITTEN = "written"
    VERIFIED = "verified"
    """Left alone: a person verified it."""
    KEPT = "kept"
    """Left alone: someone else (a person, another tool) wrote or edited it."""
    UNREADABLE = "unreadable"
    """Left alone: it cannot be read, so it is never written over."""
    FAILED = "failed"
    """Not written: the image or the disk failed."""


class VocWriter:
    """Writes unverified VOC files, and never over someone else's work.

    An existing file is replaced only when it is unverified and byte for byte what an earlier
    ``label`` run wrote (its digest is in the cache); a verified file, an unreadable one, or any
    file a person or another tool wrote or edited is left alone and counted. YOLO or COCO labels
    the image already has are carried into the VOC file as its first boxes, and proposals that
    repeat them are dropped, as the window does.
    """

    def __init__(self, folder: ImageFolder, cache: ProposalCache, box_threshold: float, note,
                 class_names: list[str]) -> None:
        self.folder = folder
        self.cache = cache
        self.box_threshold = box_threshold
        self.note = note
        self.class_names = class_names

    def write(self, rel: str, proposals: list[Box]) -> Prelabel:
        """Write ``rel``'s VOC file, or leave the file there alone; returns which."""
        try:
            path = self.folder.checked_voc_path(rel)
        except OSError as exc:  # a link out of the annotation folder: never written through
            self.note(f"no VOC file for {rel}: {exc.strerror}")
            return Prelabel.FAILED
        if path.exists():
            kept = self._why_keep(path)
            if kept:
                return kept
        image_path = self.folder.image_path(rel)
        try:
            width, height = image_size(image_path)
            existing = self._foreign_boxes(rel)
        except ImageLoadError as exc:
            self.note(f"no VOC file for {rel}: {exc}")
            return Prelabel.FAILED
        except AnnotationError as exc:  # a VOC file here would hide the unreadable one for good
            self.note(f"no VOC file for {rel}: its labels cannot be read: {exc}")
            return Prelabel.UNREADABLE
        boxes = [b.clamped(width, height).with_state(BoxState.ACCEPTED) for b in proposals
                 if b.passes(self.box_threshold)]
        labels = ImageLabels.for_image(
            image_path, width, height, existing + [b for b in without_duplicates(boxes, existing) if b.area > 0])
        try:
            write_voc(path, labels)
            self.cache.put_output(path, hashlib.sha256(voc_bytes(labels)).hexdigest())
        except AnnotationError as exc:  # became unreadable since we looked: still never overwritten
            self.note(str(exc))
            return Prelabel.UNREADABLE
        except OSError as exc:
            self.note(f"cannot write {path}: {exc.strerror or exc}")
            return Prelabel.FAILED
        return Prelabel.WRITTEN

    def _foreign_boxes(self, rel: str) -> list[Box]:
        """YOLO or COCO boxes beside the image, carried into every VOC file written for it."""
        labels = load_foreign_labels(self.folder, rel, self.class_names)
        return list(labels.boxes) if labels else []

    def _why_keep(self, path: Path) -> Prelabel | None:
        try:
            data = read_label_file(path)
            if parse_voc(data, path).verified:
                return Prelabel.VERIFIED
        except AnnotationError as exc:
            self.note(f"not overwritten (cannot parse it): {exc}")
            return Prelabel.UNREADABLE
        except OSError as exc:
            self.note(f"not overwritten (cannot read it): {path}: {exc.strerror or exc}")
            return Prelabel.UNREADABLE
        if not self.cache.wrote(hashlib.sha256(data).hexdigest()):  # by content: the folder may have moved
            return Prelabel.KEPT
        return None
