"""Which cached proposals make up "this model with these classes": one cache run per prompt group.

A folder's class list grows while people review it. Caching the proposals of the whole class list
under one run id (the old way) threw every proposal away when one class was added. Here the
classes are cut into prompt groups (``app.project.ProjectSettings.prompt_groups``): the first
group is the class list the folder started with, and each change adds a group with only the new
classes. Each group is its own cache run (``run_id_for`` of the group alone), and the captions the
model reads never mix two groups (``Ontology.group_starts``), so a group's proposals are the same
whether it is detected alone or with others: per-class NMS never crosses classes, so the union of
the groups' proposals is exactly one detection with those captions. A class removed from the list
stays in its group's caption (retired) and its proposals are left out when reading, so nothing
else is recomputed. See docs/decisions/0013-prompt-groups.md.

Torch-free: the window, ``stats`` and the cache's readers use it without loading a model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from autolabel_gui.core.boxes import Box
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.ontology import ClassSpec, Ontology
from autolabel_gui.core.records import ImageKey
from autolabel_gui.detection.base import DetectorConfig
from autolabel_gui.detection.ids import run_id_for


@dataclass(frozen=True, slots=True)
class PromptGroup:
    """Classes read together in the model's captions, and the cache run of their proposals."""

    ontology: Ontology
    run_id: str

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.ontology.names)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The prompt groups of a folder under one model, and the classes currently in its list."""

    groups: tuple[PromptGroup, ...]
    active: tuple[str, ...]

    @classmethod
    def build(cls, config: DetectorConfig, groups: Sequence[Sequence[ClassSpec]],
              active: Iterable[str]) -> RunPlan:
        """The plan of ``groups`` for the classes ``active``; a group none of whose classes is
        active is left out: its proposals would all be dropped, so the model never runs it (a
        folder's file naming hundreds of such groups must not cost hundreds of passes)."""
        active = tuple(active)
        built = tuple(PromptGroup(o, run_id_for(config, o)) for o in (Ontology(tuple(g)) for g in groups if g)
                      if set(o.names) & set(active))
        return cls(built, active)

    @classmethod
    def single(cls, config: DetectorConfig, ontology: Ontology) -> RunPlan:
        """One group of the whole ontology: the run of a folder whose class list never changed."""
        return cls.build(config, [ontology.classes] if len(ontology) else [], ontology.names)

    @property
    def id(self) -> str:
        """One id for the whole plan (review records, reports): a folder whose class list never
        changed keeps the run id it always had."""
        if len(self.groups) == 1 and set(self.groups[0].ontology.names) == set(self.active):
            return self.groups[0].run_id
        payload = {"groups": [g.run_id for g in self.groups], "active": sorted(self.active)}
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]

    def detection_ontology(self, groups: Sequence[PromptGroup] | None = None) -> Ontology:
        """The classes the model reads for ``groups`` (all by default), captions cut per group."""
        chosen = self.groups if groups is None else tuple(groups)
        specs: list[ClassSpec] = []
        starts: list[int] = []
        for group in chosen:
            starts.append(len(specs))
            specs.extend(group.ontology.classes)
        return Ontology(tuple(specs), tuple(starts[1:]))

    def group_of(self, label: str) -> PromptGroup | None:
        for group in self.groups:
            if label in group.names:
                return group
        return None

    def split(self, boxes: Iterable[Box], groups: Sequence[PromptGroup]) -> list[list[Box]]:
        """A detection of ``detection_ontology(groups)`` cut into each group's proposals."""
        index = {name: k for k, g in enumerate(groups) for name in g.names}
        out: list[list[Box]] = [[] for _ in groups]
        for box in boxes:
            k = index.get(box.label)
            if k is not None:
                out[k].append(box)
        return out

    def merge(self, per_group: Iterable[Sequence[Box]]) -> list[Box]:
        """The proposals of every group, without those of classes no longer in the list."""
        active = set(self.active)
        return [b for boxes in per_group for b in boxes if b.label in active]

    # -- the cache, seen through the plan -----------------------------------------------------

    def fetch(self, cache: ProposalCache, key: ImageKey) -> list[list[Box] | None]:
        """Each group's cached proposals for this file (None: the model has not run it yet)."""
        return [cache.get(key, g.run_id) for g in self.groups]

    @staticmethod
    def complete(have: list[list[Box] | None]) -> list[list[Box]] | None:
        """``fetch``'s answer when no group is missing, else None."""
        return None if any(got is None for got in have) else [got for got in have if got is not None]

    def lookup(self, cache: ProposalCache, key: ImageKey) -> list[Box] | None:
        """Every group's proposals for this file, or None while one group is missing."""
        per_group = self.complete(self.fetch(cache, key))
        return None if per_group is None else self.merge(per_group)

    def store(self, cache: ProposalCache, key: ImageKey, have: list[list[Box] | None],
              boxes: Iterable[Box]) -> list[list[Box]]:
        """Commit a detection of the groups missing from ``have`` (``fetch``), one cache row per
        group; returns every group's proposals, for ``merge``."""
        missing = [g for g, got in zip(self.groups, have) if got is None]
        found = iter(self.split(boxes, missing))
        complete: list[list[Box]] = []
        for group, got in zip(self.groups, have):
            if got is None:
                got = next(found)
                cache.put(key, group.run_id, got)
            complete.append(got)
        return complete

    def cached_relpaths(self, cache: ProposalCache) -> set[str]:
        """Images with proposals of every group (file identity not re-checked)."""
        if not self.groups:
            return set()
        sets = [cache.cached_relpaths(g.run_id) for g in self.groups]
        return set.intersection(*sets)

    def to_detect(self, cache: ProposalCache, relpaths: Iterable[str], group: PromptGroup) -> int:
        """How many of ``relpaths`` still need ``group`` (for "bottle: 46 images to detect")."""
        have = cache.cached_relpaths(group.run_id)
        return sum(1 for rel in relpaths if rel not in have)
