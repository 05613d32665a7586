"""YOLO (Ultralytics / Darknet) detection labels: finding, reading and writing them.

A label file holds one object per line, ``class cx cy w h``, normalized to the image size, so
turning it into pixels needs the EXIF-oriented image size and a class list (``classes.txt``,
``obj.names`` or ``data.yaml``), which YOLO keeps in a separate file. ``write_yolo`` is the
YOLO export (``formats/registry.py``).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import yaml

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.safe_read import SMALL_FILE_LIMIT
from autolabel_gui.formats.export import ExportPlan, Ticker, place_image, sv_detections, write_file
from autolabel_gui.formats.voc import MAX_BOXES_PER_IMAGE, AnnotationError, check_box_count, read_label_file

CLASS_FILES: tuple[str, ...] = ("classes.txt", "obj.names", "data.yaml", "data.yml")
"""Class-list files, most specific first, as Darknet, labelImg and Ultralytics name them."""


def label_candidates(image: Path) -> list[Path]:
    """Where an image's label file may be: beside it, then in the ``labels/`` tree mirroring ``images/``.

    Ultralytics swaps the last ``images`` folder of the path for ``labels``; that folder may
    lie above the folder the user opened (``dataset/images/train`` -> ``dataset/labels/train``).
    """
    candidates = [image.with_suffix(".txt")]
    parts = list(image.parent.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            candidates.append(Path(*parts) / (image.stem + ".txt"))
            break
    return candidates


def find_class_file(label_file: Path, image: Path, stop: Path) -> Path | None:
    """The nearest class-list file above the label file or the image, looking no higher than ``stop``."""
    for start in (label_file.parent, image.parent):
        folder = start
        while True:
            for name in CLASS_FILES:
                candidate = folder / name
                if candidate.exists():
                    return candidate
            if folder == stop or folder.parent == folder or stop not in folder.parents:
                break
            folder = folder.parent
    return None


def read_class_file(path: Path) -> list[str]:
    """Class names in id order from ``classes.txt``/``obj.names`` (one a line) or ``data.yaml`` (``names``)."""
    try:
        text = read_label_file(path, SMALL_FILE_LIMIT).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"cannot read the class list: {exc}") from exc
    if path.suffix not in (".yaml", ".yml"):
        return [line.strip() for line in text.splitlines() if line.strip()]
    data = safe_yaml(text, path)
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise AnnotationError(path, "'names' keys must be class ids (0, 1, ...)") from None
        if ids != list(range(len(ids))):
            raise AnnotationError(path, "'names' ids must run 0, 1, 2, ... without gaps")
        by_id = {int(k): str(v) for k, v in names.items()}
        return [by_id[i] for i in ids]
    raise AnnotationError(path, "no 'names' list of classes")


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors' aliases: a few hundred bytes of nested aliases expand to
    gigabytes (the YAML "billion laughs"), and no class list needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not read", event.start_mark)
        return super().compose_node(parent, index)


def safe_yaml(text: str, path: Path) -> object:
    """Parse a small YAML file without aliases and without deep nesting."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise AnnotationError(path, f"not valid YAML: {exc}") from exc
    except RecursionError:
        raise AnnotationError(path, "not read: nested too deeply") from None


def read_yolo_labels(path: Path, width: int, height: int, class_names: list[str]) -> list[Box]:
    """Parse a label file into accepted pixel boxes clipped to the image.

    Box lines have five numbers; a segmentation line (class and three or more x y points)
    becomes the box around its polygon, so Ultralytics segment labels load too.
    """
    try:
        text = read_label_file(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"cannot read: {exc}") from exc
    if text.count("\n") >= MAX_BOXES_PER_IMAGE:  # only then are the box lines worth counting
        check_box_count(path, sum(1 for line in io.StringIO(text) if line.strip()))
    boxes: list[Box] = []
    for number, line in enumerate(io.StringIO(text), start=1):  # lazily: no list of every line
        fields = line.split()
        if not fields:
            continue
        where = f"line {number}"
        try:
            class_id = int(fields[0])
            values = [float(v) for v in fields[1:]]
        except ValueError:
            raise AnnotationError(path, f"{where}: expected 'class cx cy w h', got {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise AnnotationError(path, f"{where}: coordinates must be finite numbers")
        if not 0 <= class_id < len(class_names):
            known = f"0..{len(class_names) - 1}" if class_names else "none: no class list was found"
            raise AnnotationError(path, f"{where}: class id {class_id} is not in the class list ({known})")
        if len(values) == 4:
            cx, cy, w, h = values
            if w < 0 or h < 0:
                raise AnnotationError(path, f"{where}: negative width or height")
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(values) >= 6 and len(values) % 2 == 0:
            xs, ys = values[0::2], values[1::2]
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        else:
            raise AnnotationError(path, f"{where}: expected 'class cx cy w h', got {len(fields)} fields")
        box = Box(x0 * width, y0 * height, x1 * width, y1 * height, class_names[class_id],
                  state=BoxState.ACCEPTED).clamped(width, height)
        if box.area > 0:
            boxes.append(box)
    return boxes


def write_yolo(stage: Path, plan: ExportPlan, ticker: Ticker) -> int:
    """Ultralytics layout: ``images/``, ``labels/`` (an empty file for a negative) and ``data.yaml``.

    Lines come from supervision's ``detections_to_yolo_annotations``; we give it the size we
    already checked instead of letting ``as_yolo`` decode every image just to learn its shape.
    """
    from supervision.dataset.formats.yolo import detections_to_yolo_annotations

    linked = 0
    for sub in ("images", "labels"):
        (stage / sub).mkdir()
    for item in plan.items:
        linked += place_image(item.source, stage / "images" / item.name)
        lines = detections_to_yolo_annotations(sv_detections(plan, item),
                                               image_shape=(item.labels.height, item.labels.width))
        write_file(stage / "labels" / f"{item.stem}.txt", "".join(f"{ln}\n" for ln in lines))
        ticker.tick()
    data = {"train": "images", "val": "images", "nc": len(plan.classes),
            "names": dict(enumerate(plan.classes))}
    write_file(stage / "data.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return linked
