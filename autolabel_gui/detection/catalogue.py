"""Every detector backend by name: a backend is a module plus one entry here, never a branch.

The entries are ``BackendSpec`` values from torch-free modules, so asking what a backend needs,
what identifies its model or which options it takes never imports a model package.
"""

from __future__ import annotations

import importlib

from autolabel_gui.detection import gdino_spec, hf_spec, remote_spec
from autolabel_gui.detection.base import (
    MODEL_BUILDING,
    BackendSpec,
    Detector,
    DetectorConfig,
    DetectorUnavailable,
    registered_backend,
)

BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (gdino_spec.SPEC, hf_spec.SPEC, remote_spec.SPEC)}


def spec_for(name: str) -> BackendSpec:
    """The spec of backend ``name``; an unknown name is DetectorUnavailable naming the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise DetectorUnavailable(
            f"unknown detector backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


def create_detector(config: DetectorConfig) -> Detector:
    """Build the configured backend; importing it lazily keeps torch out of start-up. Built under
    ``MODEL_BUILDING``: another thread may be building a model at the same time (the segmenter)."""
    spec = spec_for(config.backend)
    with MODEL_BUILDING:
        factory = registered_backend(spec.name)
        if factory is None:
            importlib.import_module(spec.module)  # it registers its factory with ``register_backend``
            factory = registered_backend(spec.name)
        if factory is None:
            raise DetectorUnavailable(f"{spec.module} registered no backend {spec.name!r}")
        return factory(config)
