"""The ``grounding_dino`` backend's spec, torch-free: what identifies its model, what is missing.

The window, ``label`` and the cache key read this without importing torch or the model package;
``detection/grounding_dino.py`` is imported only to build the detector.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

from autolabel_gui.core.safe_read import SMALL_FILE_LIMIT, read_limited
from autolabel_gui.detection.base import BackendSpec, DetectorConfig
from autolabel_gui.detection.fingerprint import file_identity, model_digest
from autolabel_gui.detection.text_encoder import is_name
from autolabel_gui.detection.weights import find_weights, missing_weights_message

DEFAULT_TEXT_ENCODER = "bert-base-uncased"
PACKAGE_CONFIG = "GroundingDINO_SwinT_OGC.py"


def package_config_path() -> Path | None:
    """The groundingdino package's own SwinT-OGC config, found without importing the package."""
    spec = importlib.util.find_spec("groundingdino")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "config" / PACKAGE_CONFIG


def model_config_path(config: DetectorConfig) -> Path | None:
    """The model config file the detector builds from: ``config.config``, else the package's."""
    return Path(config.config).expanduser() if config.config else package_config_path()


class ConfigRefused(ValueError):
    """A model config that is not read: it is not plain ``name = literal`` lines."""


def read_config_text(path: Path) -> str:
    """The text of a model config file: a small regular file, or OSError/UnicodeDecodeError."""
    return read_limited(path, SMALL_FILE_LIMIT).decode("utf-8-sig")


def config_literals(text: str, path: Path | str = "<config>") -> dict[str, object]:
    """The values of a Grounding DINO config file, read without running it.

    The package's loader executes the file as Python, so a config shipped with a dataset could
    run anything. Every config the package and its checkpoints come with is a list of
    ``name = literal`` lines, so that is all that is accepted: each value goes through
    ``ast.literal_eval`` (numbers, strings, lists, tuples, dicts, True/False/None). Anything else
    (an import, a call, ``_base_`` inheritance) raises ConfigRefused naming the line.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ConfigRefused(f"{path}: not a readable config file ({exc})") from None
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ConfigRefused(f"{path}: line {node.lineno}: only 'name = value' lines are read from a model "
                                "config (it is never run as Python)")
        name = node.targets[0].id
        try:
            values[name] = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise ConfigRefused(f"{path}: line {node.lineno}: the value of {name!r} is not a plain number, text, "
                                "list or table (a model config is never run as Python)") from None
        if name.startswith("_"):
            raise ConfigRefused(f"{path}: line {node.lineno}: {name!r} (inheritance and hidden keys are not read)")
    return values


def resized_size(width: int, height: int, size: int, max_size: int) -> tuple[int, int]:
    """(width, height) the model input gets: the package's ``RandomResize`` rule, except that no
    side is shorter than ``size // 4`` or longer than ``max_size``.

    For a 1x4000 strip the package's rule asks for a 0-pixel side ("height and width must be
    > 0"), and a strip a few pixels wide gives the encoder fewer tokens than the model has
    queries ("selected index k out of range"). Such a strip is stretched to the minimum
    instead; boxes come back normalised to the input, so the distorted aspect does not move
    them. Images up to an aspect of ``4 * max_size / size`` (6.7:1 at 800/1333) are unchanged.
    """
    least = max(1, size // 4)
    short, long = float(min(width, height)), float(max(width, height))
    if long / short * size > max_size:
        size = max(1, int(round(max_size * short / long)))
    if (width <= height and width == size) or (height <= width and height == size):
        out_w, out_h = width, height
    elif width < height:
        out_w, out_h = size, int(size * height / width)
    else:
        out_w, out_h = int(size * width / height), size
    return max(least, min(out_w, max_size)), max(least, min(out_h, max_size))


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


def _text_encoder_identity(name: str) -> list | str | None:
    """A local folder is identified by its files; a hub name ("bert-base-uncased") by itself,
    whatever the working directory holds (``text_encoder.is_name``)."""
    return name if is_name(name) else file_identity(name)


def model_id(config: DetectorConfig) -> str:
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
        config_text = read_config_text(config_path) if config_path else None
    except (OSError, UnicodeDecodeError):
        config_text = None
    text_encoder = config.text_encoder or (config_text and config_text_encoder(config_text)) or DEFAULT_TEXT_ENCODER
    return model_digest(config, {
        "weights": file_identity(weights),
        "config": hashlib.sha256(config_text.encode("utf-8")).hexdigest()[:16] if config_text is not None
        else [str(config_path), "missing"],
        "text_encoder": _text_encoder_identity(text_encoder),
    })


def missing(config: DetectorConfig) -> str | None:
    """What is missing before this backend can run, and how to get it (None: nothing)."""
    return None if find_weights(config.weights) is not None else missing_weights_message(config.weights)


SPEC = BackendSpec(
    name="grounding_dino",
    module="autolabel_gui.detection.grounding_dino",
    title="Grounding DINO (original IDEA-Research code, rf-groundingdino)",
    model_id=model_id,
    missing=missing,
    options=("image_size", "max_size"),
)
