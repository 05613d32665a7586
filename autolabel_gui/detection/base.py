"""The detector interface and the backend registry, free of Qt and of any model package.

Backends register themselves with ``@register_backend("name")`` so that adding a model is a
new module, never a new branch in an if/elif over model types; ``detection/catalogue.py``
(which imports this module, never the other way) names them and builds one (``create_detector``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.ontology import Ontology

DEFAULT_BACKEND = "grounding_dino"
"""The seed's original Grounding DINO code path stays the default until a user picks another model."""


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Everything needed to build a detector; also the user's model settings."""

    backend: str = DEFAULT_BACKEND
    weights: str | None = None
    config: str | None = None
    text_encoder: str | None = None
    device: str = "auto"
    precision: str = "auto"  # auto | fast | fp32 | fp16 | bf16 (compute_path.PRECISIONS)
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    batch_size: int = 1
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An image already turned into model input by ``PreparingDetector.prepare``.

    Preparing (resize, normalise) is as costly as decoding, so the pipeline does it on its decode
    threads while the model runs on the previous batch. ``width``/``height`` are the original
    image's, which boxes are scaled back to; ``data`` belongs to the backend; ``spec`` says what
    the input was made for, so a detector can refuse input prepared for another input size.
    """

    data: Any
    width: int
    height: int
    spec: Hashable = None


class Detector(Protocol):
    """Proposes boxes for a batch of RGB uint8 images (H, W, 3) in one call."""

    @property
    def model_id(self) -> str:
        """A stable id of the weights and settings that change outputs (for the cache key)."""
        ...

    @property
    def device(self) -> str: ...

    def detect(
        self,
        images: Sequence[np.ndarray | Prepared],
        ontology: Ontology,
        score_floor: float,
    ) -> list[list[Box]]:
        """Return, per image, proposals (state PROPOSED) whose score is at least ``score_floor``.

        Thresholding above the floor happens at read time, so a threshold slider never re-runs
        the model. ``Prepared`` items come only from this detector's own ``prepare`` (when it has
        one); raw arrays are always accepted, also mixed with prepared ones in one batch.
        """
        ...


class PreparingDetector(Detector, Protocol):
    """A detector whose per-image input preparation can run on another thread, ahead of ``detect``."""

    def prepare(self, image: np.ndarray) -> Prepared:
        """Model input for one RGB uint8 image; thread-safe, and never touches the model."""
        ...


class ReadingDetector(Detector, Protocol):
    """A detector that takes image files as they are on disk (a proposal server gets the encoded
    bytes, never pixels): ``BatchDetector.decode`` calls ``read_file`` instead of decoding."""

    def read_file(self, path: Path) -> Prepared:
        """The file's model input, refused (raising) as ``core.images.load_image`` refuses a file
        before decoding it; thread-safe."""
        ...


class DetectorUnavailable(RuntimeError):
    """The model cannot be built here (no weights, no text encoder...); the message says what to do."""


class MissingModelFiles(DetectorUnavailable):
    """The model's files are not on this machine: ``autolabel-gui weights download`` fetches them
    (the window offers that, instead of guessing it from the message's words)."""


class DetectorUnreachable(DetectorUnavailable):
    """The model runs elsewhere (a proposal server) and does not answer now: it may come back,
    so a caller keeps the work it has not done yet and tries again later."""


class ImageRefused(ValueError):
    """The detector refuses this one image (the message says why, naming the file); its
    batch-mates are not affected."""


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """What the rest of the program may know about a backend without importing it.

    ``model_id(config)``: the stable id of the model and the settings that change its outputs
    (the cache key's core); ``missing(config)``: None when it can run, else what is missing and
    how to get it; ``options``: the ``DetectorConfig.extra`` keys it reads; ``module``: imported
    only to build the detector (it registers its factory with ``register_backend``);
    ``servable``: ``autolabel-gui serve`` can hold it; ``folder_problem(extra, chosen)``: why a
    folder's own settings may not name it (``chosen``: what the user chose on this machine), or None.
    """

    name: str
    module: str
    title: str
    model_id: Callable[[DetectorConfig], str]
    missing: Callable[[DetectorConfig], str | None]
    options: tuple[str, ...] = ()
    servable: bool = True
    folder_problem: Callable[[Mapping[str, str], Collection[str]], str | None] | None = None


DetectorFactory = Callable[[DetectorConfig], Detector]

MODEL_BUILDING = threading.RLock()
"""Held while a model is built (a detector, the segmenter): one at a time in a process, because
transformers' lazy imports are not thread-safe (seen: the detector's ``from transformers import
AutoTokenizer`` raised ImportError while the fit thread imported SamModel)."""

_BACKENDS: dict[str, DetectorFactory] = {}


def register_backend(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Class or factory decorator that makes a backend available by name."""

    def wrap(factory: DetectorFactory) -> DetectorFactory:
        _BACKENDS[name] = factory
        return factory

    return wrap


def registered_backend(name: str) -> DetectorFactory | None:
    """The factory registered under ``name``, None until its module has been imported."""
    return _BACKENDS.get(name)
