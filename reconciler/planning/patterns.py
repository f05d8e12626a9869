"""Course patterns meet Moodle: which courses each matches today, and the syncs that makes.

A pattern (``cohorts/<platform>/patterns/<name>.yaml``) declares syncs once for every course
whose shortname matches its glob and/or that sits in its category. ``expand_patterns`` turns
it into ordinary :class:`DesiredSync` entries, one per matching course, so that everything
downstream (groups, instances, failsafes, the applier) treats them as any declared sync: a
new matching course gets the syncs on the next plan, and a course that stops matching loses
them through the usual removal path (``sync_policy.on_removal``, counted by the failsafes).

The course's own file has the last word: its entry for the same cohort and role replaces the
pattern's in that course, and its ``exclude_patterns`` leaves the pattern out. When two
patterns give the same course, cohort and role, the first by name is used (``pattern-overlap``).

Nothing is ever removed on the strength of a match that could not be made: when the
categories cannot be read (the token's service lacks ``core_course_get_categories``, or
Moodle withholds category idnumbers from it) or the pattern's category is not found, the
pattern is *unresolved*: the reconciler's instances of its cohorts and roles are held as they
are (``DesiredState.held_syncs``) and the plan says why (``pattern-unresolved``).

Pure: (desired, actual) -> desired.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..declarations.patterns import glob_matches, is_excluded
from .state import ActualState, DesiredPattern, DesiredState, DesiredSync


@dataclass(frozen=True)
class PatternMatch:
    """The courses one pattern matches in Moodle: ``courses`` (shortnames, sorted), those its
    ``exclude`` globs left out, or ``unresolved`` (why no match could be made)."""

    courses: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    unresolved: str | None = None


def _category_ids(pattern: DesiredPattern, actual: ActualState) -> set[int] | str:
    """The ids of the categories whose courses the pattern takes, or why they are unknown."""
    if actual.categories is None:
        return "the course categories were not read"
    if actual.categories_problem:
        return actual.categories_problem
    found = [c for c in actual.categories.values() if c.idnumber == pattern.category]
    if not found:
        return f"Moodle has no course category with idnumber {pattern.category!r}"
    ids = {c.id for c in found}
    if pattern.subcategories:
        ids |= {c.id for c in actual.categories.values() if ids & set(c.path)}
    return ids


def match_pattern(pattern: DesiredPattern, actual: ActualState) -> PatternMatch:
    """The courses of ``actual`` (Moodle's, the site course excluded) that ``pattern``
    matches: shortname glob (whole shortname, case-sensitive), category (by idnumber, its
    subcategories when asked), both when both are given, minus its ``exclude`` globs."""
    in_categories: set[int] | None = None
    if pattern.category is not None:
        ids = _category_ids(pattern, actual)
        if isinstance(ids, str):
            return PatternMatch(unresolved=ids)
        in_categories = ids
    courses, excluded = [], []
    for shortname in sorted(actual.courses):
        if in_categories is not None and actual.course_categories.get(shortname) not in (
                in_categories):
            continue
        if not glob_matches(pattern.shortname, shortname):
            continue
        (excluded if is_excluded(pattern.exclude, shortname) else courses).append(shortname)
    return PatternMatch(tuple(courses), tuple(excluded))


def needs_categories(desired: DesiredState) -> bool:
    """Whether a pattern of ``desired`` selects courses by category (one bulk read then)."""
    return any(p.category is not None for p in desired.patterns)


def expand_patterns(desired: DesiredState, actual: ActualState) -> DesiredState:
    """``desired`` with each pattern's syncs added for every course it matches in
    ``actual`` (module docstring), its report in ``pattern_report``, its warnings in
    ``notices``, and the cohorts and roles of unresolved patterns in ``held_syncs``.
    Idempotent: an expanded state comes back as it is."""
    if desired.patterns_expanded:
        return desired
    own = {s.key: s.source for s in [*desired.syncs, *desired.expired_syncs]}
    taken: dict[tuple[str, str, str], str] = {}
    syncs: list[DesiredSync] = list(desired.syncs)
    notices = list(desired.notices)
    held = set(desired.held_syncs)
    unsafe = dict(desired.unsafe_names)
    report: list[dict[str, Any]] = []
    for pattern in sorted(desired.patterns, key=lambda p: p.name):
        match = match_pattern(pattern, actual)
        entry: dict[str, Any] = {
            "name": pattern.name, "rule": pattern.rule, "source": pattern.source,
            "owners": list(pattern.owners),
            "syncs": [{"cohort": s.cohort, "role": s.role} for s in pattern.syncs],
            "courses": [], "excluded": [], "overridden": [], "unresolved": match.unresolved,
        }
        report.append(entry)
        if match.unresolved is not None:
            held |= {(s.cohort, s.role) for s in pattern.syncs}
            notices.append((
                "pattern-unresolved",
                f"pattern {pattern.name} ({pattern.rule}): {match.unresolved}; the "
                "reconciler's syncs of its cohorts are left as they are in every course"))
            continue
        entry["excluded"] = [{"course": c, "by": "the pattern's exclude"} for c in match.excluded]
        for course in match.courses:
            by_file = desired.pattern_exclusions.get(course, {}).get(pattern.name)
            if by_file is not None:
                entry["excluded"].append({"course": course, "by": by_file})
                continue
            entry["courses"].append(course)
            for sync in pattern.syncs:
                key = (course, sync.cohort, sync.role)
                if key in own:
                    entry["overridden"].append({"course": course, "cohort": sync.cohort,
                                                "role": sync.role, "by": own[key]})
                elif key in taken:
                    notices.append((
                        "pattern-overlap",
                        f"{course}: the sync of {sync.cohort} as {sync.role} comes from "
                        f"patterns {taken[key]} and {pattern.name}; {taken[key]}'s entry is "
                        "used (declare it in the course's own file to choose)"))
                else:
                    taken[key] = pattern.name
                    syncs.append(replace(sync, course=course))
                    written = unsafe.get(("group", sync.course, sync.group or ""))
                    if written is not None:  # the group's name was made safe: say so there
                        unsafe[("group", course, sync.group or "")] = written
        if not match.courses:
            notices.append(("pattern-matches-nothing",
                            f"pattern {pattern.name} ({pattern.rule}) matches no course "
                            "of the platform today"))
    return replace(desired, syncs=syncs, notices=notices, held_syncs=frozenset(held),
                   pattern_report=report, patterns_expanded=True, unsafe_names=unsafe)
