"""The Grounding DINO backend: load the model, detect on batches, one ontology class per box.

Outputs are classes, never phrases (``class_scoring``); a batch is one forward pass per image
shape; a prompt too long for the model's 256 tokens is split on class boundaries and only the
text-dependent half of the model re-runs per chunk (``gdino_forward``).

Images of one batch are grouped by their resized shape rather than padded together: Swin has
no padding mask, so padding would change an image's features and its boxes would depend on
what else was in its batch (and padded pixels cost compute).
"""

from __future__ import annotations

import contextlib
import functools
import io
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection import fast_sampling, gdino_forward, lean_load
from autolabel_gui.detection.base import (
    DetectorConfig,
    DetectorUnavailable,
    MissingModelFiles,
    Prepared,
    register_backend,
)
from autolabel_gui.detection.class_scoring import PromptChunk, build_chunks
from autolabel_gui.detection.compute_path import FUSED_SAMPLING
from autolabel_gui.detection.gdino_spec import (
    DEFAULT_TEXT_ENCODER,
    PACKAGE_CONFIG,
    ConfigRefused,
    config_literals,
    model_config_path,
    read_config_text,
    resized_size,
)
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.image_input import check_image, resize_options
from autolabel_gui.detection.runtime import (
    Candidates,
    TorchDetector,
    add_candidates,
    apply_path,
    resolve_device,
    resolve_precision,
)
from autolabel_gui.detection.text_encoder import CUSTOM_CODE_REFUSED, is_name, load_tokenizer, text_encoder_folder

PLOTTING_MODULE = "groundingdino.util.visualizer"


def _skip_plotting_import() -> None:
    """The package's model module imports its plotting helper (matplotlib.pyplot: about a second
    of start-up, measured in ``benchmarks/bench_startup.py``) for training-time pictures only.
    A stand-in is registered under its name, unless the real one is already imported."""
    if PLOTTING_MODULE in sys.modules:
        return
    stand_in = types.ModuleType(PLOTTING_MODULE, "autolabel-gui's stand-in: it never draws with the package")

    class COCOVisualizer:
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            raise RuntimeError(f"{PLOTTING_MODULE} is not loaded by autolabel-gui")

    stand_in.COCOVisualizer = COCOVisualizer  # type: ignore[attr-defined]
    sys.modules[PLOTTING_MODULE] = stand_in


_skip_plotting_import()

DEFAULT_IMAGE_SIZE = 800
DEFAULT_MAX_SIZE = 1333
_MEAN = [0.485, 0.456, 0.406]
_STD = [0.229, 0.224, 0.225]


def _resize_options(extra: dict[str, str], cfg) -> tuple[int, int]:
    """Shorter-side size and longer-side cap of the model input.

    ``DetectorConfig.extra`` (image_size, max_size) wins, then the same keys in the model's config
    file (so a model trained or distilled for another resolution carries it), then 800/1333;
    each within ``image_input.INPUT_SIDES``.
    """
    try:
        return resize_options(extra, cfg.get("image_size", DEFAULT_IMAGE_SIZE), cfg.get("max_size", DEFAULT_MAX_SIZE))
    except ValueError as exc:
        raise DetectorUnavailable(str(exc)) from exc


def _find_weights(flag: str | None) -> Path:
    from autolabel_gui.detection.weights import find_weights, missing_weights_message

    path = find_weights(flag)
    if path is None or not path.is_file():
        raise MissingModelFiles(missing_weights_message(flag))
    return path


def _text_encoder_hint(text_encoder: str) -> str:
    return (
        f"The text encoder {text_encoder!r} could not be loaded. It must be the name "
        f"{DEFAULT_TEXT_ENCODER!r} with Hugging Face reachable (it is downloaded once into the "
        f"Hugging Face cache; a folder of that name in the working directory is not used), or a "
        f"local folder holding a copy of it (config.json, the weights and vocab.txt), given with "
        f"--text-encoder DIR."
    )


def _config_file(config: DetectorConfig) -> Path:
    config_path = model_config_path(config)
    if config_path is None or not config_path.exists():
        raise DetectorUnavailable(f"{config_path or PACKAGE_CONFIG}: Grounding DINO config not found (--config)")
    return config_path


def _load_config(config_path: Path, text_encoder: str | None):
    from groundingdino.util.slconfig import SLConfig

    try:
        text = read_config_text(config_path)
        cfg = SLConfig(config_literals(text, config_path), cfg_text=text, filename=str(config_path))
    except (OSError, UnicodeDecodeError) as exc:
        raise DetectorUnavailable(f"{config_path}: cannot read Grounding DINO config: {exc}") from exc
    except (ConfigRefused, KeyError) as exc:  # KeyError: a key SLConfig reserves
        raise DetectorUnavailable(f"cannot use Grounding DINO config: {exc}") from exc
    if text_encoder:
        cfg.text_encoder_type = text_encoder
    cfg.text_encoder_type = str(cfg.get("text_encoder_type", DEFAULT_TEXT_ENCODER))
    # Gradient checkpointing is a training memory option; at inference it only costs time.
    cfg.use_checkpoint = False
    cfg.use_transformer_ckpt = False
    return cfg


def _text_encoder_folder(name: str) -> Path:
    """The text encoder's folder (``text_encoder``: a name only from the Hugging Face cache, its
    own code refused), its tokenizer loaded once to fail early and clearly, before the model is
    built: the package loads it again by the folder's absolute path, which no working directory changes."""
    if is_name(name) and name != DEFAULT_TEXT_ENCODER:
        raise DetectorUnavailable(f"{name}: text encoder folder not found. " + _text_encoder_hint(name))
    try:
        folder = text_encoder_folder(name)
        with contextlib.redirect_stdout(io.StringIO()):
            load_tokenizer(folder)
    except DetectorUnavailable as exc:
        if CUSTOM_CODE_REFUSED in str(exc):
            raise
        raise type(exc)(f"{exc}. " + _text_encoder_hint(name)) from exc  # missing files stay MissingModelFiles
    except Exception as exc:  # transformers raises OSError, ValueError, TypeError here
        raise DetectorUnavailable(_text_encoder_hint(name) + f"\n({exc})") from exc
    return folder


def _read_state_dict(weights: Path) -> dict[str, torch.Tensor]:
    from groundingdino.util.misc import clean_state_dict

    redo = "Download it again with:  autolabel-gui weights download  (or pass --weights PATH)."
    try:
        # into memory, never mmap=True: a file changed in place would kill the window (lean_load)
        checkpoint = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, an HTML error page saved as .pth, pickled objects...
        raise DetectorUnavailable(f"{weights}: not a readable PyTorch checkpoint ({exc}). {redo}") from exc
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise DetectorUnavailable(f"{weights}: holds no model weights (expected {{'model': state_dict}}). {redo}")
    empty = lean_load.not_tensors(state)
    if empty:
        raise DetectorUnavailable(f"{weights}: not a checkpoint: {len(empty)} entries hold no weight values "
                                  f"(e.g. {', '.join(map(str, empty[:3]))}: not tensors, or meta tensors). {redo}")
    return clean_state_dict(state)


def _build(cfg, config_path: Path, lean: bool) -> torch.nn.Module:
    from groundingdino.models import build_model

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints while building
            with lean_load.parameters_on_meta() if lean else contextlib.nullcontext():
                return build_model(cfg)
    except (OSError, ValueError) as exc:
        raise DetectorUnavailable(_text_encoder_hint(cfg.text_encoder_type) + f"\n({exc})") from exc
    except Exception as exc:
        raise DetectorUnavailable(f"{config_path}: cannot build a model from this config: {exc}") from exc


def _fill(model: torch.nn.Module, state: dict[str, torch.Tensor], weights: Path, config_path: Path) -> None:
    """The checkpoint's tensors become the model's; DetectorUnavailable when they do not fit it."""
    try:
        result = lean_load.assign(model, state)
    except RuntimeError as exc:
        raise DetectorUnavailable(
            f"{weights}: does not fit the config {config_path} (wrong model size?): {str(exc)[:500]}"
        ) from exc
    # The text encoder's own weights may legitimately come from --text-encoder instead.
    missing = [k for k in result.missing_keys if not k.startswith("bert.")]
    if missing:
        raise DetectorUnavailable(
            f"{weights}: not a Grounding DINO checkpoint for {config_path.name}: "
            f"{len(missing)} weights missing (e.g. {', '.join(missing[:3])})"
        )


def load_model(cfg, weights: Path, config_path: Path, device: str) -> torch.nn.Module:
    """Build the package's model from ``cfg`` and load ``weights`` into it, checking they fit.

    Built lean (``lean_load``: no random initialisation, the checkpoint read once and
    assigned, not copied); a model the checkpoint leaves holes in is built again the plain way.
    """
    cfg.text_encoder_type = str(_text_encoder_folder(cfg.text_encoder_type))
    cfg.device = device
    model = _build(cfg, config_path, lean=True)
    state = _read_state_dict(weights)
    _fill(model, state, weights, config_path)
    if lean_load.leftovers(model):
        model = _build(cfg, config_path, lean=False)
        _fill(model, state, weights, config_path)
    return model.eval().to(device)


@functools.cache
def normalize_table() -> np.ndarray:
    """(3, 256) float32: the package's ``ToTensor`` + ``Normalize`` of every uint8 value, per channel.

    Those transforms are elementwise, so each (channel, value) has exactly one result and looking
    it up is bit-identical to computing it. A lookup needs no torch thread pool: on a decode
    thread, torch's own ops start a second OpenMP team that fights the model's threads for the
    cores (measured: 20 ms per image slower on 2 cores, more than the preparing saved).
    """
    import groundingdino.datasets.transforms as T

    every_value = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # a 1x256 RGB image
    tensor, _ = T.Compose([T.ToTensor(), T.Normalize(_MEAN, _STD)])(Image.fromarray(every_value), None)
    return np.ascontiguousarray(tensor[:, 0, :].numpy())


def preprocess(image: np.ndarray, size: int, max_size: int) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> the normalized tensor the package's own transforms produce.

    Resized by the package's own ``resize`` (PIL) to ``gdino_spec.resized_size``, normalised by
    ``normalize_table``: the same numbers, without torch ops, so it can run beside the model on another thread.
    """
    import groundingdino.datasets.transforms as T

    height, width = image.shape[:2]
    resized, _ = T.resize(Image.fromarray(image), None, resized_size(width, height, size, max_size))
    pixels = np.asarray(resized)
    table = normalize_table()
    out = np.empty((3, *pixels.shape[:2]), np.float32)
    for channel in range(3):
        np.take(table[channel], pixels[..., channel], out=out[channel])
    return torch.from_numpy(out)


@register_backend("grounding_dino")
class GroundingDinoDetector(TorchDetector):
    """Grounding DINO (SwinT-OGC by default) behind the ``Detector`` protocol."""

    _backend = "grounding_dino"

    def __init__(self, config: DetectorConfig) -> None:
        self._config = config
        self._device = resolve_device(config.device)
        self._precision = resolve_precision(config.precision, config.device, self._device)
        weights = _find_weights(config.weights)
        config_path = _config_file(config)
        cfg = _load_config(config_path, config.text_encoder)
        self._resize = _resize_options(config.extra, cfg)
        normalize_table()  # built here, with torch, so that ``prepare`` on other threads never is
        self._model = apply_path(load_model(cfg, weights, config_path, self._device), self._precision)
        fast_sampling.install_for_groundingdino()
        self._model_id = model_id_for(config)
        self._max_tokens = int(self._model.max_text_len)
        self._text_cache: tuple[tuple[object, ...], list[tuple[PromptChunk, dict[str, torch.Tensor]]]] | None = None

    def chunks(self, ontology: Ontology) -> list[PromptChunk]:
        """How the ontology's prompts are split into captions for this model."""
        return build_chunks(
            [c.text for c in ontology], self._model.tokenizer, self._model.specical_tokens, self._max_tokens,
            ontology.group_starts,
        )

    def prepare(self, image: np.ndarray) -> Prepared:
        """The normalised, resized tensor of one image (thread-safe: PIL and torch ops only)."""
        check_image("image", image)
        height, width = image.shape[:2]
        return Prepared(preprocess(image, *self._resize), width, height, (self._backend, self._resize))

    def _arithmetic(self) -> contextlib.AbstractContextManager:
        """The package's sampling: the fused one on the paths that use it (``fast_sampling``)."""
        return fast_sampling.enabled(self._precision in FUSED_SAMPLING)

    def _text(self, ontology: Ontology) -> list[tuple[PromptChunk, dict[str, torch.Tensor]]]:
        """Captions and their text features, kept while the prompts stay the same."""
        key = (*(c.text for c in ontology), ontology.group_starts)
        if self._text_cache is None or self._text_cache[0] != key:
            encoded = []
            for chunk in self.chunks(ontology):
                ids = torch.tensor([chunk.input_ids], dtype=torch.long, device=self._device)
                encoded.append((chunk, gdino_forward.encode_text(self._model, ids)))
            self._text_cache = (key, encoded)
        return self._text_cache[1]

    def _detect_group(
        self, tensors: list[torch.Tensor], text: list[tuple[PromptChunk, dict[str, torch.Tensor]]], floor: float
    ) -> list[Candidates]:
        """One backbone pass for images of one shape, then the text half once per chunk."""
        memory = gdino_forward.encode_images(self._model, [t.to(self._device) for t in tensors])
        out = [Candidates() for _ in tensors]
        for chunk, features in text:
            logits, boxes = gdino_forward.decode(self._model, memory, features)
            add_candidates(out, logits.float().sigmoid().cpu(), boxes.float().cpu(), chunk, floor)
        return out
