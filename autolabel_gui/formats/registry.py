"""The export formats, one entry each: ``export --format`` and File > Export both list these.

A new format is a writer function in its own ``formats/`` module, ``write(stage, plan, ticker) -> int``
(the images it hard-linked; ``formats/export.py`` holds the plan and the shared helpers), and
one entry below; a format that cannot hold every class name also names a ``check(classes)``
that raises ``ExportError`` before anything is written. Nothing is imported until an export
runs, so the command line reads this for ``--help`` without loading PIL or supervision.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    class_check: str | None = None
    """``module:function`` that refuses class names the format cannot hold (``ExportError``), or None."""

    def write(self) -> Callable[..., int]:
        return _function(self.writer)

    def check_classes(self, classes: list[str]) -> None:
        """Raise ``ExportError`` for class names this format cannot write; nothing for most formats."""
        if self.class_check is not None:
            _function(self.class_check)(classes)


def _function(name: str) -> Callable[..., Any]:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


EXPORT_FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("yolo", "YOLO (Ultralytics: images/, labels/, data.yaml)", "autolabel_gui.formats.yolo:write_yolo"),
    ExportFormat("coco", "COCO (images/, annotations.json)", "autolabel_gui.formats.coco:write_coco"),
    ExportFormat("voc", "Pascal VOC (Annotations/, JPEGImages/, ImageSets/)",
                 "autolabel_gui.formats.voc_dataset:write_voc_dataset", jpeg_as_jpg=True,
                 class_check="autolabel_gui.formats.voc_dataset:check_labelmap_names"),
)}
"""By name, in the order the dialog lists them (the first is its default)."""
