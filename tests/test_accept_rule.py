"""Review by exception (issue 24): the confidence order, a rule's match count, the audit's exact
bound, and a batch from audit to undo on a real folder, without a window."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from autolabel_gui.app.accept_rule import AcceptRule, Audit, audit_sample, changed, default_audit_size, upper_bound
from autolabel_gui.app.confidence import Band, ConfidenceIndex, Scores, scores_of
from autolabel_gui.app.project import ProjectSettings
from autolabel_gui.app.rule_batch import RuleRun
from autolabel_gui.app.stats import compute_stats, format_stats
from autolabel_gui.app.status import Status, annotation_status
from autolabel_gui.core.boxes import Box, BoxState, ImageLabels
from autolabel_gui.core.cache import ProposalCache
from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.records import ImageKey
from autolabel_gui.formats.export import export_dataset
from autolabel_gui.formats.voc import parse_voc, read_voc, voc_bytes, write_voc
from lxml import etree
from scipy.stats import beta

from tests.fixtures.images import ImageSpec, write_image
from tests.fixtures.review import Recorder, annotator_review, review_of

SETTINGS = ProjectSettings(classes=["dog", "cat"], box_threshold=0.35)


def _box(x: float, label: str, score: float) -> Box:
    return Box(x, 10, x + 20, 40, label, score, BoxState.PROPOSED)


# ---------------------------------------------------------------- confidence


def test_bands_order_and_range_follow_the_scores() -> None:
    index = ConfidenceIndex(["sure.png", "unsure.png", "edge.png", "empty.png", "waiting.png", "mid.png"], {
        "sure.png": [_box(0, "dog", 0.95), _box(30, "cat", 0.1)],
        "unsure.png": [_box(0, "dog", 0.9), _box(30, "cat", 0.7)],
        "edge.png": [_box(0, "dog", 0.8), _box(30, "cat", 0.3)],
        "empty.png": [],
        "waiting.png": None,
        "mid.png": [_box(0, "dog", 0.55)],
    }.get)
    assert index.scores["edge.png"].band(0.3, 0.8) is Band.CONFIDENT  # the edges are sure
    assert index.counts() == {Band.AMBIGUOUS: 2, Band.CONFIDENT: 2, Band.EMPTY: 1, Band.WAITING: 1}
    # unsure first, the most hesitant (0.55, the band's middle) before 0.7; waiting last
    assert index.order() == ["mid.png", "unsure.png", "sure.png", "edge.png", "empty.png", "waiting.png"]
    assert index.in_range(0.5, 0.75) == ["unsure.png", "mid.png"]
    assert scores_of("a", [_box(0, "dog", 0.9), _box(0, "dog", 0.4)]).caption(0.35) == "2 boxes, min 0.40"
    assert Scores("a", None).caption(0.35) == "waiting"


# ---------------------------------------------------------------- the rule and its audit


def _brute_match(scores: tuple[float, ...] | None, high: float, low: float, min_boxes: int) -> bool:
    if scores is None:
        return False
    if sum(s >= high for s in scores) < min_boxes:
        return False
    return not [s for s in scores if low < s < high]


def test_match_count_equals_a_brute_force_count() -> None:
    rng = random.Random(3)
    images = [f"{i}.png" for i in range(400)]
    boxes = {rel: None if i % 37 == 0 else [_box(0, "dog", round(rng.random(), 2)) for _ in range(rng.randint(0, 5))]
             for i, rel in enumerate(images)}
    index = ConfidenceIndex(images, boxes.get)
    for high, low, min_boxes in [(0.8, 0.3, 1), (0.5, 0.5 - 1e-9, 0), (0.9, 0.1, 2), (0.61, 0.6, 1)]:
        rule = AcceptRule(high, low, min_boxes)
        expected = sum(_brute_match(None if b is None else tuple(1.0 if x.score is None else x.score for x in b),
                                    high, low, min_boxes) for b in boxes.values())
        assert sum(rule.matches(index.scores[rel]) for rel in images) == expected
        assert expected > 0


def _reference_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """The p at which P(X <= k; n, p) = 1 - confidence, by bisection on the binomial CDF."""
    if k == n:
        return 1.0

    def cdf(p: float) -> float:
        return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1))

    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > 1 - confidence else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 20), (1, 20), (3, 20), (0, 5), (7, 9), (9, 9), (2, 150)])
def test_audit_bound_equals_an_exact_binomial_reference(k: int, n: int) -> None:
    assert upper_bound(k, n) == pytest.approx(_reference_bound(k, n), abs=1e-9)
    assert upper_bound(k, n) == pytest.approx(float(beta.ppf(0.95, k + 1, n - k)) if k < n else 1.0, abs=1e-9)
    if k == 0:
        assert upper_bound(k, n) == pytest.approx(1 - 0.05 ** (1 / n))  # the closed form
    assert upper_bound(0, 0) == 1.0


def test_the_sample_is_the_seeds_and_the_default_size_is_twenty_at_most() -> None:
    matches = [f"{i}.png" for i in range(50)]
    assert audit_sample(matches, 20, 7) == audit_sample(list(reversed(matches)), 20, 7)
    assert audit_sample(matches, 20, 7) != audit_sample(matches, 20, 8)
    assert len(set(audit_sample(matches, 20, 7))) == 20
    assert default_audit_size(50) == 20 and default_audit_size(6) == 6
    assert AcceptRule().problem(0.35) is None
    assert "threshold" in (AcceptRule(0.8, 0.3).problem(0.25) or "")


def test_changed_means_any_add_delete_move_or_class_change() -> None:
    shown = [_box(0, "dog", 0.9), _box(40, "cat", 0.85)]
    saved = [Box(b.x0, b.y0, b.x1, b.y1, b.label) for b in shown]
    assert not changed(shown, saved)
    assert not changed(shown, [Box(0.4, 10, 20.6, 40, "dog"), saved[1]])  # VOC's pixel rounding
    assert changed(shown, saved[:1])
    assert changed(shown, [*saved, Box(80, 0, 90, 9, "dog")])
    assert changed(shown, [Box(5, 10, 25, 40, "dog"), saved[1]])
    assert changed(shown, [Box(0, 10, 20, 40, "cat"), saved[1]])


# ---------------------------------------------------------------- the VOC file


def test_a_rule_accepted_file_says_so_and_labelimg_still_reads_it() -> None:
    labels = ImageLabels.for_image(Path("/x/a.png"), 120, 80, [Box(0, 10, 20, 40, "dog")],
                                   accepted_by_rule="accepted by rule (every proposal >= 0.80), batch b1")
    data = voc_bytes(labels)
    root = etree.fromstring(data)
    assert root.get("verified") is None  # never presented as human-verified
    assert "batch b1" in root.findtext("autolabel_accepted_by_rule")
    # labelImg's PascalVocReader: filename, verified, and per object name, difficult, bndbox ints
    assert root.findtext("filename") == "a.png"
    obj = root.find("object")
    assert obj.findtext("name") == "dog" and int(obj.findtext("difficult")) == 0
    assert [int(float(obj.findtext(f"bndbox/{t}"))) for t in ("xmin", "ymin", "xmax", "ymax")] == [1, 11, 20, 40]
    back = parse_voc(data)
    assert back.accepted_by_rule == labels.accepted_by_rule and not back.verified
    verified = ImageLabels.for_image(Path("/x/a.png"), 120, 80, [], verified=True, accepted_by_rule="r")
    assert b"autolabel_accepted_by_rule" not in voc_bytes(verified)


# ---------------------------------------------------------------- a batch on a folder


def _folder(tmp_path: Path, sure: int, unsure: int) -> ImageFolder:
    """``sure`` images whose proposals all score >= 0.9, then ``unsure`` ones with a 0.6 box."""
    cache = ProposalCache.for_folder(tmp_path)
    run = SETTINGS.run_plan().groups[0].run_id
    for i in range(sure + unsure):
        rel = f"{i:02d}.png"
        write_image(tmp_path / rel, ImageSpec(size=(120, 80), color=(i * 5, 90, 90)))
        boxes = [_box(5, "dog", 0.92), _box(60, "cat", 0.1)] + ([_box(40, "cat", 0.6)] if i >= sure else [])
        cache.put(ImageKey.from_path(tmp_path, rel), run, boxes)
    cache.close()
    return ImageFolder(tmp_path)


def _audit_all(review, audit: Audit, change: set[str]) -> None:
    """Review each audit image as a person would: delete the dog in ``change``, Space."""
    while not audit.finished:
        assert review.current in audit.sample and review.banner().text.startswith("audit ")
        if review.current in change:
            review.edit(lambda s: (s.select(0), s.delete_selected()))
        review.accept_all_and_next()


def test_a_batch_from_rule_to_undo(tmp_path: Path) -> None:
    folder = _folder(tmp_path, sure=10, unsure=3)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    rule = AcceptRule(0.8, 0.3, 1)
    assert run.matches(rule) == [f"{i:02d}.png" for i in range(10)]
    assert run.index.counts()[Band.AMBIGUOUS] == 3
    finished = []
    review.audit_done = finished.append
    audit = run.start_audit(rule, 4, seed=11)
    assert audit.sample == audit_sample(run.matches(rule), 4, 11)
    assert review.current == audit.sample[0]
    rest = audit.rest()
    with pytest.raises(ValueError):
        run.apply()
    _audit_all(review, audit, {audit.sample[1]})
    assert finished == [audit] and audit.changed_count == 1
    assert audit.result_text().startswith(f"1 of 4 changed; error rate <= {100 * upper_bound(1, 4):.1f}% (95%)")
    for rel in rest:  # nothing accepted while the audit ran
        assert not folder.voc_path(rel).exists()
    batch = run.apply()
    assert sorted(batch.written) == sorted(rest) and not batch.skipped
    for rel in rest:
        labels = read_voc(folder.voc_path(rel))
        assert not labels.verified and labels.accepted_by_rule is not None
        assert "audit 1 of 4 changed" in labels.accepted_by_rule and [b.label for b in labels.boxes] == ["dog"]
        assert review.statuses.status_of(rel) is Status.RULE_ACCEPTED
        assert annotation_status(folder.voc_path(rel), True) is Status.RULE_ACCEPTED
        assert review.cache.get_review(rel).accepted_by_rule == labels.accepted_by_rule
    for rel in audit.sample:
        assert read_voc(folder.voc_path(rel)).verified
    saved = json.loads((folder.state_dir / "rule-batches" / f"{audit.batch}.json").read_text())
    assert saved["provenance"]["seed"] == 11 and sorted(saved["written"]) == sorted(rest)

    # stats counts them apart; export leaves them out unless asked
    stats = compute_stats(folder, SETTINGS.classes, review.cache)
    assert stats.statuses["accepted by rule"] == len(rest) and stats.statuses["verified"] == 4
    assert "accepted by rule: 6 images" in format_stats(stats)
    plain = export_dataset(folder, "yolo", tmp_path.parent / "out-plain", SETTINGS.classes)
    both = export_dataset(folder, "yolo", tmp_path.parent / "out-both", SETTINGS.classes, include_by_rule=True)
    assert (plain.images, plain.by_rule, plain.by_rule_left_out) == (4, 0, 6)
    assert (both.images, both.by_rule, both.by_rule_left_out) == (10, 6, 0)

    # next unverified skips them, yet any can be re-opened and verified by a person
    review.go_to(folder.images[0] if folder.images[0] not in rest else folder.images[10])
    review.next_unverified()
    assert review.current not in rest
    edited, verified = rest[0], rest[1]
    review.go_to(edited)
    review.edit(lambda s: s.move_selected(3, 0) if s.select(0) is None else None)
    review.go_to(verified)
    review.accept_all_and_next()
    assert read_voc(folder.voc_path(verified)).verified
    assert read_voc(folder.voc_path(edited)).accepted_by_rule is None  # a person changed it

    undone = run.undo(batch)
    assert sorted(undone.left) == sorted([edited, verified])
    assert sorted(undone.removed) == sorted(set(rest) - {edited, verified})
    for rel in undone.removed:
        assert not folder.voc_path(rel).exists() and review.statuses.status_of(rel) is Status.PROPOSALS
    assert read_voc(folder.voc_path(verified)).verified


def test_the_batch_never_writes_over_another_annotators_image(tmp_path: Path) -> None:
    folder = _folder(tmp_path, sure=4, unsure=0)
    alice = annotator_review(folder, SETTINGS, "alice", 1)
    bob = annotator_review(folder, SETTINGS, "bob", 2)
    bob.start("03.png")  # bob holds 03.png
    alice.start("00.png")
    run = RuleRun(alice)
    assert "03.png" not in run.matches(AcceptRule())
    audit = run.start_audit(AcceptRule(), 1, seed=1)
    _audit_all(alice, audit, set())
    meanwhile = next(rel for rel in audit.rest() if rel != alice.current)
    theirs = ImageLabels.for_image(folder.image_path(meanwhile), 120, 80, [Box(1, 1, 9, 9, "cat")], verified=True)
    write_voc(folder.voc_path(meanwhile), theirs)  # carol verified it from another tool meanwhile
    batch = run.apply()
    assert "03.png" not in batch.written and not folder.voc_path("03.png").exists()
    assert meanwhile in batch.skipped
    kept = read_voc(folder.voc_path(meanwhile))
    assert kept.verified and [b.label for b in kept.boxes] == ["cat"]
    bob.close()
    alice.close()


def test_cancel_accepts_nothing_and_keeps_the_audited_verification(tmp_path: Path) -> None:
    folder = _folder(tmp_path, sure=5, unsure=1)
    review = review_of(folder, SETTINGS)
    review.start()
    run = RuleRun(review)
    audit = run.start_audit(AcceptRule(), 2, seed=5)
    _audit_all(review, audit, set())
    run.cancel()
    assert review.audit is None and review.order is None
    written = sorted(p.name for p in tmp_path.glob("*.xml"))
    assert written == sorted(Path(rel).with_suffix(".xml").name for rel in audit.sample)
    assert isinstance(review.listener, Recorder) and not review.listener.errors
