"""Every detector backend by name: a backend is a module plus one entry here, never a branch.

The entries are ``BackendSpec`` values from torch-free modules, so asking what a backend needs,
what identifies its model or which options it takes never imports a model package.
"""

from __future__ import annotations

from autolabel_gui.detection import gdino_spec, hf_spec
from autolabel_gui.detection.base import BackendSpec, DetectorUnavailable

BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (gdino_spec.SPEC, hf_spec.SPEC)}


def spec_for(name: str) -> BackendSpec:
    """The spec of backend ``name``; an unknown name is DetectorUnavailable naming the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise DetectorUnavailable(
            f"unknown detector backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
