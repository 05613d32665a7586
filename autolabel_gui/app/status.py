"""Where an image is in the review, for the file list, ``stats`` and "next unverified"."""

from __future__ import annotations

import enum
import re
from pathlib import Path


class Status(str, enum.Enum):
    """Where an image is in the review, as the file list shows it."""

    NEW = "new"
    PROPOSALS = "proposals ready"
    IN_REVIEW = "in review"
    VERIFIED = "verified"
    UNREADABLE = "cannot be read"
    """The image itself does not decode (the window found out; files alone cannot say)."""


REVIEW_STATUSES: tuple[Status, ...] = (Status.NEW, Status.PROPOSALS, Status.IN_REVIEW, Status.VERIFIED)
"""The statuses the annotation files and the cache give; ``stats`` counts these."""


_VERIFIED = re.compile(rb"<annotation\b[^>]*\bverified\s*=\s*[\"']yes[\"']", re.IGNORECASE)
_HEAD_BYTES = 4096


def annotation_status(voc_path: Path, has_proposals: bool) -> Status:
    """Status from the VOC file's first bytes (``verified`` sits on the root element), so a
    folder of 100,000 images gets its statuses without parsing 100,000 XML documents."""
    try:
        with open(voc_path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except FileNotFoundError:
        return Status.PROPOSALS if has_proposals else Status.NEW
    except OSError:
        return Status.IN_REVIEW
    return Status.VERIFIED if _VERIFIED.search(head) else Status.IN_REVIEW
