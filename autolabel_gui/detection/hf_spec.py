"""The ``transformers`` backend's spec, torch-free: which model folder, what identifies it, what is missing.

``DetectorConfig.weights`` is a Hugging Face model folder (``config.json``, weights, tokenizer,
optionally ``preprocessor_config.json``) or a hub id, which must already be in the Hugging Face
cache (``autolabel-gui weights download --model NAME`` puts it there); ``extra["revision"]``
pins a hub revision. The model architectures it can run are data (``MODEL_CLASSES``).
"""

from __future__ import annotations

import json
from pathlib import Path

from autolabel_gui.core.safe_read import read_limited
from autolabel_gui.detection.base import BackendSpec, DetectorConfig
from autolabel_gui.detection.fingerprint import file_identity, model_digest

MODEL_CLASSES = {
    "grounding-dino": "GroundingDinoForObjectDetection",
    "mm-grounding-dino": "MMGroundingDinoForObjectDetection",
}
"""``config.json`` ``model_type`` -> the transformers class that runs it (LLMDet is mm-grounding-dino)."""

MAX_CONFIG_BYTES = 1 << 20
_HOW_TO_GET = (
    "Give --weights HF_DIR (a Hugging Face model folder: config.json, model.safetensors, tokenizer files) "
    "or --model NAME from `autolabel-gui models`, downloaded once with `autolabel-gui weights download "
    "--model NAME`; an original .pth checkpoint converts with `autolabel-gui weights convert`."
)


def model_folder(config: DetectorConfig) -> Path | None:
    """The local folder of ``config.weights``: the folder itself (an absolute path, as the options
    store it), or a hub id's cached snapshot, never a folder of that name in the working directory."""
    if not config.weights:
        return None
    local = Path(config.weights).expanduser()
    if local.is_absolute():
        return local if local.is_dir() else None
    if config.weights.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(config.weights, revision=config.extra.get("revision"), local_files_only=True))
    except Exception:  # not cached, an invalid id, no huggingface_hub: the same answer, "not here"
        return None


def read_model_config(folder: Path) -> dict:
    """``config.json`` of a model folder, size-capped; ValueError when it is missing or unreadable."""
    path = folder / "config.json"
    try:
        data = json.loads(read_limited(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: no readable config.json ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: config.json is not an object")
    return data


def input_size(folder: Path) -> tuple[int, int]:
    """Shorter side and longer-side cap from ``preprocessor_config.json``, else Grounding DINO's 800/1333."""
    try:
        size = json.loads(read_limited(folder / "preprocessor_config.json", MAX_CONFIG_BYTES))["size"]
        return int(size["shortest_edge"]), int(size["longest_edge"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError):
        return 800, 1333


def model_id(config: DetectorConfig) -> str:
    """A stable id of the model folder's files and the settings that change proposals.

    Not in it: device, batch size and box threshold (see ``gdino_spec.model_id``).
    """
    folder = model_folder(config)
    return model_digest(config, {"weights": file_identity(folder) if folder else [config.weights, "missing"]})


def missing(config: DetectorConfig) -> str | None:
    """What is missing before this backend can run, and how to get it (None: nothing)."""
    if not config.weights:
        return "The transformers backend needs a model. " + _HOW_TO_GET
    folder = model_folder(config)
    if folder is None:
        return f"{config.weights}: no such model folder, and not in the Hugging Face cache. " + _HOW_TO_GET
    try:
        model_type = read_model_config(folder).get("model_type")
    except ValueError as exc:
        return f"{exc}. " + _HOW_TO_GET
    if model_type not in MODEL_CLASSES:
        return (f"{folder}: model type {model_type!r} is not one this backend runs "
                f"({', '.join(sorted(MODEL_CLASSES))}).")
    return None


SPEC = BackendSpec(
    name="transformers",
    module="autolabel_gui.detection.hf_grounding_dino",
    title="Grounding DINO family through Hugging Face transformers (GD, MM-GD, LLMDet)",
    model_id=model_id,
    missing=missing,
    options=("image_size", "max_size", "revision"),
)
