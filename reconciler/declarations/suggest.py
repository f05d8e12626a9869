"""Closest known names for a name that matches none ("did you mean etp-PHA3A-101?")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str], count: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``count`` names of ``known`` that look most like ``name``, best first.

    Takes any iterable of strings (duplicates are ignored); returns an empty list when
    nothing is close enough (``difflib`` ratio under ``cutoff``, 0 to 1)."""
    return difflib.get_close_matches(name, sorted(set(known)), n=count, cutoff=cutoff)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean A, B or C?)`` to append to a message, or ``""`` when nothing is
    close."""
    matches = closest(name, known)
    if not matches:
        return ""
    listed = matches[0] if len(matches) == 1 else ", ".join(matches[:-1]) + " or " + matches[-1]
    return f" (did you mean {listed}?)"
