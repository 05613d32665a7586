"""The question asked when a save finds the image saved by someone else since it was opened.

Nothing is lost whatever the answer (``app.conflicts``): our version is already in the
conflicts folder, and keeping ours or merging first copies theirs there too.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from autolabel_gui.app.conflicts import Conflict, ConflictChoice
from autolabel_gui.gui.choice_box import choose


def ask_conflict(parent: QWidget | None, conflict: Conflict) -> ConflictChoice:
    """Keep theirs / Keep mine / Merge both; closing the box keeps theirs (nothing overwritten)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Saved by someone else",
                      f"{conflict.who} saved {conflict.rel} {conflict.when}, after you opened it.", parent=parent)
    box.setInformativeText(
        f"Theirs: {len(conflict.theirs.boxes)} box(es){', verified' if conflict.theirs.verified else ''}. "
        f"Yours: {len(conflict.mine.boxes)} box(es){', verified' if conflict.mine.verified else ''}.\n\n"
        f"Your version was not written over theirs; a copy is in\n{conflict.mine_copy}\n\n"
        "Keep theirs drops your edits (the copy stays). Keep mine writes yours (theirs is copied "
        "aside first). Merge both keeps their boxes and yours, each object once.")
    return choose(box, [("Keep theirs", QMessageBox.ButtonRole.RejectRole, ConflictChoice.THEIRS),
                        ("Keep mine", QMessageBox.ButtonRole.DestructiveRole, ConflictChoice.MINE),
                        ("Merge both", QMessageBox.ButtonRole.AcceptRole, ConflictChoice.MERGE)],
                  default=ConflictChoice.MERGE, escape=ConflictChoice.THEIRS)
