"""What the plan says about the rollover overlap: the window, and what each rule brings.

During a platform's overlap window (``general_cohorts.rollover_overlap``) a general cohort's
members are the students with an IA in force for ``academic_year`` plus last year's students
of the same VET who have not re-registered anywhere yet (``sources.general``). The plan says
which window is in force and how many members each of the two rules contributes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..settings import GeneralCohortSettings, previous_year

if TYPE_CHECKING:
    from ..sources import SourceSnapshot


def overlap_report(
    general: GeneralCohortSettings, snapshot: SourceSnapshot | None, platform: str,
    academic_year: str, today: dt.date,
) -> dict[str, Any]:
    """The ``overlap`` entry of the plan's ``general`` section, or ``{}`` without a window.

    Returns ``from``/``until`` (ISO dates of the window for ``academic_year``),
    ``academic_year``, ``previous_year``, ``in_force`` (whether the sources counted last
    year's students: the window holds ``today``, a Europe/Paris date), and when the sources
    were healthy and the window in force, ``members`` (distinct members each rule brings on
    the platform: ``academic_year`` for this year's IAs, ``previous_year`` for last year's
    students not re-registered) and ``cohorts`` (the same two counts per cohort idnumber).
    """
    window = general.overlap
    if window is None:
        return {}
    first, last = window.bounds(academic_year)
    if snapshot is None:
        in_force = general.overlap_in_force(academic_year, today)
    else:
        in_force = platform in snapshot.stats.get("overlap", [])
    report: dict[str, Any] = {
        "from": first.isoformat(),
        "until": last.isoformat(),
        "academic_year": academic_year,
        "previous_year": previous_year(academic_year),
        "in_force": in_force,
    }
    if snapshot is None or not snapshot.healthy or not in_force:
        return report
    cohorts = snapshot.general_cohorts.get(platform, [])
    this_year: set[str] = set()
    last_year: set[str] = set()
    per_cohort = {}
    for cohort in cohorts:
        own = cohort.members - cohort.from_previous_year
        this_year |= own
        last_year |= cohort.from_previous_year
        per_cohort[cohort.idnumber] = {"academic_year": len(own),
                                       "previous_year": len(cohort.from_previous_year)}
    report["members"] = {"academic_year": len(this_year),
                         "previous_year": len(last_year - this_year)}
    report["cohorts"] = per_cohort
    return report
