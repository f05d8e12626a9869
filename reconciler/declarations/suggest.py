"""Closest known names for a name that matches none ("did you mean etp-PHA3A-101?").

Shared by every check that meets an unknown name: roles, cohorts, keys, choices and
platform folders in declarations; course shortnames and cohort idnumbers in
merge-request plans.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's ratio is 2*matches/total length: 0.6 keeps one- or two-letter typos and case
# slips of short names, and drops names that merely share a prefix such as "man-".
CUTOFF = 0.6


def closest(name: str, known: Iterable[str], count: int = 3, cutoff: float = CUTOFF) -> list[str]:
    """Up to ``count`` names of ``known`` that look most like ``name``, best first.

    Takes any iterable of strings (duplicates are ignored) and compares them regardless of
    case (``ETP-pha3a-101`` finds ``etp-PHA3A-101``), returning the known spelling; returns
    an empty list when nothing is close enough (``difflib`` ratio under ``cutoff``, 0 to 1)
    or when ``name`` itself is known.
    """
    by_folded: dict[str, str] = {}
    for candidate in sorted(set(known)):
        if candidate == name:
            return []
        by_folded.setdefault(candidate.casefold(), candidate)
    matches = difflib.get_close_matches(name.casefold(), list(by_folded), n=count, cutoff=cutoff)
    return [by_folded[m] for m in matches]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean A, B or C?)`` to append to a message, or ``""`` when nothing is
    close."""
    matches = closest(name, known)
    if not matches:
        return ""
    listed = matches[0] if len(matches) == 1 else ", ".join(matches[:-1]) + " or " + matches[-1]
    return f" (did you mean {listed}?)"
