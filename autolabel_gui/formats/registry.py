"""The export formats, one entry each: ``export --format`` and File > Export both list these.

A new format is a writer function in a ``formats/`` module, ``write(stage, plan, ticker) -> int``
(the images it hard-linked; ``formats/export.py`` holds the plan and the shared helpers), and
one entry below. Nothing is imported until an export runs, so the command line reads this for
``--help`` without loading PIL or supervision.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: str
    """``--format`` value and the suffix of the suggested output folder."""
    title: str
    """What the export dialog shows."""
    writer: str
    """``module:function`` of the writer, imported when an export runs."""
    jpeg_as_jpg: bool = False
    """Name JPEG variants (.jpeg, .jpe, .jfif) ``.jpg``: torchvision's VOC reader looks for no other."""

    def write(self) -> Callable[..., int]:
        module, _, function = self.writer.partition(":")
        return getattr(importlib.import_module(module), function)


EXPORT_FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("yolo", "YOLO (Ultralytics: images/, labels/, data.yaml)", "autolabel_gui.formats.export:write_yolo"),
    ExportFormat("coco", "COCO (images/, annotations.json)", "autolabel_gui.formats.export:write_coco"),
    ExportFormat("voc", "Pascal VOC (Annotations/, JPEGImages/, ImageSets/)",
                 "autolabel_gui.formats.export:write_voc_dataset", jpeg_as_jpg=True),
)}
"""By name, in the order the dialog lists them (the first is its default)."""
