"""The promptable segmenters that fit a box to its object (``segmenters.json``), torch-free.

A segmenter is named by a catalogue row (its weights come from the Hugging Face hub, fetched
once with ``autolabel-gui weights download --segmenter NAME``) or given as the absolute path of
a model folder the user chose. Which transformers classes run a folder is data
(``FAMILIES``, by the ``model_type`` of its ``config.json``): a new family is a row there and a
new model a row in ``segmenters.json``, never a branch. Asking what is missing never imports torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from autolabel_gui.detection.catalogue_file import CatalogueFile
from autolabel_gui.detection.fingerprint import file_identity
from autolabel_gui.detection.hf_spec import read_model_config

CATALOGUE = Path(__file__).with_name("segmenters.json")


@dataclass(frozen=True, slots=True)
class Family:
    """How transformers runs one ``model_type``: its model and processor classes, the forward
    arguments ``get_image_embeddings`` fills (in the order it returns them), which of the
    processor's outputs ``post_process_masks`` takes after the masks (the model card's recipe),
    and whether its processor scales box prompts from the image size alone (SAM 2's does; SAM's
    wants the image again, which costs a resize per fit)."""

    model: str
    processor: str
    embedding_args: tuple[str, ...]
    post_process_args: tuple[str, ...]
    prompt_from_sizes: bool


FAMILIES: dict[str, Family] = {
    "sam": Family("SamModel", "SamProcessor", ("image_embeddings",),
                  ("original_sizes", "reshaped_input_sizes"), prompt_from_sizes=False),
    "sam_hq": Family("SamHQModel", "SamHQProcessor", ("image_embeddings", "intermediate_embeddings"),
                     ("original_sizes", "reshaped_input_sizes"), prompt_from_sizes=False),
    "sam2": Family("Sam2Model", "Sam2Processor", ("image_embeddings",), ("original_sizes",), prompt_from_sizes=True),
    "edgetam": Family("EdgeTamModel", "Sam2Processor", ("image_embeddings",), ("original_sizes",),
                      prompt_from_sizes=True),
}


@dataclass(frozen=True, slots=True)
class SegmenterEntry:
    name: str
    title: str
    hub_id: str
    revision: str
    licence: str
    download_mb: int


_CATALOGUE = CatalogueFile(CATALOGUE, SegmenterEntry, "segmenter")


def all_segmenters() -> tuple[SegmenterEntry, ...]:
    return _CATALOGUE.entries()


def default_segmenter() -> SegmenterEntry:
    """The cheapest on a CPU of those whose permissive licence was checked (ADR 0019)."""
    return _CATALOGUE.default()


def segmenter_named(name: str) -> SegmenterEntry:
    """The entry called ``name``; ValueError naming the known ones otherwise."""
    return _CATALOGUE.named(name)


def is_catalogue_name(value: str) -> bool:
    return any(entry.name == value for entry in all_segmenters())


def how_to_get(value: str | None) -> str:
    """The command that fetches a catalogue segmenter, or how to give one by hand."""
    name = value if value and is_catalogue_name(value) else default_segmenter().name
    return (f"Get it with:  autolabel-gui weights download --segmenter {name}  (once, then it works offline), "
            f"or pass --segmenter DIR with a Hugging Face folder of a SAM, SAM-HQ, SAM 2 or EdgeTAM model.")


def segmenter_folder(value: str | None) -> Path | None:
    """The local model folder of ``value``: a catalogue name's cached hub snapshot, or the
    absolute folder the user gave; never a folder of that name in the working directory."""
    value = value or default_segmenter().name
    if is_catalogue_name(value):
        entry = segmenter_named(value)
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(entry.hub_id, revision=entry.revision, local_files_only=True))
        except Exception:  # not cached, no huggingface_hub: the same answer, "not here"
            return None
    folder = Path(value).expanduser()
    return folder if folder.is_absolute() and folder.is_dir() else None


def family_of(folder: Path) -> Family:
    """The family a model folder belongs to; ValueError saying why it has none."""
    model_type = read_model_config(folder).get("model_type")
    family = FAMILIES.get(str(model_type))
    if family is None:
        raise ValueError(f"{folder}: model type {model_type!r} is not a segmenter this program runs "
                         f"({', '.join(sorted(FAMILIES))})")
    return family


def missing(value: str | None) -> str | None:
    """What is missing before segmenter ``value`` (None: the default) can run, and how to get it."""
    shown = value or default_segmenter().name
    folder = segmenter_folder(value)
    if folder is None:
        where = "not in the Hugging Face cache" if is_catalogue_name(shown) else "no such model folder"
        return f"No segmenter to fit boxes with: {shown}: {where}. " + how_to_get(value)
    try:
        family_of(folder)
    except ValueError as exc:
        return f"{exc}. " + how_to_get(value)
    return None


def segmenter_id(value: str | None) -> str:
    """A stable id of the segmenter's files: embeddings of another model are never reused."""
    folder = segmenter_folder(value)
    identity = file_identity(folder) if folder else [value, "missing"]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:20]
