"""Which image the annotator was on in each folder, so reopening the folder goes on from there.

This is the user's state, not the project's: it lives in the user's QSettings, never in
``FOLDER/.autolabel/project.json`` (which travels with the folder to other annotators). The key
is a digest of the folder's absolute path because QSettings reads ``/`` and ``\\`` in a key as
sub-groups and the Windows registry limits key length; the path itself is stored beside it, so
a digest collision can never open another folder's image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QSettings

GROUP = "resume"


def _folder_key(root: Path) -> tuple[str, str]:
    path = str(Path(root).resolve())
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return f"{GROUP}/{digest}", path


def _remember(qsettings: QSettings, root: Path, name: str, value: str) -> None:
    key, path = _folder_key(root)
    qsettings.setValue(f"{key}/folder", path)
    qsettings.setValue(f"{key}/{name}", value)


def _remembered(qsettings: QSettings, root: Path, name: str) -> str | None:
    """The value kept for ``root`` under ``name``; None unless it was kept for this very path."""
    key, path = _folder_key(root)
    if qsettings.value(f"{key}/folder") != path:
        return None
    value = qsettings.value(f"{key}/{name}")
    return str(value) if value else None


def remember_image(qsettings: QSettings, root: Path, rel: str) -> None:
    """``rel`` is the image open in ``root`` now."""
    _remember(qsettings, root, "image", rel)


def remembered_image(qsettings: QSettings, root: Path) -> str | None:
    """The image that was open when ``root`` was last reviewed, if any."""
    return _remembered(qsettings, root, "image")


def remember_annotations(qsettings: QSettings, root: Path, folder: Path) -> None:
    """VOC files of ``root`` go to ``folder`` (chosen because ``root`` is read-only, so the
    choice cannot be kept in the folder's own settings)."""
    _remember(qsettings, root, "annotations", str(folder))


def remembered_annotations(qsettings: QSettings, root: Path) -> str | None:
    """The annotation folder chosen for ``root`` in this user's settings, if any."""
    return _remembered(qsettings, root, "annotations")
