"""COCO detection JSON: finding the file beside a folder's images and looking images up in it.

One JSON file describes a whole folder, so it is parsed once into a :class:`CocoIndex` and kept
until the file changes (keyed by size and mtime); the window calls the lookup per image.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.safe_read import INDEX_FILE_LIMIT
from autolabel_gui.formats.export import ExportPlan, Ticker, place_image, sv_detections
from autolabel_gui.formats.voc import AnnotationError, read_label_file

FIXED_NAMES: tuple[str, ...] = ("annotations.json", "_annotations.coco.json")
"""Names used by CVAT/labelme exports and by Roboflow; ``instances*.json`` is COCO's own."""


@dataclass(frozen=True, slots=True)
class CocoImage:
    """One image entry and its boxes (an entry with no boxes is a reviewed negative)."""

    file_name: str
    width: int
    height: int
    boxes: tuple[Box, ...]


@dataclass(slots=True)
class CocoIndex:
    """A parsed COCO file: images by normalized ``file_name`` and by base name."""

    path: Path
    by_name: dict[str, CocoImage] = field(default_factory=dict)
    by_basename: dict[str, list[CocoImage]] = field(default_factory=dict)
    estimated_bytes: int = 0
    """Its memory as ``load_index``'s cache counts it (``_PARSED_BYTES_PER_VALUE`` per value)."""

    def lookup(self, relpaths: list[str]) -> CocoImage | None:
        """The entry whose ``file_name`` equals one of ``relpaths``, else the only one with that base name.

        A base name shared by several entries matches none of them: guessing would put one
        image's boxes on another.
        """
        for rel in relpaths:
            found = self.by_name.get(_normalize(rel))
            if found is not None:
                return found
        if not relpaths:
            return None
        same = self.by_basename.get(PurePosixPath(relpaths[0]).name, [])
        return same[0] if len(same) == 1 else None


def _normalize(name: str) -> str:
    """``./a\\b.jpg`` and ``a/b.jpg`` name the same file (Windows tools write backslashes)."""
    return str(PurePosixPath(name.replace("\\", "/")))


def coco_files(folder: Path) -> list[Path]:
    """The COCO JSON files of one folder, in a fixed order."""
    found = [folder / n for n in FIXED_NAMES if (folder / n).exists()]
    found += sorted(p for p in folder.glob("instances*.json") if p.exists())
    return found


MAX_JSON_VALUES = 1_000_000
"""Objects, arrays and items (``{``, ``[`` and ``,``) a COCO file may hold. Python spends 36-54
bytes on each for ``[{},{},...]`` but about 290 per counted value for image entries with distinct
names (their strings are not counted: 133,000 entries, 5.6 MB, kept 109 MB), so with
``_PARSED_BYTES_PER_VALUE`` this keeps one parsed file under about 300 MB. It was 4,000,000: a
60 MB file under it (1.33 million entries) kept 917 MB. A file of 50,000 boxes with 30-point
polygons has 2.2 million values (measured) and is refused: such a dataset is split per folder."""
_PARSED_BYTES_PER_VALUE = 300
"""Resident bytes one counted value may cost once parsed and indexed (the worst shape measured:
image entries with distinct names, 287); what the session's cache of parsed files counts."""
KEPT_INDEX_BYTES = 512 * 2**20
"""Estimated memory (``_PARSED_BYTES_PER_VALUE`` per value) of the parsed COCO files kept for
reuse: the least recently used are dropped past it (parsed again if asked for again), so three
large files no longer stay resident together for the whole session."""

_cache: OrderedDict[Path, tuple[tuple[int, int], CocoIndex, int]] = OrderedDict()
_cache_lock = threading.Lock()


def load_index(path: Path) -> CocoIndex:
    """Parse ``path`` once; later calls reuse the index until the file's size or mtime changes."""
    path = Path(path).absolute()
    try:
        st = path.stat()
    except OSError as exc:
        raise AnnotationError(path, f"cannot read: {exc.strerror or exc}") from exc
    stamp = (st.st_size, st.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            _cache.move_to_end(path)
            return cached[1]
    index = parse_coco(path)
    with _cache_lock:
        _cache.pop(path, None)
        _cache[path] = (stamp, index, index.estimated_bytes)
        kept = sum(entry[2] for entry in _cache.values())
        while kept > KEPT_INDEX_BYTES and len(_cache) > 1:
            _, (_, _, size) = _cache.popitem(last=False)
            kept -= size
    return index


def parse_coco(path: Path) -> CocoIndex:
    """Read a COCO detection file; anything malformed raises AnnotationError naming it.

    A file over ``INDEX_FILE_LIMIT`` bytes or ``MAX_JSON_VALUES`` values is refused before it is
    parsed: the count is a scan of its bytes (braces, brackets, commas; those inside strings too).
    """
    raw = read_label_file(path, INDEX_FILE_LIMIT)
    values = raw.count(b"{") + raw.count(b"[") + raw.count(b",")
    if values > MAX_JSON_VALUES:
        raise AnnotationError(path, f"not read: about {values:,} JSON values in {len(raw):,} bytes, more than the "
                                    f"{MAX_JSON_VALUES:,} a COCO file may have (each costs memory when parsed)")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise AnnotationError(path, f"not a readable JSON file: {exc}") from exc
    except RecursionError:
        raise AnnotationError(path, "not read: JSON nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AnnotationError(path, "not a COCO file: no 'images' list")
    try:
        categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
        images = {int(im["id"]): im for im in data["images"]}
        boxes: dict[int, list[Box]] = {i: [] for i in images}
        for ann in data.get("annotations", []):
            boxes.setdefault(int(ann["image_id"]), []).append(_box(ann, categories, path))
        index = CocoIndex(path=Path(path), estimated_bytes=values * _PARSED_BYTES_PER_VALUE)
        for image_id, im in images.items():
            entry = CocoImage(str(im["file_name"]), int(im.get("width") or 0), int(im.get("height") or 0),
                              tuple(boxes[image_id]))
            index.by_name[_normalize(entry.file_name)] = entry
            index.by_basename.setdefault(PurePosixPath(_normalize(entry.file_name)).name, []).append(entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(path, f"malformed COCO entry: {exc!r}") from exc
    return index


def _box(ann: dict, categories: dict[int, str], path: Path) -> Box:
    category = int(ann["category_id"])
    if category not in categories:
        raise AnnotationError(path, f"annotation {ann.get('id')}: category_id {category} is not in 'categories'")
    x, y, w, h = (float(v) for v in ann["bbox"])
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
        raise AnnotationError(path, f"annotation {ann.get('id')}: bad bbox {ann['bbox']!r}")
    return Box(x, y, x + w, y + h, categories[category], state=BoxState.ACCEPTED)


def write_coco(stage: Path, plan: ExportPlan, ticker: Ticker) -> int:
    """``images/`` and one ``annotations.json`` written by supervision's ``as_coco``.

    The dataset is built from the linked image paths, so supervision reads only their headers
    (sizes, EXIF-oriented) and ``file_name`` is the flat name inside ``images/``.
    """
    import supervision as sv

    linked = 0
    paths: list[str] = []
    annotations = {}
    (stage / "images").mkdir()
    for item in plan.items:
        target = stage / "images" / item.name
        linked += place_image(item.source, target)
        paths.append(str(target))
        annotations[str(target)] = sv_detections(plan, item)
        ticker.tick()
    dataset = sv.DetectionDataset(classes=plan.classes, images=paths, annotations=annotations)
    dataset.as_coco(annotations_path=str(stage / "annotations.json"))
    _without_licence(stage / "annotations.json")
    return linked


def _without_licence(path: Path) -> None:
    """Drop the "CC BY 4.0" licence supervision puts on every image: nobody chose it for the
    user's pictures, and a dataset must not claim one (COCO allows an empty ``licenses``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["licenses"] = []
    for image in data["images"]:
        image.pop("license", None)
    path.write_text(json.dumps(data), encoding="utf-8")
