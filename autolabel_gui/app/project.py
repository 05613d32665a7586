"""Per-folder settings (classes, prompts, thresholds, model): ``FOLDER/.autolabel/project.json``.

Kept beside the images rather than only in QSettings so the headless command, the export and
a colleague opening the same folder all see the same class list and prompts.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from autolabel_gui.core.atomic import atomic_write_text
from autolabel_gui.core.folder import STATE_DIR
from autolabel_gui.core.ontology import Ontology, parse_prompt_args, split_class_names
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.ids import run_id_for

SETTINGS_FILE = "project.json"


@dataclass(slots=True)
class ProjectSettings:
    classes: list[str] = field(default_factory=list)
    prompts: dict[str, str] = field(default_factory=dict)
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    batch_size: int = 1
    device: str = "auto"
    precision: str = "auto"
    weights: str | None = None
    config: str | None = None
    text_encoder: str | None = None
    annotations_dir: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # backend options, e.g. image_size

    def ontology(self) -> Ontology:
        return Ontology.from_names(self.classes, {k: v for k, v in self.prompts.items() if k in self.classes})

    def annotations_path(self, root: Path) -> Path | None:
        """The VOC folder, None for "next to the images"; a relative path is relative to ``root``,
        so the window, ``export`` and ``stats`` find the same folder from any working directory."""
        if not self.annotations_dir:
            return None
        path = Path(self.annotations_dir).expanduser()
        return path if path.is_absolute() else Path(root) / path

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            weights=self.weights,
            config=self.config,
            text_encoder=self.text_encoder,
            device=self.device,
            precision=self.precision,
            box_threshold=self.box_threshold,
            text_threshold=self.text_threshold,
            batch_size=self.batch_size,
            extra=dict(self.extra),
        )

    @staticmethod
    def path_for(folder: Path) -> Path:
        return Path(folder) / STATE_DIR / SETTINGS_FILE

    @classmethod
    def load(cls, folder: Path) -> ProjectSettings:
        """Read the folder's settings; a missing file gives defaults, a broken one raises ValueError."""
        path = cls.path_for(folder)
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read project settings: {exc}") from exc
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, folder: Path) -> None:
        atomic_write_text(self.path_for(folder), json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")

    def with_args(self, args: argparse.Namespace) -> ProjectSettings:
        """Command-line model options override what the folder remembers."""
        changes: dict[str, Any] = {}
        if getattr(args, "classes", None):
            changes["classes"] = split_class_names(args.classes)
        if getattr(args, "prompt", None):
            changes["prompts"] = {**self.prompts, **parse_prompt_args(args.prompt)}
        for name in ("box_threshold", "text_threshold", "batch_size", "device", "precision",
                     "weights", "config", "text_encoder"):
            value = getattr(args, name, None)
            if value is not None:
                changes[name] = str(value) if isinstance(value, Path) else value
        annotations = getattr(args, "annotations", None)
        if annotations is not None:
            # typed relative to the working directory, stored so that it means the same later
            changes["annotations_dir"] = str(Path(annotations).expanduser().absolute())
        return replace(self, **changes)


def run_id_of(settings: ProjectSettings) -> str | None:
    """The proposal cache's run id for ``settings``, or None when they are invalid (ValueError)."""
    try:
        return run_id_for(settings.detector_config(), settings.ontology())
    except ValueError:
        return None
