"""The ``transformers`` backend: the Grounding DINO family (GD, MM-GD, LLMDet) from a Hugging Face folder.

Same semantics as the ``grounding_dino`` backend, through the same pure code: captions built
and split on class boundaries by ``class_scoring.build_chunks``, one class per box from its own
token span, the text threshold and score floor, per-class NMS (``runtime.to_boxes``), and the
same image input (``image_input``), so the same weights give the same boxes in both backends.

One image encoding for all chunks: transformers' forward runs the Swin backbone, the text
encoder and the fusion transformer in one call. The backbone is the only caption-independent
part (the encoder already fuses text into image features), so it runs once per batch and the
forward is called once per chunk with the backbone replaying that result (``_backbone_once``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection import fast_sampling
from autolabel_gui.detection.base import (
    DetectorConfig,
    DetectorUnavailable,
    MissingModelFiles,
    Prepared,
    register_backend,
)
from autolabel_gui.detection.class_scoring import PromptChunk, build_chunks
from autolabel_gui.detection.compute_path import FUSED_SAMPLING
from autolabel_gui.detection.hf_spec import MODEL_CLASSES, input_size, missing, model_folder, read_model_config
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.image_input import check_image, preprocess_array, resize_options
from autolabel_gui.detection.runtime import (
    Candidates,
    TorchDetector,
    add_candidates,
    apply_path,
    resolve_device,
    resolve_precision,
)
from autolabel_gui.detection.text_encoder import load_tokenizer, refuse_custom_code

SPECIAL_TOKENS = ("[CLS]", "[SEP]", ".", "?")
"""The caption separators the model hard-codes (ids 101, 102, 1012, 1029); they name no class."""


def load_model(folder: Path, device: str) -> tuple[torch.nn.Module, Any]:
    """The model class its ``config.json`` names (``MODEL_CLASSES``) and its tokenizer, in eval mode."""
    import transformers

    model_type = read_model_config(folder).get("model_type")
    class_name = MODEL_CLASSES.get(str(model_type))
    if class_name is None:
        raise DetectorUnavailable(f"{folder}: model type {model_type!r} is not one this backend runs")
    refuse_custom_code(folder)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = getattr(transformers, class_name).from_pretrained(folder, trust_remote_code=False)
            tokenizer = load_tokenizer(folder)
    except Exception as exc:  # OSError, ValueError, safetensors errors...: "cannot use this folder"
        raise DetectorUnavailable(f"{folder}: cannot load {class_name} from this folder: {str(exc)[:500]}") from exc
    return model.eval().to(device), tokenizer


@contextlib.contextmanager
def _backbone_once(model: torch.nn.Module, pixel_values: torch.Tensor, pixel_mask: torch.Tensor) -> Iterator[None]:
    """Run the vision backbone now; inside, every forward of ``model`` reuses its output.

    The model's forward extends the position-embedding list it gets, so each call gets fresh lists.
    """
    backbone = model.model.backbone
    features, positions = backbone(pixel_values, pixel_mask)
    backbone.forward = lambda *_args, **_kwargs: (list(features), list(positions))
    try:
        yield
    finally:
        del backbone.forward


@register_backend("transformers")
class HfGroundingDinoDetector(TorchDetector):
    """A transformers Grounding DINO-family model behind the ``Detector`` protocol."""

    _backend = "transformers"

    def __init__(self, config: DetectorConfig) -> None:
        self._config = config
        self._device = resolve_device(config.device)
        self._precision = resolve_precision(config.precision, config.device, self._device)
        problem = missing(config)
        folder = model_folder(config)
        if problem is not None or folder is None:
            raise MissingModelFiles(problem or f"{config.weights}: model folder not found")
        try:
            self._resize = resize_options(config.extra, *input_size(folder))
        except ValueError as exc:
            raise DetectorUnavailable(str(exc)) from exc
        model, self._tokenizer = load_model(folder, self._device)
        if self._precision in FUSED_SAMPLING:
            fast_sampling.install_for_transformers(model)
        self._model = apply_path(model, self._precision)
        self._model_id = model_id_for(config)
        self._max_tokens = int(self._model.config.max_text_len)
        self._special_ids = self._tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))

    def chunks(self, ontology: Ontology) -> list[PromptChunk]:
        """How the ontology's prompts are split into captions for this model."""
        return build_chunks([c.text for c in ontology], self._tokenizer, self._special_ids, self._max_tokens,
                            ontology.group_starts)

    def prepare(self, image: np.ndarray) -> Prepared:
        """The normalised, resized tensor of one image (thread-safe: numpy and PIL only)."""
        check_image("image", image)
        height, width = image.shape[:2]
        data = torch.from_numpy(preprocess_array(image, *self._resize))
        return Prepared(data, width, height, (self._backend, self._resize))

    def _text(self, ontology: Ontology) -> list[PromptChunk]:
        return self.chunks(ontology)

    def _detect_group(self, tensors: list[torch.Tensor], text: list[PromptChunk], floor: float) -> list[Candidates]:
        """One backbone pass for the batch, then the text-dependent rest once per chunk."""
        pixel_values, pixel_mask = pad_batch(tensors, self._device)
        out = [Candidates() for _ in tensors]
        with _backbone_once(self._model, pixel_values, pixel_mask):
            for chunk in text:
                ids = torch.tensor([chunk.input_ids], dtype=torch.long, device=self._device).expand(len(tensors), -1)
                result = self._model(pixel_values=pixel_values, input_ids=ids, pixel_mask=pixel_mask)
                add_candidates(out, result.logits.float().sigmoid().cpu(), result.pred_boxes.float().cpu(), chunk,
                               floor)
        return out


def pad_batch(tensors: list[torch.Tensor], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) zero-padded at the bottom and right to the largest image, and its (B, H, W) pixel mask."""
    height = max(t.shape[1] for t in tensors)
    width = max(t.shape[2] for t in tensors)
    pixel_values = torch.zeros((len(tensors), 3, height, width), dtype=torch.float32)
    pixel_mask = torch.zeros((len(tensors), height, width), dtype=torch.long)
    for b, t in enumerate(tensors):
        pixel_values[b, :, : t.shape[1], : t.shape[2]] = t
        pixel_mask[b, : t.shape[1], : t.shape[2]] = 1
    return pixel_values.to(device), pixel_mask.to(device)
