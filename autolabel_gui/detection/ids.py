"""The one id of "this model with these settings": the detector's ``model_id`` and the cache key's core.

Torch-free and model-free, so the cache, the window and ``stats`` compute it without importing
the model package, and the id a detector reports can never disagree with the id its proposals
are cached under. Files are identified by name, size and mtime (a 700 MB checkpoint is never
hashed), the small model config file by its content.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from pathlib import Path

from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.weights import find_weights

SCORING_VERSION = "class-span-max/nms0.5/v1"
"""How raw model outputs become proposals (ADR 0004); changing it invalidates every cache."""

DEFAULT_TEXT_ENCODER = "bert-base-uncased"
PACKAGE_CONFIG = "GroundingDINO_SwinT_OGC.py"


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


def package_config_path() -> Path | None:
    """The groundingdino package's own SwinT-OGC config, found without importing the package."""
    spec = importlib.util.find_spec("groundingdino")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "config" / PACKAGE_CONFIG


def model_config_path(config: DetectorConfig) -> Path | None:
    """The model config file the detector builds from: ``config.config``, else the package's."""
    return Path(config.config).expanduser() if config.config else package_config_path()


def config_text_encoder(config_text: str) -> str | None:
    """The last top-level ``text_encoder_type = "..."`` of a config file, read without running it."""
    try:
        tree = ast.parse(config_text)
    except SyntaxError:
        return None
    found = None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and any(isinstance(t, ast.Name) and t.id == "text_encoder_type" for t in node.targets)):
            found = node.value.value
    return found


def _text_encoder_identity(name: str) -> list | str:
    """A local folder is identified by its files; a hub name ("bert-base-uncased") by itself."""
    return file_identity(name) if Path(name).expanduser().exists() else name


def model_id_for(config: DetectorConfig) -> str:
    """A stable id of everything in ``config`` that changes proposals, without loading the model.

    In it: the backend, the weights file (name, size, mtime), the model config file's content,
    the text encoder (as ``--text-encoder`` or the config file names it), precision as asked,
    text threshold, backend options (input size...) and ``SCORING_VERSION``. Not in it: device,
    batch size and box threshold, which do not change what the model proposes (beyond float
    noise), so a CPU fallback and a run on another machine share the cache.
    """
    weights = find_weights(config.weights) or config.weights
    config_path = model_config_path(config)
    try:
        config_text = config_path.read_text(encoding="utf-8") if config_path else None
    except (OSError, UnicodeDecodeError):
        config_text = None
    text_encoder = config.text_encoder or (config_text and config_text_encoder(config_text)) or DEFAULT_TEXT_ENCODER
    payload = {
        "backend": config.backend,
        "weights": file_identity(weights),
        "config": hashlib.sha256(config_text.encode("utf-8")).hexdigest()[:16] if config_text is not None
        else [str(config_path), "missing"],
        "text_encoder": _text_encoder_identity(text_encoder),
        "precision": config.precision,
        "text_threshold": round(float(config.text_threshold), 6),
        "extra": sorted(config.extra.items()),
        "scoring": SCORING_VERSION,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{config.backend}:{digest[:20]}"
