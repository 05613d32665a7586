"""``GroundingDINO.forward`` split in two halves: the image half once, the text half per caption.

The package's forward runs the Swin backbone, the text encoder and the transformer in one call
for one caption. With many classes the prompt is split into several captions; re-running the
backbone for each would multiply the cost of the most expensive part. The same steps, in the
same order and with the same modules (so outputs match the package's to float precision),
are here separated: ``encode_images`` (backbone + input projections, caption-independent) and
``decode`` (text encoder, transformer, heads) which may run any number of times on its result.
Only the final decoder layer's heads are computed, since only they are used at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from groundingdino.util.misc import NestedTensor, inverse_sigmoid, nested_tensor_from_tensor_list
from torch import nn


@dataclass(frozen=True, slots=True)
class ImageMemory:
    """Multi-scale image features of one batch, ready for the transformer."""

    srcs: list[torch.Tensor]
    masks: list[torch.Tensor]
    poss: list[torch.Tensor]

    @property
    def batch_size(self) -> int:
        return self.srcs[0].shape[0]


def encode_images(model: nn.Module, images: list[torch.Tensor]) -> ImageMemory:
    """Backbone and input projections for a batch of normalized (3, H, W) tensors."""
    samples = nested_tensor_from_tensor_list(images)
    features, poss = model.backbone(samples)
    poss = list(poss)
    srcs: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []
    for level, feat in enumerate(features):
        src, mask = feat.decompose()
        srcs.append(model.input_proj[level](src))
        masks.append(mask)
    for level in range(len(features), model.num_feature_levels):
        source = features[-1].tensors if level == len(features) else srcs[-1]
        src = model.input_proj[level](source)
        mask = F.interpolate(samples.mask[None].float(), size=src.shape[-2:]).to(torch.bool)[0]
        poss.append(model.backbone[1](NestedTensor(src, mask)).to(src.dtype))
        srcs.append(src)
        masks.append(mask)
    return ImageMemory(srcs, masks, poss)


def encode_text(model: nn.Module, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Text features of one tokenized caption (1, T), with the sub-sentence masks the model expects."""
    # imported here: the package's model modules load once the backend has set them up (``grounding_dino``)
    from groundingdino.models.GroundingDINO.bertwarper import generate_masks_with_special_tokens_and_transfer_map

    tokenized = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "token_type_ids": torch.zeros_like(input_ids),
    }
    self_attention, position_ids, _ = generate_masks_with_special_tokens_and_transfer_map(
        tokenized, model.specical_tokens, model.tokenizer
    )
    if model.sub_sentence_present:
        bert_out = model.bert(
            input_ids=input_ids,
            attention_mask=self_attention,
            token_type_ids=tokenized["token_type_ids"],
            position_ids=position_ids,
        )
    else:
        bert_out = model.bert(**tokenized)
    return {
        "encoded_text": model.feat_map(bert_out["last_hidden_state"]),
        "text_token_mask": tokenized["attention_mask"].bool(),
        "position_ids": position_ids,
        "text_self_attention_masks": self_attention,
    }


def decode(
    model: nn.Module, memory: ImageMemory, text: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Transformer and heads for one caption over a batch: (logits (B, Q, 256), boxes (B, Q, 4) cxcywh)."""
    batch = memory.batch_size
    text_dict = {k: v.expand(batch, *v.shape[1:]).contiguous() for k, v in text.items()}
    hs, reference, _, _, _ = model.transformer(
        memory.srcs, memory.masks, None, memory.poss, None, None, text_dict
    )
    last = hs[-1]
    boxes = (model.bbox_embed[-1](last) + inverse_sigmoid(reference[-2])).sigmoid()
    logits = model.class_embed[-1](last, text_dict)
    return logits, boxes
