"""Periodic review of manual cohorts without an end date (``review_every`` and ``reviewed``).

A review is due ``review_every`` after ``reviewed``. From that day ``reconcile validate``
warns (``review-due``), the plan and the ``expiring`` report list the cohort with its owners;
once the platform's ``manual_cohorts.review_grace_days`` have passed too, it is an error
(``review-overdue``) until someone moves ``reviewed`` in a merge request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from .loader import DeclarationSet, ManualCohort


def describe_review(cohort: ManualCohort) -> str:
    """``every 180 days, last reviewed 2026-09-15`` (the cohort has ``review_every``)."""
    assert cohort.reviewed is not None
    return f"every {cohort.review_every} days, last reviewed {cohort.reviewed.isoformat()}"


def _problem(cohort: ManualCohort, today: dt.date, grace_days: int
             ) -> tuple[Severity, str, str] | None:
    """(severity, rule, message) of a cohort with ``review_every``, or None when fine."""
    due = cohort.review_due
    assert due is not None and cohort.reviewed is not None
    if cohort.expires is not None:
        return ("error", "review-with-expires",
                "review_every is for cohorts without an end date; this one expires on "
                f"{cohort.expires.isoformat()}: drop review_every and reviewed, or expires")
    if cohort.reviewed > today:
        return ("error", "reviewed-future",
                f"reviewed {cohort.reviewed.isoformat()} is in the future; write the day the "
                "members were checked")
    if today < due:
        return None
    owners = ", ".join(cohort.owners) or "none"
    deadline = due + dt.timedelta(days=grace_days)
    what = (f"review of the members of {cohort.idnumber} due since {due.isoformat()} "
            f"({describe_review(cohort)}; owners: {owners})")
    fix = f"check the members, then set reviewed: {today.isoformat()} in a merge request"
    if today > deadline:
        return ("error", "review-overdue",
                f"{what} is overdue: {cohort.platform} allows {grace_days} days; {fix}")
    return ("warning", "review-due", f"{what}; {fix} (an error after {deadline.isoformat()})")


def review_rules(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    """``review-with-expires`` and ``reviewed-future`` (errors), ``review-due`` (warning)
    and ``review-overdue`` (error), each at the ``reviewed`` line of the cohort."""
    if decls.settings is None:
        return
    for cohort in decls.cohorts:
        platform = decls.settings.platforms.get(cohort.platform)
        if platform is None or cohort.review_due is None:
            continue
        problem = _problem(cohort, today, platform.review_grace_days)
        if problem is not None:
            severity, rule, message = problem
            line = cohort.reviewed_line or cohort.location.line
            yield Diagnostic(cohort.location.file, line, 1, severity, rule, message)
