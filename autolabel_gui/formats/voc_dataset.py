"""The Pascal VOC dataset export: ``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/trainval.txt``
and ``labelmap.txt`` (``formats/registry.py``). Each annotation file is our own VOC writer's
(``formats/voc.py``); the plan and the shared helpers are ``formats/export.py``'s.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autolabel_gui.formats.export import CONTROL_CHARACTERS, ExportError, ExportPlan, Ticker, place_image, write_file
from autolabel_gui.formats.voc import voc_bytes


def write_voc_dataset(stage: Path, plan: ExportPlan, ticker: Ticker) -> int:
    """``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/trainval.txt`` and ``labelmap.txt``.

    Annotations are written by our own VOC writer, not supervision's, which drops difficult,
    truncated, occluded, pose and ``verified`` and rounds to the nearest pixel (ADR 0007).
    """
    linked = 0
    for sub in ("Annotations", "JPEGImages"):
        (stage / sub).mkdir()
    for item in plan.items:
        linked += place_image(item.source, stage / "JPEGImages" / item.name)
        labels = replace(item.labels, filename=item.name, folder="JPEGImages", path="")
        write_file(stage / "Annotations" / f"{item.stem}.xml", voc_bytes(labels))
        ticker.tick()
    write_file(stage / "ImageSets" / "Main" / "trainval.txt", "".join(f"{item.stem}\n" for item in plan.items))
    write_file(stage / "labelmap.txt", _labelmap(plan.classes))
    return linked


def check_labelmap_names(classes: list[str]) -> None:
    """``labelmap.txt`` is ``name:color::`` lines with ``#`` comments: a name with ``:``, a line
    break or a leading ``#`` would be read back as another class or none. Refused, not mangled."""
    bad = [n for n in classes if ":" in n or n.lstrip().startswith("#") or CONTROL_CHARACTERS.search(n)]
    if bad:
        raise ExportError("class names that cannot be written to VOC's labelmap.txt (no ':', no line break, "
                          f"no leading '#'): {', '.join(repr(n) for n in bad)}; rename the class or export "
                          "as YOLO or COCO")


def _labelmap(classes: list[str]) -> str:
    """Datumaro/CVAT's ``label:color_rgb:parts:actions`` file; without it they assume VOC's 20 classes."""
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    for i, name in enumerate(classes, start=1):
        r, g, b = (i * 73) % 256, (i * 151) % 256, (i * 211) % 256
        lines.append(f"{name}:{r},{g},{b}::")
    return "\n".join(lines) + "\n"
