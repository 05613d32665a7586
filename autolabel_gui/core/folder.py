"""The images of one folder: recursive listing in natural order and where each one's VOC file lives.

Listing uses ``os.scandir`` (the directory entry already says file or folder, so no ``stat``
per image) because annotators open folders with 100,000 frames. Anything that would stop a
listing (a symlink loop, a sub-folder we may not read, a broken link) is skipped and described
in ``ImageFolder.problems`` so the window can show it without refusing the whole folder.

A folder someone handed over may hold links that lead out of it (``sub -> ../elsewhere``, or
``ann/sub -> /any/dir`` in its annotation folder): a sub-folder that leads out is not listed,
and a VOC path that leads out is refused (``checked_voc_path``), so a save never lands there.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp"}
)
"""Lower-case suffixes (with the dot) that Pillow and OpenCV both decode."""

STATE_DIR = ".autolabel"
"""The hidden folder in ``root`` that holds our settings and proposal cache."""


def is_inside(path: Path | str, root: Path | str) -> bool:
    """``path`` is ``root`` or in it once links are followed: a link in a folder someone handed
    over must not make the tool read its settings from, or write, anywhere else."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # a link loop
        return False


def _resolved(path: Path) -> Path | None:
    """``path`` with links followed; None for a link loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


class LeadsOutside(PermissionError):
    """A path that a link makes lead out of the folder it must stay in: nothing is written there."""

    def __init__(self, path: Path | str, root: Path | str) -> None:
        super().__init__(errno.EACCES, f"{path} leads outside {root} (a symbolic link); not written there", str(path))

    def __str__(self) -> str:
        return str(self.strerror)


def require_inside(path: Path | str, root: Path | str) -> None:
    """``LeadsOutside`` unless ``path`` lies inside ``root`` once links are followed."""
    if not is_inside(path, root):
        raise LeadsOutside(path, root)


_DIGITS = re.compile(r"(\d+)")


def natural_key(s: str) -> tuple[tuple[str | int, ...], str]:
    """Sort key that puts ``img2`` before ``img10`` and ignores case.

    ``re.split`` with a capture group alternates text and digits starting with text, so the
    parts line up by type when two keys are compared. The original string breaks ties
    (``a01`` vs ``a1``, ``A`` vs ``a``) so the order never depends on the listing order.
    """
    parts: list[str | int] = _DIGITS.split(s.casefold())
    for i in range(1, len(parts), 2):
        parts[i] = int(parts[i])
    return tuple(parts), s


def _is_utf8(name: str) -> bool:
    """False for a name ``os`` decoded with surrogate escapes (bytes that are not UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(name: str) -> str:
    """``name`` with undecodable bytes shown as ``\\xff``: printable, never raising."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_PathKey = tuple[tuple[tuple[str | int, ...], str], ...]
"""Natural keys component by component, so ``a/2.jpg`` sorts before ``a/10.jpg`` and ``a b.jpg``."""


def _xml_name(rel: str) -> str:
    """``sub/x.jpg`` -> ``sub/x.xml`` (string work: PurePosixPath costs seconds on 100k files)."""
    ext = os.path.splitext(rel)[1]
    return (rel[: -len(ext)] if ext else rel) + ".xml"


class ImageFolder:
    """The images under ``root`` (recursive) and the VOC file that belongs to each.

    ``annotations`` is an optional separate folder for the XML files; sub-folders of ``root``
    are mirrored inside it. Without it each XML file lies next to its image, as labelImg does.
    """

    def __init__(self, root: Path | str, annotations: Path | str | None = None) -> None:
        self.root = Path(root)
        self._annotations_at_open: Path | None = None
        self.annotations = Path(annotations) if annotations is not None else None
        if not self.root.is_dir():
            reason = "does not exist" if not self.root.exists() else "is not a folder"
            raise NotADirectoryError(f"{self.root}: {reason}")
        self.images: list[str] = []
        self.problems: list[str] = []
        self._xml_names: dict[str, str] = {}
        self._shared_stems: dict[str, list[str]] = {}
        self.rescan()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def annotations(self) -> Path | None:
        return self._annotations

    @annotations.setter
    def annotations(self, path: Path | None) -> None:
        """Also remembers where it leads now: one outside ``root`` was chosen on this machine (the
        window, ``--annotations``, ``app.project``); a link swapped in later is not."""
        self._annotations = path
        self._annotations_at_open = _resolved(path) if path is not None else None

    @property
    def state_dir(self) -> Path:
        """Where this folder's settings and proposal cache live."""
        return self.root / STATE_DIR

    def rescan(self) -> None:
        """List the folder again (images added or removed since opening)."""
        problems: list[str] = []
        keyed = self._walk(problems)
        keyed.sort()
        images = [rel for _, rel in keyed]
        self._xml_names = self._annotation_names(images, problems)
        self._shared_stems = self._stem_groups(images)
        problems.extend(self._annotation_links_out(images))
        self.images = images
        self.problems = sorted(problems, key=natural_key)

    def image_path(self, rel: str) -> Path:
        return self.root / rel

    @property
    def voc_root(self) -> Path:
        """Where the VOC files go: the annotation folder chosen on this machine, or ``root``."""
        return self.annotations if self.annotations is not None else self.root

    def voc_path(self, rel: str) -> Path:
        """The VOC file of image ``rel``: same stem + ``.xml``, beside it or mirrored under ``annotations``."""
        return self.voc_root / (self._xml_names.get(rel) or _xml_name(rel))

    def images_sharing_stem(self, rel: str) -> list[str]:
        """The images of ``rel``'s folder with its name but for the extension, ``rel`` included
        (``a.jpg``, ``a.png``); empty when ``rel`` is the only one. A side file named by the
        stem (YOLO's ``a.txt``) cannot say which of them it belongs to."""
        return list(self._shared_stems.get(_xml_name(rel)[:-4], ()))

    @staticmethod
    def _stem_groups(images: list[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rel in images:
            groups.setdefault(_xml_name(rel)[:-4], []).append(rel)
        return {stem: rels for stem, rels in groups.items() if len(rels) > 1}

    def checked_voc_path(self, rel: str) -> Path:
        """``voc_path(rel)``, once its folder is sure to lie inside ``voc_root`` with links
        followed: ``LeadsOutside`` naming it otherwise. Every write of a VOC file goes through here."""
        path = self.voc_path(rel)
        require_inside(path.parent, self.checked_voc_root())
        return path

    def checked_voc_root(self) -> Path:
        """``voc_root``, once it is sure to lead inside ``root`` or where the annotation folder
        led when it was chosen (the folder opened, or another folder picked): ``LeadsOutside``
        otherwise (``ann`` swapped for a link out of the folder by someone else meanwhile).
        Every write under it (VOC files, save notes, conflict copies) goes through here."""
        if self.annotations is None or is_inside(self.annotations, self.root):
            return self.voc_root
        at_open = self._annotations_at_open
        if at_open is None or _resolved(self.annotations) != at_open:
            raise LeadsOutside(self.annotations, self.root)
        return self.voc_root

    def _annotation_links_out(self, images: list[str]) -> list[str]:
        """One problem per annotation sub-folder that leads out of ``voc_root`` (checked once per
        sub-folder, not per image): its images' VOC files cannot be written."""
        if self.annotations is None:
            return []  # beside the images: every listed sub-folder is inside ``root``
        counts: dict[str, int] = {}
        for rel in images:
            sub = rel.rpartition("/")[0]
            counts[sub] = counts.get(sub, 0) + 1
        return [f"{self.annotations / sub}: leads outside the annotation folder (a symbolic link); the VOC "
                f"files of its {n} image(s) are not written there"
                for sub, n in counts.items() if sub and not is_inside(self.annotations / sub, self.annotations)]

    def _walk(self, problems: list[str]) -> list[tuple[_PathKey, str]]:
        """Depth-first walk; a folder reached twice (symlink loop or alias) is listed only once.

        Linked folders are visited after every real one, so an alias never hides the real path.
        Each image comes back with its sort key; a folder's key is computed once, not per image.
        """
        images: list[tuple[_PathKey, str]] = []
        root_real = self.root.resolve()
        root_stat = self.root.stat()
        seen: set[tuple[int, int]] = {(root_stat.st_dev, root_stat.st_ino)}
        stack: list[tuple[str, str, _PathKey]] = [(str(self.root), "", ())]
        linked: list[tuple[str, str, _PathKey, tuple[int, int]]] = []
        while stack or linked:
            if stack:
                path, prefix, dir_key = stack.pop()
            else:
                path, prefix, dir_key, ident = linked.pop(0)
                if not Path(os.path.realpath(path)).is_relative_to(root_real):
                    problems.append(f"{prefix.rstrip('/')}: folder skipped, it is a link that leads outside the "
                                    f"folder (to {os.path.realpath(path)}); nothing in it is listed or written")
                    continue
                if ident in seen:
                    problems.append(f"{prefix.rstrip('/')}: folder skipped, it links to a folder already listed "
                                    "(symlink loop or alias)")
                    continue
                seen.add(ident)
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except OSError as exc:
                where = prefix.rstrip("/") or "."
                problems.append(f"{where}: folder skipped, cannot be read ({exc.strerror or exc})")
                continue
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                rel = prefix + name
                is_image = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
                if not _is_utf8(name):
                    if is_image or entry.is_dir():
                        problems.append(f"{printable_name(rel)}: skipped, its name is not valid UTF-8 "
                                        "(it cannot be written into a label file or a dataset; rename it)")
                    continue
                try:
                    if entry.is_dir():
                        st = entry.stat()
                        ident = (st.st_dev, st.st_ino)
                        sub_key = (*dir_key, natural_key(name))
                        if entry.is_symlink():
                            linked.append((entry.path, rel + "/", sub_key, ident))
                        elif ident not in seen:
                            seen.add(ident)
                            stack.append((entry.path, rel + "/", sub_key))
                    elif is_image:
                        if entry.is_file():
                            images.append(((*dir_key, natural_key(name)), rel))
                        elif entry.is_symlink():
                            problems.append(f"{rel}: skipped, broken link")
                except OSError as exc:
                    problems.append(f"{rel}: skipped ({exc.strerror or exc})")
        return images

    @staticmethod
    def _annotation_names(images: list[str], problems: list[str]) -> dict[str, str]:
        """Give every image its own XML name, case-insensitively, whatever names the folder holds.

        First every image that can have ``stem.xml`` (what labelImg expects) gets it, the first
        in natural order winning a shared stem (``x.jpg`` before ``x.png``); only then do the
        others get ``x.png.xml``, or ``x.png~2.xml``... when that is taken too (by the image
        ``x.png.jpg``, say). Natural names go first so that adding an image to a folder never
        takes an existing image's file away from it.
        """
        taken: dict[str, str] = {}
        later: list[str] = []
        for rel in images:
            key = _xml_name(rel).casefold()
            if key in taken:
                later.append(rel)
            else:
                taken[key] = rel
        renamed: dict[str, str] = {}
        for rel in later:
            base, n = rel, 1
            candidate = base + ".xml"
            while candidate.casefold() in taken:
                n += 1
                candidate = f"{base}~{n}.xml"
            taken[candidate.casefold()] = rel
            renamed[rel] = candidate
            owner = taken[_xml_name(rel).casefold()]
            problems.append(f"{rel}: shares its name with {owner}, its boxes go to {candidate}")
        return renamed
