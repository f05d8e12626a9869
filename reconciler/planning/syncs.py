"""The planner's sync phase: every declared cohort sync or manual enrolment checked against
Moodle, one function per concern, then the reconciler's instances no declaration keeps."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..settings import PlatformSettings
from .actions import CreateGroup, CreateSync, DeleteSync, DisableSync, Reason, UpdateSync
from .findings import Cohorts, Findings, declared_reason, instance_name, pattern_unmatched
from .ledger import Ledger
from .manual import Checked, plan_manual
from .state import ActualInstance, ActualState, DesiredState, DesiredSync


@dataclass(frozen=True)
class _SyncInputs:
    """What every sync is planned against (read-only)."""

    desired: DesiredState
    actual: ActualState
    platform: PlatformSettings
    creating: frozenset[str]
    cohorts: Cohorts
    instances: Mapping[tuple[int, int, int], list[ActualInstance]]  # (course, cohort, role)
    cohort_ids: Mapping[str, int]  # idnumber -> id, managed or not


def plan_syncs(
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
    creating: frozenset[str],
    cohorts: Cohorts,
    ledger: Ledger,
    today: dt.date,
) -> Findings:
    """Every declared sync (cohort sync or manual enrolments, the course patterns' expanded)
    checked against Moodle: cohort syncs here, then the reconciler's instances no sync keeps
    retired (``sync_policy.on_removal``), except those an unresolved pattern holds;
    ``method: manual`` syncs in ``planning.manual`` (enrolments, and ends of what ``ledger``
    says they made), as of ``today`` (a Europe/Paris date)."""
    instances: dict[tuple[int, int, int], list[ActualInstance]] = defaultdict(list)
    for inst in actual.instances:
        instances[(inst.courseid, inst.cohortid, inst.roleid)].append(inst)
    cohort_ids = {c.idnumber: c.id for c in actual.cohorts.values()}
    cohort_ids.update({v: k for k, v in actual.unmanaged_cohort_ids.items()})
    given = _SyncInputs(desired, actual, platform, creating, cohorts, instances, cohort_ids)

    out = Findings()
    kept: set[int] = set()  # instances a declared sync accounts for
    groups_created: set[tuple[int, str]] = set()
    manual: list[Checked] = []
    _unreadable_courses(out, actual)
    for sync in sorted(desired.syncs, key=lambda s: s.key):
        _discouraged(out, sync, platform)
        courseid = _ready(out, sync, given)
        if sync.method == "manual":
            manual.append((sync, courseid))
        elif courseid is not None:
            kept |= _cohort_sync(out, sync, courseid, given, groups_created)
    # Unresolved course patterns hold the instances of their cohorts and roles as they are.
    held = {(cohort_ids.get(cohort), platform.roles.get(role))
            for cohort, role in desired.held_syncs}
    for inst in actual.instances:
        if inst.owned and inst.id not in kept and (inst.cohortid, inst.roleid) not in held:
            _retire_sync(out, inst, platform, desired)
    if not actual.plugin_available:
        for sync in desired.expired_syncs:
            if sync.method == "cohort":
                out.warn(
                    "plugin-missing",
                    f"{sync.course}: the expired cohort sync of {sync.cohort} ({sync.role}) "
                    "cannot be disabled or deleted without the local_ws_enrolcohort plugin; "
                    "it stays as Moodle has it",
                    sync.source,
                )
    role_names = {roleid: name for name, roleid in platform.roles.items()}
    plan_manual(out, manual, desired, actual, creating, ledger, today, role_names)
    return out


def _discouraged(out: Findings, sync: DesiredSync, platform: PlatformSettings) -> None:
    if platform.sync_policy.cohort_sync == "discouraged" and sync.method == "cohort":
        out.warn(
            "cohort-sync-discouraged",
            f"{sync.course}: cohort sync of {sync.cohort} is discouraged on this "
            "platform; prefer method: manual with an expiry date",
            sync.source,
        )


def _unreadable_courses(out: Findings, actual: ActualState) -> None:
    """One warning per course whose instances Moodle could not return (issue 10): its
    cohort syncs wait (``_ready``) and no cohort is deleted this run (``planner``), since an
    unseen instance might use it; the rest of the platform is planned."""
    names = {cid: shortname for shortname, cid in actual.courses.items()}
    for courseid, error in sorted(actual.unreadable_courses.items()):
        out.warn(
            "course-unreadable",
            f"course {names.get(courseid, courseid)} (id {courseid}): Moodle cannot return "
            f"its cohort-sync instances ({error}); a cohort, course or group name there "
            "probably holds markup (fix it in Moodle). Its syncs wait and no cohort is "
            "deleted until it can be read; the rest of the platform goes on",
            names.get(courseid, str(courseid)),
        )


def _ready(out: Findings, sync: DesiredSync, given: _SyncInputs) -> int | None:
    """The course id when everything the sync needs exists (or is being created); else
    None, with the warning that says what it waits for."""
    courseid = given.actual.courses.get(sync.course)
    if courseid is None:
        out.warn(
            "course-missing",
            f"course {sync.course} does not exist in Moodle; sync of {sync.cohort} waits for it",
            sync.source,
        )
        return None
    if sync.cohort not in given.cohort_ids and sync.cohort not in given.cohorts.created:
        out.warn(
            "cohort-missing",
            f"{sync.course}: cohort {sync.cohort} does not exist "
            "in Moodle yet (sources unhealthy or no members); sync waits",
            sync.source,
        )
        return None
    if sync.method == "cohort" and courseid in given.actual.unreadable_courses:
        out.warn(
            "sync-waits",
            f"{sync.course}: the cohort sync of {sync.cohort} ({sync.role}) waits: the "
            "course's cohort-sync instances cannot be read",
            sync.source,
        )
        return None
    if sync.method == "cohort" and not given.actual.plugin_available:
        out.warn(
            "plugin-missing",
            f"{sync.course}: cannot create or check the cohort sync "
            f"of {sync.cohort} without the local_ws_enrolcohort plugin",
            sync.source,
        )
        return None
    return courseid


def _cohort_sync(
    out: Findings,
    sync: DesiredSync,
    courseid: int,
    given: _SyncInputs,
    groups_created: set[tuple[int, str]],
) -> set[int]:
    """Create, update or leave alone the instance of one cohort sync; the ids of the
    instances it accounts for (never retired)."""
    cohortid = given.cohort_ids.get(sync.cohort)
    existing = given.instances.get((courseid, cohortid or -1, sync.roleid), [])
    mine = [i for i in existing if i.owned] or ([existing[0]] if existing and sync.adopt else [])
    groupid = _group(out, sync, courseid, mine, given, groups_created)
    if mine:
        _update_sync(out, sync, mine[0], groupid)
        return {mine[0].id}
    if existing:
        out.unmanaged.append(
            {
                "kind": "cohort_sync",
                "id": existing[0].id,
                "course": sync.course,
                "cohort": sync.cohort,
                "role": sync.role,
                "reason": "declared, but the existing instance is not the reconciler's",
            }
        )
        out.warn(
            "unmanaged-lookalike",
            f"{sync.course}: an instance syncing {sync.cohort} as {sync.role} exists "
            "but was not created by the reconciler; left alone (declare adopt: true)",
            sync.source,
        )
        return {i.id for i in existing}
    out.add(
        f"{sync.course}/{sync.cohort}/{sync.role}",
        CreateSync(
            course=sync.course,
            courseid=courseid,
            cohort=sync.cohort,
            cohortid=cohortid,
            role=sync.role,
            roleid=sync.roleid,
            group=sync.group,
            groupid=groupid or None,
            name=instance_name(sync),
            reason=sync.reason,
        ),
        declared_reason(sync, f"declared in {sync.source}"),
    )
    return set()


def _group(
    out: Findings,
    sync: DesiredSync,
    courseid: int,
    mine: list[ActualInstance],
    given: _SyncInputs,
    groups_created: set[tuple[int, str]],
) -> int:
    """The id of the sync's group (0: none, or created by this plan: ``create_group``)."""
    actual, desired = given.actual, given.desired
    if not sync.group:
        return 0
    if mine and mine[0].group == sync.group and mine[0].groupid:
        return mine[0].groupid  # Moodle already shows this group on the instance
    groupid = actual.groups.get(courseid, {}).get(sync.group, 0)
    if not groupid and (courseid, sync.group) not in groups_created:
        groups_created.add((courseid, sync.group))
        written = desired.unsafe_names.get(("group", sync.course, sync.group))
        if written is not None:
            out.warn(
                "name-made-safe",
                f"{sync.course}: the group name {written!r} holds what Moodle's PARAM_TEXT "
                f"takes for HTML markup; it is named {sync.group!r}",
                sync.source,
            )
        out.add(
            f"{sync.course}/{sync.group}",
            CreateGroup(course=sync.course, courseid=courseid, name=sync.group),
            declared_reason(sync, f"group of the sync of {sync.cohort} in {sync.source}"),
        )
    return groupid


def _update_sync(out: Findings, sync: DesiredSync, inst: ActualInstance, groupid: int) -> None:
    changes: dict[str, tuple[Any, Any]] = {}
    if inst.status != 0:
        changes["status"] = (inst.status, 0)
    if sync.group and (not groupid or inst.groupid != groupid):
        changes["group"] = (inst.groupid, sync.group)
    if not sync.group and inst.groupid:
        changes["group"] = (inst.groupid, None)
    if inst.name != instance_name(sync):
        changes["name"] = (inst.name, instance_name(sync))
    if changes:
        out.add(
            f"{sync.course}/{sync.cohort}/{sync.role}",
            UpdateSync(
                instance=inst.id,
                course=sync.course,
                courseid=inst.courseid,
                cohort=sync.cohort,
                role=sync.role,
                group=sync.group,
                groupid=groupid or None,
                name=instance_name(sync),
                changes=changes,
            ),
            Reason("drift", f"the instance's {', '.join(changes)} differ from {sync.source}",
                   sync.source)
            if inst.owned
            else Reason("adopt", f"taken over as declared in {sync.source}", sync.source),
        )


def _retire_sync(
    out: Findings,
    inst: ActualInstance,
    platform: PlatformSettings,
    desired: DesiredState,
) -> None:
    course = inst.course or str(inst.courseid)
    cohort = inst.cohort or str(inst.cohortid)
    role = {rid: name for name, rid in platform.roles.items()}.get(inst.roleid, str(inst.roleid))
    target = f"{course}/{cohort}/{role}"
    reason = _retire_reason(course, cohort, role, inst.roleid, desired)
    # courseid: lets the applier re-read an answer that may hide a commit (issue 10)
    common = dict(instance=inst.id, course=course, cohort=cohort, role=role,
                  courseid=inst.courseid)
    if platform.sync_policy.on_removal == "delete":
        out.add(target, DeleteSync(**common), reason)
    elif inst.status == 0:
        out.add(target, DisableSync(**common), reason)


def _retire_reason(
    course: str, cohort: str, role: str, roleid: int, desired: DesiredState
) -> Reason:
    """Expired on its declared date, a course that no longer matches the course pattern
    declaring this cohort and role, or no longer declared at all."""
    for sync in desired.expired_syncs:
        if (sync.course, sync.cohort, sync.roleid) == (course, cohort, roleid):
            day = sync.expires.isoformat() if sync.expires else "?"
            return Reason("expired", f"the sync expired on {day} ({sync.source})", sync.source)
    unmatched = pattern_unmatched(course, cohort, role, desired)
    if unmatched is not None:
        return unmatched
    return Reason(
        "undeclared", f"no declaration of {course} syncs {cohort} with this role any more"
    )
