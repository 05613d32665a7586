"""Export a folder's reviewed labels as a dataset: the plan and the helpers every format's writer shares.

The whole dataset is built in a hidden staging folder beside ``out`` and renamed into place at
the end, so an export that fails or is cancelled leaves nothing behind, and a finished one is
never half-written. Images are hard-linked (or copied), never re-encoded, and only real files
inside the folder: an image that is a link is exported as the file it leads to, one that leads
out of the folder or nowhere is skipped with the reason (a dataset never holds a link, nor
someone's private photo a link pointed at). Each format's writer lives in that format's module
(``formats/registry.py`` names them: ``yolo.write_yolo``, ``coco.write_coco``,
``voc_dataset.write_voc_dataset``); nothing here asks which format it is.
Where supervision's writers are used and where they are not, and why: docs/decisions/0007-export.md.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from PIL import Image

from autolabel_gui.core.atomic import STAGE_SUFFIX, new_dir_mode, sweep_stale_stages
from autolabel_gui.core.boxes import ImageLabels
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.images import ImageLoadError, image_size, orientation_of
from autolabel_gui.core.safe_read import open_regular
from autolabel_gui.formats.registry import EXPORT_FORMATS
from autolabel_gui.formats.voc import AnnotationError, read_voc, voc_corners

FLAT_SEPARATOR = "__"
"""Joins sub-folder names into one file name: ``a/b/img.jpg`` -> ``a__b__img.jpg``."""
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})

ORIENTATION_NOTE = (
    "boxes refer to these images as displayed (EXIF orientation applied), as Ultralytics, supervision, "
    "OpenCV's imread and the window load them; the files are copied unchanged, so a loader that ignores "
    "EXIF (PIL without ImageOps.exif_transpose, e.g. torchvision's VOCDetection/CocoDetection) sees them turned"
)

Progress = Callable[[str, int, int], None]
"""Called with (phase, done, total): phase ``"reading"`` while annotation files are checked
(done/total over the folder's images, every ``READ_REPORT_EVERY``), then ``"writing"`` per image."""
READ_REPORT_EVERY = 100
ShouldStop = Callable[[], bool]


class ExportError(Exception):
    """The export cannot be made; nothing was written to the output folder."""


class ExportCancelled(ExportError):
    """The user stopped the export; the staging folder was removed."""


class NothingToExport(ExportError):
    """No image qualifies (e.g. 0 verified images): nothing was written, not even an empty dataset."""

    def __init__(self, message: str, skipped: list[str]) -> None:
        super().__init__(message)
        self.skipped = skipped
        """Why each image left out was skipped, for the caller to show."""


@dataclass(frozen=True, slots=True)
class ExportItem:
    """One image as it will appear in the dataset."""

    rel: str
    source: Path
    name: str
    labels: ImageLabels

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem


@dataclass(slots=True)
class ExportPlan:
    """What will be exported, decided (and validated) before anything is written."""

    classes: list[str]
    items: list[ExportItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Images left out because their annotation or image could not be read, with the reason."""
    turned: list[str] = field(default_factory=list)
    """Images whose EXIF orientation turns or flips them: see ``ORIENTATION_NOTE``."""
    dropped: list[str] = field(default_factory=list)
    """Images some of whose boxes cover no area inside the image: left out in every format."""
    without_file: int = 0
    """Images with no VOC file (never labelled): not exported, and no reason to say so one by one."""
    unverified: int = 0
    """Images whose VOC file is not verified, left out of a verified-only export."""
    by_rule: int = 0
    """Images accepted by a rule (unseen): left out of a verified-only export unless included;
    counted either way, so the dialog and the CLI say how many."""

    @property
    def negatives(self) -> int:
        """Images exported with no boxes (verified: nothing of any class is in them)."""
        return sum(1 for item in self.items if not item.labels.boxes)


@dataclass(frozen=True, slots=True)
class ExportResult:
    out: Path
    fmt: str
    images: int
    boxes: int
    negatives: int
    linked: int
    skipped: list[str]
    turned: list[str]
    dropped: list[str] = field(default_factory=list)
    by_rule: int = 0
    """Images accepted by a rule (unseen) in the dataset."""
    by_rule_left_out: int = 0
    """Images accepted by a rule left out (a verified-only export that did not include them)."""


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
"""Line breaks and other control characters: a name with one would split ``trainval.txt``."""


def flat_name(rel: str) -> str:
    """``a/b/img.jpg`` -> ``a__b__img.jpg``: every format here wants one flat images folder."""
    return FLAT_SEPARATOR.join(PurePosixPath(rel).parts)


def unique_names(rels: list[str], suffix_for: Callable[[str], str]) -> dict[str, str]:
    """Flat, distinct (case-insensitively, for Windows and macOS) output names for each image.

    Two images could still meet after flattening (``x.jpg`` and ``x.png`` share a label file
    name; ``a__b.jpg`` meets ``a/b.jpg``), so a later one gets ``~2``, ``~3``... on its stem.
    """
    taken: set[str] = set()
    names: dict[str, str] = {}
    for rel in rels:
        stem = CONTROL_CHARACTERS.sub("_", PurePosixPath(flat_name(rel)).stem)
        suffix = suffix_for(rel)
        candidate, n = stem, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{stem}~{n}"
        taken.add(candidate.casefold())
        names[rel] = candidate + suffix
    return names


def check_output(out: Path, source_root: Path) -> None:
    """Refuse an output folder that holds anything, is a file, or lies inside the image folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(f"{out}: the output folder is not empty; choose a new or empty folder "
                          "(nothing is deleted or mixed into an existing dataset)")
    root = source_root.resolve()
    target = out.resolve()
    if target == root or root in target.parents:
        raise ExportError(f"{out}: the output folder is inside the image folder {source_root}; "
                          "its copies would be listed as new images to label")


def plan_export(folder: ImageFolder, classes: list[str], verified_only: bool = True,
                fmt: str = "yolo", should_stop: ShouldStop | None = None,
                progress: Progress | None = None, include_by_rule: bool = False) -> ExportPlan:
    """Read every VOC file once, pick the images to export and check every box's class.

    ``include_by_rule``: a verified-only export takes the images accepted by a rule too.

    Raises ExportError listing each file whose boxes use a class missing from ``classes``:
    a dataset with a silently dropped class is worse than none.
    """
    if not classes:
        raise ExportError("no class list: set the folder's classes (window or `label --classes`) "
                          "or pass --classes a,b or --classes FILE")
    known = set(classes)
    plan = ExportPlan(classes=list(classes))
    unknown: list[str] = []
    chosen: list[tuple[str, Path, ImageLabels]] = []
    total = len(folder.images)
    for i, rel in enumerate(folder.images):
        if should_stop is not None and should_stop():
            raise ExportCancelled("export cancelled")
        if progress is not None and i % READ_REPORT_EVERY == 0:
            progress("reading", i, total)
        voc = folder.voc_path(rel)
        if not voc.exists():
            plan.without_file += 1
            continue
        try:
            labels = read_voc(voc)
        except AnnotationError as exc:
            plan.skipped.append(f"{rel}: skipped, {exc}")
            continue
        if labels.accepted_by_rule:
            plan.by_rule += 1
        if verified_only and not labels.verified and not (include_by_rule and labels.accepted_by_rule):
            plan.unverified += 1
            continue
        bad = sorted({b.label for b in labels.boxes} - known)
        if bad:
            unknown.append(f"{voc}: class {', '.join(repr(b) for b in bad)} is not in the class list")
            continue
        source = real_image(folder, rel)
        problem = source if isinstance(source, str) else _size_problem(source, labels)
        if isinstance(source, str) or problem:
            plan.skipped.append(f"{rel}: skipped, {problem}")
            continue
        kept = [b for b in labels.boxes if voc_corners(b, labels.width, labels.height) is not None]
        if len(kept) != len(labels.boxes):
            plan.dropped.append(f"{rel}: {len(labels.boxes) - len(kept)} box(es) with no area inside the "
                                "image left out")
            labels = replace(labels, boxes=kept)
        chosen.append((rel, source, labels))
        if exif_orientation(source) != 1:
            plan.turned.append(rel)
    if progress is not None:
        progress("reading", total, total)
    if unknown:
        more = f"\n... and {len(unknown) - 10} more files" if len(unknown) > 10 else ""
        raise ExportError("boxes with classes outside the class list "
                          f"({', '.join(classes)}):\n" + "\n".join(unknown[:10]) + more)
    EXPORT_FORMATS[fmt].check_classes(classes)
    names = unique_names([rel for rel, _, _ in chosen], lambda rel: _output_suffix(rel, fmt))
    plan.items = [ExportItem(rel, source, names[rel], labels) for rel, source, labels in chosen]
    return plan


def real_image(folder: ImageFolder, rel: str) -> Path | str:
    """The regular file image ``rel`` is, links followed, or why it is not exported: a link that
    leads out of the folder (someone's private photo) or nowhere (a relative link that would
    dangle in the dataset) is never put into a dataset."""
    path = folder.image_path(rel)
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        return "the image is a broken link" if path.is_symlink() else "the image is gone"
    except (OSError, RuntimeError) as exc:  # a link loop
        return f"the image cannot be followed ({exc})"
    if not real.is_relative_to(folder.root.resolve()):
        return (f"the image is a link that leads outside the folder (to {real}); only files inside the "
                "folder are exported")
    if not real.is_file():
        return "the image is not a regular file"
    return real


def _size_problem(image: Path, labels: ImageLabels) -> str | None:
    """Boxes are only meaningful against the image size they were drawn on."""
    try:
        width, height = image_size(image)
    except ImageLoadError as exc:
        return f"the image cannot be read ({exc.reason})"
    if (width, height) != (labels.width, labels.height):
        return (f"its VOC file says {labels.width}x{labels.height} but the image is {width}x{height}; "
                "open it in the window to check the boxes")
    return None


def exif_orientation(image: Path) -> int:
    """The EXIF orientation tag (1 = as stored) of a JPEG, TIFF or WebP, from its header.

    PNG is left out: Pillow decodes a whole PNG to look for an EXIF chunk it does not find first.
    """
    try:
        with Image.open(image) as im:
            return 1 if im.format == "PNG" else orientation_of(im)
    except Exception:  # the size check already read this header
        return 1


def _output_suffix(rel: str, fmt: str) -> str:
    """Keep the suffix, except JPEG variants become ``.jpg`` in VOC (torchvision looks only for it)."""
    suffix = PurePosixPath(rel).suffix
    if EXPORT_FORMATS[fmt].jpeg_as_jpg and suffix.lower() in JPEG_SUFFIXES:
        return ".jpg"
    return suffix


def export_dataset(folder: ImageFolder, fmt: str, out: Path, classes: list[str], verified_only: bool = True,
                   progress: Progress | None = None, should_stop: ShouldStop | None = None, *,
                   include_by_rule: bool = False) -> ExportResult:
    """Plan, write into a staging folder beside ``out``, then rename it to ``out``.
    ``include_by_rule``: see ``plan_export``."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    out = Path(out).absolute()
    check_output(out, folder.root)
    plan = plan_export(folder, classes, verified_only, fmt, should_stop, progress, include_by_rule)
    if not plan.items:
        which = "verified" if verified_only else "labelled"
        why = [f"{count} {what}" for count, what in ((plan.without_file, "without a VOC file"),
                                                     (plan.unverified, "not verified"),
                                                     (len(plan.skipped), "skipped, each said above"))
               if count]
        raise NothingToExport(f"no {which} images in {folder.root} (of {len(folder.images)} images: "
                              f"{', '.join(why) or 'none'}); nothing was written to {out}", plan.skipped)
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_stages(out)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=STAGE_SUFFIX, dir=out.parent))
    try:
        # mkdtemp's private 0700 would carry over the rename: the dataset gets the umask's mode
        os.chmod(stage, new_dir_mode())
        linked = EXPORT_FORMATS[fmt].write()(stage, plan, Ticker(len(plan.items), progress, should_stop))
        _flush_to_disk()
        _commit(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    boxes = sum(len(item.labels.boxes) for item in plan.items)
    negatives = sum(1 for item in plan.items if not item.labels.boxes)
    by_rule = sum(1 for item in plan.items if item.labels.accepted_by_rule)
    return ExportResult(out, fmt, len(plan.items), boxes, negatives, linked, plan.skipped, plan.turned, plan.dropped,
                        by_rule, plan.by_rule - by_rule)


def voc_class_names(folder: ImageFolder) -> list[str]:
    """The classes used in ``folder``'s VOC files, sorted: the class list of a folder labelled
    elsewhere (labelImg, CVAT) that has no project settings. Unreadable files are passed over
    here; the export reports them."""
    names: set[str] = set()
    for rel in folder.images:
        voc = folder.voc_path(rel)
        if not voc.exists():
            continue
        try:
            names.update(b.label for b in read_voc(voc).boxes)
        except AnnotationError:
            continue
    return sorted(names)


class Ticker:
    """Counts written images for the progress callback and checks for cancellation; a writer
    calls ``tick()`` once per image written."""

    def __init__(self, total: int, progress: Progress | None, should_stop: ShouldStop | None) -> None:
        self.total, self.done = total, 0
        self._progress, self._should_stop = progress, should_stop
        self.tick(0)

    def tick(self, n: int = 1) -> None:
        if self._should_stop is not None and self._should_stop():
            raise ExportCancelled("export cancelled")
        self.done += n
        if self._progress is not None:
            self._progress("writing", self.done, self.total)


def _flush_to_disk() -> None:
    """One ``sync`` before the rename instead of an fsync per file: the rename must not reach
    the disk before the files it publishes (a power cut would leave empty label files)."""
    if hasattr(os, "sync"):
        os.sync()


def _commit(stage: Path, out: Path) -> None:
    """Move the finished dataset into place; an empty ``out`` made meanwhile is replaced, anything else refused."""
    if out.is_dir():
        try:
            out.rmdir()
        except OSError:
            raise ExportError(f"{out}: files appeared in the output folder during the export; "
                              "nothing was written") from None
    os.replace(stage, out)


def write_file(path: Path, data: str | bytes) -> None:
    """Plain write: the file is inside the staging folder, which becomes visible only by rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def place_image(source: Path, target: Path) -> bool:
    """Hard-link ``source`` at ``target`` (no copy, same bytes), or copy it; True when linked.

    ``source`` is a regular file (``real_image``); one swapped for a link or a FIFO since is
    refused (ExportError: the export stops and keeps nothing), never placed or waited on.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        _copy_regular(source, target)
        return False
    if not stat.S_ISREG(os.lstat(target).st_mode):
        os.unlink(target)
        raise ExportError(f"{source}: became a link during the export; nothing was written")
    return True


def _copy_regular(source: Path, target: Path) -> None:
    try:
        fd = open_regular(source, follow_links=False)
    except OSError as exc:
        raise ExportError(f"{source}: no longer a regular file ({exc.strerror or exc}); nothing was written") from exc
    with os.fdopen(fd, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst)


def sv_detections(plan: ExportPlan, item: ExportItem):
    """Boxes of one image as supervision Detections, class ids in the plan's order."""
    import numpy as np
    import supervision as sv

    if not item.labels.boxes:
        return sv.Detections.empty()
    index = {name: i for i, name in enumerate(plan.classes)}
    w, h = item.labels.width, item.labels.height
    boxes = [b.clamped(w, h) for b in item.labels.boxes]
    return sv.Detections(xyxy=np.array([b.xyxy for b in boxes], dtype=np.float64),
                         class_id=np.array([index[b.label] for b in boxes], dtype=int))
