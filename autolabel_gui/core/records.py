"""The values the stores keep: an image's identity, and what the human decided about proposals.

Plain data, free of SQLite and of any model, so the undo/redo review model and the stores
share them without one importing the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from autolabel_gui.core.boxes import Box, BoxState

ACCEPTED = "accepted"
EDITED = "edited"
REJECTED = "rejected"
RESULTS: tuple[str, ...] = (ACCEPTED, EDITED, REJECTED)
"""What the human did with a proposal, as ``Outcome.result`` spells it."""


@dataclass(frozen=True, slots=True)
class ImageKey:
    """An image's identity: a changed file (size or mtime) is a different image to the cache."""

    relpath: str
    size: int
    mtime_ns: int

    @classmethod
    def from_path(cls, root: Path | str, rel: str) -> ImageKey:
        """Stat ``root/rel``; raises OSError when the file is gone or unreadable."""
        st = os.stat(Path(root) / rel)
        return cls(rel, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the human did with one proposal (or a box they drew: score None), for prompt stats."""

    label: str
    score: float | None
    result: str  # accepted | edited | rejected

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(f"outcome result must be accepted, edited or rejected, not {self.result!r}")


@dataclass(slots=True)
class ReviewRecord:
    """Review state that is not a box in the VOC file: rejected proposals must never come back."""

    run_id: str
    rejected: list[Box] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    verified_classes: list[str] | None = None
    """The class list when the image was last saved verified (None: not known, e.g. verified by
    another tool or before this was kept): a class added since may be missing from its file."""
    accepted_by_rule: str | None = None
    """Its file was accepted by a rule, unseen (``app.accept_rule.Provenance.text``)."""

    def without_accepted(self) -> ReviewRecord:
        """This record once its VOC file is gone: the accepted proposals were in that file, so
        they are no longer decided (they come back for review); rejections still stand. A rule's
        outcomes go with its file: no person decided them (they are left out of the statistics)."""
        outcomes = list(self.outcomes) if self.accepted_by_rule is None else []  # a rule's: nobody decided them
        return ReviewRecord(self.run_id, [b for b in self.rejected if b.state is not BoxState.ACCEPTED],
                            outcomes, None)
