"""Which boxes the annotator chose to see: classes switched off, and all / pending / accepted.

A view, not a decision: it changes what is drawn and what the keys reach (Tab, Space, Ctrl+S),
never a box. It is kept apart from the score threshold on purpose. The threshold is a judgement
of the model ("below this it is noise"), so an image is verified without the proposals under it;
this filter only clears the screen, so while it hides a pending proposal nobody has looked at it
and the image cannot be verified (``ReviewState.verify_blocker``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from autolabel_gui.core.boxes import Box, BoxState


class Show(str, enum.Enum):
    """Which boxes are shown by their review state (V cycles in this order)."""

    ALL = "all"
    PENDING = "pending"
    ACCEPTED = "accepted"

    @property
    def text(self) -> str:
        """How the status bar names it."""
        return _SHOW_TEXT[self]


_SHOW_TEXT = {Show.ALL: "all boxes", Show.PENDING: "only pending proposals", Show.ACCEPTED: "only accepted boxes"}


@dataclass(frozen=True, slots=True)
class ViewFilter:
    """Classes hidden by name (a name, not a position: the filter survives a change of the
    class list) and which review states are shown."""

    hidden: frozenset[str] = frozenset()
    show: Show = Show.ALL

    @property
    def active(self) -> bool:
        """Something is hidden by this filter."""
        return bool(self.hidden) or self.show is not Show.ALL

    @property
    def text(self) -> str:
        """The filter in words: "only pending proposals; cat, dog switched off"."""
        parts = [] if self.show is Show.ALL else [self.show.text]
        if self.hidden:
            parts.append(f"{', '.join(sorted(self.hidden))} switched off")
        return "; ".join(parts) or "all boxes"

    def shows(self, box: Box) -> bool:
        if box.label in self.hidden:
            return False
        if self.show is Show.PENDING:
            return box.state is BoxState.PROPOSED
        if self.show is Show.ACCEPTED:
            return box.state is BoxState.ACCEPTED
        return True

    def with_class(self, name: str, visible: bool) -> ViewFilter:
        hidden = self.hidden - {name} if visible else self.hidden | {name}
        return replace(self, hidden=frozenset(hidden))

    def next_show(self) -> ViewFilter:
        """V: all -> only pending -> only accepted -> all."""
        order = list(Show)
        return replace(self, show=order[(order.index(self.show) + 1) % len(order)])
