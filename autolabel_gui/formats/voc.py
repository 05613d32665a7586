"""Pascal VOC XML: the file format of the human's accepted work.

Coordinates follow the VOC devkit (1-based, inclusive integer pixel indices) and are converted
from and to the continuous coordinates of ``core.boxes`` here and nowhere else::

    write: xmin = floor(x0) + 1, ymin = floor(y0) + 1, xmax = ceil(x1), ymax = ceil(y1),
           clamped to 1..W and 1..H
    read:  x0 = xmin - 1, y0 = ymin - 1, x1 = xmax, y1 = ymax   (floats accepted),
           clamped to the image (0..W, 0..H; only 0 and up when <size> is missing)

A written box always covers every pixel the continuous box touches, so reading and writing
again gives the same file. A box with no area inside the image (zero width or height after
clamping) is skipped on write and logged: it marks no pixel, and a zero-size VOC box breaks
consumers that divide by the box size. See docs/decisions/0003-voc-coordinates.md.

Every element labelImg, CVAT (datumaro) and supervision look for is always written; the
optional ones may be missing when reading.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from autolabel_gui.core.atomic import atomic_write_bytes
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.safe_read import LABEL_FILE_LIMIT, UnsafeFileError, open_regular, read_limited

log = logging.getLogger(__name__)

DATABASE = "Unknown"
"""labelImg's and datumaro's value for ``source/database``."""

_OBJECT_TAG = re.compile(rb"<object[\s/>]")
_OBJECT_TAG_TEXT = re.compile(r"<object[\s/>]")
_WIDE_ENCODINGS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                   (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
                   (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
                   (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le"))
"""XML's own encoding detection (XML 1.0, appendix F): the first bytes (a byte order mark, or
``<`` with zero bytes) name the encodings in which ``<object`` is not those ASCII bytes."""
RULE_TAG = "autolabel_accepted_by_rule"
"""The element of a file accepted by a rule, unseen (labelImg and datumaro ignore unknown
elements). It is the root's first child, before the folder, filename and path (a deep path of
non-ASCII names is kilobytes): ``read_provenance`` reads a file only up to its first object."""
_TRUE = {"1", "yes", "true"}
_FALSE = {"0", "no", "false", ""}



class AnnotationError(Exception):
    """An annotation file that cannot be read or must not be overwritten."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


MAX_BOXES_PER_IMAGE = 2000
"""Boxes one image's label file (VOC, YOLO, a COCO entry) may hold. The window took 3-30 s to
open a VOC file of 10,000 (parsing, the review's pairwise checks against the proposals, a canvas
item and a panel row each); a file with more is refused like an unreadable one: the window
opens the image read-only and ``label`` never writes over it."""


def check_box_count(path: Path | str, count: int) -> None:
    """AnnotationError naming ``path`` and ``count`` when it is over ``MAX_BOXES_PER_IMAGE``."""
    if count > MAX_BOXES_PER_IMAGE:
        raise AnnotationError(path, f"{count:,} boxes, more than the {MAX_BOXES_PER_IMAGE:,} one image may have "
                                    "(a crowd that large cannot be reviewed box by box)")


def voc_corners(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The VOC ``(xmin, ymin, xmax, ymax)`` of ``box`` in a ``width`` x ``height`` image.

    None when the box covers no pixel area inside the image.
    """
    b = box.clamped(width, height)
    if b.x1 <= b.x0 or b.y1 <= b.y0:
        return None
    xmin = min(max(math.floor(b.x0) + 1, 1), width)
    ymin = min(max(math.floor(b.y0) + 1, 1), height)
    xmax = min(max(math.ceil(b.x1), 1), width)
    ymax = min(max(math.ceil(b.y1), 1), height)
    return xmin, ymin, xmax, ymax


def voc_bytes(labels: ImageLabels) -> bytes:
    """The UTF-8 XML document for ``labels``; boxes are written whatever their state.

    Raises ValueError when the image size is unknown (boxes cannot be clamped) or a box has
    no class name (labelImg and datumaro fail on an empty ``<name>``).
    """
    if labels.width <= 0 or labels.height <= 0:
        raise ValueError(f"{labels.filename}: image size unknown ({labels.width}x{labels.height})")
    root = etree.Element("annotation")
    if labels.verified:
        root.set("verified", "yes")
    if labels.accepted_by_rule and not labels.verified:
        _sub(root, RULE_TAG, labels.accepted_by_rule)
    _sub(root, "folder", labels.folder)
    _sub(root, "filename", labels.filename)
    _sub(root, "path", labels.path)
    _sub(_sub(root, "source"), "database", DATABASE)
    size = _sub(root, "size")
    _sub(size, "width", str(labels.width))
    _sub(size, "height", str(labels.height))
    _sub(size, "depth", str(labels.depth))
    _sub(root, "segmented", "0")
    skipped = 0
    for i, box in enumerate(labels.boxes, start=1):
        if not box.label.strip():
            raise ValueError(f"{labels.filename}: box {i} has no class name")
        corners = voc_corners(box, labels.width, labels.height)
        if corners is None:
            skipped += 1
            continue
        obj = _sub(root, "object")
        _sub(obj, "name", box.label)
        _sub(obj, "pose", box.pose or "Unspecified")
        _sub(obj, "truncated", _flag(box.truncated))
        _sub(obj, "difficult", _flag(box.difficult))
        _sub(obj, "occluded", _flag(box.occluded))
        bndbox = _sub(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners):
            _sub(bndbox, tag, str(value))
    if skipped:
        log.warning("%s: %d box(es) with no area inside the image were not written", labels.filename, skipped)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def write_voc(path: Path | str, labels: ImageLabels, *, on_unreadable: str = "raise",
              expected: Callable[[], None] | None = None) -> None:
    """Write ``labels`` to ``path`` atomically (a reader sees the old file or the new one).

    An existing file at ``path`` that is not a readable VOC file may be someone's work in
    another format, so it is never overwritten silently: ``on_unreadable="raise"`` raises
    AnnotationError, ``"backup"`` renames it to ``<name>.unreadable[-N]`` first. ``expected``:
    see ``atomic_write_bytes`` (called just before the rename; raising refuses the write).
    """
    path = Path(path)
    data = voc_bytes(labels)
    if on_unreadable not in ("raise", "backup"):
        raise ValueError(f"on_unreadable must be 'raise' or 'backup', not {on_unreadable!r}")
    if path.exists():
        try:
            read_voc(path)
        except AnnotationError as exc:
            if on_unreadable == "raise":
                raise AnnotationError(path, f"not overwritten, the existing file is unreadable ({exc.reason})") from exc
            os.replace(path, _backup_name(path))
    atomic_write_bytes(path, data, expected=expected)


def read_voc(path: Path | str) -> ImageLabels:
    """Read one VOC file; its boxes come back ACCEPTED with no score.

    Accepts what the common writers produce: float coordinates, a missing ``<size>`` (width
    and height 0: the caller fills them from the image), an empty ``<depth>`` (CVAT), missing
    pose/truncated/difficult/occluded, corners given in the wrong order, a 0 where a 1-based
    minimum should be (CVAT writes 0-based values; the box starts at the edge). Boxes are
    clamped to the image when its size is known. Raises
    AnnotationError naming the file and the reason for anything else.
    """
    return parse_voc(read_label_file(path), path)


def read_label_file(path: Path | str, limit: int = LABEL_FILE_LIMIT) -> bytes:
    """The bytes of one annotation file, read as untrusted input (``core.safe_read``)."""
    try:
        return read_limited(path, limit)
    except UnsafeFileError as exc:
        raise AnnotationError(path, exc.reason) from exc
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror or exc})") from exc


def parse_voc(data: bytes, path: Path | str = "<memory>") -> ImageLabels:
    """Parse VOC XML bytes; ``path`` only names the source in error messages."""
    if not data.strip():
        raise AnnotationError(path, "empty file")
    check_box_count(path, _object_count(data))  # before the tree is built
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise AnnotationError(path, f"not valid XML ({exc})") from exc
    if root.tag != "annotation":
        raise AnnotationError(path, f"root element is <{root.tag}>, expected <annotation>")
    width, height = _size(root, "width", path), _size(root, "height", path)
    objects = root.findall("object")
    check_box_count(path, len(objects))  # any other encoding libxml2 reads (EBCDIC, a declared one)
    boxes = [_read_object(obj, i, path) for i, obj in enumerate(objects, start=1)]
    if width and height:
        boxes = [b.clamped(width, height) for b in boxes]
    verified = root.get("verified", "").strip().lower() in _TRUE
    return ImageLabels(
        filename=_text(root, "filename"),
        width=width,
        height=height,
        depth=_size(root, "depth", path) or 3,
        boxes=boxes,
        verified=verified,
        folder=_text(root, "folder"),
        path=_text(root, "path"),
        accepted_by_rule=None if verified else _text(root, RULE_TAG).strip() or None,
    )


def read_provenance(path: Path | str, chunk: int = 1024) -> tuple[bool, str | None]:
    """``(verified, accepted_by_rule)`` as ``parse_voc`` reads them, from the file's bytes up
    to its first object: the file list's status for thousands of files without building their
    trees. The same parser and the same rule (the root's ``verified`` attribute, the root's first
    ``RULE_TAG`` child): a comment, an element nested deeper or an empty one says nothing.

    An element a hand-made file puts after its first object is not seen: such a file reads as
    "in review" (a person is shown it), never the other way round. Raises AnnotationError like
    ``read_voc`` for a file that is not a readable VOC document as far as it was read, and
    FileNotFoundError when there is no file.
    """
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True)
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        raise
    except UnsafeFileError as exc:
        raise AnnotationError(path, exc.reason) from exc
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror or exc})") from exc
    try:
        depth, total = 0, 0
        while total <= LABEL_FILE_LIMIT:
            data = os.read(fd, chunk)
            total += len(data)
            try:
                if data:
                    parser.feed(data)
                else:
                    parser.close()
                events = list(parser.read_events())
            except etree.XMLSyntaxError as exc:
                raise AnnotationError(path, f"not valid XML ({exc})") from exc
            for event, el in events:
                depth += 1 if event == "start" else -1
                if event == "start" and depth == 1:
                    if el.tag != "annotation":
                        raise AnnotationError(path, f"root element is <{el.tag}>, expected <annotation>")
                    if el.get("verified", "").strip().lower() in _TRUE:
                        return True, None
                elif event == "start" and depth == 2 and el.tag == "object":
                    return False, None
                elif event == "end" and depth == 1 and el.tag == RULE_TAG:
                    return False, (el.text or "").strip() or None
                elif event == "end" and depth == 0:
                    return False, None
            if not data:
                break
        return False, None
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


def _object_count(data: bytes) -> int:
    """``<object`` tags in ``data``, counted in its encoding: in the raw bytes for UTF-8 and the
    other ASCII-compatible encodings, in the decoded text for UTF-16 and UTF-32 (10,000 boxes in
    UTF-16 bytes are ``<\\0o\\0...`` and passed a byte count). Anything else libxml2 decodes is
    counted again on the tree (``parse_voc``)."""
    for start, encoding in _WIDE_ENCODINGS:
        if data.startswith(start):
            return len(_OBJECT_TAG_TEXT.findall(data.decode(encoding, errors="replace")))
    return len(_OBJECT_TAG.findall(data))


def _read_object(obj: etree._Element, index: int, path: Path | str) -> Box:
    where = f"object {index}"
    name = _text(obj, "name").strip()
    if not name:
        raise AnnotationError(path, f"{where} has no <name>")
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise AnnotationError(path, f"{where} ({name}) has no <bndbox>")
    xmin, ymin, xmax, ymax = (_coordinate(bndbox, tag, f"{where} ({name})", path)
                              for tag in ("xmin", "ymin", "xmax", "ymax"))
    xmin, xmax = min(xmin, xmax), max(xmin, xmax)
    ymin, ymax = min(ymin, ymax), max(ymin, ymax)
    return Box(
        x0=max(xmin - 1, 0.0),
        y0=max(ymin - 1, 0.0),
        x1=xmax,
        y1=ymax,
        label=name,
        state=BoxState.ACCEPTED,
        difficult=_bool(obj, "difficult", where, path),
        truncated=_bool(obj, "truncated", where, path),
        occluded=_bool(obj, "occluded", where, path),
        pose=_text(obj, "pose").strip() or "Unspecified",
    )


def _parser() -> etree.XMLParser:
    """A fresh parser per call (lxml parsers must not be shared between threads).

    No entity expansion and no network: an annotation file must not be able to read other files.
    """
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _text(parent: etree._Element, tag: str) -> str:
    el = parent.find(tag)
    return (el.text or "") if el is not None else ""


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _coordinate(bndbox: etree._Element, tag: str, where: str, path: Path | str) -> float:
    text = _text(bndbox, tag).strip()
    if not text:
        raise AnnotationError(path, f"{where}: <bndbox> has no <{tag}>")
    try:
        return _number(text)
    except ValueError:
        raise AnnotationError(path, f"{where}: <{tag}> is {text!r}, not a number") from None


def _size(root: etree._Element, tag: str, path: Path | str) -> int:
    """A ``<size>`` field; missing or empty gives 0 (unknown)."""
    text = _text(root, f"size/{tag}").strip()
    if not text:
        return 0
    try:
        value = _number(text)
    except ValueError:
        raise AnnotationError(path, f"<size><{tag}> is {text!r}, not a number") from None
    if value < 0 or value != int(value):
        raise AnnotationError(path, f"<size><{tag}> is {text!r}, not a whole number of pixels")
    return int(value)


def _bool(obj: etree._Element, tag: str, where: str, path: Path | str) -> bool:
    text = _text(obj, tag).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    try:
        return _number(text) != 0
    except ValueError:
        raise AnnotationError(path, f"{where}: <{tag}> is {text!r}, expected 0 or 1") from None


def _backup_name(path: Path) -> Path:
    candidate = path.with_name(path.name + ".unreadable")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.unreadable-{n}")
    return candidate
