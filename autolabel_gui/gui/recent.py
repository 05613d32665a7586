"""File ▸ Open recent: the folders this user reviewed last, most recent first.

The list is the user's, not a folder's, so it lives in the user's QSettings. A folder that is
gone (an unplugged disk, a deleted copy) is dropped from the list when the menu opens rather
than offered and then refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QMenu, QWidget

KEY = "recent_folders"
LIMIT = 8
RECENT_TITLE = "Open recent"


def pushed(recent: list[str], folder: str, limit: int = LIMIT) -> list[str]:
    """``recent`` with ``folder`` first, once, and at most ``limit`` entries."""
    return [folder, *(f for f in recent if f != folder)][:limit]


def existing(recent: list[str], is_dir: Callable[[Path], bool] = Path.is_dir) -> list[str]:
    """The entries of ``recent`` that are still folders, in order."""
    return [f for f in recent if is_dir(Path(f))]


def recent_folders(qsettings: QSettings) -> list[str]:
    """The remembered folders as stored (QSettings gives a lone string for a one-item list)."""
    value = qsettings.value(KEY, [])
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value] if isinstance(value, list) else []


def remember_folder(qsettings: QSettings, folder: Path) -> None:
    """``folder`` was opened: it goes to the top of the list."""
    qsettings.setValue(KEY, pushed(recent_folders(qsettings), str(Path(folder).resolve())))


class RecentMenu(QMenu):
    """Lists the remembered folders each time it opens; choosing one emits ``folder_chosen``."""

    folder_chosen = Signal(object)  # Path

    def __init__(self, qsettings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(RECENT_TITLE, parent)
        self.setObjectName("recent_menu")
        self._qsettings = qsettings
        self.aboutToShow.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the entries, forgetting folders that no longer exist."""
        stored = recent_folders(self._qsettings)
        folders = existing(stored)
        if folders != stored:
            self._qsettings.setValue(KEY, folders)
        self.clear()
        for folder in folders:
            action = self.addAction(folder)
            action.triggered.connect(lambda _checked=False, f=folder: self.folder_chosen.emit(Path(f)))
        if not folders:
            self.addAction("No recent folders").setEnabled(False)
