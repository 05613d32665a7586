"""What a change of the class list costs, said before it runs: "bottle: 46 images to detect".

Qt-free: the Settings dialog's and the class picker's confirmation, and the tests, read the same
figures. A change costs model time only for its new prompt groups (``detection.run_plan``): a
class added, or one whose prompt changed (its old group is read again too); a removed class
costs nothing (its proposals are left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autolabel_gui.app.project import ProjectSettings, plan_of
from autolabel_gui.core.cache import ProposalCache


@dataclass(frozen=True, slots=True)
class GroupCost:
    """One prompt group the model has still to read: its classes and the images it lacks."""

    classes: tuple[str, ...]
    images: int


@dataclass(frozen=True, slots=True)
class ClassChange:
    """The difference between two class lists and what it costs on this folder."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    to_detect: tuple[GroupCost, ...]
    seconds_per_image: float | None

    @property
    def images_to_detect(self) -> int:
        return sum(g.images for g in self.to_detect)

    def text(self) -> str:
        """One line per part of the change, as the confirmation shows it."""
        lines = []
        for group in self.to_detect:
            names = ", ".join(group.classes)
            what = "this class" if len(group.classes) == 1 else "these classes"
            lines.append(f"{names}: {group.images} image{'s' if group.images != 1 else ''} to detect for {what}, "
                         f"{_duration(group.images, self.seconds_per_image)}")
        if self.removed:
            lines.append(f"{', '.join(self.removed)}: removed; its proposals are left out, nothing to detect")
        if not lines:
            lines.append("nothing to detect: every proposal of the new list is already computed")
        lines.append("Every proposal computed so far stays on screen and reviewable.")
        return "\n".join(lines)


def _duration(images: int, seconds_per_image: float | None) -> str:
    if images == 0:
        return "nothing to wait for"
    if seconds_per_image is None:
        return "time unknown until the model has run on an image here"
    minutes = images * seconds_per_image / 60
    return f"about {max(1, round(minutes))} minute{'s' if round(minutes) > 1 else ''} here"


def class_change(old: ProjectSettings, new: ProjectSettings, images: Sequence[str], cache: ProposalCache | None,
                 seconds_per_image: float | None) -> ClassChange:
    """The cost of moving ``images`` from ``old``'s class list to ``new``'s (same model)."""
    added = tuple(c for c in new.classes if c not in old.classes)
    removed = tuple(c for c in old.classes if c not in new.classes)
    old_plan, new_plan = plan_of(old), plan_of(new)
    costs: list[GroupCost] = []
    if new_plan is not None:
        known = {g.run_id for g in old_plan.groups} if old_plan is not None else set()
        for group in new_plan.groups:
            if group.run_id in known:
                continue
            count = len(images) if cache is None else new_plan.to_detect(cache, images, group)
            shown = tuple(n for n in group.ontology.names if n in new.classes)
            costs.append(GroupCost(shown or tuple(group.ontology.names), count))
    return ClassChange(added, removed, tuple(costs), seconds_per_image)
