"""Accept by rule with a measured audit, without Qt (issue 24; ADR 0018).

The user states a rule ("every proposal >= 0.8 or <= 0.3, at least one box") and sees how many
images match before anything happens. A random audit sample of the matches (a seeded RNG; the
seed is recorded) is reviewed as usual; an audited image "changed" when the boxes saved differ
from the proposals shown (a box added, deleted, moved or given another class). The error rate's
exact one-sided 95% upper bound (Clopper-Pearson) is shown before the rest are accepted: "k of
n changed; error rate <= p (95%)". Nothing else is accepted while the audit runs.

The rest are written through ``FolderReview.accept_by_rule`` (the one save path: leases,
conflicts, atomic writes), never marked verified: their VOC files and review records carry the
provenance (``Provenance.text``). A ``Batch`` lists what it wrote (sha256 per file), so undoing
it removes exactly those files, and only while nobody changed them since.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autolabel_gui.app.confidence import DEFAULT_HIGH, DEFAULT_LOW, Scores
from autolabel_gui.core.atomic import atomic_write_text, make_dir_like_parent
from autolabel_gui.core.boxes import Box

CONFIDENCE = 0.95
DEFAULT_AUDIT = 20
BATCHES_DIR = "rule-batches"
"""Under the folder's ``.autolabel``: one JSON file per batch (what it wrote, its audit)."""
SAME_BOX_PX = 1.0
"""A saved box within a pixel of a proposal is that proposal (VOC rounds corners to pixels)."""


@dataclass(frozen=True, slots=True)
class AcceptRule:
    """Every proposal scores ``>= high`` or ``<= low``, and at least ``min_boxes`` score ``>= high``."""

    high: float = DEFAULT_HIGH
    low: float = DEFAULT_LOW
    min_boxes: int = 1

    def problem(self, threshold: float) -> str | None:
        """Why this rule cannot be applied at the score ``threshold`` (accepted = shown boxes),
        or None: the boxes it accepts must be exactly those ``>= high``."""
        if not 0 <= self.low < self.high <= 1:
            return f"the rule needs 0 <= low < high <= 1 (low {self.low:.2f}, high {self.high:.2f})"
        if not self.low < threshold <= self.high:
            return (f"the score threshold ({threshold:.2f}) must lie above low ({self.low:.2f}) and at most "
                    f"high ({self.high:.2f}): the boxes accepted are those shown")
        if self.min_boxes < 0:
            return "at least a negative number of boxes makes no sense"
        return None

    def matches(self, scores: Scores) -> bool:
        if scores.scores is None:
            return False
        sure = sum(1 for s in scores.scores if s >= self.high)
        return sure >= self.min_boxes and all(s >= self.high or s <= self.low for s in scores.scores)

    @property
    def text(self) -> str:
        boxes = f", at least {self.min_boxes} box{'es' if self.min_boxes != 1 else ''}" if self.min_boxes else ""
        return f"every proposal >= {self.high:.2f} or <= {self.low:.2f}{boxes}"


def upper_bound(changed: int, audited: int, confidence: float = CONFIDENCE) -> float:
    """The exact (Clopper-Pearson) one-sided upper bound of the error rate after ``changed`` of
    ``audited`` images needed a change: the p at which seeing so few has probability 1 - confidence.

    Bisection on the binomial CDF in log space (no scipy on the window's import path; exact to
    1e-12 for audits of any size)."""
    if audited <= 0:
        return 1.0
    if not 0 <= changed <= audited:
        raise ValueError(f"{changed} changed of {audited} audited")
    if changed == audited:
        return 1.0
    lo, hi = 0.0, 1.0
    while hi - lo > 1e-12:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _binomial_cdf(changed, audited, mid) > 1 - confidence else (lo, mid)
    return (lo + hi) / 2


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), 0 < p < 1, summed in log space (n in the thousands)."""
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    return sum(math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
               for i in range(k + 1))


def audit_sample(matches: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` of ``matches`` drawn with ``random.Random(seed)`` (the same seed gives the same sample)."""
    return random.Random(seed).sample(sorted(matches), max(0, min(size, len(matches))))


def default_audit_size(matches: int) -> int:
    return min(DEFAULT_AUDIT, matches)


def changed(proposed: Iterable[Box], saved: Iterable[Box]) -> bool:
    """The saved boxes differ from the proposals shown: one added, deleted, moved or relabelled."""
    left = list(proposed)
    for box in saved:
        same = next((p for p in left if p.label == box.label
                     and all(abs(a - b) <= SAME_BOX_PX for a, b in zip(p.xyxy, box.xyxy))), None)
        if same is None:
            return True
        left.remove(same)
    return bool(left)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a rule-accepted file says about itself (VOC element, review record, ``stats``)."""

    batch: str
    rule: str
    seed: int
    audited: int
    changed: int
    bound: float

    @property
    def text(self) -> str:
        return (f"accepted by rule ({self.rule}), batch {self.batch}; audit {self.changed} of {self.audited} "
                f"changed, error rate <= {self.bound:.3f} ({CONFIDENCE:.0%}); not verified by a person")


@dataclass(slots=True)
class Batch:
    """One accept-by-rule batch: its audit and every file it wrote (rel -> sha256)."""

    provenance: Provenance
    written: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Matches not accepted -> why (held by another annotator, verified meanwhile, a save failed)."""
    audit: dict[str, bool] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def save(self, state_dir: Path) -> Path:
        """Kept beside the folder's other state, atomically: the trail of what was accepted unseen."""
        folder = make_dir_like_parent(state_dir / BATCHES_DIR, within=state_dir.parent)
        path = folder / f"{self.provenance.batch}.json"
        atomic_write_text(path, json.dumps(asdict(self), indent=1, ensure_ascii=False))
        return path


class Audit:
    """The audit of one rule: its matches, the sample reviewed as usual, what the reviews changed."""

    def __init__(self, rule: AcceptRule, matches: Sequence[str], size: int, seed: int | None = None) -> None:
        self.rule = rule
        self.matches = list(matches)
        self.seed = secrets.randbits(32) if seed is None else seed
        self.sample = audit_sample(self.matches, size, self.seed)
        self.results: dict[str, bool] = {}
        """Audited images reviewed so far -> whether the review changed the proposals."""
        self.dropped: dict[str, str] = {}
        """Sampled images that can no longer be audited (unreadable, changed since the rule matched
        them, accepted by another batch) -> why: left out of the sample and of the batch."""
        self.batch = f"{time.strftime('%Y%m%d-%H%M%S')}-{self.seed:08x}"

    @property
    def finished(self) -> bool:
        return len(self.results) == len(self.sample)

    def remaining(self) -> list[str]:
        return [rel for rel in self.sample if rel not in self.results]

    def record(self, rel: str, was_changed: bool) -> bool:
        """An audited image was verified; False when it is not in the sample."""
        if rel not in self.sample:
            return False
        self.results[rel] = was_changed
        return True

    def drop(self, rel: str, why: str) -> bool:
        """``rel`` can no longer be audited: out of the sample (and of the batch); False when it
        was not waiting in the sample."""
        if rel not in self.sample or rel in self.results:
            return False
        self.sample.remove(rel)
        self.dropped[rel] = why
        return True

    @property
    def changed_count(self) -> int:
        return sum(self.results.values())

    def bound(self) -> float:
        return upper_bound(self.changed_count, len(self.results))

    def banner(self) -> str:
        """The canvas line while the audit runs: "audit 3/20"."""
        return f"audit {len(self.results) + 1}/{len(self.sample)}: review as usual (rule {self.rule.text})"

    def result_text(self) -> str:
        n = len(self.results)
        rest = len(self.rest())
        left = (f" ({len(self.dropped)} sampled image{'s' if len(self.dropped) != 1 else ''} left out: "
                f"{'; '.join(sorted(set(self.dropped.values())))})" if self.dropped else "")
        return (f"{self.changed_count} of {n} changed{left}; error rate <= {100 * self.bound():.1f}% "
                f"({CONFIDENCE:.0%}). Accept the other {rest} matching image{'s' if rest != 1 else ''} by rule?")

    def rest(self) -> list[str]:
        """The matches the audit did not review: what the batch accepts."""
        audited = set(self.sample) | set(self.dropped)
        return [rel for rel in self.matches if rel not in audited]

    def provenance(self) -> Provenance:
        return Provenance(self.batch, self.rule.text, self.seed, len(self.results), self.changed_count,
                          round(self.bound(), 4))
