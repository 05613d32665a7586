"""JSON from a file someone may have written by hand (or to hurt), parsed only when shallow.

Python's ``json`` parser recurses once per nesting level: 100,000 ``[`` in a 1 MB file raise
RecursionError (or, on a thread with a small stack, crash the process) before any check of the
result can run. ``loads_shallow`` counts the nesting first, in one pass without recursion.
"""

from __future__ import annotations

import json
import re

_SPECIAL = re.compile(r'[\[\]{}"\\]')
"""The only characters the count looks at; each is visited once (no backtracking)."""


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text``, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for match in _SPECIAL.finditer(text):
        at = match.start()
        if at == escaped_at:
            continue
        char = text[at]
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads_shallow(text: str, max_depth: int) -> object:
    """``json.loads(text)``, refused (ValueError) when arrays and objects nest deeper than
    ``max_depth``."""
    if nesting_depth(text) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    return json.loads(text)
