"""Questions to the history: when and why did this person leave (or join) this cohort or
course, and how did the last run of a platform end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .entries import CHANGE, RUN, order


@dataclass(frozen=True)
class Question:
    """Which changes to show: about ``username`` (in the change's usernames), ``cohort``
    (its cohort), ``course`` (its course, or a course that syncs its cohort), on
    ``platform``, at or after ``since`` (a UTC date); None means any."""

    username: str | None = None
    cohort: str | None = None
    course: str | None = None
    platform: str | None = None
    since: dt.date | None = None

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether the change ``entry`` answers this question."""
        if entry.get("type") != CHANGE:
            return False
        if self.platform and entry.get("platform") != self.platform:
            return False
        if self.since and str(entry.get("time", ""))[:10] < self.since.isoformat():
            return False
        if self.username and self.username.lower() not in (entry.get("usernames") or ()):
            return False
        if self.cohort and entry.get("cohort") != self.cohort:
            return False
        return not (
            self.course
            and entry.get("course") != self.course
            and self.course not in (entry.get("courses") or ())
        )


def changes(entries: Iterable[Mapping[str, Any]], question: Question) -> list[dict[str, Any]]:
    """The change entries answering ``question``, oldest first."""
    found = [dict(e) for e in entries if question.matches(e)]
    return sorted(found, key=order)


def last_run(entries: Iterable[Mapping[str, Any]], platform: str) -> dict[str, Any] | None:
    """The most recent run entry of ``platform``, or None."""
    runs = [e for e in entries if e.get("type") == RUN and e.get("platform") == platform]
    return dict(max(runs, key=order)) if runs else None


def merge(*sources: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries of several sources (the branch, the local spool), each id once, by time."""
    seen: dict[str, dict[str, Any]] = {}
    for source in sources:
        for entry in source:
            seen.setdefault(str(entry["id"]), dict(entry))
    return sorted(seen.values(), key=order)
