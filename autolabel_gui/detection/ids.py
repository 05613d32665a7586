"""The one id of "this model with these settings": the detector's ``model_id`` and the cache key's core.

Torch-free and model-free, so the cache, the window and ``stats`` compute it without importing
the model package, and the id a detector reports can never disagree with the id its proposals
are cached under. Each backend's spec (``detection.catalogue``) says what identifies its model;
this module adds the prompts and the score floor.
"""

from __future__ import annotations

import hashlib
import json

from autolabel_gui.core.ontology import Ontology
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.catalogue import spec_for
from autolabel_gui.detection.fingerprint import SCORING_VERSION

SCORE_FLOOR = 0.05
"""Proposals below this never reach the cache; every threshold the user can pick is above it."""

__all__ = ["SCORE_FLOOR", "SCORING_VERSION", "model_id_for", "run_id_for"]


def model_id_for(config: DetectorConfig) -> str:
    """A stable id of everything in ``config`` that changes proposals, without loading the model
    (the backend's own ``BackendSpec.model_id``)."""
    return spec_for(config.backend).model_id(config)


def run_id_for(config: DetectorConfig, ontology: Ontology) -> str:
    """The id of "this model with these prompts", the proposal cache's run key, computed without
    loading the model: ``model_id_for`` (the detector's own ``model_id``) plus the prompts and
    the score floor, so the cache key and the detector cannot disagree about what changes outputs.
    """
    payload = {"model": model_id_for(config), "prompts": ontology.fingerprint(), "floor": SCORE_FLOOR}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
