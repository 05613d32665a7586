"""Where an image is in the review, for the file list, ``stats`` and "next unverified"."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from autolabel_gui.core.folder import ImageFolder
from autolabel_gui.core.safe_read import SMALL_FILE_LIMIT, read_limited
from autolabel_gui.formats.voc import AnnotationError, read_provenance


class Status(str, enum.Enum):
    """Where an image is in the review, as the file list shows it."""

    NEW = "new"
    PROPOSALS = "proposals ready"
    IN_REVIEW = "in review"
    VERIFIED = "verified"
    RULE_ACCEPTED = "accepted by rule"
    """Accepted unseen by a rule after an audit (``app.accept_rule``): never counted as verified."""
    UNREADABLE = "cannot be read"
    """The image itself does not decode (the window found out; files alone cannot say)."""


REVIEW_STATUSES: tuple[Status, ...] = (Status.NEW, Status.PROPOSALS, Status.IN_REVIEW, Status.VERIFIED,
                                        Status.RULE_ACCEPTED)
"""The statuses the annotation files and the cache give; ``stats`` counts these."""


def annotation_status(voc_path: Path, has_proposals: bool, prelabels: Collection[str] = ()) -> Status:
    """Status from the VOC file read up to its first object (``formats.voc.read_provenance``:
    the parser's own rule, so the file list, stats and export call a file the same), so a
    folder of 100,000 images gets its statuses without parsing 100,000 whole documents.

    ``prelabels``: the sha256 of the files ``label --voc-dir`` wrote (the cache's output
    digests). Such a file, unchanged since, holds model proposals nobody has reviewed: "proposals
    ready", like an image with no file at all.
    """
    try:
        verified, by_rule = read_provenance(voc_path)  # a FIFO named a.xml must not hang the file list
    except FileNotFoundError:
        return Status.PROPOSALS if has_proposals else Status.NEW
    except AnnotationError:
        return Status.IN_REVIEW  # stats and export report it; the file list offers it for review
    if verified:
        return Status.VERIFIED
    if by_rule:
        return Status.RULE_ACCEPTED
    if is_prelabel_file(voc_path, prelabels):
        return Status.PROPOSALS
    return Status.IN_REVIEW


def is_prelabel_file(voc_path: Path, prelabels: Collection[str]) -> bool:
    """The file is byte for byte one ``label`` wrote (its digest among ``prelabels``); read
    and hashed only when ``label`` wrote anything."""
    if not prelabels:
        return False
    try:
        return hashlib.sha256(read_limited(voc_path, SMALL_FILE_LIMIT)).hexdigest() in prelabels
    except OSError:
        return False


def verified_before(folder: ImageFolder, verified_classes: Mapping[str, Sequence[str]],
                    classes: Sequence[str]) -> dict[str, list[str]]:
    """Verified images whose last verification predates classes of ``classes`` -> those
    classes: their files may miss objects of them. ``verified_classes``: image -> the class list
    its last verification saw (``ProposalCache.verified_classes``; images verified elsewhere,
    with no record, are not known)."""
    out: dict[str, list[str]] = {}
    for rel, seen in verified_classes.items():
        added = [c for c in classes if c not in seen]
        if added and annotation_status(folder.voc_path(rel), False) is Status.VERIFIED:
            out[rel] = added
    return out
