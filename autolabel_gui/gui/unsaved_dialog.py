"""The question asked when a folder is closed while some images could not be saved.

Their edits exist only in memory (the disk is full or read-only), so closing silently would
lose them. The annotator can free space and retry, give those edits up, or keep working.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from PySide6.QtWidgets import QMessageBox, QWidget

from autolabel_gui.gui.choice_box import choose

SHOWN = 8
"""Files named in the message itself; the rest are in the details."""


class UnsavedChoice(enum.Enum):
    RETRY = "retry"
    DISCARD = "discard"
    CANCEL = "cancel"


def images_text(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


def unsaved_text(failed: Mapping[str, str]) -> str:
    """One line per image whose save failed: the file and the reason (as the save reported it)."""
    lines = [failed[rel] for rel in sorted(failed)]
    if len(lines) > SHOWN:
        lines = lines[:SHOWN] + [f"… and {len(lines) - SHOWN} more (see the details)"]
    return "\n".join(lines)


def ask_unsaved(parent: QWidget | None, failed: Mapping[str, str], action: str) -> UnsavedChoice:
    """Ask what to do about ``failed`` (image -> why its save failed) before ``action``
    ("Quit", "Close the folder"); closing the box counts as Cancel."""
    count = images_text(len(failed))
    box = QMessageBox(QMessageBox.Icon.Warning, "Edits not saved",
                      f"The edits of {count} could not be saved:", parent=parent)
    box.setInformativeText(unsaved_text(failed) + "\n\nFree some space or make the folder writable, "
                           "then Retry.")
    box.setDetailedText("\n".join(failed[rel] for rel in sorted(failed)))
    those = "that image" if len(failed) == 1 else f"those {count}"
    return choose(box, [("Retry", QMessageBox.ButtonRole.AcceptRole, UnsavedChoice.RETRY),
                        (f"{action} without saving {those}", QMessageBox.ButtonRole.DestructiveRole,
                         UnsavedChoice.DISCARD),
                        (QMessageBox.StandardButton.Cancel, None, UnsavedChoice.CANCEL)],
                  default=UnsavedChoice.RETRY, escape=UnsavedChoice.CANCEL)
