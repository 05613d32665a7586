"""The backend contract: what every catalogue backend's ``Detector`` does, on its tiny random model.

Each test takes ``backend``: one entry of ``tests/fixtures/backends.TINY_BACKENDS`` with its tiny
model built and one detector loaded from it by the catalogue (``create_detector``), shared by the
tests of this module. The real code paths run: the backend's own preparing, forward and box
decoding, or, for the ``server`` backend, its client, the wire format and a served tiny model.
What is checked is what ``detection/base.py`` promises and the rest of the program relies on: per
image, PROPOSED boxes in its pixels with scores and labels as asked, best first; a batch giving
each image its own boxes; prompt groups independent; ids that change exactly when proposals can;
input it cannot take refused with the image's index. Tests that take ``local`` check what a model
running in this process also does (prepared input, one image pass per input shape and chunks, its
own thresholds and precision). What only one backend has (the package's own forward, padding
masks, checkpoint errors, the wire) stays in its own test file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from autolabel_gui.core.boxes import Box, BoxState
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.images import load_image
from autolabel_gui.core.ontology import ClassSpec, Ontology
from autolabel_gui.detection.base import DetectorConfig, DetectorUnavailable, Prepared
from autolabel_gui.detection.catalogue import BACKENDS, create_detector, spec_for
from autolabel_gui.detection.ids import SCORE_FLOOR, model_id_for, run_id_for
from autolabel_gui.detection.pipeline import DetectionPipeline
from autolabel_gui.detection.run_plan import RunPlan
from PIL import Image

from tests.fixtures.backends import TINY_BACKENDS, TinyBackend, TinyModel, scene
from tests.fixtures.images import SAMPLES_DIR
from tests.fixtures.pipeline import SimpleFolder

pytestmark = pytest.mark.model

ONTOLOGY = Ontology.from_names(["person", "dog", "vehicle"], {"vehicle": "car . truck . bus"})
FLOOR = 0.3


@dataclass(frozen=True)
class LoadedBackend:
    """A table entry, its tiny model and the detector the catalogue built from it."""

    entry: TinyBackend
    tiny: TinyModel
    detector: Any

    def config(self, **overrides: Any) -> DetectorConfig:
        return self.tiny.detector_config(**overrides)

    def create(self, **overrides: Any) -> Any:
        """Another detector of this backend, built from the tiny model's config with ``overrides``."""
        return create_detector(self.config(**overrides))


@pytest.fixture(scope="module", params=TINY_BACKENDS, ids=[b.id for b in TINY_BACKENDS])
def backend(request: pytest.FixtureRequest) -> LoadedBackend:
    entry: TinyBackend = request.param
    tiny: TinyModel = request.getfixturevalue(entry.fixture)
    return LoadedBackend(entry, tiny, create_detector(tiny.detector_config()))


@pytest.fixture
def local(backend: LoadedBackend) -> LoadedBackend:
    """``backend`` when its model runs in this process."""
    if backend.entry.parts is None:
        pytest.skip("the model runs in a proposal server: its input, passes and settings are the server's")
    return backend


def _assert_valid(boxes: list[Box], image: np.ndarray, ontology: Ontology, floor: float) -> None:
    """Proposals in the image's pixels, with the ontology's labels, at or above ``floor``, best first."""
    height, width = image.shape[:2]
    for b in boxes:
        assert 0 <= b.x0 < b.x1 <= width and 0 <= b.y0 < b.y1 <= height
        assert b.label in ontology.names
        assert floor <= b.score <= 1.0
        assert b.state is BoxState.PROPOSED
    scores = [b.score for b in boxes]
    assert scores == sorted(scores, reverse=True)


def _assert_same(a: list[Box], b: list[Box], px: float = 1e-3, score: float = 1e-5) -> None:
    assert [x.label for x in a] == [x.label for x in b]
    for x, y in zip(a, b):
        assert x.score == pytest.approx(y.score, abs=score)
        assert np.allclose(x.xyxy, y.xyxy, atol=px)


@contextmanager
def _counting(module: Any, calls: list[int | None]) -> Iterator[None]:
    """Append one item per forward of ``module`` to ``calls``: the batch size of its first argument
    (a tensor, or the package's NestedTensor), None when that argument has none."""

    def record(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], _out: Any) -> None:
        first = args[0] if args else next(iter(kwargs.values()), None)
        first = getattr(first, "tensors", first)
        calls.append(first.shape[0] if hasattr(first, "shape") else None)

    hook = module.register_forward_hook(record, with_kwargs=True)
    try:
        yield
    finally:
        hook.remove()


def test_every_catalogue_backend_runs_this_suite() -> None:
    """A backend added to the catalogue without a tiny model in tests/fixtures/backends.py fails here."""
    assert {b.backend for b in TINY_BACKENDS} == set(BACKENDS)
    assert len({b.id for b in TINY_BACKENDS}) == len(TINY_BACKENDS)


# -- building and identity ----------------------------------------------------------------------

def test_the_spec_finds_the_tiny_model_and_says_what_is_missing(backend, tmp_path: Path) -> None:
    spec = spec_for(backend.entry.backend)
    assert spec.missing(backend.config()) is None
    gone = backend.tiny.missing_config(tmp_path)
    message = spec.missing(gone)
    assert message
    with pytest.raises(DetectorUnavailable) as err:
        create_detector(gone)
    assert message in str(err.value)


def test_the_detector_reports_the_model_id_of_its_config_and_a_device(backend) -> None:
    """The id a detector files proposals under is the one the cache computes without it (``ids.py``)."""
    assert backend.detector.model_id == model_id_for(backend.config())
    assert isinstance(backend.detector.device, str) and backend.detector.device


def test_a_local_model_reports_its_backend_device_and_precision(local) -> None:
    detector = local.detector
    assert detector.model_id.startswith(f"{local.entry.backend}:")
    assert detector.device == "cpu" and detector.precision == "fp32"


@pytest.mark.parametrize("overrides, problem", [
    ({"device": "foo"}, "unknown device"), ({"device": "cuda:7"}, "CUDA is not available"),
    ({"precision": "fp16"}, "fp16 needs a GPU"), ({"precision": "fp64"}, "unknown precision"),
])
def test_a_device_or_precision_it_cannot_run_is_refused(local, overrides, problem) -> None:
    if "cuda" in overrides.get("device", ""):
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
    with pytest.raises(DetectorUnavailable, match=problem):
        local.create(**overrides)


def test_the_ids_ignore_device_batch_size_and_box_threshold_and_follow_the_prompts(backend) -> None:
    """A CPU fallback and another batch size share the cache; other prompts never do."""
    config = backend.config()
    model_id, run_id = model_id_for(config), run_id_for(config, ONTOLOGY)
    for same in (replace(config, device="cuda"), replace(config, batch_size=8), replace(config, box_threshold=0.9)):
        assert (model_id_for(same), run_id_for(same, ONTOLOGY)) == (model_id, run_id)
    other_prompts = Ontology.from_names(["person", "dog", "vehicle"], {"vehicle": "car"})
    assert run_id not in {run_id_for(config, other_prompts), run_id_for(config, Ontology.from_names(["person"]))}


def test_every_setting_of_a_local_model_that_changes_proposals_changes_the_ids(local) -> None:
    """Text threshold, precision and each option of the backend's spec (input size...)."""
    config = local.config()
    model_id, run_id = model_id_for(config), run_id_for(config, ONTOLOGY)
    options = spec_for(config.backend).options
    assert options, "a backend with no options would make this test check less"
    changed = [replace(config, text_threshold=0.6), replace(config, precision="fast"),
               *(replace(config, extra={**config.extra, key: "123"}) for key in options)]
    assert len({model_id, *(model_id_for(c) for c in changed)}) == len(changed) + 1
    assert run_id not in {run_id_for(c, ONTOLOGY) for c in changed}


def test_the_fast_path_says_so_and_gives_the_reference_boxes(local) -> None:
    """Tolerances as in test_fast_path.py: float summation order only (measured 2e-7, 6e-5 px)."""
    fast = local.create(precision="fast")
    assert fast.precision == "fast" and fast.model_id != local.detector.model_id
    ontology = Ontology.from_names(["person", "cat", "cup", "vehicle"])
    for path in sorted(SAMPLES_DIR.glob("*.jpg"))[:3]:
        image = load_image(path)
        reference = local.detector.detect([image], ontology, 0.05)[0]
        assert reference, "two empty lists would be equal: the tiny model proposes boxes at this floor"
        _assert_same(reference, fast.detect([image], ontology, 0.05)[0], px=1e-2, score=1e-4)


# -- proposals ------------------------------------------------------------------------------------

def test_a_batch_of_two_sizes_gives_valid_proposals(backend) -> None:
    images = [scene(1, 120, 160), scene(2, 90, 200)]
    result = backend.detector.detect(images, ONTOLOGY, FLOOR)
    assert len(result) == 2
    for image, boxes in zip(images, result):
        assert boxes, "the tiny model proposes boxes at this floor"
        _assert_valid(boxes, image, ONTOLOGY, FLOOR)


def test_the_same_call_twice_gives_the_same_boxes(backend) -> None:
    images = [scene(1, 120, 160), scene(2, 90, 200), scene(3, 120, 160)]
    first = backend.detector.detect(images, ONTOLOGY, FLOOR)
    assert any(first) and backend.detector.detect(images, ONTOLOGY, FLOOR) == first


def test_batched_equals_one_by_one(backend) -> None:
    images = [scene(4, 120, 160), scene(5, 120, 160), scene(6, 160, 100), scene(13, 90, 200)]
    batched = backend.detector.detect(images, ONTOLOGY, FLOOR)
    assert len(batched) == len(images)
    px, score = backend.entry.batch_tolerance
    for image, boxes in zip(images, batched):
        assert boxes, "two empty lists would be equal: the tiny model proposes boxes at this floor"
        _assert_same(boxes, backend.detector.detect([image], ONTOLOGY, FLOOR)[0], px=px, score=score)


def test_images_of_one_input_shape_share_one_image_pass(local) -> None:
    calls: list[int | None] = []
    with _counting(local.entry.parts.image_half(local.detector), calls):
        local.detector.detect([scene(4, 120, 160), scene(5, 120, 160), scene(6, 160, 100)], ONTOLOGY, FLOOR)
    assert sorted(calls) == [1, 2]


def test_the_floor_filters_scores(backend) -> None:
    image = scene(7, 120, 160)
    low = backend.detector.detect([image], ONTOLOGY, 0.0)[0]
    high = backend.detector.detect([image], ONTOLOGY, 0.6)[0]
    assert high and len(high) < len(low)
    assert all(b.score >= 0.6 for b in high)
    assert high == [b for b in low if b.score >= 0.6]


def test_the_text_threshold_filters_scores_like_the_floor(local) -> None:
    image = scene(7, 120, 160)
    high = local.detector.detect([image], ONTOLOGY, 0.6)[0]
    strict = local.create(text_threshold=0.6)
    assert strict.model_id != local.detector.model_id
    _assert_same(strict.detect([image], ONTOLOGY, 0.0)[0], high)


def _sixty_classes() -> Ontology:
    names = [f"class{i}" for i in range(60)]
    return Ontology.from_names(names, {n: f"{n} red big car with a cup" for n in names})


def test_sixty_classes_give_proposals_of_those_classes(backend) -> None:
    ontology = _sixty_classes()
    images = [scene(8, 120, 160), scene(9, 120, 160)]
    result = backend.detector.detect(images, ontology, FLOOR)
    assert {b.label for boxes in result for b in boxes}
    for image, boxes in zip(images, result):
        _assert_valid(boxes, image, ontology, FLOOR)


def test_sixty_classes_run_in_chunks_over_one_image_pass(local) -> None:
    ontology = _sixty_classes()
    chunks = local.detector.chunks(ontology)
    assert len(chunks) >= 2 and all(len(c.input_ids) <= 256 for c in chunks)
    assert sorted(i for c in chunks for i in c.class_ids) == list(range(60))
    image_calls: list[int | None] = []
    text_calls: list[int | None] = []
    with (_counting(local.entry.parts.image_half(local.detector), image_calls),
          _counting(local.entry.parts.text_half(local.detector), text_calls)):
        result = local.detector.detect([scene(8, 120, 160), scene(9, 120, 160)], ontology, FLOOR)
    assert (len(image_calls), len(text_calls)) == (1, len(chunks))
    assert {b.label for boxes in result for b in boxes} <= set(ontology.names)


def _two_groups() -> tuple[tuple[ClassSpec, ...], tuple[ClassSpec, ...]]:
    return (ClassSpec("person"), ClassSpec("dog"), ClassSpec("vehicle", "car . truck . bus")), \
        (ClassSpec("cup"), ClassSpec("cat"))


def test_prompt_groups_are_detected_independently(backend) -> None:
    """Two groups of classes in one call give each group the proposals it gets alone (run_plan.py)."""
    first, second = _two_groups()
    plan = RunPlan.build(backend.config(), [first, second], [c.name for c in first + second])
    together = plan.detection_ontology()
    assert together.group_starts == (3,)
    images = [scene(1, 120, 160), scene(2, 120, 160)]
    both = backend.detector.detect(images, together, SCORE_FLOOR)
    alone = [backend.detector.detect(images, Ontology(group), SCORE_FLOOR) for group in (first, second)]
    assert any(both)
    for i in range(len(images)):
        split = plan.split(both[i], plan.groups)
        assert split == [alone[0][i], alone[1][i]], "a group's proposals do not depend on the other groups"


def test_a_caption_never_holds_two_groups(local) -> None:
    first, second = _two_groups()
    together = RunPlan.build(local.config(), [first, second], [c.name for c in first + second]).detection_ontology()
    assert [c.class_ids for c in local.detector.chunks(together)] == [(0, 1, 2), (3, 4)]


def test_no_images_no_classes_or_no_score_above_the_floor_give_empty_lists(backend) -> None:
    images = [scene(1, 120, 160), scene(2, 90, 200)]
    assert backend.detector.detect([], ONTOLOGY, FLOOR) == []
    assert backend.detector.detect(images, Ontology(()), FLOOR) == [[], []]
    assert backend.detector.detect(images, ONTOLOGY, 1.0) == [[], []]


def test_strips_and_tiny_images_get_boxes_inside_them(backend) -> None:
    """Any non-empty RGB image runs, whatever its aspect, beside common ones, and its boxes stay inside it."""
    shapes = [(1, 1), (2, 3), (1, 300), (300, 1), (1, 4000), (4000, 1), (7, 1000), (1000, 40)]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in shapes] + [scene(1, 120, 160)]
    result = backend.detector.detect(images, ONTOLOGY, SCORE_FLOOR)
    assert len(result) == len(images)
    for image, boxes in zip(images, result):
        _assert_valid(boxes, image, ONTOLOGY, SCORE_FLOOR)
    assert any(result[:len(shapes)]), "no strip got a box: the check above would prove nothing"


@pytest.mark.parametrize("bad", [
    np.zeros((50, 50), np.uint8), np.zeros((50, 50, 1), np.uint8), np.zeros((50, 50, 4), np.uint8),
    np.zeros((50, 50, 3), np.float32), np.zeros((0, 50, 3), np.uint8), "a.jpg",
], ids=["grey", "grey-channel", "rgba", "float", "empty", "path"])
def test_input_other_than_rgb_uint8_is_refused_naming_the_image(backend, bad) -> None:
    """The interface takes RGB uint8 arrays only (``core.images.load_image`` makes them); anything else is
    a ValueError that names the image, never a silent conversion or a model error."""
    with pytest.raises(ValueError, match=r"image #1: (expected an RGB uint8 array|empty image)"):
        backend.detector.detect([scene(1, 50, 50), bad], ONTOLOGY, FLOOR)
    prepare = getattr(backend.detector, "prepare", None)
    if prepare is not None:
        with pytest.raises(ValueError, match=r"(expected an RGB uint8 array|empty image)"):
            prepare(bad)


# -- prepared input and the pipeline --------------------------------------------------------------

def test_prepared_inputs_give_the_same_boxes_as_raw_arrays(local) -> None:
    detector = local.detector
    images = [scene(10, 120, 160), scene(11, 90, 200), scene(12, 120, 160)]
    prepared = detector.prepare(images[0])
    assert isinstance(prepared, Prepared) and (prepared.width, prepared.height) == (160, 120)
    mixed = detector.detect([prepared, images[1], detector.prepare(images[2])], ONTOLOGY, FLOOR)
    assert mixed == detector.detect(images, ONTOLOGY, FLOOR)
    assert any(mixed)

    assert detector.input_size == (96, 160)  # from the tiny model's own files
    other = local.create(extra={"image_size": "128", "max_size": "200"})
    assert other.input_size == (128, 200)
    assert other.model_id != detector.model_id
    assert other.model_id == model_id_for(local.config(extra={"image_size": "128", "max_size": "200"}))
    with pytest.raises(ValueError, match="image #1: prepared as"):
        other.detect([images[0], prepared], ONTOLOGY, FLOOR)


def test_pipeline_prepares_on_decode_threads_with_the_same_results(local, tmp_path: Path, monkeypatch) -> None:
    detector = local.detector
    names = [f"im{i}.png" for i in range(6)]
    for i, name in enumerate(names):
        Image.fromarray(scene(20 + i, 120, 160) if i % 3 else scene(20 + i, 100, 180)).save(tmp_path / name)
    threads: list[int] = []
    real_prepare = detector.prepare

    def recording_prepare(image: np.ndarray) -> Prepared:
        threads.append(threading.get_ident())
        return real_prepare(image)

    monkeypatch.setattr(detector, "prepare", recording_prepare)
    pipeline = DetectionPipeline(SimpleFolder(tmp_path), ProposalCache(tmp_path / "c.sqlite"),
                                 local.config(batch_size=2), ONTOLOGY, factory=lambda config: detector)
    pipeline.ensure_detector()
    results = list(pipeline.run(names))

    assert len(threads) == len(names) and threading.get_ident() not in threads
    raw = [load_image(tmp_path / n) for n in names]
    expected = [boxes for i in range(0, len(raw), 2) for boxes in detector.detect(raw[i:i + 2], ONTOLOGY, SCORE_FLOOR)]
    assert [r.boxes for r in results] == expected
    assert all(r.ok and not r.from_cache for r in results) and any(expected)
