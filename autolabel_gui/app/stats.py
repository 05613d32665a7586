"""A folder's report: boxes per class, images per review status, and how well the prompts work.

The acceptance rate and the mean score of accepted vs rejected proposals tell the annotator
whether to change a prompt or the threshold; the counts tell them how far the work has come.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from autolabel_gui.app.status import REVIEW_STATUSES, Status, is_prelabel_file, verified_before
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import RESULTS, ReviewRecord
from autolabel_gui.detection.run_plan import RunPlan
from autolabel_gui.formats.voc import AnnotationError, read_voc

STATUSES: tuple[str, ...] = tuple(s.value for s in REVIEW_STATUSES)


@dataclass(slots=True)
class ClassCount:
    boxes_verified: int = 0
    boxes_unverified: int = 0
    images: int = 0


@dataclass(slots=True)
class FolderStats:
    images: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    classes: dict[str, ClassCount] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    mean_scores: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(RESULTS))
    drawn: int = 0
    """Boxes the human drew (outcomes with no score): not proposals, so kept out of the rates."""
    problems: list[str] = field(default_factory=list)
    negatives: int = 0
    """Verified images with no boxes: reviewed, and nothing of any class is in them."""
    verified_before: dict[str, int] = field(default_factory=dict)
    """Class -> verified images whose verification predates it (their files may miss it)."""


def compute_stats(folder: ImageFolder, classes: list[str], cache: ProposalCache | None = None,
                  run: RunPlan | str | None = None) -> FolderStats:
    """Count from the VOC files (the human's work) and the cache (proposals and review outcomes).

    ``classes`` fixes the row order; classes found only in VOC files follow, sorted. An image
    is "proposals ready" when the cache holds proposals for ``run`` (the current model and
    prompts: a ``RunPlan``, or one cache run id; None: of any model, what ``stats`` reports, since
    a run id depends on the model files and hardware of whoever asks), or when its VOC file is a
    pre-label ``label`` wrote. Unreadable VOC files are listed in ``problems`` and counted as in review.
    """
    stats = FolderStats(images=len(folder.images), classes={c: ClassCount() for c in classes})
    if cache is None:
        ready: set[str] = set()
    elif run is None:
        ready = cache.relpaths_with_proposals()
    else:
        ready = run.cached_relpaths(cache) if isinstance(run, RunPlan) else cache.cached_relpaths(run)
    extra: dict[str, ClassCount] = {}
    prelabels = cache.output_digests() if cache is not None else set()
    for rel in folder.images:
        voc = folder.voc_path(rel)
        if not voc.exists() or is_prelabel_file(voc, prelabels):
            stats.statuses[(Status.PROPOSALS if rel in ready or voc.exists() else Status.NEW).value] += 1
            continue
        try:
            labels = read_voc(voc)
        except AnnotationError as exc:
            stats.problems.append(str(exc))
            stats.statuses[Status.IN_REVIEW.value] += 1
            continue
        status = (Status.VERIFIED if labels.verified
                  else Status.RULE_ACCEPTED if labels.accepted_by_rule else Status.IN_REVIEW)
        stats.statuses[status.value] += 1
        if labels.verified and not labels.boxes:
            stats.negatives += 1
        per_class = Counter(b.label for b in labels.boxes)
        for name, n in per_class.items():
            count = stats.classes.get(name) or extra.setdefault(name, ClassCount())
            count.images += 1
            if labels.verified:
                count.boxes_verified += n
            else:
                count.boxes_unverified += n
    stats.classes.update(sorted(extra.items()))
    if cache is not None:
        records = list(cache.iter_reviews())
        _add_outcomes(stats, records)
        seen = {rel: r.verified_classes for rel, r in records if r.verified_classes is not None}
        stale = verified_before(folder, seen, classes)
        stats.verified_before = dict(Counter(c for added in stale.values() for c in added))
    return stats


def _add_outcomes(stats: FolderStats, records: list[tuple[str, ReviewRecord]]) -> None:
    """Outcomes of proposals only: boxes the human drew (score None) say nothing about prompts,
    and a rule's acceptances say nothing a person decided."""
    scores: dict[str, list[float]] = {r: [] for r in RESULTS}
    for _rel, record in records:
        if record.accepted_by_rule is not None:
            continue
        for outcome in record.outcomes:
            if outcome.score is None:
                stats.drawn += 1
                continue
            stats.outcomes[outcome.result] += 1
            scores[outcome.result].append(outcome.score)
    for result, values in scores.items():
        stats.mean_scores[result] = sum(values) / len(values) if values else None


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-align the first column, right-align the numbers."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = (str(c).rjust(w) for c, w in zip(cells[1:], widths[1:]))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_stats(stats: FolderStats) -> str:
    """The report as aligned text tables, the way ``autolabel-gui stats`` prints it."""
    parts: list[str] = []
    total = stats.images or 1
    parts.append(format_table(
        ["status", "images", "share"],
        [[s, str(n), f"{100 * n / total:.1f}%"] for s, n in stats.statuses.items()]
        + [["total", str(stats.images), "100.0%" if stats.images else "-"]]))
    verified = stats.statuses.get(Status.VERIFIED.value, 0)
    parts.append(f"negatives: {stats.negatives} of the {verified} verified images have no objects")
    by_rule = stats.statuses.get(Status.RULE_ACCEPTED.value, 0)
    if by_rule:
        parts.append(f"accepted by rule: {by_rule} image{'s' if by_rule != 1 else ''} accepted unseen after an audit "
                     "(not verified by a person; their files say which rule and audit)")
    rows = [[name, str(c.boxes_verified), str(c.boxes_unverified), str(c.images)]
            for name, c in stats.classes.items()]
    rows.append(["total", str(sum(c.boxes_verified for c in stats.classes.values())),
                 str(sum(c.boxes_unverified for c in stats.classes.values())), ""])
    parts.append(format_table(["class", "boxes verified", "boxes in review", "images"], rows))
    reviewed = sum(stats.outcomes.values()) or 1
    parts.append(format_table(
        ["proposals", "count", "share", "mean score"],
        [[r, str(stats.outcomes[r]), f"{100 * stats.outcomes[r] / reviewed:.1f}%",
          "-" if stats.mean_scores[r] is None else f"{stats.mean_scores[r]:.3f}"] for r in RESULTS]
        + [["drawn by hand", str(stats.drawn), "", ""]]))
    for name, n in stats.verified_before.items():
        parts.append(f"verified before '{name}' was added: {n} image{'s' if n != 1 else ''} (they may miss "
                     f"{name}; the window's file list filters them)")
    if stats.problems:
        parts.append("unreadable annotation files:\n" + "\n".join(f"  {p}" for p in stats.problems))
    return "\n\n".join(parts) + "\n"
