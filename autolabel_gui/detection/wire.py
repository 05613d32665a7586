"""The proposal server's wire format, shared by the server (``app/serve.py``) and its client
(``detection/remote.py``): JSON and raw bytes only, nothing is ever unpickled, every field bounded.

``POST /v1/detect``: a 4-byte big-endian length N, N bytes of a JSON header, then the image file
as it is on disk (JPEG, PNG...; the server decodes it with the local decoder's checks).
The header: ``{"classes": [[name, prompt text], ...], "groups": [starts...], "model_id": id}``;
``model_id`` is the model the client's cache rows will be filed under: a server running another
model refuses (409) instead of filling the cache with boxes under a wrong run id.
Reply: ``{"model_id": id, "boxes": [[x0, y0, x1, y1, label, score], ...], "seconds": s}``.
``GET /v1/info``: ``ServerInfo``. Errors: ``{"error": text}`` with an HTTP status: 400 a malformed
request, 401 a missing or wrong token, 404, 405, 409 another model, 413 a body over the limit,
422 an image the decoder refuses, 500 the model failed, 503 not ready.

Torch-free and stdlib-only: the client (a laptop) needs nothing of the model stack.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.ontology import ClassSpec, Ontology

PROTOCOL = 1
SERVICE = "autolabel-gui proposal server"
DETECT_PATH = "/v1/detect"
INFO_PATH = "/v1/info"
HEALTH_PATH = "/v1/health"

MAX_HEADER = 256 * 1024
MAX_NAME = 200
MAX_TEXT = 1000
MAX_REPLY = 32 << 20
"""Largest reply a client reads: a server answering garbage cannot fill the reviewer's memory."""
MAX_BOXES = 20_000
_LEN = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Limits:
    """What a server accepts: body bytes, pixels of one image, classes of one request."""

    max_body: int = 64 << 20
    max_pixels: int = 100_000_000
    max_classes: int = 1000


class WireError(ValueError):
    """A request or reply that breaks the format; ``status`` is the HTTP status that says so."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ProtocolMismatch(ValueError):
    """A proposal server of another protocol version."""


@dataclass(frozen=True, slots=True)
class DetectRequest:
    ontology: Ontology
    image: bytes
    model_id: str


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a server says about itself (``GET /v1/info``)."""

    model_id: str
    model: str
    """The catalogue name of its model ("" for files set by hand)."""
    title: str
    device: str
    precision: str
    max_body: int
    max_pixels: int
    max_classes: int
    protocol: int = PROTOCOL

    def to_json(self) -> bytes:
        return json.dumps({"service": SERVICE, "protocol": self.protocol, "model_id": self.model_id,
                           "model": self.model, "title": self.title, "device": self.device,
                           "precision": self.precision, "max_body": self.max_body,
                           "max_pixels": self.max_pixels, "max_classes": self.max_classes}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ServerInfo:
        """ValueError for anything but a proposal server's answer of this protocol."""
        obj = _object(data)
        if obj.get("service") != SERVICE:
            raise ValueError("not an autolabel-gui proposal server")
        if obj.get("protocol") != PROTOCOL:
            raise ProtocolMismatch(f"the server speaks protocol {obj.get('protocol')!r}, this client {PROTOCOL}: "
                             "update the older of the two")
        texts = {k: obj.get(k) for k in ("model_id", "model", "title", "device", "precision")}
        numbers = {k: obj.get(k) for k in ("max_body", "max_pixels", "max_classes")}
        if not all(_short(v, MAX_TEXT) for v in texts.values()) or not texts["model_id"]:
            raise ValueError("the server's description is malformed")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in numbers.values()):
            raise ValueError("the server's limits are malformed")
        return cls(**texts, **numbers)  # type: ignore[arg-type]


# -- requests -------------------------------------------------------------------------------


def encode_request(ontology: Ontology, image: bytes, model_id: str) -> bytes:
    header = json.dumps({"classes": [[c.name, c.text] for c in ontology.classes],
                         "groups": list(ontology.group_starts), "model_id": model_id},
                        ensure_ascii=False).encode("utf-8")
    return _LEN.pack(len(header)) + header + image


def parse_request(body: bytes, limits: Limits) -> DetectRequest:
    """The request in ``body``; WireError(400) for anything malformed, 413 for too many classes
    (the body's size is checked while it is read, before this)."""
    if len(body) < _LEN.size:
        raise WireError(400, "malformed request: no header")
    (size,) = _LEN.unpack_from(body)
    if size > MAX_HEADER or _LEN.size + size > len(body):
        raise WireError(400, "malformed request: bad header length")
    try:
        header = json.loads(body[_LEN.size:_LEN.size + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireError(400, "malformed request: the header is not JSON") from None
    if not isinstance(header, dict):
        raise WireError(400, "malformed request: the header is not an object")
    classes, groups, model_id = header.get("classes"), header.get("groups", []), header.get("model_id")
    if not isinstance(classes, list) or not classes:
        raise WireError(400, "malformed request: no classes")
    if len(classes) > limits.max_classes:
        raise WireError(413, f"too many classes: {len(classes)} (this server takes at most {limits.max_classes})")
    if not all(isinstance(p, list) and len(p) == 2 and _short(p[0], MAX_NAME) and p[0].strip()
               and _short(p[1], MAX_TEXT) for p in classes):
        raise WireError(400, "malformed request: classes must be [name, prompt] pairs of short texts")
    if not (isinstance(groups, list) and all(isinstance(g, int) and not isinstance(g, bool) for g in groups)
            and groups == sorted(set(groups)) and all(0 < g < len(classes) for g in groups)):
        raise WireError(400, "malformed request: groups must be increasing class indices")
    if not isinstance(model_id, str) or not _short(model_id, MAX_TEXT):
        raise WireError(400, "malformed request: no model id")
    try:
        ontology = Ontology(tuple(ClassSpec(n, t) for n, t in classes), tuple(groups))
    except ValueError as exc:
        raise WireError(400, f"malformed request: {exc}") from None
    image = body[_LEN.size + size:]
    if not image:
        raise WireError(400, "malformed request: no image")
    return DetectRequest(ontology, bytes(image), model_id)


# -- replies --------------------------------------------------------------------------------


def encode_reply(model_id: str, boxes: list[Box], seconds: float) -> bytes:
    """Floats as JSON writes them (shortest repr): the client reads back the same float64s."""
    return json.dumps({"model_id": model_id, "boxes": [[b.x0, b.y0, b.x1, b.y1, b.label, b.score] for b in boxes],
                       "seconds": round(seconds, 4)}, ensure_ascii=False).encode("utf-8")


def encode_error(message: str) -> bytes:
    return json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")


def parse_reply(data: bytes, ontology: Ontology) -> tuple[str, list[Box], float]:
    """(model id, PROPOSED boxes, server seconds) of a reply; ValueError for anything else
    (labels outside the request's classes, numbers that are not finite, too many boxes)."""
    obj = _object(data)
    model_id, rows, seconds = obj.get("model_id"), obj.get("boxes"), obj.get("seconds", 0.0)
    if not isinstance(model_id, str) or not _short(model_id, MAX_TEXT) or not isinstance(rows, list) \
            or len(rows) > MAX_BOXES:
        raise ValueError("not a proposal reply")
    names = set(ontology.names)
    boxes = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 6):
            raise ValueError("not a proposal reply: a box is not [x0, y0, x1, y1, label, score]")
        *corners, label, score = row
        if not all(_number(v) for v in (*corners, score)) or label not in names or not 0.0 <= score <= 1.0:
            raise ValueError("not a proposal reply: a box has a bad number or an unknown class")
        x0, y0, x1, y1 = (float(v) for v in corners)
        boxes.append(Box(x0, y0, x1, y1, label, float(score), BoxState.PROPOSED))
    return model_id, boxes, float(seconds) if _number(seconds) else 0.0


def error_text(data: bytes) -> str | None:
    """The ``error`` of an error reply, cut short and stripped of control characters; None if none."""
    try:
        obj = _object(data[:64 * 1024])
    except ValueError:
        return None
    text = obj.get("error")
    if not isinstance(text, str):
        return None
    return "".join(c if c.isprintable() else " " for c in text)[:300]


def _object(data: bytes) -> dict:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def _short(value: object, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit and not any(ord(c) < 32 for c in value)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
