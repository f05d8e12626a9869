"""``reconcile audit``: what a platform holds that the repository does not declare.

Every cohort-sync instance and every cohort that no declaration accounts for (the
reconciler's own, marked objects are the plan's business and left out), with what each is,
its status, role, group, how many users it enrols, how long the audit has seen it
(:mod:`.seen`) and the platform's policy applied: an undeclared sync is at most temporary,
so an enabled one seen for more than ``max_temporary_days`` is *over the limit* (at once
where cohort sync is forbidden), listed first with the course's editing teachers when the
web services give them (``core_enrol_get_enrolled_users``). A report, never a write to
Moodle; the only file it touches is its own first-seen memory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from ..moodle.errors import MoodleError
from ..settings import PlatformSettings
from .inventory import Inventory, PlatformCohort, PlatformSync
from .seen import Age, SeenLog

EDITING_TEACHER = "editingteacher"


@dataclass(frozen=True)
class Teacher:
    """An editing teacher of a course, as ``core_enrol_get_enrolled_users`` gives them."""

    fullname: str
    email: str


@dataclass
class AuditedSync:
    """One undeclared cohort-sync instance. ``users``: how many users it enrols (its
    cohort's members when enabled, 0 when disabled; None when the cohort is unknown);
    ``teachers`` None when not read or not given."""

    id: int
    course: str
    courseid: int
    name: str
    cohort: str
    cohortid: int
    cohort_name: str
    cohort_kind: str
    cohort_declared: bool
    role: str
    group: str
    enabled: bool
    users: int | None
    age: Age
    over_limit: bool = False
    why: str = ""
    teachers: list[Teacher] | None = None


@dataclass
class AuditedCohort:
    """One undeclared cohort, or one the repository accounts for (``declared``: a file
    declares it, or it is the reconciler's own) that an undeclared sync uses. ``members``
    None when not read; ``used_by`` the undeclared instances syncing it; ``look_alike``: an
    undeclared cohort whose idnumber follows a managed pattern, without the marker."""

    id: int
    idnumber: str
    name: str
    kind: str
    context: str
    members: int | None
    declared: bool
    look_alike: bool
    age: Age | None
    used_by: list[int] = field(default_factory=list)


@dataclass
class AuditReport:
    """The audit of one platform on ``today`` (Europe/Paris); ``tracking_since`` is the day
    the first-seen memory started; ``notes`` say what could not be read."""

    platform: str
    title: str
    today: dt.date
    tracking_since: dt.date
    cohort_sync_policy: str
    max_temporary_days: int
    syncs: list[AuditedSync] = field(default_factory=list)
    cohorts: list[AuditedCohort] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def over_limit(self) -> list[AuditedSync]:
        return sorted(
            (s for s in self.syncs if s.over_limit), key=lambda s: (-s.age.days, s.course, s.id)
        )


class EnrolledReads(Protocol):
    """The client calls :func:`add_teachers` needs (a test may hand a small fake)."""

    def get_enrolled_users(self, courseid: int, **options: Any) -> list[dict[str, Any]]: ...
    def run_concurrently(self, calls: Any) -> list[Any]: ...


def build_audit(inventory: Inventory, seen: SeenLog, today: dt.date) -> AuditReport:
    """The report for ``inventory`` (no I/O); records first sightings in ``seen`` and drops
    from it what is no longer undeclared."""
    platform = inventory.platform
    policy = platform.sync_policy
    report = AuditReport(
        platform=platform.name,
        title=platform.title or platform.name,
        today=today,
        tracking_since=seen.started,
        cohort_sync_policy=policy.cohort_sync,
        max_temporary_days=policy.max_temporary_days,
    )
    if not inventory.plugin_available:
        report.notes.append(
            "the token's service cannot list cohort-sync instances "
            "(local_ws_enrolcohort_get_instances): no instance is audited"
        )
    if not inventory.contexts_known:
        report.notes.append(
            "the token's service cannot search cohorts (core_cohort_search_cohorts): "
            "contexts unknown"
        )
    for sync in inventory.syncs:
        if sync.declared or sync.owned:
            continue
        report.syncs.append(_audited_sync(sync, seen, today, platform))
    report.syncs.sort(key=lambda s: (s.course, s.cohort, s.role, s.id))

    users: dict[int, list[int]] = {}
    for s in report.syncs:
        users.setdefault(s.cohortid, []).append(s.id)
    for cohort in sorted(inventory.cohorts, key=lambda c: (c.idnumber, c.id)):
        undeclared = not cohort.declared and not cohort.owned
        if not undeclared and cohort.id not in users:
            continue
        report.cohorts.append(
            AuditedCohort(
                id=cohort.id,
                idnumber=cohort.idnumber,
                name=cohort.name,
                kind=cohort.kind,
                context=cohort.context,
                members=cohort.size,
                declared=not undeclared,
                look_alike=undeclared and cohort.kind != "foreign",
                age=seen.age("cohort", cohort.id, today) if undeclared else None,
                used_by=users.get(cohort.id, []),
            )
        )
    seen.keep_only(
        {s.id for s in report.syncs}, {c.id for c in report.cohorts if not c.declared}
    )
    return report


def _audited_sync(
    sync: PlatformSync, seen: SeenLog, today: dt.date, platform: PlatformSettings
) -> AuditedSync:
    inst = sync.instance
    cohort: PlatformCohort | None = sync.cohort
    size = cohort.size if cohort else None
    item = AuditedSync(
        id=inst.id,
        course=sync.course or f"#{inst.courseid}",
        courseid=inst.courseid,
        name=inst.name,
        cohort=(cohort.idnumber if cohort else inst.cohort) or f"#{inst.cohortid}",
        cohortid=inst.cohortid,
        cohort_name=cohort.name if cohort else "",
        cohort_kind=cohort.kind if cohort else "unknown",
        cohort_declared=bool(cohort and (cohort.declared or cohort.owned)),
        role=sync.role or f"role id {inst.roleid}",
        group=inst.group,
        enabled=sync.enabled,
        users=(size if sync.enabled else 0) if size is not None else None,
        age=seen.age("instance", inst.id, today),
    )
    policy = platform.sync_policy
    if not item.enabled:
        return item
    if policy.cohort_sync == "forbidden":
        item.over_limit = True
        item.why = f"cohort sync is forbidden on {platform.name}"
    elif item.age.days > policy.max_temporary_days:
        item.over_limit = True
        item.why = (
            f"undeclared for {item.age.days} days or more, over max_temporary_days "
            f"({policy.max_temporary_days})"
        )
    return item


def add_teachers(report: AuditReport, client: EnrolledReads, platform: PlatformSettings) -> None:
    """Fill ``teachers`` of the over-the-limit syncs: one ``core_enrol_get_enrolled_users``
    per course (active users, fields id/fullname/email/roles), concurrently, keeping the
    ``editingteacher`` role. A course Moodle will not list leaves ``teachers`` None and a
    note; nothing is raised for it."""
    courses = sorted({s.courseid for s in report.over_limit})
    if not courses:
        return
    roleid = platform.roles.get(EDITING_TEACHER)

    def teachers_of(courseid: int) -> list[Teacher] | MoodleError:
        try:
            users = client.get_enrolled_users(
                courseid, onlyactive=True, userfields=("id", "fullname", "email", "roles")
            )
        except MoodleError as exc:
            return exc
        return [
            Teacher(str(u.get("fullname") or ""), str(u.get("email") or ""))
            for u in users
            if any(
                r.get("shortname") == EDITING_TEACHER or r.get("roleid") == roleid
                for r in u.get("roles") or []
            )
        ]

    answers = client.run_concurrently([partial(teachers_of, c) for c in courses])
    found = dict(zip(courses, answers, strict=True))
    failed = {c: a for c, a in found.items() if isinstance(a, MoodleError)}
    for sync in report.over_limit:
        answer = found[sync.courseid]
        sync.teachers = None if isinstance(answer, MoodleError) else answer
    if failed:
        first = next(iter(failed.values()))
        report.notes.append(
            f"teachers of {len(failed)} course(s) could not be read ({first}); shown as unknown"
        )
