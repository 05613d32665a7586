"""A promptable segmenter (SAM, SAM-HQ, SAM 2, EdgeTAM through transformers) that fits boxes.

Split the way the model card splits it, so the costly half runs once per image: ``embed`` runs
the image encoder (seconds on a CPU), ``fit`` runs the prompt encoder and mask decoder for
boxes on that embedding (milliseconds), upscales each low-resolution mask to the image with
the processor's own ``post_process_masks`` and takes its tight box (``core.mask_box``), one
mask at a time. The model folder is loaded without its own code (``trust_remote_code``
is False and a folder asking for code is refused).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autolabel_gui.core.mask_box import box_of_mask
from autolabel_gui.detection.base import MODEL_BUILDING, DetectorUnavailable, MissingModelFiles
from autolabel_gui.detection.image_input import check_image
from autolabel_gui.detection.segmenter_spec import Family, family_of, missing, segmenter_folder, segmenter_id
from autolabel_gui.detection.text_encoder import refuse_custom_code

XYXY = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Embedding:
    """One image's encoder output, the processor's sizes of it, and the image (SAM's processor
    wants it again to scale box prompts)."""

    image: np.ndarray
    args: dict[str, Any]
    sizes: dict[str, Any]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        return int(self.image.shape[1]), int(self.image.shape[0])


class Segmenter:
    """A loaded segmenter; ``embed`` and ``fit`` are called from one worker thread at a time."""

    def __init__(self, model: torch.nn.Module, processor: Any, family: Family, model_id: str) -> None:
        self.model = model.eval()
        self.processor = processor
        self.family = family
        self.model_id = model_id

    @classmethod
    def load(cls, value: str | None, device: str = "cpu") -> Segmenter:
        """The segmenter ``value`` names (None: the default); MissingModelFiles says how to get it.
        Built under ``MODEL_BUILDING``: the detector's thread may be building its model meanwhile."""
        with MODEL_BUILDING:
            return cls._load(value, device)

    @classmethod
    def _load(cls, value: str | None, device: str) -> Segmenter:
        import transformers

        problem = missing(value)
        folder = segmenter_folder(value)
        if problem is not None or folder is None:
            raise MissingModelFiles(problem or f"{value}: no segmenter folder")
        family = family_of(folder)
        refuse_custom_code(folder)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                model = getattr(transformers, family.model).from_pretrained(folder, trust_remote_code=False)
                processor = getattr(transformers, family.processor).from_pretrained(folder, trust_remote_code=False)
        except Exception as exc:  # OSError, ValueError, safetensors errors: "cannot use this folder"
            raise DetectorUnavailable(
                f"{folder}: cannot load {family.model} from this folder: {str(exc)[:500]}") from exc
        return cls(model.to(device), processor, family, segmenter_id(value))

    @classmethod
    def from_folder(cls, folder: Path) -> Segmenter:
        """The segmenter in a folder the caller chose (benchmarks, tests)."""
        return cls.load(str(Path(folder).absolute()))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def embed(self, image: np.ndarray) -> Embedding:
        """The image encoder's output for an RGB uint8 image (H, W, 3): the costly half."""
        check_image("image", image)
        inputs = self.processor(images=image, return_tensors="pt")
        out = self.model.get_image_embeddings(inputs["pixel_values"].to(self.device))
        values = out if isinstance(out, tuple) else (out,)
        sizes = {name: inputs[name] for name in self.family.post_process_args}
        return Embedding(image, dict(zip(self.family.embedding_args, values, strict=True)), sizes)

    def _prompts(self, embedding: Embedding, boxes: Sequence[XYXY]) -> dict[str, Any]:
        """The processor's box prompts (and sizes) for ``boxes`` in image coordinates."""
        nested = [[[float(v) for v in b] for b in boxes]]
        if self.family.prompt_from_sizes:
            inputs = self.processor(input_boxes=nested, original_sizes=embedding.sizes["original_sizes"],
                                    return_tensors="pt")
            return {**embedding.sizes, "input_boxes": inputs["input_boxes"]}
        inputs = self.processor(images=embedding.image, input_boxes=nested, return_tensors="pt")
        return {name: inputs[name] for name in (*self.family.post_process_args, "input_boxes")}

    @torch.inference_mode()
    def fit(self, embedding: Embedding, boxes: Sequence[XYXY]) -> list[tuple[int, int, int, int] | None]:
        """The tight box of each box prompt's object (image coordinates); None where the mask is empty.

        The decoder runs once for every box (its masks are low-resolution); each mask is then
        upscaled by the processor's ``post_process_masks``, as the model card does, and reduced
        to its box before the next: the full-size float masks of all boxes at once were
        boxes x pixels x 4 bytes (32 boxes on a 6 Mpx photo took 947 MiB).
        """
        if not boxes:
            return []
        inputs = self._prompts(embedding, boxes)
        out = self.model(**embedding.args, input_boxes=inputs["input_boxes"].to(self.device), multimask_output=False)
        post = [inputs[name] for name in self.family.post_process_args]
        low = out.pred_masks.cpu()  # (1, N, 1, h, w)
        return [box_of_mask(self.processor.post_process_masks(low[:, i:i + 1], *post)[0][0, 0].numpy().astype(
            bool, copy=False)) for i in range(low.shape[1])]
