"""The accuracy instrument's parts that a wrong figure would hide in: ground truth, AP, the loss.

Training the instrument takes minutes and its AP depends on float summation order across
thread counts, so no test trains it; these check what its figures are computed from: the
generator's boxes are exactly the drawn shapes' pixels, ``coco_ap`` and ``precision_recall``
give hand-computed values, and the set loss matches and rewards what it should.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from autolabel_gui.core.boxes import Box
from benchmarks.instrument import scenes as scenes_module
from benchmarks.instrument.evaluate import coco_ap, precision_recall
from benchmarks.instrument.model import InstrumentSpec, build_model, write_files
from benchmarks.instrument.scenes import CLASSES, SceneSpec, make_scene, make_scenes
from benchmarks.instrument.train import dense_loss, init_prior, input_side, match, save_weights, set_loss
from PIL import Image

FLAT = (7, 7, 7)


def test_scenes_are_the_same_for_the_same_number_and_differ_between_numbers() -> None:
    spec = SceneSpec()
    a, b, c = make_scene(spec, 5), make_scene(spec, 5), make_scene(spec, 6)
    assert a.image.tobytes() == b.image.tobytes() and a.boxes == b.boxes and a.labels == b.labels
    assert a.image.tobytes() != c.image.tobytes()
    assert a.image.shape == (spec.size, spec.size, 3) and a.image.dtype == np.uint8


def test_a_set_has_every_class_several_per_image_and_boxes_inside() -> None:
    spec = SceneSpec()
    made = make_scenes(spec, 0, 40)
    assert {label for s in made for label in s.labels} == set(CLASSES)
    assert max(len(s.boxes) for s in made) >= 3
    for s in made:
        assert len(s.boxes) == len(s.labels) == len(s.colours) >= spec.min_objects
        for x0, y0, x1, y1 in s.boxes:
            assert 0 <= x0 < x1 <= spec.size and 0 <= y0 < y1 <= spec.size
            # a cross's corners reach past its nominal radius; PIL fills both end pixels
            assert spec.min_side * 0.5 <= max(x1 - x0, y1 - y0) <= spec.max_side * 1.07 + 2


def test_each_box_is_exactly_the_bounding_box_of_its_shapes_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a flat background without clutter, a shape's pixels are those of its fill colour."""
    monkeypatch.setattr(scenes_module, "_background", lambda rng, size: Image.new("RGB", (size, size), FLAT))
    monkeypatch.setattr(scenes_module, "_clutter", lambda rng, image, count: None)
    checked = 0
    for seed in range(30):
        scene = make_scene(SceneSpec(), seed)
        for i, (box, colour) in enumerate(zip(scene.boxes, scene.colours)):
            shared = colour == FLAT or scene.colours.count(colour) > 1
            overlapped = any(_touch(box, other) for j, other in enumerate(scene.boxes) if j != i)
            if shared or overlapped:
                continue
            ys, xs = np.nonzero(np.all(scene.image == np.array(colour, np.uint8), axis=-1))
            assert (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) == box
            checked += 1
    assert checked >= 30


def _touch(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _scene(boxes, labels):
    return scenes_module.Scene(np.zeros((100, 100, 3), np.uint8), boxes, labels, [(1, 2, 3)] * len(boxes))


def test_coco_ap_of_hand_made_cases() -> None:
    classes = ("circle", "square")
    scene = _scene([(10, 10, 30, 30)], ["circle"])
    exact = [Box(10, 10, 30, 30, "circle", 0.9)]
    assert coco_ap([scene], [exact], classes) == pytest.approx({"AP": 1.0, "AP50": 1.0})
    assert coco_ap([scene], [[Box(10, 10, 30, 30, "square", 0.9)]], classes) == {"AP": 0.0, "AP50": 0.0}
    # a false positive ranked above the hit: precision 1/2 at full recall, over all 101 recall points
    ranked = [Box(60, 60, 80, 80, "circle", 0.9), Box(10, 10, 30, 30, "circle", 0.8)]
    assert coco_ap([scene], [ranked], classes)["AP50"] == pytest.approx(0.5)
    # IoU 0.64: a hit at thresholds 0.50, 0.55 and 0.60 of the ten, so AP = 3/10 while AP50 = 1
    shifted = [Box(10, 10, 30, 22.8, "circle", 0.9)]
    assert coco_ap([scene], [shifted], classes) == pytest.approx({"AP": 0.3, "AP50": 1.0})


def test_precision_and_recall_at_the_window_threshold() -> None:
    scene = _scene([(10, 10, 30, 30), (50, 50, 90, 90)], ["circle", "square"])
    found = [Box(10, 10, 30, 30, "circle", 0.9), Box(50, 50, 90, 90, "circle", 0.8),
             Box(50, 50, 90, 90, "square", 0.2)]
    assert precision_recall([scene], [found]) == (0.5, 0.5)
    assert precision_recall([scene], [found], threshold=0.1) == (pytest.approx(2 / 3), 1.0)


def test_the_set_loss_matches_each_target_to_its_own_prediction_and_rewards_it() -> None:
    # 3 queries over 4 caption tokens; targets: token 1 at box A, tokens 2-3 at box B
    target_boxes = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4]])
    token_map = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    boxes = torch.tensor([[[0.7, 0.6, 0.3, 0.4], [0.5, 0.5, 0.9, 0.9], [0.3, 0.3, 0.2, 0.2]]])
    logits = torch.full((1, 3, 4), -12.0)
    logits[0, 0, 2:] = 12.0
    logits[0, 2, 1] = 12.0
    queries, targets = match(logits[0], boxes[0], token_map, target_boxes)
    assert dict(zip(queries.tolist(), targets.tolist())) == {0: 1, 2: 0}
    perfect, parts = set_loss(logits, boxes, [(token_map, target_boxes)], num_boxes=2.0)
    assert parts["l1"] == pytest.approx(0.0) and parts["giou"] == pytest.approx(0.0, abs=1e-6)
    assert float(perfect) < 1e-4
    swapped = logits[:, [2, 1, 0]]
    worse, _ = set_loss(swapped, boxes, [(token_map, target_boxes)], num_boxes=2.0)
    assert float(worse) > 1.0


def test_the_dense_encoder_loss_teaches_each_target_to_its_cheapest_tokens_only() -> None:
    target_boxes = torch.tensor([[0.3, 0.3, 0.2, 0.2]])
    token_map = torch.tensor([[0.0, 1.0, 0.0]])
    boxes = torch.rand(1, 20, 4, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    boxes[0, :3] = target_boxes[0]
    valid = torch.ones(1, 20, dtype=torch.bool)
    right = torch.full((1, 20, 3), -12.0)
    right[0, :3, 1] = 12.0
    wrong = torch.full((1, 20, 3), -12.0)
    wrong[0, 10:13, 1] = 12.0
    targets = [(token_map, target_boxes)]
    assert float(dense_loss(right, boxes, valid, targets, k=3)) < 1e-4
    assert float(dense_loss(wrong, boxes, valid, targets, k=3)) > 1.0
    # an invalid token (outside the anchor range) is never a positive nor a negative
    valid[0, :3] = False
    assert float(dense_loss(right, boxes, valid, targets, k=3)) > 1.0


def test_half_the_steps_train_at_a_smaller_side_down_to_the_preview_size() -> None:
    spec = InstrumentSpec()
    sides = [input_side(spec, np.random.default_rng([spec.seed, step])) for step in range(400)]
    assert set(sides) == {64, 80, 96, 112, 128}
    assert 150 <= sides.count(128) <= 250


def test_a_fresh_head_starts_at_the_focal_prior_and_the_product_loads_it(tmp_path) -> None:
    """The prior is folded into parameters the checkpoint already has: the product's detector
    loads it unchanged and scores ~0.01 where the package's bare head scores ~0.5."""
    from autolabel_gui.core.ontology import Ontology

    inst = write_files(tmp_path, InstrumentSpec())
    model = build_model(inst)
    scene = make_scene(inst.spec.scenes, 3)
    ontology = Ontology.from_names(list(inst.classes))

    def scores() -> np.ndarray:
        save_weights(model, inst.weights_path)
        detector = inst.detector(text_threshold=0.0)
        return np.array([b.score for b in detector.detect([scene.image], ontology, 0.0)[0]])

    before = scores()
    init_prior(model, 0.01)
    after = scores()
    assert np.median(before) > 0.2
    assert len(after) > 0 and 0.002 < np.median(after) < 0.05 and after.max() < 0.2
