"""The closest known names to one that does not exist ("did you mean etp-PHA3A-101?").

Shared by every check that meets an unknown name: roles, cohorts, platform folders, keys
and choices in declarations, and course shortnames or cohort idnumbers in plans.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's ratio is 2*matches/total length: 0.6 keeps one- or two-letter typos and case
# slips of short names, and drops names that merely share a prefix such as "man-".
CUTOFF = 0.6


def closest(name: str, known: Iterable[str], limit: int = 3) -> list[str]:
    """Up to ``limit`` names of ``known`` nearest to ``name``, best first.

    Compared without regard to case (``ETP-pha3a-101`` finds ``etp-PHA3A-101``); returns the
    known spelling. An exact match is not a suggestion: it returns ``[]`` for a known name.
    """
    by_folded: dict[str, str] = {}
    for candidate in known:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = name.casefold()
    if name in by_folded.values():
        return []
    matches = difflib.get_close_matches(folded, list(by_folded), n=limit, cutoff=CUTOFF)
    return [by_folded[m] for m in matches]


def did_you_mean(name: str, known: Iterable[str], limit: int = 3) -> str:
    """``"did you mean X?"``, ``"did you mean X or Y?"``, ``"did you mean X, Y or Z?"``; or
    ``""`` when nothing is close enough. Meant to end a message after ``"; "``."""
    found = closest(name, known, limit)
    if not found:
        return ""
    listed = found[0] if len(found) == 1 else ", ".join(found[:-1]) + " or " + found[-1]
    return f"did you mean {listed}?"


def with_suggestion(message: str, name: str, known: Iterable[str]) -> str:
    """``message`` followed by ``"; did you mean …?"`` when a known name is close."""
    hint = did_you_mean(name, known)
    return f"{message}; {hint}" if hint else message
