"""The planner's ``method: manual`` phase: what is owed, derived every run from Moodle's
state and the ledger (``planning.ledger``), never from what changed in this run.

* **Enrol**: a member of a declared, ready sync's cohort who is not active in the course
  with the sync's role is enrolled with ``enrol_manual`` until the sync's last day. A member
  active in the course *without* that role, whose course enrolment the ledger does not name,
  is left alone with a warning: Moodle keeps one manual enrolment per user and course, and
  enrolling would rewrite the end date and status of an enrolment someone else made.
* **End**: an entry of the ledger (state ``enrolled``) whose user is still active in the
  course with the recorded role, and that its sync no longer wants, is ended: ``end_manual``
  when the sync is still declared (the user left its cohort), ``retire_manual`` when it is
  not (deleted, expired, its manual cohort removed or expired, its course no longer matching
  the course pattern that declared it). Never ended: a user another ``method: manual`` sync
  of the same course still wants (the enrolment is shared); a user holding, in that course,
  a role no ledger entry explains (someone else gave it, possibly on the same enrolment);
  anything of a course whose declared manual sync cannot be checked (course or cohort
  missing); anything of the cohorts and roles of an unresolved course pattern (its courses
  cannot be told); anything the ledger does not name.
* **Warn** when the ledger is missing (a first run, a lost CI cache) and a manual sync's
  course holds active enrolments with the sync's role (which an earlier run may have made):
  nothing is ended on the strength of a missing record, and Moodle ends what it no longer
  names at its end date.

Pure: no I/O; the ledger and Moodle's active enrolments are inputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..clock import PARIS, end_of_day_timestamp
from .actions import EndManual, EnrolManual, Reason, RetireManual, abbreviate
from .findings import Findings, declared_reason, pattern_unmatched, resolve
from .ledger import Ledger, LedgerEntry
from .state import ActualState, DesiredState, DesiredSync

# A declared manual sync and its course id; None when it cannot be checked (course or cohort
# missing in Moodle): then nothing of its course is ended.
Checked = tuple[DesiredSync, int | None]


@dataclass(frozen=True)
class Followed:
    """Who a sync's cohort keeps: ``names`` (usernames) and ``ids`` (Moodle user ids), the
    uncertain members of a general cohort and its leavers in their grace period included
    (neither is removed)."""

    names: frozenset[str]
    ids: frozenset[int]

    def __contains__(self, entry: object) -> bool:
        assert isinstance(entry, LedgerEntry)
        return entry.userid in self.ids or entry.username in self.names


@dataclass(frozen=True)
class Unrecorded:
    """What a missing ledger cannot name: ``count`` members of declared manual syncs already
    active in the course with the sync's role (an earlier run, or someone else, enrolled
    them: nobody can tell), and ``until``, the latest end date (Unix time) of those syncs
    (0 when there are none)."""

    count: int
    until: int


def followed(idnumber: str, desired: DesiredState, actual: ActualState) -> Followed:
    """Members a sync of ``idnumber`` follows: the desired ones (with the uncertain ones and
    the leavers in their grace period), or Moodle's when the cohort is frozen (unhealthy
    sources); empty when neither knows it."""
    want = desired.cohorts.get(idnumber)
    if want is not None:
        names = want.members | want.uncertain | want.kept
        return Followed(names, frozenset(actual.users[n] for n in names if n in actual.users))
    have = actual.cohorts.get(idnumber)
    if have is None:
        return Followed(frozenset(), frozenset())
    names = frozenset(actual.usernames[u] for u in have.members if u in actual.usernames)
    return Followed(names, have.members)


def plan_manual(
    out: Findings,
    checked: Sequence[Checked],
    desired: DesiredState,
    actual: ActualState,
    creating: frozenset[str],
    ledger: Ledger,
    today: dt.date,
    role_names: Mapping[int, str] | None = None,
) -> None:
    """Add to ``out`` the enrolments, ends and warnings of every ``method: manual`` sync:
    ``checked`` are the declared (active) ones, each with its course id or None.
    ``role_names`` (role id -> shortname, the platform's roles) names roles in warnings."""
    kept: dict[tuple[str, str, str], Followed] = {}
    for sync, courseid in checked:
        if courseid is not None:
            kept[sync.key] = followed(sync.cohort, desired, actual)
            _enrol(out, sync, courseid, desired, actual, creating, ledger)
    _end(out, checked, kept, desired, actual, ledger, role_names or {})
    _ledger_notes(out, desired, actual, ledger, today)


def _enrol(
    out: Findings,
    sync: DesiredSync,
    courseid: int,
    desired: DesiredState,
    actual: ActualState,
    creating: frozenset[str],
    ledger: Ledger,
) -> None:
    want = desired.cohorts.get(sync.cohort)
    members = want.members if want is not None else followed(sync.cohort, desired, actual).names
    names, ids, pending = resolve(members, actual, creating)
    out.pending |= pending
    active = actual.enrolled.get(courseid, {})
    missing: list[tuple[str, int | None]] = []
    elsewhere: list[str] = []
    for name, uid in zip(names, ids, strict=True):
        roles = None if uid is None else active.get(uid)
        if uid is None or roles is None or (
            sync.roleid not in roles and ledger.owns(courseid, uid)
        ):
            missing.append((name, uid))  # absent or inactive, or the reconciler's own
        elif sync.roleid not in roles:
            elsewhere.append(name)
    target = f"{sync.course}/{sync.cohort}/{sync.role}"
    if elsewhere:
        out.warn(
            "manual-enrolled-otherwise",
            f"{sync.course}: {len(elsewhere)} member(s) of {sync.cohort} are already enrolled "
            f"in the course by other means, without the role {sync.role} "
            f"({abbreviate(elsewhere)}); not enrolled manually, which would rewrite the end "
            "date and status of an enrolment the reconciler did not make (give the role by "
            "hand if it is wanted)",
            sync.source,
        )
    if missing:
        assert sync.expires is not None  # lint: manual-needs-expires
        out.add(
            target,
            EnrolManual(
                course=sync.course,
                courseid=courseid,
                cohort=sync.cohort,
                role=sync.role,
                roleid=sync.roleid,
                timeend=end_of_day_timestamp(sync.expires),
                usernames=tuple(n for n, _ in missing),
                userids=tuple(i for _, i in missing),
                expires=sync.expires.isoformat(),
            ),
            declared_reason(
                sync,
                f"members of {sync.cohort} not enrolled yet (method: manual until "
                f"{sync.expires.isoformat()}, {sync.source})",
            ),
        )


def _end(
    out: Findings,
    checked: Sequence[Checked],
    kept: dict[tuple[str, str, str], Followed],
    desired: DesiredState,
    actual: ActualState,
    ledger: Ledger,
    role_names: Mapping[int, str],
) -> None:
    """End the ledger's enrolments no sync wants any more (module docstring)."""
    course_names = {cid: name for name, cid in actual.courses.items()}
    unchecked = {s.course for s, cid in checked if cid is None}
    wanted: dict[int, list[tuple[int, Followed]]] = defaultdict(list)  # course -> (role, who)
    for sync, courseid in checked:
        if courseid is not None:
            wanted[courseid].append((sync.roleid, kept[sync.key]))

    owed: dict[tuple[int, int], list[tuple[LedgerEntry, bool]]] = defaultdict(list)
    for entry in ledger.enrolled():
        course = course_names.get(entry.courseid, entry.course)
        if entry.courseid in actual.missing_courses or {course, entry.course} & unchecked:
            continue
        if (entry.cohort, entry.role) in desired.held_syncs:
            continue  # an unresolved course pattern: which courses it covers is unknown
        declared = [
            kept[s.key] for s, cid in checked
            if cid is not None and s.cohort == entry.cohort and s.role == entry.role
            and (cid == entry.courseid or s.course == entry.course)
        ]
        if any(entry in members for members in declared):
            continue
        owed[(entry.courseid, entry.userid)].append((entry, not declared))

    ends: dict[tuple[bool, str, str, str], list[LedgerEntry]] = defaultdict(list)
    for (courseid, userid), items in sorted(owed.items()):
        roles = actual.enrolled.get(courseid, {}).get(userid)
        if roles is None or not roles & {e.roleid for e, _ in items}:
            continue  # not active with the recorded role: nothing left to end
        entry, retired = items[0]
        course = course_names.get(courseid, entry.course)
        name = actual.usernames.get(userid, entry.username)
        still = {role for role, members in wanted.get(courseid, []) if entry in members}
        if still:
            # Their one manual enrolment stays for the syncs that still want them; say so
            # only when it keeps a role none of those syncs gives.
            lingering = sorted({e.role for e, _ in items if e.roleid not in still})
            if lingering:
                out.warn(
                    "manual-role-kept",
                    f"{course}: {name} is no longer wanted by the manual sync of "
                    f"{entry.cohort} as {', '.join(lingering)}, but another method: manual "
                    "sync of the course still wants them: their one manual enrolment stays, "
                    "with its roles (remove the role by hand if needed)",
                    f"{course}/{entry.cohort}/{entry.role}",
                )
            continue
        foreign = roles - {e.roleid for e in ledger.of_user(courseid, userid)}
        if foreign:
            out.warn(
                "manual-end-kept",
                f"{course}: {name} is no longer wanted by the manual sync of {entry.cohort} "
                f"as {entry.role}, but holds other role(s) in the course "
                f"({', '.join(role_names.get(r, f'role id {r}') for r in sorted(foreign))}) "
                "that the reconciler did not give; "
                "their enrolment is left as it is (end it by hand if it should end)",
                f"{course}/{entry.cohort}/{entry.role}",
            )
            continue
        ends[(retired, course, entry.cohort, entry.role)].append(
            dataclasses.replace(entry, username=name, course=course)
        )

    sources = {(s.course, s.cohort, s.role): s.source for s, _ in checked}
    for (retired, course, cohort, role), entries in sorted(ends.items()):
        kind = RetireManual if retired else EndManual
        if retired:
            reason = _retire_reason(course, cohort, role, desired)
        else:
            source = sources.get((course, cohort, role), "")
            reason = Reason(
                "left-cohort",
                f"no longer members of {cohort}, which the course follows with method: manual"
                + (f" ({source})" if source else ""),
                source,
            )
        out.add(
            f"{course}/{cohort}/{role}",
            kind(
                course=course,
                courseid=entries[0].courseid,
                cohort=cohort,
                role=role,
                roleid=entries[0].roleid,
                usernames=tuple(e.username for e in entries),
                userids=tuple(e.userid for e in entries),
            ),
            reason,
        )


def _retire_reason(course: str, cohort: str, role: str, desired: DesiredState) -> Reason:
    """Why a method: manual sync's enrolments end: the sync (or its manual cohort) expired
    on its declared date, the course no longer matches the course pattern that declared it,
    or nothing declares it any more (the sync's entry deleted, its method changed, or its
    manual cohort's file removed with it)."""
    for sync in desired.expired_syncs:
        if (sync.course, sync.cohort, sync.role) != (course, cohort, role):
            continue
        if sync.method != "manual":
            break  # still declared, as a cohort sync: this manual one is not
        if cohort in desired.expired_cohorts:
            return Reason("expired", f"its cohort {cohort} has expired ({sync.source})",
                          sync.source)
        day = sync.expires.isoformat() if sync.expires else "?"
        return Reason("expired", f"the sync expired on {day} ({sync.source})", sync.source)
    unmatched = pattern_unmatched(course, cohort, role, desired)
    if unmatched is not None:
        return unmatched
    return Reason(
        "undeclared",
        f"no declaration of {course} syncs {cohort} as {role} with method: manual any more",
    )


def unrecorded(desired: DesiredState, actual: ActualState) -> Unrecorded:
    """What a missing ledger cannot name (:class:`Unrecorded`), from the declared manual
    syncs, their cohorts and Moodle's active enrolments of their courses."""
    users: set[tuple[int, int]] = set()
    until = 0
    for sync in desired.syncs:
        courseid = actual.courses.get(sync.course)
        if sync.method != "manual" or courseid is None or sync.expires is None:
            continue
        active = actual.enrolled.get(courseid, {})
        members = followed(sync.cohort, desired, actual).ids
        found = {(courseid, u) for u in members if sync.roleid in active.get(u, ())}
        if found:
            users |= found
            until = max(until, end_of_day_timestamp(sync.expires))
    return Unrecorded(len(users), until)


def _may_hold_unrecorded(manual: Sequence[DesiredSync], actual: ActualState) -> bool:
    """Whether a missing ledger can cost anything: some course of a ``method: manual`` sync
    holds an active enrolment with the sync's role, which an earlier run may have made. A
    first run on courses where nobody holds that role yet has nothing to warn about."""
    for sync in manual:
        courseid = actual.courses.get(sync.course)
        active = actual.enrolled.get(courseid, {}) if courseid is not None else {}
        if any(sync.roleid in roles for roles in active.values()):
            return True
    return False


def _paris_day(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, PARIS).date().isoformat()


def _ledger_notes(
    out: Findings, desired: DesiredState, actual: ActualState, ledger: Ledger, today: dt.date
) -> None:
    manual = [s for s in (*desired.syncs, *desired.expired_syncs) if s.method == "manual"]
    if not ledger.found and _may_hold_unrecorded(manual, actual):
        lost = unrecorded(desired, actual)
        until = f" (at the latest on {_paris_day(lost.until)})" if lost.until else ""
        out.warn(
            "manual-ledger-missing",
            "no record of the manual enrolments the reconciler made on this site (a first "
            "run, or .reconciler/ lost with the CI cache): nothing is ended on the strength "
            f"of a missing record. {lost.count} member(s) of method: manual syncs already "
            "active in the course with the sync's role are not in it: neither they nor anyone "
            "an earlier run enrolled will be ended early; Moodle ends them at their end date"
            f"{until}. The record starts again with this apply.",
        )
    elif ledger.found and ledger.unrecorded_until and (
        dt.datetime.fromtimestamp(ledger.unrecorded_until, PARIS).date() >= today
    ):
        out.warn(
            "manual-ledger-incomplete",
            f"the record of manual enrolments restarted on {ledger.started[:10] or '?'}: "
            "enrolments made before it are not ended early; Moodle ends them at their end "
            f"date (at the latest on {_paris_day(ledger.unrecorded_until)})",
        )
