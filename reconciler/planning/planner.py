"""The planner: a pure function of (desired, actual, settings, today) -> plan.

No I/O. As in peribolos, each kind of resource is compared with plain set operations, the
risky parts are decided here (ownership, what a removal does, failsafes), and everything
shows up in the plan before anything is written.

``compute_plan`` runs four phases in order, each a function that returns what the next one
needs, in the open (no shared mutable state):

* ``plan_accounts`` -> :class:`Accounts`: the accounts this plan creates (``creating``);
* ``plan_cohorts(…, creating)`` -> :class:`Cohorts`: cohort and member actions, the cohorts
  it creates (``created``) and the members it removes (``removed``: manual syncs follow);
* ``plan_syncs(…, creating, cohorts)`` -> :class:`Findings`: groups, cohort syncs, manual
  enrolments and the instances no longer declared;
* ``plan_notices`` -> :class:`Notices`: expiring syncs and the run's general warnings.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import end_of_day_timestamp
from ..settings import PlatformSettings
from .actions import (
    Action,
    AddMembers,
    CreateCohort,
    CreateGroup,
    CreateSync,
    CreateUser,
    DeleteCohort,
    DeleteSync,
    Details,
    DisableSync,
    EnrolManual,
    RemoveMembers,
    SuspendManual,
    UpdateCohort,
    UpdateSync,
)
from .failsafe import check_failsafes
from .plan import Plan, Warning
from .state import (
    COHORT_MARKER,
    INSTANCE_PREFIX,
    ActualCohort,
    ActualInstance,
    ActualState,
    DesiredCohort,
    DesiredState,
    DesiredSync,
)

# (username, Moodle user id) of members a plan removes from one cohort.
Leavers = tuple[tuple[str, int], ...]


def instance_name(sync: DesiredSync) -> str:
    """The name that marks an instance as the reconciler's own (read back from Moodle)."""
    return f"{INSTANCE_PREFIX}{sync.cohort} ({sync.role})"


def cohort_description(want: DesiredCohort) -> str:
    """The declared description with the reconciler's ownership marker on its last line."""
    text = want.description.strip()
    return f"{text}\n{COHORT_MARKER}" if text else COHORT_MARKER


# -- what the phases give ------------------------------------------------------------------


@dataclass
class Findings:
    """What one phase found: actions, warnings, unmanaged look-alikes, pending usernames."""

    actions: list[Action] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    unmanaged: list[dict[str, Any]] = field(default_factory=list)
    pending: set[str] = field(default_factory=set)

    def add(self, target: str, details: Details) -> None:
        self.actions.append(Action.of(target, details))

    def warn(self, code: str, message: str, target: str = "") -> None:
        self.warnings.append(Warning(code, message, target))


@dataclass
class Accounts(Findings):
    """``plan_accounts``' result: the usernames whose account this plan creates."""

    creating: frozenset[str] = frozenset()


@dataclass
class Cohorts(Findings):
    """``plan_cohorts``' result: the cohorts it creates and the members it removes."""

    created: frozenset[str] = frozenset()
    removed: Mapping[str, Leavers] = field(default_factory=dict)


@dataclass
class Notices:
    """``plan_notices``' result: syncs expiring soon and the run's general warnings."""

    expiring: list[dict[str, Any]]
    warnings: list[Warning]


def resolve(
    usernames: frozenset[str] | set[str], actual: ActualState, creating: frozenset[str]
) -> tuple[list[str], list[int | None], set[str]]:
    """(usernames that exist or are being created, their ids with None for those created
    now, the pending ones: neither in Moodle nor created), names sorted."""
    names: list[str] = []
    ids: list[int | None] = []
    pending: set[str] = set()
    for username in sorted(usernames):
        uid = actual.users.get(username)
        if uid is not None:
            names.append(username)
            ids.append(uid)
        elif username in creating:
            names.append(username)
            ids.append(None)
        else:
            pending.add(username)
    return names, ids, pending


# -- accounts ------------------------------------------------------------------------------


def plan_accounts(
    desired: DesiredState, actual: ActualState, platform: PlatformSettings
) -> Accounts:
    """Accounts for members Moodle lacks and the directory knows, when the platform creates
    accounts (``accounts.create``); the others stay pending."""
    out = Accounts()
    if not platform.accounts.create:
        return out
    wanted = set().union(*(c.members for c in desired.cohorts.values()))
    creating = set()
    for username in sorted(u for u in wanted if u not in actual.users):
        account = desired.accounts.get(username)
        if account is None:
            continue
        creating.add(username)
        out.add(
            username,
            CreateUser(
                username=username,
                firstname=account.firstname,
                lastname=account.lastname,
                email=account.email,
                auth=platform.accounts.auth,
            ),
        )
    out.creating = frozenset(creating)
    return out


# -- cohorts -------------------------------------------------------------------------------


def plan_cohorts(
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
    creating: frozenset[str],
) -> Cohorts:
    """Each desired cohort created, brought back to its declaration, or reported as an
    unmanaged look-alike; each managed cohort no longer desired retired (see
    ``_retire_cohort``)."""
    out = Cohorts()
    created: set[str] = set()
    removed: dict[str, Leavers] = {}
    for idnumber in sorted(desired.cohorts):
        want = desired.cohorts[idnumber]
        have = actual.cohorts.get(idnumber)
        if have is None:
            created.add(idnumber)
            _create_cohort(out, want, actual, creating)
        elif have.owned or want.adopt or (want.kind == "general" and desired.adopt_general):
            _update_cohort(out, want, have, actual, creating, removed)
        else:
            out.unmanaged.append(
                {
                    "kind": "cohort",
                    "idnumber": idnumber,
                    "id": have.id,
                    "reason": "exists in Moodle without the reconciler's marker",
                }
            )
            out.warn(
                "unmanaged-lookalike",
                f"cohort {idnumber} exists in Moodle but was not created by the reconciler; "
                "left alone (declare adopt: true to take it over)",
                idnumber,
            )
    for idnumber in sorted(actual.cohorts):
        if idnumber not in desired.cohorts:
            _retire_cohort(out, actual.cohorts[idnumber], desired, actual, platform, removed)
    out.created, out.removed = frozenset(created), removed
    return out


def _create_cohort(
    out: Cohorts, want: DesiredCohort, actual: ActualState, creating: frozenset[str]
) -> None:
    out.add(
        want.idnumber,
        CreateCohort(
            idnumber=want.idnumber,
            name=want.name,
            description=cohort_description(want),
            visible=want.visible,
            category=want.category,
            cohort_kind=want.kind,
        ),
    )
    names, ids, pending = resolve(want.members, actual, creating)
    out.pending |= pending
    if names:
        out.add(
            want.idnumber,
            AddMembers(
                cohort=want.idnumber,
                cohortid=None,
                usernames=tuple(names),
                userids=tuple(ids),
                size_before=0,
            ),
        )


def _update_cohort(
    out: Cohorts,
    want: DesiredCohort,
    have: ActualCohort,
    actual: ActualState,
    creating: frozenset[str],
    removed: dict[str, Leavers],
) -> None:
    description = cohort_description(want)
    changes: dict[str, tuple[Any, Any]] = {}
    if have.name != want.name:
        changes["name"] = (have.name, want.name)
    if have.description != description:
        changes["description"] = (have.description, description)
    if have.visible != want.visible:
        changes["visible"] = (have.visible, want.visible)
    if changes:
        out.add(
            want.idnumber,
            UpdateCohort(
                cohortid=have.id,
                idnumber=want.idnumber,
                name=want.name,
                description=description,
                visible=want.visible,
                category=want.category,
                changes=changes,
                adopt=not have.owned,
            ),
        )
    names, ids, pending = resolve(want.members, actual, creating)
    out.pending |= pending
    to_add = [(n, i) for n, i in zip(names, ids, strict=True) if i is None or i not in have.members]
    if to_add:
        out.add(
            want.idnumber,
            AddMembers(
                cohort=want.idnumber,
                cohortid=have.id,
                usernames=tuple(n for n, _ in to_add),
                userids=tuple(i for _, i in to_add),
                size_before=len(have.members),
            ),
        )
    _remove_members(out, want.idnumber, have, actual, want.members | want.uncertain, removed)


def _remove_members(
    out: Cohorts,
    idnumber: str,
    have: ActualCohort,
    actual: ActualState,
    keep: frozenset[str],
    removed: dict[str, Leavers],
) -> None:
    # A member Moodle did not name (a lookup that came back short) is never removed on
    # the strength of a missing answer: only known usernames absent from ``keep`` go.
    unknown = sorted(uid for uid in have.members if uid not in actual.usernames)
    if unknown:
        out.warn(
            "unidentified-members",
            f"cohort {idnumber}: {len(unknown)} member(s) could not be identified in Moodle "
            f"(user ids {', '.join(map(str, unknown[:10]))}); left as they are",
            idnumber,
        )
    gone = tuple(
        sorted(
            (name, uid)
            for uid in have.members
            if (name := actual.usernames.get(uid)) is not None and name not in keep
        )
    )
    if gone:
        removed[idnumber] = gone
        out.add(
            idnumber,
            RemoveMembers(
                cohort=idnumber,
                cohortid=have.id,
                usernames=tuple(n for n, _ in gone),
                userids=tuple(u for _, u in gone),
                size_before=len(have.members),
            ),
        )


def _is_general(platform: PlatformSettings, idnumber: str) -> bool:
    general = platform.general_cohorts
    return general.enabled and bool(general.idnumber_regex().match(idnumber))


def _retire_cohort(
    out: Cohorts,
    have: ActualCohort,
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
    removed: dict[str, Leavers],
) -> None:
    """A managed cohort no longer declared (or expired): delete it when nothing needs it."""
    general = _is_general(platform, have.idnumber)
    if general and desired.general_frozen:
        return
    if not have.owned:
        out.unmanaged.append(
            {
                "kind": "cohort",
                "idnumber": have.idnumber,
                "id": have.id,
                "reason": "matches a managed pattern but was not created by the reconciler",
            }
        )
        return
    users = [i for i in actual.instances if i.cohortid == have.id]
    declared_elsewhere = any(s.cohort == have.idnumber for s in desired.syncs)
    why = "has expired" if have.idnumber in desired.expired_cohorts else "is no longer declared"
    if general and (users or declared_elsewhere):
        # The étape has no current IA any more but courses still use its cohort: its
        # students drop out (through the failsafes) and the cohort stays for the syncs.
        out.warn(
            "etape-empty",
            f"general cohort {have.idnumber} has no current inscription administrative; "
            "its members are removed, the cohort is kept for the syncs that use it",
            have.idnumber,
        )
        _remove_members(out, have.idnumber, have, actual, frozenset(), removed)
        return
    foreign = [i for i in users if not i.owned]
    if foreign:
        out.warn(
            "cohort-kept",
            f"cohort {have.idnumber} {why} but is kept: cohort sync instance(s) "
            f"{', '.join(str(i.id) for i in foreign)} that the reconciler does not own still "
            "use it (deleting it would unenrol their users)",
            have.idnumber,
        )
        return
    if users and (platform.sync_policy.on_removal == "disable" or declared_elsewhere):
        out.warn(
            "cohort-kept",
            f"cohort {have.idnumber} {why} but is kept: the reconciler's own "
            "(disabled) sync instances still use it, and deleting the cohort would delete them "
            "and unenrol their users; remove those instances in Moodle, or set "
            "sync_policy.on_removal: delete",
            have.idnumber,
        )
        return
    out.add(
        have.idnumber,
        DeleteCohort(cohort=have.idnumber, cohortid=have.id, members=len(have.members)),
    )


# -- syncs ---------------------------------------------------------------------------------


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
) -> Findings:
    """Every declared sync (cohort sync or manual enrolments) checked against Moodle, then
    the reconciler's instances no sync keeps retired (``sync_policy.on_removal``)."""
    instances: dict[tuple[int, int, int], list[ActualInstance]] = defaultdict(list)
    for inst in actual.instances:
        instances[(inst.courseid, inst.cohortid, inst.roleid)].append(inst)
    cohort_ids = {c.idnumber: c.id for c in actual.cohorts.values()}
    cohort_ids.update({v: k for k, v in actual.unmanaged_cohort_ids.items()})
    given = _SyncInputs(desired, actual, platform, creating, cohorts, instances, cohort_ids)

    out = Findings()
    kept: set[int] = set()  # instances a declared sync accounts for
    groups_created: set[tuple[int, str]] = set()
    for sync in sorted(desired.syncs, key=lambda s: s.key):
        _discouraged(out, sync, platform)
        courseid = _ready(out, sync, given)
        if courseid is None:
            continue
        if sync.method == "manual":
            _manual_sync(out, sync, courseid, given)
        else:
            kept |= _cohort_sync(out, sync, courseid, given, groups_created)
    for inst in actual.instances:
        if inst.owned and inst.id not in kept:
            _retire_sync(out, inst, platform)
    return out


def _discouraged(out: Findings, sync: DesiredSync, platform: PlatformSettings) -> None:
    if platform.sync_policy.cohort_sync == "discouraged" and sync.method == "cohort":
        out.warn(
            "cohort-sync-discouraged",
            f"{sync.course}: cohort sync of {sync.cohort} is discouraged on this "
            "platform; prefer method: manual with an expiry date",
            sync.source,
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
    groupid = _group(out, sync, courseid, mine, given.actual, groups_created)
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
    )
    return set()


def _group(
    out: Findings,
    sync: DesiredSync,
    courseid: int,
    mine: list[ActualInstance],
    actual: ActualState,
    groups_created: set[tuple[int, str]],
) -> int:
    """The id of the sync's group (0: none, or created by this plan: ``create_group``)."""
    if not sync.group:
        return 0
    if mine and mine[0].group == sync.group and mine[0].groupid:
        return mine[0].groupid  # Moodle already shows this group on the instance
    groupid = actual.groups.get(courseid, {}).get(sync.group, 0)
    if not groupid and (courseid, sync.group) not in groups_created:
        groups_created.add((courseid, sync.group))
        out.add(
            f"{sync.course}/{sync.group}",
            CreateGroup(course=sync.course, courseid=courseid, name=sync.group),
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
        )


def _retire_sync(out: Findings, inst: ActualInstance, platform: PlatformSettings) -> None:
    course = inst.course or str(inst.courseid)
    cohort = inst.cohort or str(inst.cohortid)
    role = {rid: name for name, rid in platform.roles.items()}.get(inst.roleid, str(inst.roleid))
    target = f"{course}/{cohort}/{role}"
    if platform.sync_policy.on_removal == "delete":
        out.add(target, DeleteSync(instance=inst.id, course=course, cohort=cohort, role=role))
    elif inst.status == 0:
        out.add(target, DisableSync(instance=inst.id, course=course, cohort=cohort, role=role))


def _followed_members(idnumber: str, desired: DesiredState, actual: ActualState) -> frozenset[str]:
    """Members a sync follows: the desired ones, or Moodle's when the cohort is frozen."""
    want = desired.cohorts.get(idnumber)
    if want is not None:
        return want.members
    have = actual.cohorts.get(idnumber)
    if have is None:
        return frozenset()
    return frozenset(actual.usernames[u] for u in have.members if u in actual.usernames)


def _manual_sync(out: Findings, sync: DesiredSync, courseid: int, given: _SyncInputs) -> None:
    """``method: manual``: enrol the members not yet enrolled with the role, and suspend
    this course's enrolment of members who leave the cohort in this run."""
    actual = given.actual
    enrolled = actual.enrolled.get(courseid, {})
    members = _followed_members(sync.cohort, given.desired, actual)
    names, ids, pending = resolve(members, actual, given.creating)
    out.pending |= pending
    missing = [
        (n, i)
        for n, i in zip(names, ids, strict=True)
        if i is None or sync.roleid not in enrolled.get(i, frozenset())
    ]
    assert sync.expires is not None  # lint: manual-needs-expires
    target = f"{sync.course}/{sync.cohort}/{sync.role}"
    common: dict[str, Any] = dict(
        course=sync.course,
        courseid=courseid,
        cohort=sync.cohort,
        role=sync.role,
        roleid=sync.roleid,
        timeend=end_of_day_timestamp(sync.expires),
    )
    if missing:
        out.add(
            target,
            EnrolManual(
                **common,
                usernames=tuple(n for n, _ in missing),
                userids=tuple(i for _, i in missing),
                expires=sync.expires.isoformat(),
            ),
        )
    leaving = [(n, u) for n, u in given.cohorts.removed.get(sync.cohort, ()) if u in enrolled]
    if leaving:
        out.add(
            target,
            SuspendManual(
                **common,
                usernames=tuple(n for n, _ in leaving),
                userids=tuple(u for _, u in leaving),
            ),
        )


# -- notices -------------------------------------------------------------------------------


def plan_notices(desired: DesiredState, platform: PlatformSettings, today: dt.date) -> Notices:
    """Syncs expiring within the platform's window (``expiry_warning_days``), expired ones,
    and unhealthy sources."""
    notices = Notices(expiring=[], warnings=[])
    window = platform.sync_policy.expiry_warning_days
    for sync in desired.syncs:
        if sync.expires and 0 <= (sync.expires - today).days <= window:
            days = (sync.expires - today).days
            notices.expiring.append(
                {
                    "course": sync.course,
                    "cohort": sync.cohort,
                    "role": sync.role,
                    "method": sync.method,
                    "expires": sync.expires.isoformat(),
                    "days_left": days,
                    "within_days": window,
                    "owners": list(sync.owners),
                    "source": sync.source,
                }
            )
            notices.warnings.append(
                Warning(
                    "expiring",
                    f"{sync.course}: sync of {sync.cohort} ({sync.role}) expires "
                    f"on {sync.expires.isoformat()} ({days} days left)",
                    sync.source,
                )
            )
    for sync in desired.expired_syncs:
        notices.warnings.append(
            Warning(
                "expired",
                f"{sync.course}: sync of {sync.cohort} ({sync.role}) expired on "
                f"{sync.expires.isoformat() if sync.expires else '?'}; it is removed "
                "(delete the entry)",
                sync.source,
            )
        )
    if desired.general_frozen:
        reasons = "; ".join(desired.frozen_reasons) or "unknown reason"
        notices.warnings.append(
            Warning(
                "sources-unhealthy",
                f"general cohorts are left unchanged: sources are unhealthy ({reasons})",
            )
        )
    return notices


def compute_plan(
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
    today: dt.date,
    academic_year: str,
) -> Plan:
    """Everything that turns ``actual`` into ``desired`` on ``platform`` as of ``today``
    (a Europe/Paris date: expiry), with warnings and failsafe checks. Pure: no I/O, the same
    inputs give the same plan. ``academic_year`` is the ``COD_ANU`` the sources followed."""
    accounts = plan_accounts(desired, actual, platform)
    cohorts = plan_cohorts(desired, actual, platform, accounts.creating)
    syncs = plan_syncs(desired, actual, platform, accounts.creating, cohorts)
    notices = plan_notices(desired, platform, today)
    found = (accounts, cohorts, syncs)
    plan = Plan(
        platform=platform.name,
        academic_year=academic_year,
        actions=[a for f in found for a in f.actions],
        warnings=[w for f in found for w in f.warnings] + notices.warnings,
        pending_users=sorted(set().union(*(f.pending for f in found))),
        unmanaged=[u for f in found for u in f.unmanaged],
        expiring=notices.expiring,
        sources=dict(desired.source_stats),
        source_digest=desired.source_digest,
        moodle_fingerprint=actual.fingerprint(),
    )
    plan.failsafe = check_failsafes(plan, platform.failsafes)
    return plan
