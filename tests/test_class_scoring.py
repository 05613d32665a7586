"""Class scoring on hand-made token scores, and caption chunking with a real (tiny) tokenizer."""

from __future__ import annotations

import math

import pytest
import torch
from autolabel_gui.detection.class_scoring import (
    assign_classes,
    build_chunks,
    class_scores,
    merge_duplicates,
)
from transformers import AutoTokenizer

SPECIAL = (101, 102, 1012)


def _probs(rows: list[dict[int, float]], tokens: int = 8) -> torch.Tensor:
    out = torch.full((len(rows), tokens), 0.01)
    for q, row in enumerate(rows):
        for t, v in row.items():
            out[q, t] = v
    return out


# token layout: 0 [CLS], 1 "person", 2 ".", 3 "red", 4 "car", 5 ".", 6 [SEP], 7 padding
SPANS = [(1,), (3, 4), ()]
CLASS_IDS = [5, 7, 9]


def test_class_score_is_the_best_token_of_the_span_and_empty_spans_never_score() -> None:
    probs = _probs([{1: 0.9, 3: 0.3, 4: 0.5}, {1: 0.2, 3: 0.1, 4: 0.8}])
    scores = class_scores(probs, SPANS)
    assert scores[:, :2].flatten().tolist() == pytest.approx([0.9, 0.5, 0.2, 0.8])
    assert all(math.isinf(v) and v < 0 for v in scores[:, 2].tolist())


def test_assign_classes_exact_ids_scores_ties_and_thresholds() -> None:
    probs = _probs(
        [
            {1: 0.9, 3: 0.3, 4: 0.5},  # person
            {1: 0.2, 3: 0.1, 4: 0.8},  # "red car" through its second word
            {1: 0.6, 3: 0.6},  # tie: the class listed first wins
            {2: 0.99, 5: 0.99, 0: 0.99, 1: 0.2},  # only separators are high: below thresholds
            {1: 0.3, 4: 0.29},  # clears box 0.25 but not text 0.3 when that is set higher
        ]
    )
    got = assign_classes(probs, SPANS, CLASS_IDS, box_threshold=0.25, text_threshold=0.25)
    assert got.queries.tolist() == [0, 1, 2, 4]
    assert got.class_ids.tolist() == [5, 7, 5, 5]
    assert got.scores.tolist() == pytest.approx([0.9, 0.8, 0.6, 0.3])

    stricter_text = assign_classes(probs, SPANS, CLASS_IDS, box_threshold=0.25, text_threshold=0.35)
    assert stricter_text.queries.tolist() == [0, 1, 2]
    stricter_box = assign_classes(probs, SPANS, CLASS_IDS, box_threshold=0.7, text_threshold=0.25)
    assert stricter_box.queries.tolist() == [0, 1]
    assert stricter_box.class_ids.tolist() == [5, 7]


def test_assign_classes_with_nothing_to_assign() -> None:
    probs = _probs([{1: 0.9}])
    assert assign_classes(probs, [(), ()], [0, 1], 0.1, 0.1).queries.numel() == 0
    assert assign_classes(probs[:0], SPANS, CLASS_IDS, 0.1, 0.1).queries.numel() == 0
    assert assign_classes(probs, [], [], 0.1, 0.1).class_ids.numel() == 0


def test_merge_duplicates_is_per_class_and_sorted_by_score() -> None:
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float32
    )
    scores = torch.tensor([0.5, 0.7, 0.6, 0.9])
    classes = torch.tensor([0, 0, 1, 0])
    assert merge_duplicates(boxes, scores, classes).tolist() == [3, 1, 2]


@pytest.fixture(scope="module")
def tokenizer(tiny_text_encoder):
    return AutoTokenizer.from_pretrained(str(tiny_text_encoder))


def _span_text(tokenizer, chunk, k: int) -> str:
    return tokenizer.decode([chunk.input_ids[t] for t in chunk.spans[k]])


def test_chunk_spans_cover_each_prompt_and_skip_separators(tokenizer) -> None:
    chunks = build_chunks(["Person", "traffic light", "car . truck . bus", "qwxz", "."], tokenizer, SPECIAL)
    assert len(chunks) == 1
    chunk = chunks[0]
    assert chunk.caption == "person . traffic light . car . truck . bus . qwxz .  ."
    assert chunk.input_ids[0] == 101 and chunk.input_ids[-1] == 102
    assert chunk.class_ids == (0, 1, 2, 3, 4)
    assert _span_text(tokenizer, chunk, 0) == "person"
    assert _span_text(tokenizer, chunk, 1) == "traffic light"
    assert _span_text(tokenizer, chunk, 2) == "car truck bus"
    assert _span_text(tokenizer, chunk, 3) == "qwxz"
    assert len(chunk.spans[3]) == 4  # not in the vocab: q ##w ##x ##z, all in the span
    assert chunk.spans[4] == ()


def test_long_prompt_lists_are_split_on_class_boundaries(tokenizer) -> None:
    texts = [f"class{i} red big car" for i in range(100)]  # 5 tokens each with the separator
    chunks = build_chunks(texts, tokenizer, SPECIAL, max_tokens=256)
    assert len(chunks) == 2
    assert [c for chunk in chunks for c in chunk.class_ids] == list(range(100))
    for chunk in chunks:
        assert len(chunk.input_ids) <= 256
        assert chunk.input_ids[0] == 101 and chunk.input_ids[-1] == 102
        for k, cls in enumerate(chunk.class_ids):
            assert _span_text(tokenizer, chunk, k) == texts[cls]
    assert len(chunks[0].class_ids) == 50  # 2 + 50 * 5 = 252 <= 256 < 257


def test_a_prompt_longer_than_the_limit_is_cut_in_a_chunk_of_its_own(tokenizer) -> None:
    long_prompt = " ".join(["car"] * 300)
    chunks = build_chunks(["dog", long_prompt, "cat"], tokenizer, SPECIAL, max_tokens=256)
    assert [c.class_ids for c in chunks] == [(0,), (1,), (2,)]
    assert len(chunks[1].input_ids) == 256
    assert len(chunks[1].spans[0]) == 254
    assert _span_text(tokenizer, chunks[2], 0) == "cat"
