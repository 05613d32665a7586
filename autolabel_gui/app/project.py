"""Per-folder settings (classes, prompts, thresholds, model): ``FOLDER/.autolabel/project.json``.

Kept beside the images rather than only in QSettings so the headless command, the export and
a colleague opening the same folder all see the same class list and prompts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from autolabel_gui.app.setting_names import READ_AS_GIVEN, REMEMBERED
from autolabel_gui.app.trust import chosen_files, folder_model_problem, remember_chosen
from autolabel_gui.core.atomic import atomic_write_text
from autolabel_gui.core.folder import STATE_DIR, ImageFolder, is_inside
from autolabel_gui.core.ontology import ClassSpec, Ontology, parse_prompt_args, split_class_names
from autolabel_gui.core.safe_read import SMALL_FILE_LIMIT, read_limited
from autolabel_gui.detection import remote_spec
from autolabel_gui.detection.base import DEFAULT_BACKEND, DetectorConfig
from autolabel_gui.detection.catalogue import BACKENDS
from autolabel_gui.detection.compute_path import PRECISIONS
from autolabel_gui.detection.gdino_spec import DEFAULT_TEXT_ENCODER
from autolabel_gui.detection.ids import model_id_for
from autolabel_gui.detection.image_input import PREVIEW_SIDES, input_side
from autolabel_gui.detection.models import ModelEntry, model_named
from autolabel_gui.detection.run_plan import RunPlan
from autolabel_gui.detection.segmenter_spec import is_catalogue_name
from autolabel_gui.formats.export import voc_class_names

SETTINGS_FILE = "project.json"


@dataclass(slots=True, frozen=True)
class ProjectSettings:
    classes: list[str] = field(default_factory=list)
    prompts: dict[str, str] = field(default_factory=dict)
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    batch_size: int = 1
    device: str = "auto"
    precision: str = "auto"
    backend: str = DEFAULT_BACKEND
    weights: str | None = None
    config: str | None = None
    text_encoder: str | None = None
    annotations_dir: str | None = None
    segmenter: str | None = None
    """What F fits boxes with: a name of ``detection/segmenters.json`` or a model folder (None: the default)."""
    extra: dict[str, str] = field(default_factory=dict)  # backend options, e.g. image_size
    preview: bool = False
    """The smaller, less accurate model input (``image_input.PREVIEW_SIDES``); over ``extra``'s sides."""
    prompt_groups: list[list[list[str]]] = field(default_factory=list, compare=False)
    """The classes as the model reads them, ``[[name, prompt text], ...]`` per prompt group: the
    list the folder started with, then one group per change that added classes (ADR 0013).
    Kept in step with ``classes`` and ``prompts`` by ``groups()``; a removed class stays in its
    group (its proposals are left out when read), so a change recomputes only what is new.
    Not compared: an empty list means "the class list is the one group", which ``groups()`` says."""
    notes: list[str] = field(default_factory=list, compare=False)
    """Why values of the folder's file were ignored (never saved); shown by the commands and the window."""

    def ontology(self) -> Ontology:
        return Ontology.from_names(self.classes, {k: v for k, v in self.prompts.items() if k in self.classes})

    def __post_init__(self) -> None:
        # Settings made in memory (a new folder, a test) start their groups from their class
        # list, so the first change to it adds a group instead of making one group of all.
        if not self.prompt_groups and self.classes and not self.problems():
            try:
                object.__setattr__(self, "prompt_groups", [[[c.name, c.text] for c in self.ontology()]])
            except ValueError:  # names listed twice: said when the settings are used
                pass

    def groups(self) -> list[tuple[ClassSpec, ...]]:
        """``prompt_groups`` reconciled with the class list: a class whose name and prompt are
        in a group stays there; a new class, or one whose prompt changed, goes into one new
        group at the end (the changed one leaves its old group, which is then recomputed)."""
        wanted = {c.name: c.text for c in self.ontology()}
        groups: list[list[ClassSpec]] = []
        placed: set[str] = set()
        for stored in self.prompt_groups:
            group = []
            for name, text in stored:
                if name in placed or (name in wanted and wanted[name] != text):
                    continue
                group.append(ClassSpec(name, text))
                placed.add(name)
            if group:
                groups.append(group)
        fresh = [ClassSpec(name, text) for name, text in wanted.items() if name not in placed]
        if fresh:
            groups.append(fresh)
        return [tuple(g) for g in groups]

    def with_groups_kept(self) -> ProjectSettings:
        """These settings with ``prompt_groups`` written out from ``groups()`` (what is saved)."""
        return replace(self, prompt_groups=[[[c.name, c.text] for c in g] for g in self.groups()])

    def run_plan(self) -> RunPlan:
        """The cache runs of these settings: one per prompt group (``detection.run_plan``)."""
        return RunPlan.build(self.detector_config(), self.groups(), self.classes)

    def annotations_path(self, root: Path) -> Path | None:
        """The VOC folder, None for "next to the images"; a relative path is relative to ``root``,
        so the window, ``export`` and ``stats`` find the same folder from any working directory."""
        if not self.annotations_dir:
            return None
        path = Path(self.annotations_dir).expanduser()
        return path if path.is_absolute() else Path(root) / path

    def detector_config(self) -> DetectorConfig:
        return DetectorConfig(
            backend=self.backend,
            weights=self.weights,
            config=self.config,
            text_encoder=self.text_encoder,
            device=self.device,
            precision=self.precision,
            box_threshold=self.box_threshold,
            text_threshold=self.text_threshold,
            batch_size=self.batch_size,
            extra=self._extra_with_preview(),
        )

    def _extra_with_preview(self) -> dict[str, str]:
        """The backend options, with the preview's input sides when it is on (so the run id, and
        the cache, tell preview proposals from full-size ones)."""
        if not self.preview:
            return dict(self.extra)
        size, max_size = PREVIEW_SIDES
        return {**self.extra, "image_size": str(size), "max_size": str(max_size)}

    @staticmethod
    def path_for(folder: Path) -> Path:
        return Path(folder) / STATE_DIR / SETTINGS_FILE

    @classmethod
    def load(cls, folder: Path) -> ProjectSettings:
        """Read the folder's settings as untrusted input; a missing file gives defaults.

        The file must be a small regular JSON file in the folder (a link out of it, a FIFO, a
        device or a huge file raises ValueError naming it and why, as does broken JSON). A value
        of the wrong type or out of range, and a model file the user did not choose
        (``app.trust``), is left at its default;
        each such decision is in ``notes`` for the command line and the window to say.
        """
        path = cls.path_for(folder)
        if not is_inside(path, folder):
            raise ValueError(f"{path}: cannot read project settings: it leads outside the folder (a symbolic "
                             f"link); remove the link")
        data = _read_file(path)
        return cls() if data is None else cls._from_dict(data, Path(folder), path)

    @classmethod
    def _from_dict(cls, data: dict, folder: Path, path: Path) -> ProjectSettings:
        values: dict[str, object] = {}
        notes: list[str] = []
        for name in _SAVED_FIELDS:
            if name not in data:
                continue
            value = data[name]
            if name == "extra" and isinstance(value, dict):
                bad = _extra_problems(value)  # one bad option is left out, not the whole table
                notes += [f"{path}: setting 'extra.{key}' ignored: {why}" for key, why in bad.items()]
                value = {k: v for k, v in value.items() if k not in bad}
            problem = _field_problem(name, value)
            if problem is None and name in _FOLDER_CHOSEN_PATHS and value is not None:
                problem = _path_problem(name, value, folder)
            if problem is None:
                values[name] = value
            else:
                notes.append(f"{path}: setting '{name}' ignored: {problem}")
        server = _server_problem(values)
        if server is not None:
            notes.append(f"{path}: the proposal server it names is not used: {server}")
            values.pop("backend", None)
            values.pop("extra", None)
        # A folder from before prompt groups gets its whole class list as its first group
        # (``__post_init__``), so the proposals cached under the old run id stay valid.
        return cls(**values, notes=notes)  # type: ignore[arg-type]

    def problems(self) -> list[str]:
        """What is wrong with these values (empty when they may be used and saved)."""
        return [f"{name}: {problem}" for name in _SAVED_FIELDS
                if (problem := _field_problem(name, getattr(self, name))) is not None]

    def save(self, folder: Path) -> None:
        """Write the settings atomically; invalid values raise ValueError and nothing is written."""
        problems = self.problems()
        if problems:
            raise ValueError("settings not saved: " + "; ".join(problems))
        _check_inside(folder)
        kept = self.with_groups_kept()
        data = {name: getattr(kept, name) for name in _SAVED_FIELDS}
        atomic_write_text(self.path_for(folder), json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")

    def save_changes(self, folder: Path, old: ProjectSettings) -> ProjectSettings:
        """Write into the folder's file only what changed from ``old`` to these settings, over
        what the file holds now; returns these settings with the class list, prompts and prompt
        groups as saved (another annotator's classes included).

        Several windows share a folder: each keeps the settings it opened with, so writing them
        whole would undo what another annotator saved since (seen: a threshold moved in one
        window removed the classes another had added). Classes and prompts are merged by name
        (added and removed ones applied to the file's list); any other changed value replaces
        the file's; values this window did not change stay as the file has them, even those
        this machine ignores (a model file it does not trust). Invalid values raise ValueError.
        """
        path = self.path_for(folder)
        _check_inside(folder)
        data = _read_file(path)
        if data is None:  # nobody saved settings here yet: these are the folder's
            self.save(folder)
            return self.with_groups_kept()
        names = [n for n in _SAVED_FIELDS if n != "prompt_groups" and getattr(self, n) != getattr(old, n)]
        file_classes, file_prompts = data.get("classes"), data.get("prompts")
        for name in names:
            data[name] = getattr(self, name)
        if "classes" in names and isinstance(file_classes, list) and _field_problem("classes", file_classes) is None:
            gone = set(old.classes) - set(self.classes)
            data["classes"] = ([c for c in file_classes if c not in gone]
                               + [c for c in self.classes if c not in old.classes and c not in file_classes])
        if "prompts" in names and isinstance(file_prompts, dict) and _field_problem("prompts", file_prompts) is None:
            data["prompts"] = {**{k: v for k, v in file_prompts.items() if k in self.prompts or k not in old.prompts},
                               **{k: v for k, v in self.prompts.items() if old.prompts.get(k) != v}}
        groups: list[list[list[str]]] = self.prompt_groups
        if _field_problem("prompt_groups", data.get("prompt_groups")) is None:
            groups = data["prompt_groups"]
        merged = replace(self, classes=list(data.get("classes", self.classes)),
                         prompts=dict(data.get("prompts", self.prompts)), prompt_groups=groups).with_groups_kept()
        data["prompt_groups"] = merged.prompt_groups
        problems = [p for name in (*names, "classes", "prompts", "prompt_groups") if name in data
                    and (p := _field_problem(name, data[name])) is not None]
        if problems:
            raise ValueError("settings not saved: " + "; ".join(problems))
        atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return merged

    def with_model(self, entry: ModelEntry) -> ProjectSettings:
        """These settings running catalogue model ``entry``: exactly what ``--model NAME`` sets,
        so the Settings dialog's model choice and the command line cannot drift apart."""
        return replace(self, **self._model_changes(entry))

    def _model_changes(self, entry: ModelEntry) -> dict[str, Any]:
        picked = entry.apply(self.detector_config())
        return {name: getattr(picked, name) for name in _MODEL_CHOICE_FIELDS}

    def with_server(self, url: str, model_id: str, model: str = "", title: str = "") -> ProjectSettings:
        """These settings taking proposals from the proposal server at ``url`` (``app.server_choice``
        asks it for ``model_id``): the server is the user's own choice, remembered as a model file is
        (``app.trust``), so a folder's settings may name it next time."""
        extra = {remote_spec.URL: url, remote_spec.MODEL_ID: model_id, remote_spec.MODEL: model,
                 remote_spec.TITLE: title[:_MAX_TEXT]}
        remember_chosen([url])
        return replace(self, backend=remote_spec.NAME, extra={k: v for k, v in extra.items() if v})

    def with_args(self, args: argparse.Namespace) -> ProjectSettings:
        """Command-line model options override what the folder remembers.

        Model files given here are the user's own choice: they are remembered (``app.trust``)
        so the folder's settings may name them next time. Invalid values raise ValueError.
        """
        changes: dict[str, Any] = {}
        if getattr(args, "model", None):
            # a catalogue model sets backend, weights and thresholds; explicit options below still win
            changes.update(self._model_changes(model_named(args.model)))
        classes = getattr(args, "classes", None)
        if classes:
            changes["classes"] = classes_from_arg(classes)
        if getattr(args, "prompt", None):
            changes["prompts"] = {**self.prompts, **parse_prompt_args(args.prompt)}
        for name in READ_AS_GIVEN:
            value = getattr(args, name, None)
            if value is not None:
                changes[REMEMBERED[name]] = str(value) if isinstance(value, Path) else value
        for name in ("weights", "config", "text_encoder", "segmenter"):
            if changes.get(name):
                changes[name] = _typed_model_path(name, changes[name])
        annotations = getattr(args, "annotations", None)
        if annotations is not None:
            # typed relative to the working directory, stored so that it means the same later
            changes["annotations_dir"] = str(Path(annotations).expanduser().absolute())
        # A folder value that was ignored and is now given on the command line is not news
        # (seen: "setting 'weights' ignored … pass --weights FILE" with that very --weights given).
        notes = [n for n in self.notes if not any(f"setting '{name}' ignored" in n for name in changes)]
        new = replace(self, **changes, notes=notes)
        problems = [p for p in new.problems() if p.split(":")[0] in changes]
        if problems:
            raise ValueError("; ".join(problems))
        remember_chosen([str(changes[n]) for n in (*_FOLDER_CHOSEN_PATHS,) if changes.get(n)])
        return new


def _typed_model_path(name: str, value: str) -> str:
    """A model path typed relative to the working directory, made absolute: the model code looks
    a relative name up only as a Hugging Face name, never in whatever directory it runs from
    (``detection.text_encoder``). A name such as ``bert-base-uncased`` stays a name."""
    if (name == "text_encoder" and value == DEFAULT_TEXT_ENCODER) or (name == "segmenter" and is_catalogue_name(value)):
        return value
    path = Path(value).expanduser()
    return str(path.absolute()) if not path.is_absolute() and path.exists() else value


def _check_inside(folder: Path) -> None:
    """ValueError when the settings file leads out of ``folder`` (never written there)."""
    path = ProjectSettings.path_for(folder)
    if not is_inside(path, folder):
        raise ValueError(f"{path} leads outside the folder (a symbolic link); settings not saved")


def _read_file(path: Path) -> dict | None:
    """The settings file as a JSON object, None when there is none; ValueError naming the file
    and why when it cannot be read (a FIFO, a device, a huge file, broken or deep JSON)."""
    try:
        raw = read_limited(path, SMALL_FILE_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read project settings: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read project settings: {exc}") from exc
    except RecursionError:
        raise ValueError(f"{path}: cannot read project settings: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: cannot read project settings: not a JSON object")
    return data


def classes_from_arg(value: str) -> list[str]:
    """``--classes``, the same for every command: a comma-separated list, or a file with one
    name a line (blank lines and ``#`` comments ignored). Raises ValueError for an unusable one."""
    path = Path(value).expanduser()
    looks_like_file = "," not in value and (os.sep in value or "/" in value or path.suffix in (".txt", ".names"))
    if looks_like_file and not path.exists():
        raise ValueError(f"--classes {value}: no such file (give a comma-separated list, or a file "
                         "with one class name a line)")
    if "," not in value and path.is_dir():  # a file of that name is read as the list: a folder is no class
        raise ValueError(f"--classes {value}: {path} is a folder, not a class list (give a comma-separated "
                         f"list, '{value},' for one class of that name, or a file with one class name a line)")
    if "," not in value and path.exists() and not path.is_file():  # /dev/null, a FIFO: no class either
        raise ValueError(f"--classes {value}: {path} is not a regular file, not a class list (give a "
                         f"comma-separated list, '{value},' for one class of that name, or a file with one "
                         "class name a line)")
    if "," not in value and path.is_file():
        try:
            text = read_limited(path, SMALL_FILE_LIMIT).decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the class list: {exc}") from exc
        names = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        where = f"{path}: "
    else:
        names = split_class_names(value)
        where = "--classes: "
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}class names listed twice: {', '.join(duplicates)}")
    if not names:
        raise ValueError(f"{where}no class names")
    problem = _field_problem("classes", names)
    if problem:
        raise ValueError(where + problem)
    return names


def class_list_for(arg: str | None, settings: ProjectSettings, folder: ImageFolder) -> tuple[list[str], str | None]:
    """The class list of ``export`` and ``stats``: ``--classes``, else the folder's, else (a folder
    labelled elsewhere, with no settings) the classes its VOC files use, sorted, with a note saying so."""
    if arg:
        return classes_from_arg(arg), None
    if settings.classes:
        return list(settings.classes), None
    found = voc_class_names(folder)
    if not found:
        return [], None
    return found, f"the folder has no class list; using the {len(found)} classes of its VOC files: {', '.join(found)}"


_DEVICE = re.compile(r"\A(auto|cpu|mps|cuda(:\d{1,3})?)\Z")
_MAX_TEXT = 1000
_MAX_PATH = 4096
_MAX_CLASSES = 1000
_MODEL_CHOICE_FIELDS = ("backend", "weights", "config", "extra", "box_threshold", "text_threshold")
"""What choosing a catalogue model sets (``ModelEntry.apply``)."""
_FOLDER_CHOSEN_PATHS = ("weights", "config", "text_encoder", "annotations_dir", "segmenter")
"""Paths in a folder's settings that could make the tool read or write outside the folder."""


def device_problem(value: object) -> str | None:
    if not isinstance(value, str) or not _DEVICE.match(value):
        return f"{value!r} is not a device (auto, cpu, cuda, cuda:N or mps)"
    return None


MAX_BATCH_SIZE = 64
"""A folder's settings size memory with the batch (about 2 x batch x 12.8 MB of prepared
inputs, before the model's own activations): bounded as the Settings dialog bounds it."""


def batch_size_problem(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_BATCH_SIZE
    return None if ok else f"{value!r} is not a whole number from 1 to {MAX_BATCH_SIZE}"


def threshold_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        return f"{value!r} is not a number from 0 to 1"
    return None


def _short_str(value: object, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit and not any(ord(c) < 32 for c in value)


def _field_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not a valid ``name`` setting, or None."""
    if name in ("box_threshold", "text_threshold"):
        return threshold_problem(value)
    if name == "batch_size":
        return batch_size_problem(value)
    if name == "device":
        return device_problem(value)
    if name == "backend":
        known = ", ".join(BACKENDS)
        return None if isinstance(value, str) and value in BACKENDS else f"{value!r} is not one of {known}"
    if name == "precision":
        return None if value in PRECISIONS else f"{value!r} is not one of {', '.join(PRECISIONS)}"
    if name == "classes":
        if not isinstance(value, list) or len(value) > _MAX_CLASSES:
            return f"not a list of at most {_MAX_CLASSES} class names"
        bad = [v for v in value if not _short_str(v, 200) or not v.strip()]
        return f"invalid class name {bad[0]!r}" if bad else None
    if name in ("prompts", "extra"):
        ok = isinstance(value, dict) and len(value) <= _MAX_CLASSES and all(
            _short_str(k, _MAX_TEXT) and _short_str(v, _MAX_TEXT) for k, v in value.items())
        if not ok:
            return "not a table of short texts"
        if name == "prompts" or not isinstance(value, dict):
            return None
        return "; ".join(f"{key}: {why}" for key, why in _extra_problems(value).items()) or None
    if name in _FOLDER_CHOSEN_PATHS:
        return None if value is None or _short_str(value, _MAX_PATH) else "not a path"
    if name == "prompt_groups":
        return _groups_problem(value)
    if name == "preview":
        return None if isinstance(value, bool) else f"{value!r} is not true or false"
    return None


def _extra_problems(extra: dict) -> dict[str, str]:
    """Why options in ``extra`` that size memory cannot be used, by key: the model input's sides
    (``image_input.INPUT_SIDES``); a folder's ``image_size: "12000"`` made a 4.25 GB input."""
    bad = {}
    for key in ("image_size", "max_size"):
        if key in extra:
            try:
                input_side(extra[key])
            except ValueError as exc:
                bad[key] = str(exc)
    return bad


def _groups_problem(value: object) -> str | None:
    """``prompt_groups`` must be a bounded list of lists of [name, text] pairs of short texts."""
    bad = "not a list of prompt groups of [class name, prompt] pairs"
    if not isinstance(value, list) or len(value) > _MAX_CLASSES:
        return bad
    names: set[str] = set()
    count = 0
    for group in value:
        if not isinstance(group, list):
            return bad
        for pair in group:
            count += 1
            if (count > 2 * _MAX_CLASSES or not isinstance(pair, list) or len(pair) != 2
                    or not all(_short_str(v, _MAX_TEXT) and v.strip() for v in pair) or pair[0] in names):
                return bad
            names.add(pair[0])
    return None


def _server_problem(values: dict[str, Any]) -> str | None:
    """Why the folder's settings may not name their backend (its spec's ``folder_problem``: a
    proposal server the user did not choose on this machine), or None."""
    spec = BACKENDS.get(str(values.get("backend")))
    if spec is None or spec.folder_problem is None:
        return None
    return spec.folder_problem(dict(values.get("extra") or {}), chosen_files())


def _path_problem(name: str, value: str, folder: Path) -> str | None:
    """Model files and an annotation folder named by the folder's own settings (``app.trust``)."""
    if (name == "text_encoder" and value == DEFAULT_TEXT_ENCODER) or (name == "segmenter" and is_catalogue_name(value)):
        return None
    if name == "annotations_dir":
        target = Path(value).expanduser()
        if not target.is_absolute():
            target = folder / target
        if is_inside(target, folder):
            return None
        if folder_model_problem(value, folder) is None:
            return None
        return ("it is outside the image folder and you have not chosen it on this machine "
                f"(pass --annotations {value} to use it)")
    problem = folder_model_problem(value, folder)
    if problem is None:
        return None
    flag = "--" + name.replace("_", "-")
    return (f"model files named by a folder's settings are used only once you chose them yourself: "
            f"{problem} (pass {flag} {value} if you trust it); using the default")


def plan_of(settings: ProjectSettings) -> RunPlan | None:
    """The cache runs of ``settings`` (``detection.run_plan``), or None when they are invalid."""
    try:
        return settings.run_plan()
    except ValueError:
        return None


def model_id_of(settings: ProjectSettings) -> str | None:
    """The id of the model ``settings`` run, prompts aside (``detection.ids.model_id_for``), or
    None when they are invalid: a class change keeps it, another model or threshold does not."""
    try:
        return model_id_for(settings.detector_config())
    except ValueError:
        return None


def run_id_of(settings: ProjectSettings) -> str | None:
    """The proposal cache's run id for ``settings``, or None when they are invalid (ValueError)."""
    try:
        return settings.run_plan().id
    except ValueError:
        return None


_SAVED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ProjectSettings) if f.name != "notes")
