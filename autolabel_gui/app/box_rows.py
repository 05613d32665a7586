"""The boxes panel's rows: what each shown box of the image is, in words, without Qt.

One row per box the canvas draws (``ReviewState.visible_indices``), in Tab order, so a row and
a box are the same thing to click, and the panel never lists a box no key can reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.review import Origin, ReviewState


@dataclass(frozen=True, slots=True)
class BoxRow:
    index: int
    """The box's index in ``ReviewState.items`` (what the canvas and the keys use)."""
    label: str
    score: str
    """The model's score as proposed ("0.87"), empty for a box drawn or read from a file."""
    state: str
    """proposed (pending), accepted (a proposal said yes to), drawn, or file (already saved)."""
    flags: tuple[str, ...]
    """The VOC flags set ("difficult", "truncated")."""


FLAG_TAGS = {"difficult": "diff", "truncated": "trunc"}
"""How the box's tag and the panel name the VOC flags (short: the tag must stay small)."""


def flag_names(box: Box) -> list[str]:
    """The VOC flags set on ``box``, as VOC names them."""
    return [name for name, on in (("difficult", box.difficult), ("truncated", box.truncated)) if on]


def flag_tags(flags: Iterable[str]) -> str:
    """The flags as the box's tag shows them: "diff trunc"."""
    return " ".join(FLAG_TAGS[name] for name in flags)


def _state_text(state: ReviewState, index: int) -> str:
    item = state.items[index]
    if item.pending:
        return "proposed"
    return {Origin.PROPOSAL: "accepted", Origin.DRAWN: "drawn", Origin.FILE: "file"}[item.origin]


def box_rows(state: ReviewState | None) -> list[BoxRow]:
    if state is None:
        return []
    rows = []
    for i in state.visible_indices():
        box = state.items[i].box
        rows.append(BoxRow(i, box.label or "?", "" if box.score is None else f"{box.score:.2f}",
                           _state_text(state, i), tuple(flag_names(box))))
    return rows
