"""Turn Grounding DINO's per-token scores into one class from the user's list per box.

Grounding DINO scores every box against every token of its caption. The package's tutorial
decodes the tokens above a threshold back into a phrase and string-matches it against the class
names, which fails (a ``None`` class) whenever the phrase is empty, merged or re-spelled. Here
each class's token span is recorded when the caption is built, so a box's score for a class is
simply the best of its token scores over that class's own span (docs/decisions/0004).

Pure functions on tensors and a tokenizer: testable without the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.ops import batched_nms

log = logging.getLogger(__name__)

NMS_IOU = 0.5


@dataclass(frozen=True, slots=True)
class PromptChunk:
    """One caption the model reads in one pass, and where each of its classes sits in it.

    ``class_ids[k]`` is the ontology index of the k-th class in this caption and ``spans[k]``
    the caption token positions of its prompt, separators and special tokens excluded.
    """

    caption: str
    input_ids: tuple[int, ...]
    class_ids: tuple[int, ...]
    spans: tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class ClassAssignment:
    """The boxes (query indices) that get a class, which class (ontology index), and its score."""

    queries: torch.Tensor
    class_ids: torch.Tensor
    scores: torch.Tensor


def normalize_prompt(text: str) -> str:
    """Lower-case like the package's ``preprocess_caption``; a trailing '.' would only add a separator."""
    return " ".join(text.lower().split()).rstrip(" .")


def build_chunks(
    texts: Sequence[str], tokenizer: Any, special_ids: Sequence[int], max_tokens: int = 256,
    group_starts: Sequence[int] = (),
) -> list[PromptChunk]:
    """Pack class prompts, in order, into captions of at most ``max_tokens`` tokens.

    Chunks break only between classes, so every class is read whole with its neighbours, and
    always at ``group_starts`` (``Ontology.group_starts``), so a prompt group is read the same
    whether or not other groups are detected with it. A single prompt longer than the limit gets
    a chunk of its own and is cut at the limit (as the model itself would cut it), with a warning.
    """
    starts = set(group_starts)
    prompts = [normalize_prompt(t) for t in texts]
    budget = max_tokens - 2  # [CLS] and [SEP]
    groups: list[list[int]] = []
    used = budget + 1
    for idx, prompt in enumerate(prompts):
        cost = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + 1  # + " ."
        if cost > budget:
            log.warning("prompt of class #%d is %d tokens long; cut at %d", idx, cost - 1, max_tokens)
        if used + cost > budget or idx in starts:
            groups.append([])
            used = 0
        groups[-1].append(idx)
        used += cost
    return [_chunk(prompts, group, tokenizer, set(special_ids), max_tokens) for group in groups]


def _chunk(
    prompts: list[str], group: list[int], tokenizer: Any, special_ids: set[int], max_tokens: int
) -> PromptChunk:
    caption = ""
    char_spans: list[tuple[int, int]] = []
    for idx in group:
        if caption:
            caption += " "
        start = len(caption)
        caption += prompts[idx]
        char_spans.append((start, len(caption)))
        caption += " ."
    enc = tokenizer(caption, return_offsets_mapping=True, truncation=True, max_length=max_tokens)
    ids = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    spans = tuple(
        tuple(
            t
            for t, (s, e) in enumerate(offsets)
            if e > s and s >= a and e <= b and ids[t] not in special_ids
        )
        for a, b in char_spans
    )
    return PromptChunk(caption, tuple(ids), tuple(group), spans)


def class_scores(probs: torch.Tensor, spans: Sequence[Sequence[int]]) -> torch.Tensor:
    """(queries, tokens) token probabilities -> (queries, classes): the best token of each span.

    A class with an empty span (its prompt had no usable token) scores -inf, so it is never chosen.
    """
    out = torch.full((probs.shape[0], len(spans)), float("-inf"), dtype=probs.dtype, device=probs.device)
    for c, span in enumerate(spans):
        if span:
            out[:, c] = probs[:, list(span)].amax(dim=1)
    return out


def assign_classes(
    probs: torch.Tensor,
    spans: Sequence[Sequence[int]],
    class_ids: Sequence[int],
    box_threshold: float,
    text_threshold: float,
) -> ClassAssignment:
    """Give each box the class whose span scores highest; keep it if it clears both thresholds.

    ``box_threshold`` applies to the box's best class token (the package's "box score", minus
    the separator tokens, which name no class); ``text_threshold`` to the chosen class's score.
    With the span maximum as class score both compare the same number; they stay separate
    because the detector applies ``text_threshold`` itself and leaves ``box_threshold`` to read
    time. Ties go to the class listed first.
    """
    empty = ClassAssignment(
        torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=probs.dtype)
    )
    if not spans or probs.shape[0] == 0:
        return empty
    scores = class_scores(probs, spans)
    best_class = torch.argmax(scores, dim=1)
    best = scores.gather(1, best_class[:, None])[:, 0]
    keep = (best >= box_threshold) & (best >= text_threshold)
    queries = torch.nonzero(keep, as_tuple=True)[0]
    ontology_ids = torch.as_tensor(list(class_ids), dtype=torch.long)[best_class[queries].cpu()]
    return ClassAssignment(queries.cpu(), ontology_ids, best[queries].cpu())


def merge_duplicates(
    boxes_xyxy: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor, iou_threshold: float = NMS_IOU
) -> torch.Tensor:
    """Indices of the boxes kept by per-class NMS, highest score first.

    Several queries (and several prompt chunks) often find the same object; two boxes of
    different classes are both kept, since choosing between them is the annotator's call.
    """
    if boxes_xyxy.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    return batched_nms(boxes_xyxy.float(), scores.float(), class_ids, iou_threshold)
