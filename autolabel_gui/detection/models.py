"""The model catalogue (``models.json``): named models a user can pick, as data, never code per model.

Each entry names its backend, where its weights come from (a hub id and revision, or none for
the original backend's manifest checkpoint), licence, download size, the published zero-shot AP
with its source, and default thresholds. Picking a model fills ``DetectorConfig`` fields; what
those mean stays the backend's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.catalogue_file import CatalogueFile

CATALOGUE = Path(__file__).with_name("models.json")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    title: str
    backend: str
    hub_id: str | None
    revision: str | None
    licence: str
    download_mb: int
    ap_source: str
    box_threshold: float
    text_threshold: float
    ap: dict[str, float] = field(default_factory=dict)

    def apply(self, config: DetectorConfig) -> DetectorConfig:
        """``config`` set up for this model: backend, weights, revision and default thresholds.

        A model config file set by hand goes: the catalogue model brings its own architecture,
        and a file left from another checkpoint would run a different model under this name. The
        text encoder stays: it names where a copy of the same encoder lies (offline machines).
        """
        extra = {k: v for k, v in config.extra.items() if k != "revision"}
        if self.revision:
            extra["revision"] = self.revision
        return replace(config, backend=self.backend, weights=self.hub_id, config=None, extra=extra,
                       box_threshold=self.box_threshold, text_threshold=self.text_threshold)


_CATALOGUE = CatalogueFile(CATALOGUE, ModelEntry, "model")


def all_models() -> tuple[ModelEntry, ...]:
    return _CATALOGUE.entries()


def default_model() -> ModelEntry:
    """The seed's Grounding DINO SwinT-OGC: the default until a user picks another."""
    return _CATALOGUE.default()


def model_named(name: str) -> ModelEntry:
    """The entry called ``name``; ValueError naming the known ones otherwise."""
    return _CATALOGUE.named(name)


def model_of(config: DetectorConfig) -> ModelEntry | None:
    """The catalogue model ``config`` runs, None when its model files were set by hand.

    The inverse of ``ModelEntry.apply``: ``config`` runs a model when choosing that model would
    change nothing but the thresholds, which the user tunes per folder without changing model.
    """
    for entry in all_models():
        picked = entry.apply(config)
        if replace(picked, box_threshold=config.box_threshold, text_threshold=config.text_threshold) == config:
            return entry
    return None
