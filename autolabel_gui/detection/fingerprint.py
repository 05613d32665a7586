"""Identities of model files that change proposals, without hashing 700 MB checkpoints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.compute_path import id_part

SCORING_VERSION = "class-span-max/nms0.5/v1"
"""How raw model outputs become proposals (ADR 0004); changing it invalidates every cache."""


def file_identity(path: str | Path | None) -> list | None:
    """Name, size and mtime of a file, or of each file directly inside a folder."""
    if not path:
        return None
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            stamps = sorted((c.name, c.stat().st_size, c.stat().st_mtime_ns) for c in p.iterdir() if c.is_file())
            return [p.name, stamps]
        st = p.stat()
    except OSError:
        return [str(path), "missing"]
    return [p.name, st.st_size, st.st_mtime_ns]


def model_digest(config: DetectorConfig, files: dict[str, Any]) -> str:
    """``backend:digest`` of a backend's model ``files`` (its own identity of them) and of what
    changes every backend's proposals: the planned arithmetic (``compute_path.id_part``: the fast
    path and the reference path never share an id), text threshold, backend options and
    ``SCORING_VERSION``. Device, batch size and box threshold are left out on purpose: they do
    not change what the model proposes (beyond float noise), so a CPU fallback shares the cache."""
    payload = {
        "backend": config.backend,
        **files,
        "precision": id_part(config.precision, config.device),
        "text_threshold": round(float(config.text_threshold), 6),
        "extra": sorted(config.extra.items()),
        "scoring": SCORING_VERSION,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{config.backend}:{digest[:20]}"
