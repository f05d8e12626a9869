"""Grace period for the leavers of general cohorts (issue 17, item 2).

A member of a general cohort whom the sources no longer vouch for (IA cancelled or resigned,
directory account gone, moved to another étape) stays in the cohort ``days`` days after the
first run that saw them gone: ``leaving on`` that day, when the first apply removes them
(and the failsafes count the removal, on that day). The cohort's grace is the longest its
course syncs ask for (``grace_days``; a sync without it asks for the platform's
``grace_period.days``), never more than ``grace_period.max_days``.

The day each leaver was first seen gone is kept between runs in a :class:`LeaversRecord`
(``.reconciler/leavers/<platform>.json``, cached by CI). Safety never depends on it: who is
a member comes from Moodle, and a leaver missing from the record starts the grace *today*.
So a lost record, an unreadable one, or one too old to vouch for the days in between
(last saved more than ``max_gap_days`` ago: a missed night, a cache restored from an older
pipeline) only restarts grace periods, never shortens one.

Period changes are not departures a grace protects: members who leave on the first run of
a new ``academic_year`` (a rollover without overlap window) or after the overlap window
ended are removed at once, through the failsafes, as without grace. The record proves the
period changed; without a trustworthy record they get the grace (longer, never shorter).

``apply_grace`` is pure: (desired, actual, settings, today, record) -> (desired with the
kept members, the record to save, the plan's report).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..settings import PlatformSettings
from .state import COHORT_MARKER, ActualCohort, ActualState, DesiredCohort, DesiredState

RECORD_FORMAT = 1


@dataclass(frozen=True)
class Leaver:
    """One member the sources no longer vouch for: ``since`` the first run that saw it (a
    Europe/Paris date); ``grace`` false when they left with a period change (no grace)."""

    since: dt.date
    grace: bool = True


@dataclass(frozen=True)
class LeaversRecord:
    """What the runs of one platform saw: per general cohort idnumber, per username, the
    :class:`Leaver`; ``observed_on`` the day of the run that saved it, with the
    ``academic_year`` and whether the rollover ``overlap`` was in force then."""

    platform: str
    observed_on: dt.date
    academic_year: str
    overlap: bool
    cohorts: Mapping[str, Mapping[str, Leaver]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document saved between runs (``format_version`` 1)."""
        return {
            "format_version": RECORD_FORMAT,
            "platform": self.platform,
            "observed_on": self.observed_on.isoformat(),
            "academic_year": self.academic_year,
            "overlap": self.overlap,
            "cohorts": {
                idnumber: {
                    name: ({"since": leaver.since.isoformat()} if leaver.grace else
                           {"since": leaver.since.isoformat(), "grace": False})
                    for name, leaver in sorted(leavers.items())
                }
                for idnumber, leavers in sorted(self.cohorts.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> LeaversRecord:
        """The record a ``to_json`` document describes; ValueError when it is anything else."""
        try:
            if data["format_version"] != RECORD_FORMAT:
                raise ValueError(f"format_version is not {RECORD_FORMAT}")
            cohorts = {
                str(idnumber): {
                    str(name): Leaver(dt.date.fromisoformat(item["since"]),
                                      _boolean(item.get("grace", True)))
                    for name, item in leavers.items()
                }
                for idnumber, leavers in data["cohorts"].items()
            }
            return cls(str(data["platform"]), dt.date.fromisoformat(data["observed_on"]),
                       str(data["academic_year"]), _boolean(data["overlap"]), cohorts)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a leavers record ({type(exc).__name__}: {exc})") from None


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


@dataclass
class GraceOutcome:
    """``desired`` with the leavers kept; ``record`` to save (None: nothing was observed,
    leave the saved one as it is)."""

    desired: DesiredState
    record: LeaversRecord | None


def cohort_graces(platform: PlatformSettings, desired: DesiredState) -> dict[str, int]:
    """Days of grace per cohort idnumber that a sync names: the longest its syncs ask for
    (a sync without ``grace_days`` asks for the platform's days), capped by ``max_days``.
    A cohort no sync names gets the platform's ``grace_period.days``."""
    grace = platform.general_cohorts.grace
    asked: dict[str, int] = {}
    for sync in desired.syncs:
        ask = grace.days if sync.grace_days is None else sync.grace_days
        asked[sync.cohort] = max(asked.get(sync.cohort, 0), ask)
    return {idnumber: min(days, grace.limit) for idnumber, days in asked.items()}


def _description(have: ActualCohort) -> str:
    """The description a desired cohort needs for ``have``'s to stay as it is."""
    text = have.description
    if text.endswith(COHORT_MARKER):
        return text[: -len(COHORT_MARKER)].strip()
    return text.replace(COHORT_MARKER, "").strip()


def _holding(have: ActualCohort, kept: frozenset[str]) -> DesiredCohort:
    """A general cohort the sources no longer name, held (as it is) for its leavers."""
    return DesiredCohort(idnumber=have.idnumber, name=have.name, kind="general",
                         members=frozenset(), source="grace period of its leavers",
                         description=_description(have), visible=have.visible, kept=kept)


def _trust(record: LeaversRecord | None, problem: str | None, platform: PlatformSettings,
           today: dt.date) -> tuple[bool, str]:
    """Whether the record's dates count, and what the plan says about the record."""
    if problem:
        return False, f"unreadable ({problem}): every grace period restarts today"
    if record is None:
        return False, ("none saved yet (a first run, or the CI cache was lost): grace "
                       "periods start today")
    gap = (today - record.observed_on).days
    limit = platform.general_cohorts.grace.max_gap_days
    if record.platform != platform.name:
        return False, f"it is {record.platform}'s: every grace period restarts today"
    if gap < 0:
        return False, (f"saved on {record.observed_on.isoformat()}, after today: every grace "
                       "period restarts today")
    if gap > limit:
        return False, (f"last saved on {record.observed_on.isoformat()}, {gap} days ago (more "
                       f"than max_gap_days {limit}): it cannot vouch for the days in "
                       "between, every grace period restarts today")
    return True, f"saved on {record.observed_on.isoformat()}"


def _restarted(record: LeaversRecord | None, seen: Mapping[str, Mapping[str, Leaver]],
               today: dt.date) -> int:
    """How many leavers an untrusted ``record`` dated before today (grace restarted)."""
    if record is None:
        return 0
    return sum(1 for idnumber, leavers in seen.items() for name in leavers
               if (old := record.cohorts.get(idnumber, {}).get(name)) and old.since < today)


def apply_grace(
    desired: DesiredState, actual: ActualState, platform: PlatformSettings,
    academic_year: str, today: dt.date, record: LeaversRecord | None,
    record_problem: str | None = None,
) -> GraceOutcome:
    """Keep each general cohort's leavers through their grace period.

    ``desired``: built from the declarations and the sources (its ``general_report`` says
    whether the overlap is in force); ``actual``: Moodle as read; ``today``: the run's
    Europe/Paris date; ``record``: the last saved :class:`LeaversRecord` (None when there is
    none, ``record_problem`` when it could not be read). Returns a new desired state whose
    general cohorts carry ``kept`` members (and hold a cohort the sources dropped while it
    has leavers in grace), its ``general_report["grace"]`` and notices, and the record of
    this run. Unhealthy sources (``general_frozen``) change nothing and record nothing.
    """
    general = platform.general_cohorts
    if not general.enabled or desired.general_frozen:
        return GraceOutcome(desired, None)
    graces = cohort_graces(platform, desired)
    if general.grace.days <= 0 and not any(graces.values()):
        return GraceOutcome(desired, None)  # no grace anywhere: today's behaviour
    overlap = bool(desired.general_report.get("overlap", {}).get("in_force", False))
    trusted, record_status = _trust(record, record_problem, platform, today)
    period_change = ""
    if trusted and record is not None:
        if record.academic_year != academic_year:
            period_change = (f"the academic year changed ({record.academic_year} → "
                             f"{academic_year})")
        elif record.overlap and not overlap:
            period_change = "the rollover overlap window ended"
    pattern = general.idnumber_regex()
    cohorts = dict(desired.cohorts)
    seen: dict[str, dict[str, Leaver]] = {}
    leaving: dict[str, dict[str, str]] = {}
    without_grace: list[str] = []
    for idnumber, have in sorted(actual.cohorts.items()):
        want = desired.cohorts.get(idnumber)
        if not pattern.match(idnumber) or (want is not None and want.kind != "general"):
            continue
        if not (have.owned or (want is not None and (want.adopt or desired.adopt_general))):
            continue  # the planner leaves it alone anyway
        days = graces.get(idnumber, min(general.grace.days, general.grace.limit))
        if days <= 0:
            continue
        vouched = want.members | want.uncertain if want is not None else frozenset()
        known = record.cohorts.get(idnumber, {}) if trusted and record is not None else {}
        kept: dict[str, dt.date] = {}
        for uid in have.members:
            name = actual.usernames.get(uid)
            if name is None or name in vouched:
                continue  # unidentified members are never removed; vouched ones stay
            leaver = known.get(name)
            if leaver is None:
                leaver = Leaver(today, grace=not period_change)
                if period_change:
                    without_grace.append(name)
            elif leaver.since > today:
                leaver = Leaver(today, leaver.grace)
            seen.setdefault(idnumber, {})[name] = leaver
            end = leaver.since + dt.timedelta(days=days)
            if leaver.grace and today < end:
                kept[name] = end
        if kept:
            leaving[idnumber] = {n: kept[n].isoformat() for n in sorted(kept)}
            names = frozenset(kept)
            cohorts[idnumber] = (replace(want, kept=names) if want is not None
                                 else _holding(have, names))
    notices = list(desired.notices)
    restarted = _restarted(record, seen, today) if not trusted else 0
    if restarted or (seen and (record_problem or record is None)):
        who = (f"{restarted} leaver(s) recorded before" if restarted else
               f"{sum(map(len, seen.values()))} member(s) seen gone")
        notices.append(("grace-restarted", f"leavers record {record_status} ({who}; a lost "
                        "record makes leavers stay longer, never shorter)"))
    if without_grace:
        notices.append((
            "grace-not-applied",
            f"{period_change}: {len(without_grace)} member(s) who left with it get no grace "
            "period and are removed now, through the failsafes, as without a grace period"))
    report = dict(desired.general_report)
    report["grace"] = {
        "days": general.grace.days,
        "max_days": general.grace.limit,
        "record": record_status,
        "cohort_days": {i: d for i, d in sorted(graces.items()) if d != general.grace.days
                        and pattern.match(i)},
        "leaving": leaving,
    }
    new = replace(desired, cohorts=cohorts, general_report=report, notices=notices)
    return GraceOutcome(new, LeaversRecord(platform.name, today, academic_year, overlap, seen))
