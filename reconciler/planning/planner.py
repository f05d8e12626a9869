"""The planner: a pure function of (desired, actual, settings, today) -> plan.

No I/O. As in peribolos, each kind of resource is compared with plain set operations, the
risky parts are decided here (ownership, what a removal does, failsafes), and everything
shows up in the plan before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from ..clock import end_of_day_timestamp
from ..settings import PlatformSettings
from .failsafe import check_failsafes
from .plan import Action, Plan, Warning
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


def instance_name(sync: DesiredSync) -> str:
    """The name that marks an instance as the reconciler's own (read back from Moodle)."""
    return f"{INSTANCE_PREFIX}{sync.cohort} ({sync.role})"


def cohort_description(want: DesiredCohort) -> str:
    text = want.description.strip()
    return f"{text}\n{COHORT_MARKER}" if text else COHORT_MARKER


class _Planner:
    def __init__(
        self,
        desired: DesiredState,
        actual: ActualState,
        platform: PlatformSettings,
        today: dt.date,
        academic_year: str,
    ) -> None:
        self.desired, self.actual, self.platform, self.today = desired, actual, platform, today
        self.plan = Plan(platform=platform.name, academic_year=academic_year)
        self.pending: set[str] = set()
        self.creating_users: set[str] = set()
        # cohort idnumber -> usernames this plan removes (manual syncs follow them)
        self.removed_members: dict[str, list[tuple[str, int]]] = {}
        self.cohorts_created: set[str] = set()
        self.role_names = {rid: name for name, rid in platform.roles.items()}
        self.general = platform.general_cohorts

    # -- helpers ------------------------------------------------------------------------

    def add(self, kind: str, target: str, **details: object) -> None:
        self.plan.actions.append(Action(kind, target, dict(details)))

    def warn(self, code: str, message: str, target: str = "") -> None:
        self.plan.warnings.append(Warning(code, message, target))

    def is_general(self, idnumber: str) -> bool:
        return self.general.enabled and bool(self.general.idnumber_regex().match(idnumber))

    def resolve(self, usernames: frozenset[str] | set[str]) -> tuple[list[str], list[int | None]]:
        """Usernames that exist (or are being created), with their ids (None: created now)."""
        names, ids = [], []
        for username in sorted(usernames):
            uid = self.actual.users.get(username)
            if uid is not None:
                names.append(username)
                ids.append(uid)
            elif username in self.creating_users:
                names.append(username)
                ids.append(None)
            else:
                self.pending.add(username)
        return names, ids

    def cohort_members(self, idnumber: str) -> frozenset[str]:
        """Members a sync follows: the desired ones, or Moodle's when the cohort is frozen."""
        want = self.desired.cohorts.get(idnumber)
        if want is not None:
            return want.members
        have = self.actual.cohorts.get(idnumber)
        if have is None:
            return frozenset()
        return frozenset(
            self.actual.usernames[u] for u in have.members if u in self.actual.usernames
        )

    # -- accounts -----------------------------------------------------------------------

    def accounts(self) -> None:
        if not self.platform.accounts.create:
            return
        wanted = set().union(*(c.members for c in self.desired.cohorts.values()))
        for username in sorted(wanted - self.actual.users.keys()):
            account = self.desired.accounts.get(username)
            if account is None:
                continue
            self.creating_users.add(username)
            self.add(
                "create_user",
                username,
                username=username,
                firstname=account.firstname,
                lastname=account.lastname,
                email=account.email,
                auth=self.platform.accounts.auth,
            )

    # -- cohorts ------------------------------------------------------------------------

    def cohorts(self) -> None:
        for idnumber in sorted(self.desired.cohorts):
            want = self.desired.cohorts[idnumber]
            have = self.actual.cohorts.get(idnumber)
            if have is None:
                self.create_cohort(want)
            elif (
                have.owned or want.adopt or (want.kind == "general" and self.desired.adopt_general)
            ):
                self.update_cohort(want, have)
            else:
                self.plan.unmanaged.append(
                    {
                        "kind": "cohort",
                        "idnumber": idnumber,
                        "id": have.id,
                        "reason": "exists in Moodle without the reconciler's marker",
                    }
                )
                self.warn(
                    "unmanaged-lookalike",
                    f"cohort {idnumber} exists in Moodle but was not created by the reconciler; "
                    "left alone (declare adopt: true to take it over)",
                    idnumber,
                )
        for idnumber in sorted(self.actual.cohorts):
            if idnumber not in self.desired.cohorts:
                self.retire_cohort(self.actual.cohorts[idnumber])

    def create_cohort(self, want: DesiredCohort) -> None:
        self.cohorts_created.add(want.idnumber)
        self.add(
            "create_cohort",
            want.idnumber,
            idnumber=want.idnumber,
            name=want.name,
            description=cohort_description(want),
            visible=want.visible,
            category=want.category,
            cohort_kind=want.kind,
        )
        names, ids = self.resolve(want.members)
        if names:
            self.add(
                "add_members",
                want.idnumber,
                cohort=want.idnumber,
                cohortid=None,
                usernames=names,
                userids=ids,
                size_before=0,
            )

    def update_cohort(self, want: DesiredCohort, have: ActualCohort) -> None:
        description = cohort_description(want)
        changes = {}
        if have.name != want.name:
            changes["name"] = [have.name, want.name]
        if have.description != description:
            changes["description"] = [have.description, description]
        if have.visible != want.visible:
            changes["visible"] = [have.visible, want.visible]
        if changes:
            self.add(
                "update_cohort",
                want.idnumber,
                cohortid=have.id,
                idnumber=want.idnumber,
                name=want.name,
                description=description,
                visible=want.visible,
                category=want.category,
                changes=changes,
                adopt=not have.owned,
            )
        names, ids = self.resolve(want.members)
        to_add = [
            (n, i) for n, i in zip(names, ids, strict=True) if i is None or i not in have.members
        ]
        if to_add:
            self.add(
                "add_members",
                want.idnumber,
                cohort=want.idnumber,
                cohortid=have.id,
                usernames=[n for n, _ in to_add],
                userids=[i for _, i in to_add],
                size_before=len(have.members),
            )
        self.remove_members(want.idnumber, have, keep=want.members | want.uncertain)

    def remove_members(self, idnumber: str, have: ActualCohort, keep: frozenset[str]) -> None:
        # A member Moodle did not name (a lookup that came back short) is never removed on
        # the strength of a missing answer: only known usernames absent from ``keep`` go.
        unknown = sorted(uid for uid in have.members if uid not in self.actual.usernames)
        if unknown:
            self.warn(
                "unidentified-members",
                f"cohort {idnumber}: {len(unknown)} member(s) could not be identified in Moodle "
                f"(user ids {', '.join(map(str, unknown[:10]))}); left as they are",
                idnumber,
            )
        gone = sorted(
            (name, uid)
            for uid in have.members
            if (name := self.actual.usernames.get(uid)) is not None and name not in keep
        )
        if gone:
            self.removed_members[idnumber] = gone
            self.add(
                "remove_members",
                idnumber,
                cohort=idnumber,
                cohortid=have.id,
                usernames=[n for n, _ in gone],
                userids=[u for _, u in gone],
                size_before=len(have.members),
            )

    def gone_why(self, have: ActualCohort) -> str:
        expired = have.idnumber in self.desired.expired_cohorts
        return "has expired" if expired else "is no longer declared"

    def retire_cohort(self, have: ActualCohort) -> None:
        """A managed cohort no longer declared (or expired): delete it when nothing needs it."""
        general = self.is_general(have.idnumber)
        if general and self.desired.general_frozen:
            return
        if not have.owned:
            self.plan.unmanaged.append(
                {
                    "kind": "cohort",
                    "idnumber": have.idnumber,
                    "id": have.id,
                    "reason": "matches a managed pattern but was not created by the reconciler",
                }
            )
            return
        users = [i for i in self.actual.instances if i.cohortid == have.id]
        declared_elsewhere = any(s.cohort == have.idnumber for s in self.desired.syncs)
        if general and (users or declared_elsewhere):
            # The étape has no current IA any more but courses still use its cohort: its
            # students drop out (through the failsafes) and the cohort stays for the syncs.
            self.warn(
                "etape-empty",
                f"general cohort {have.idnumber} has no current inscription administrative; "
                "its members are removed, the cohort is kept for the syncs that use it",
                have.idnumber,
            )
            self.remove_members(have.idnumber, have, keep=frozenset())
            return
        foreign = [i for i in users if not i.owned]
        if foreign:
            self.warn(
                "cohort-kept",
                f"cohort {have.idnumber} {self.gone_why(have)} but is kept: cohort sync "
                f"instance(s) {', '.join(str(i.id) for i in foreign)} that the reconciler does not "
                "own still use it (deleting it would unenrol their users)",
                have.idnumber,
            )
            return
        if users and (self.platform.sync_policy.on_removal == "disable" or declared_elsewhere):
            self.warn(
                "cohort-kept",
                f"cohort {have.idnumber} {self.gone_why(have)} but is kept: the reconciler's own "
                "(disabled) sync instances still use it, and deleting the cohort would delete them "
                "and unenrol their users; remove those instances in Moodle, or set "
                "sync_policy.on_removal: delete",
                have.idnumber,
            )
            return
        self.add(
            "delete_cohort",
            have.idnumber,
            cohort=have.idnumber,
            cohortid=have.id,
            members=len(have.members),
        )

    # -- syncs --------------------------------------------------------------------------

    def syncs(self) -> None:
        instances: dict[tuple[int, int, int], list[ActualInstance]] = defaultdict(list)
        for inst in self.actual.instances:
            instances[(inst.courseid, inst.cohortid, inst.roleid)].append(inst)
        cohort_ids = {c.idnumber: c.id for c in self.actual.cohorts.values()}
        cohort_ids.update({v: k for k, v in self.actual.unmanaged_cohort_ids.items()})
        kept: set[int] = set()
        groups_created: set[tuple[int, str]] = set()

        for sync in sorted(self.desired.syncs, key=lambda s: s.key):
            if self.platform.sync_policy.cohort_sync == "discouraged" and sync.method == "cohort":
                self.warn(
                    "cohort-sync-discouraged",
                    f"{sync.course}: cohort sync of {sync.cohort} is discouraged on this "
                    "platform; prefer method: manual with an expiry date",
                    sync.source,
                )
            courseid = self.actual.courses.get(sync.course)
            if courseid is None:
                self.warn(
                    "course-missing",
                    f"course {sync.course} does not exist in Moodle; "
                    f"sync of {sync.cohort} waits for it",
                    sync.source,
                )
                continue
            cohortid = cohort_ids.get(sync.cohort)
            if cohortid is None and sync.cohort not in self.cohorts_created:
                self.warn(
                    "cohort-missing",
                    f"{sync.course}: cohort {sync.cohort} does not exist "
                    "in Moodle yet (sources unhealthy or no members); sync waits",
                    sync.source,
                )
                continue
            if sync.method == "manual":
                self.manual_sync(sync, courseid)
                continue
            if not self.actual.plugin_available:
                self.warn(
                    "plugin-missing",
                    f"{sync.course}: cannot create or check the cohort sync "
                    f"of {sync.cohort} without the local_ws_enrolcohort plugin",
                    sync.source,
                )
                continue
            existing = instances.get((courseid, cohortid or -1, sync.roleid), [])
            mine = [i for i in existing if i.owned] or (
                [existing[0]] if existing and sync.adopt else []
            )
            groupid = 0
            if sync.group and mine and mine[0].group == sync.group and mine[0].groupid:
                groupid = mine[0].groupid  # Moodle already shows this group on the instance
            elif sync.group:
                groupid = self.actual.groups.get(courseid, {}).get(sync.group, 0)
                if not groupid and (courseid, sync.group) not in groups_created:
                    groups_created.add((courseid, sync.group))
                    self.add(
                        "create_group",
                        f"{sync.course}/{sync.group}",
                        course=sync.course,
                        courseid=courseid,
                        name=sync.group,
                    )
            if mine:
                inst = mine[0]
                kept.add(inst.id)
                self.update_sync(sync, inst, groupid)
            elif existing:
                kept.update(i.id for i in existing)
                self.plan.unmanaged.append(
                    {
                        "kind": "cohort_sync",
                        "id": existing[0].id,
                        "course": sync.course,
                        "cohort": sync.cohort,
                        "role": sync.role,
                        "reason": "declared, but the existing instance is not the reconciler's",
                    }
                )
                self.warn(
                    "unmanaged-lookalike",
                    f"{sync.course}: an instance syncing {sync.cohort} as {sync.role} exists "
                    "but was not created by the reconciler; left alone (declare adopt: true)",
                    sync.source,
                )
            else:
                self.add(
                    "create_sync",
                    f"{sync.course}/{sync.cohort}/{sync.role}",
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
                )

        for inst in self.actual.instances:
            if inst.owned and inst.id not in kept:
                self.retire_sync(inst)

    def update_sync(self, sync: DesiredSync, inst: ActualInstance, groupid: int) -> None:
        changes: dict[str, list[object]] = {}
        if inst.status != 0:
            changes["status"] = [inst.status, 0]
        if sync.group and (not groupid or inst.groupid != groupid):
            changes["group"] = [inst.groupid, sync.group]
        if not sync.group and inst.groupid:
            changes["group"] = [inst.groupid, None]
        if inst.name != instance_name(sync):
            changes["name"] = [inst.name, instance_name(sync)]
        if changes:
            self.add(
                "update_sync",
                f"{sync.course}/{sync.cohort}/{sync.role}",
                instance=inst.id,
                course=sync.course,
                courseid=inst.courseid,
                cohort=sync.cohort,
                role=sync.role,
                group=sync.group,
                groupid=groupid or None,
                name=instance_name(sync),
                changes=changes,
            )

    def retire_sync(self, inst: ActualInstance) -> None:
        course = inst.course or str(inst.courseid)
        cohort = inst.cohort or str(inst.cohortid)
        role = self.role_names.get(inst.roleid, str(inst.roleid))
        target = f"{course}/{cohort}/{role}"
        if self.platform.sync_policy.on_removal == "delete":
            self.add(
                "delete_sync", target, instance=inst.id, course=course, cohort=cohort, role=role
            )
        elif inst.status == 0:
            self.add(
                "disable_sync", target, instance=inst.id, course=course, cohort=cohort, role=role
            )

    def manual_sync(self, sync: DesiredSync, courseid: int) -> None:
        enrolled = self.actual.enrolled.get(courseid, {})
        names, ids = self.resolve(self.cohort_members(sync.cohort))
        missing = [
            (n, i)
            for n, i in zip(names, ids, strict=True)
            if i is None or sync.roleid not in enrolled.get(i, frozenset())
        ]
        assert sync.expires is not None  # lint: manual-needs-expires
        target = f"{sync.course}/{sync.cohort}/{sync.role}"
        common = dict(
            course=sync.course,
            courseid=courseid,
            cohort=sync.cohort,
            role=sync.role,
            roleid=sync.roleid,
            timeend=end_of_day_timestamp(sync.expires),
        )
        if missing:
            self.add(
                "enrol_manual",
                target,
                **common,
                usernames=[n for n, _ in missing],
                userids=[i for _, i in missing],
                expires=sync.expires.isoformat(),
            )
        # Members leaving the cohort in this run lose this course's manual enrolment too.
        leaving = [(n, u) for n, u in self.removed_members.get(sync.cohort, []) if u in enrolled]
        if leaving:
            self.add(
                "suspend_manual",
                target,
                **common,
                usernames=[n for n, _ in leaving],
                userids=[u for _, u in leaving],
            )

    # -- notices ------------------------------------------------------------------------

    def notices(self) -> None:
        window = self.platform.sync_policy.expiry_warning_days
        for sync in self.desired.syncs:
            if sync.expires and 0 <= (sync.expires - self.today).days <= window:
                days = (sync.expires - self.today).days
                self.plan.expiring.append(
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
                self.warn(
                    "expiring",
                    f"{sync.course}: sync of {sync.cohort} ({sync.role}) expires "
                    f"on {sync.expires.isoformat()} ({days} days left)",
                    sync.source,
                )
        for sync in self.desired.expired_syncs:
            self.warn(
                "expired",
                f"{sync.course}: sync of {sync.cohort} ({sync.role}) expired on "
                f"{sync.expires.isoformat() if sync.expires else '?'}; it is removed "
                "(delete the entry)",
                sync.source,
            )
        if self.desired.general_frozen:
            reasons = "; ".join(self.desired.frozen_reasons) or "unknown reason"
            self.warn(
                "sources-unhealthy",
                f"general cohorts are left unchanged: sources are unhealthy ({reasons})",
            )
        if self.pending:
            self.plan.pending_users = sorted(self.pending)


def compute_plan(
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
    today: dt.date,
    academic_year: str,
) -> Plan:
    """Everything that turns ``actual`` into ``desired``, with warnings and failsafe checks."""
    planner = _Planner(desired, actual, platform, today, academic_year)
    planner.accounts()
    planner.cohorts()
    planner.syncs()
    planner.notices()
    plan = planner.plan
    plan.source_digest = desired.source_digest
    plan.moodle_fingerprint = actual.fingerprint()
    plan.sources = dict(desired.source_stats)
    plan.failsafe = check_failsafes(plan, platform.failsafes)
    return plan
