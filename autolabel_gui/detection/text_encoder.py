"""The text encoder (a BERT folder): found only where the user chose it, loaded without its code.

- A name such as ``bert-base-uncased`` is looked up in the Hugging Face cache only (fetched
  into it when the hub is reachable), and handed on as that cache folder's absolute path:
  transformers takes a folder of that name in the working directory first, so a folder someone
  handed over, opened from inside, would otherwise supply the text encoder.
- A path (absolute, as the options store it) is a folder the user chose.
- A folder that asks for its own Python code (``auto_map``) is refused, never asked: transformers
  asks "run the custom code? [y/N]" on stdin, invisible when output is redirected.
  ``trust_remote_code=False`` is passed to every loader as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autolabel_gui.core.safe_read import SMALL_FILE_LIMIT, read_limited
from autolabel_gui.detection.base import DetectorUnavailable, MissingModelFiles

CUSTOM_CODE_REFUSED = "custom code is refused"
HUB_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "model.safetensors")
"""What BERT's tokenizer and weights need from a hub repository (not its TF, Flax, ONNX copies)."""
_CODE_FILES = ("config.json", "tokenizer_config.json")


def is_name(value: str) -> bool:
    """A hub name, not a path: never looked up relative to the working directory."""
    return not Path(value).expanduser().is_absolute()


def text_encoder_folder(value: str, *, fetch: bool = True) -> Path:
    """The folder ``value`` names: a path as given, a name's Hugging Face cache folder (fetched
    when missing and ``fetch``). Raises DetectorUnavailable saying where it looked."""
    if not is_name(value):
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise DetectorUnavailable(f"{value}: text encoder folder not found")
        return folder
    cached = _cached(value)
    if cached is not None:
        return cached
    if not fetch:
        raise MissingModelFiles(f"{value}: not in the Hugging Face cache")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(value, allow_patterns=list(HUB_FILES)))
    except Exception as exc:  # offline, no such repository, network or disk errors: all "not here"
        raise MissingModelFiles(f"{value}: not in the Hugging Face cache, and it could not be fetched "
                                  f"({type(exc).__name__}: {exc})") from exc


def _cached(name: str) -> Path | None:
    """The cached snapshot of ``name`` when it holds a tokenizer and weights (a partial one: None)."""
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, an invalid name, no huggingface_hub
        return None
    has_vocab = (folder / "vocab.txt").is_file() or (folder / "tokenizer.json").is_file()
    has_weights = (folder / "model.safetensors").is_file() or (folder / "pytorch_model.bin").is_file()
    return folder if (folder / "config.json").is_file() and has_vocab and has_weights else None


def refuse_custom_code(folder: Path) -> None:
    """DetectorUnavailable when the folder's configs ask for code of their own (``auto_map``)."""
    for name in _CODE_FILES:
        try:
            data = json.loads(read_limited(folder / name, SMALL_FILE_LIMIT))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, RecursionError):  # the loader says what is wrong with it
            continue
        if isinstance(data, dict) and "auto_map" in data:
            raise DetectorUnavailable(custom_code_message(folder))


def custom_code_message(folder: Path | str) -> str:
    return (f"{folder}: this model folder wants to run Python code of its own to load; {CUSTOM_CODE_REFUSED} "
            "(it is never run). Use a folder without it (no auto_map in config.json or tokenizer_config.json).")


def load_tokenizer(folder: Path) -> Any:
    """The folder's tokenizer, its own code refused; DetectorUnavailable says why it cannot load."""
    from transformers import AutoTokenizer

    refuse_custom_code(folder)
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):  # custom code reached some other way
            raise DetectorUnavailable(custom_code_message(folder)) from exc
        raise
