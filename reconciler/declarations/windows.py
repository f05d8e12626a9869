"""Lint of the general cohorts' windows: the leavers' grace period and the rollover overlap.

Two kinds of check, each naming file and line:

* ``platform_window_diagnostics(doc)`` on ``platforms.yaml`` (called by the loader, like the
  template checks): a grace longer than the platform's maximum, an overlap window whose days
  do not exist or run backwards;
* ``grace_rules(decls, today)`` on the course syncs (a lint rule): ``grace_days`` longer than
  the platform's maximum, on a cohort that is not general, or shorter than the grace the
  cohort keeps anyway because another sync of it asks for more.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..settings import PlatformSettings, month_day
from .diagnostics import Diagnostic, Severity
from .yamlfile import YamlDocument

if TYPE_CHECKING:  # the loader calls this module: no import back at run time
    from .loader import DeclarationSet, SyncDeclaration

# Any year without 29 February: the window's days are checked once, for every year.
_CHECK_YEAR = 2025


def _grace_problem(grace: dict[str, Any]) -> str | None:
    days, limit = grace.get("days", 0), grace.get("max_days")
    if limit is not None and days > limit:
        return f"grace_period.days {days} is longer than grace_period.max_days {limit}"
    return None


def _overlap_problem(window: dict[str, Any]) -> str | None:
    try:
        first = month_day(window["from"], _CHECK_YEAR)
        last = month_day(window["until"], _CHECK_YEAR)
    except ValueError as exc:
        return f"rollover_overlap: {exc}"
    if last < first:
        return (f"rollover_overlap runs backwards: from {window['from']} until "
                f"{window['until']} (both days lie in the first calendar year of "
                "academic_year; the window may not wrap over 31 December)")
    return None


def platform_window_diagnostics(doc: YamlDocument) -> list[Diagnostic]:
    """Problems of the windows declared in a schema-valid ``platforms.yaml`` document."""
    out = []
    for name, platform in (doc.data.get("platforms") or {}).items():
        general = platform.get("general_cohorts") or {}
        checks = (("grace_period", "grace-too-long", _grace_problem),
                  ("rollover_overlap", "overlap-window", _overlap_problem))
        for key, rule, problem_of in checks:
            value = general.get(key)
            problem = problem_of(value) if value is not None else None
            if problem:
                path = ("platforms", name, "general_cohorts", key)
                out.append(Diagnostic(doc.file, *doc.locate_key(path), "error", rule, problem))
    return out


def _is_general(platform: PlatformSettings, idnumber: str) -> bool:
    general = platform.general_cohorts
    return general.enabled and bool(general.idnumber_regex().match(idnumber))


def _diag(sync: SyncDeclaration, severity: Severity, rule: str, message: str) -> Diagnostic:
    loc = sync.location
    return Diagnostic(loc.file, loc.line, loc.column, severity, rule, message)


def grace_rules(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    """``grace-too-long`` (error), ``grace-not-general`` and ``grace-shared`` (warnings)."""
    if decls.settings is None:
        return
    # Per (platform, cohort): the syncs of general cohorts and the grace each asks for.
    asks: dict[tuple[str, str], list[tuple[int, SyncDeclaration]]] = defaultdict(list)
    for sync in decls.all_syncs():
        platform = decls.settings.platforms.get(sync.platform)
        if platform is None:
            continue
        grace = platform.general_cohorts.grace
        if sync.grace_days is not None:
            if not _is_general(platform, sync.cohort):
                yield _diag(sync, "warning", "grace-not-general",
                            f"grace_days applies to general cohorts only; {sync.cohort!r} is "
                            "not one, so it has no effect")
                continue
            if sync.grace_days > grace.limit:
                yield _diag(sync, "error", "grace-too-long",
                            f"grace_days {sync.grace_days} is longer than {sync.platform}'s "
                            f"grace_period.max_days {grace.limit}")
                continue
        if _is_general(platform, sync.cohort):
            ask = grace.days if sync.grace_days is None else sync.grace_days
            asks[(sync.platform, sync.cohort)].append((min(ask, grace.limit), sync))
    for (_, cohort), items in asks.items():
        longest, by = max(items, key=lambda item: (item[0], str(item[1].location)))
        for ask, sync in items:
            if sync.grace_days is not None and ask < longest:
                yield _diag(sync, "warning", "grace-shared",
                            f"grace_days {ask} does not shorten the grace of {cohort}: a "
                            f"cohort keeps its leavers for the longest grace its syncs ask "
                            f"for, {longest} days ({by.location}), in every course")
