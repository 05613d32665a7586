"""Every image of an open folder with its review status and where the model is with it, without Qt.

A folder of 100,000 images must open at once: statuses are filled in batches (``scan_batch``,
driven by the file list's timer: a stat and a read up to the first object per image that has a
VOC file), and a row asked for before its batch is scanned on the spot. The file list (``gui/file_list.py``) and the
grid only read from here; ``app.folder_review`` writes what the review changes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from autolabel_gui.app.status import Status, annotation_status

SCAN_BATCH = 2000
"""Statuses scanned per ``scan_batch``: a few milliseconds of work, so the window never freezes."""


class ModelMark(enum.Enum):
    """Where the model is with one image (the file list greys or reddens the name)."""

    READY = "proposals ready"
    WAITING = "waiting for the model"
    FAILED = "detection failed"


class ImageStatuses:
    """Statuses of ``images`` in folder order, counts, and the marks shown beside them.

    ``voc_path(rel)``: where the image's VOC file is; ``done`` and ``failed``: the model's live
    progress (``ModelProgress.done`` / ``.failed``, the same objects); ``prelabels``: digests of
    the VOC files ``label`` wrote (``app.status.annotation_status``).
    """

    def __init__(self, images: Sequence[str], voc_path: Callable[[str], Path], done: Collection[str],
                 failed: Mapping[str, str], prelabels: Collection[str] = ()) -> None:
        self.images = images
        self._row = {rel: i for i, rel in enumerate(images)}
        self._voc_path = voc_path
        self.done = done
        self.failed = failed
        self.prelabels = prelabels
        self.predates: dict[str, list[str]] = {}
        """Verified images -> the classes added since their verification (``app.status.verified_before``)."""
        self.held: dict[str, str] = {}
        """Images other annotators hold -> "held by alice@laptop-2 since 14:02"."""
        self.unreadable: dict[str, str] = {}
        self._status: list[Status | None] = [None] * len(images)
        self._counts = dict.fromkeys(Status, 0)
        self._scanned = 0

    def __len__(self) -> int:
        return len(self.images)

    def row_of(self, rel: str | None) -> int:
        return -1 if rel is None else self._row.get(rel, -1)

    def status(self, row: int) -> Status:
        status = self._status[row]
        return status if status is not None else self._scan(row)

    def status_of(self, rel: str) -> Status | None:
        row = self._row.get(rel)
        return None if row is None else self.status(row)

    def set(self, rel: str, status: Status) -> bool:
        """An image's status changed in the review; True when that changes what is shown."""
        row = self._row.get(rel)
        if row is None or self._status[row] == status:
            return False
        old = self._status[row]
        if old is not None:
            self._counts[old] -= 1
        self._counts[status] += 1
        self._status[row] = status
        return True

    def rescan(self, rel: str) -> None:
        """``rel``'s file changed outside the review's saves (a batch undone): read its status again."""
        row = self._row.get(rel)
        if row is not None:
            self.set(rel, annotation_status(self._voc_path(rel), rel in self.done, self.prelabels))

    def mark_proposals(self, rel: str) -> None:
        """Proposals arrived: a new image becomes "proposals ready" (others keep their status)."""
        if self.status_of(rel) is Status.NEW:
            self.set(rel, Status.PROPOSALS)

    def set_unreadable(self, rel: str, reason: str) -> bool:
        """The image does not decode: "cannot be read", with ``reason`` in the tooltip."""
        if rel not in self._row:
            return False
        self.unreadable[rel] = reason
        self.set(rel, Status.UNREADABLE)
        return True

    def model_mark(self, rel: str) -> ModelMark:
        if rel in self.failed:
            return ModelMark.FAILED
        return ModelMark.READY if rel in self.done else ModelMark.WAITING

    def tooltip(self, rel: str) -> str:
        """Who holds it, the review status, then the model's: waiting, proposals ready, or why it failed."""
        status = self.status(self._row[rel])
        text = status.value if status is not Status.UNREADABLE else f"cannot be read: {self.unreadable.get(rel, '')}"
        if rel in self.predates:
            text += " before " + ", ".join(f"'{c}'" for c in self.predates[rel]) + " was added"
        held = f"{self.held[rel]}; " if rel in self.held else ""
        mark = self.model_mark(rel)
        if mark is ModelMark.FAILED:
            return f"{held}{text}; detection failed: {self.failed[rel]}"
        return f"{held}{text}; {mark.value}"

    def counts(self) -> dict[Status, int]:
        return dict(self._counts)

    @property
    def scanned(self) -> int:
        return self._scanned

    def scan_batch(self) -> tuple[int, int]:
        """Fill in the next batch of statuses; returns the rows it covered, [first, end)."""
        first = self._scanned
        end = min(first + SCAN_BATCH, len(self.images))
        for row in range(first, end):
            if self._status[row] is None:
                self._scan(row)
        self._scanned = end
        return first, end

    def next_row(self, start: int, direction: int, want: Callable[[str, Status], bool]) -> int:
        """The next row after ``start`` (no wrap) whose image and status ``want`` accepts, or -1."""
        row = start + direction
        while 0 <= row < len(self.images):
            if want(self.images[row], self.status(row)):
                return row
            row += direction
        return -1

    def _scan(self, row: int) -> Status:
        rel = self.images[row]
        status = annotation_status(self._voc_path(rel), rel in self.done, self.prelabels)
        self._status[row] = status
        self._counts[status] += 1
        return status
