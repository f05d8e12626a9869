"""The applier: the only code that writes to Moodle. It executes a checked plan, in phases.

Adds run before removes. Actions of one kind are batched into as few calls as the client
allows; when a batch fails, its actions are retried one by one only where that is safe
(member adds and removes are idempotent in Moodle), so that one bad cohort does not stop the
others. Every action is journaled; a failed action never stops an independent one, and an
action whose prerequisite failed is reported as skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import click

from ..moodle.errors import MoodleError
from ..moodle.types import ManualEnrolment, NewCohort, NewGroup, NewUser
from ..planning.plan import Action, Plan
from .journal import Journal

# The web-service functions each kind of action writes with.
WRITE_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "create_user": ("core_user_create_users",),
    "create_cohort": ("core_cohort_create_cohorts",),
    "update_cohort": ("core_cohort_update_cohorts",),
    "add_members": ("core_cohort_add_cohort_members",),
    "remove_members": ("core_cohort_delete_cohort_members",),
    "delete_cohort": ("core_cohort_delete_cohorts",),
    "create_group": ("core_group_create_groups",),
    "create_sync": ("local_ws_enrolcohort_add_instance",),
    "update_sync": ("local_ws_enrolcohort_update_instance",),
    "disable_sync": ("local_ws_enrolcohort_update_instance",),
    "delete_sync": ("local_ws_enrolcohort_delete_instance",),
    "enrol_manual": ("enrol_manual_enrol_users",),
    "suspend_manual": ("enrol_manual_enrol_users",),
}


def required_functions(plan: Plan) -> list[str]:
    return sorted({f for a in plan.actions for f in WRITE_FUNCTIONS[a.kind]})


@dataclass
class ApplyResult:
    done: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)
    skipped: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class _Applier:
    def __init__(self, plan: Plan, client: Any, journal: Journal, progress: bool) -> None:
        self.plan, self.client, self.journal = plan, client, journal
        self.result = ApplyResult()
        self.users: dict[str, int] = {}
        self.cohorts: dict[str, int] = {}
        self.groups: dict[tuple[int, str], int] = {}
        self.failed_targets: set[str] = set()
        self.progress = progress
        self.total = len(plan.actions)

    # -- bookkeeping --------------------------------------------------------------------

    def _echo(self, action: Action, outcome: str) -> None:
        if self.progress:
            n = len(self.result.done) + len(self.result.failed) + len(self.result.skipped)
            click.echo(f"[{n}/{self.total}] {action.kind} {action.target}: {outcome}", err=True)

    def ok(self, action: Action, **extra: Any) -> None:
        self.result.done.append(action)
        self.journal.record(action.kind, action.target, "ok", **extra)
        self._echo(action, "ok")

    def fail(self, action: Action, error: Exception | str) -> None:
        message = str(error)
        self.result.failed.append((action, message))
        self.failed_targets.add(action.target)
        self.journal.record(action.kind, action.target, "failed", error=message)
        self._echo(action, f"FAILED: {message}")

    def skip(self, action: Action, why: str) -> None:
        self.result.skipped.append((action, why))
        self.failed_targets.add(action.target)
        self.journal.record(action.kind, action.target, "skipped", reason=why)
        self._echo(action, f"skipped: {why}")

    def batch(
        self, actions: list[Action], call: Callable[[list[Action]], Any], one_by_one_is_safe: bool
    ) -> None:
        """Run ``call`` on all actions; on failure, retry singly when that is safe."""
        if not actions:
            return
        try:
            call(actions)
        except MoodleError as err:
            if not one_by_one_is_safe or len(actions) == 1:
                for action in actions:
                    self.fail(action, err)
                return
            for action in actions:
                self.batch([action], call, one_by_one_is_safe=False)
            return
        for action in actions:
            self.ok(action)

    # -- resolution ---------------------------------------------------------------------

    def user_ids(self, action: Action) -> list[int]:
        ids = []
        for name, uid in zip(action.details["usernames"], action.details["userids"], strict=True):
            resolved = uid if uid is not None else self.users.get(name)
            if resolved is None:
                raise LookupError(f"user {name} was not created")
            ids.append(int(resolved))
        return ids

    def cohort_id(self, action: Action) -> int:
        cid = action.details.get("cohortid") or self.cohorts.get(action.details["cohort"])
        if cid is None:
            raise LookupError(f"cohort {action.details['cohort']} was not created")
        return int(cid)

    def ready(self, actions: Iterable[Action], resolve: Callable[[Action], Any]) -> list[Action]:
        """Actions whose ids resolve; the others are skipped with the reason."""
        out = []
        for action in actions:
            try:
                resolve(action)
            except LookupError as why:
                self.skip(action, str(why))
            else:
                out.append(action)
        return out

    # -- phases -------------------------------------------------------------------------

    def run(self) -> ApplyResult:
        by_kind: dict[str, list[Action]] = {}
        for action in self.plan.sorted_actions():
            by_kind.setdefault(action.kind, []).append(action)
        get = lambda kind: by_kind.get(kind, [])  # noqa: E731

        self.create_users(get("create_user"))
        self.create_cohorts(get("create_cohort"))
        self.update_cohorts(get("update_cohort"))
        self.members(get("add_members"), add=True)
        self.create_groups(get("create_group"))
        for action in get("create_sync") + get("update_sync"):
            self.sync(action)
        self.manual(get("enrol_manual"), suspend=False)
        self.members(get("remove_members"), add=False)
        self.manual(get("suspend_manual"), suspend=True)
        for action in get("disable_sync") + get("delete_sync"):
            self.retire_sync(action)
        self.delete_cohorts(get("delete_cohort"))
        return self.result

    def create_users(self, actions: list[Action]) -> None:
        if not actions:
            return
        try:
            created = self.client.create_users(
                [
                    NewUser(
                        username=a.details["username"],
                        firstname=a.details["firstname"],
                        lastname=a.details["lastname"],
                        email=a.details["email"],
                        auth=a.details["auth"],
                    )
                    for a in actions
                ]
            )
        except MoodleError as err:
            for action in actions:
                self.fail(action, err)
            return
        self.users.update({u["username"]: int(u["id"]) for u in created})
        for action in actions:
            self.ok(action)

    def create_cohorts(self, actions: list[Action]) -> None:
        def new(a: Action) -> NewCohort:
            d = a.details
            category = d.get("category")
            return NewCohort(
                name=d["name"],
                idnumber=d["idnumber"],
                category_type="idnumber" if category else "system",
                category_value=category or "",
                description=d["description"],
                descriptionformat=1,
                visible=d["visible"],
            )

        def call(batch: list[Action]) -> None:
            for row in self.client.create_cohorts([new(a) for a in batch]):
                self.cohorts[row["idnumber"]] = int(row["id"])

        # Creating one by one after a failed batch is safe only when the batch was refused
        # whole (Moodle rolls it back): a lost answer might have created some; the next
        # run finds those and adopts nothing by mistake, since they carry our marker.
        self.batch(actions, call, one_by_one_is_safe=True)

    def update_cohorts(self, actions: list[Action]) -> None:
        def call(batch: list[Action]) -> None:
            self.client.update_cohorts(
                [
                    {
                        "id": a.details["cohortid"],
                        "categorytype": (
                            {"type": "idnumber", "value": a.details["category"]}
                            if a.details.get("category")
                            else {"type": "system", "value": ""}
                        ),
                        "name": a.details["name"],
                        "idnumber": a.details["idnumber"],
                        "description": a.details["description"],
                        "descriptionformat": 1,
                        "visible": a.details["visible"],
                    }
                    for a in batch
                ]
            )

        self.batch(actions, call, one_by_one_is_safe=True)

    def members(self, actions: list[Action], add: bool) -> None:
        actions = self.ready(actions, lambda a: (self.cohort_id(a), self.user_ids(a)))

        def call(batch: list[Action]) -> None:
            pairs = [(self.cohort_id(a), uid) for a in batch for uid in self.user_ids(a)]
            if add:
                self.client.add_cohort_members(pairs)
            else:
                self.client.delete_cohort_members(pairs)

        self.batch(actions, call, one_by_one_is_safe=True)

    def create_groups(self, actions: list[Action]) -> None:
        def call(batch: list[Action]) -> None:
            created = self.client.create_groups(
                [NewGroup(courseid=a.details["courseid"], name=a.details["name"]) for a in batch]
            )
            for action, row in zip(batch, created, strict=True):
                self.groups[(action.details["courseid"], action.details["name"])] = int(row["id"])

        self.batch(actions, call, one_by_one_is_safe=False)

    def _group_id(self, action: Action) -> int:
        d = action.details
        if not d.get("group"):
            return 0
        gid = d.get("groupid") or self.groups.get((d["courseid"], d["group"]))
        if not gid:
            raise LookupError(f"group {d['group']!r} was not created")
        return int(gid)

    def sync(self, action: Action) -> None:
        d = action.details
        try:
            groupid = self._group_id(action)
            if action.kind == "create_sync":
                cohortid = self.cohort_id(action)
        except LookupError as why:
            self.skip(action, str(why))
            return
        try:
            if action.kind == "create_sync":
                instance = self.client.add_cohort_sync(
                    d["courseid"], cohortid, d["roleid"], groupid=groupid, name=d["name"]
                )
                self.ok(action, instance=instance)
            else:
                changes = d["changes"]
                self.client.update_cohort_sync(
                    d["instance"],
                    name=d["name"] if "name" in changes else None,
                    status=0 if "status" in changes else None,
                    groupid=groupid if "group" in changes else None,
                )
                self.ok(action, instance=d["instance"])
        except MoodleError as err:
            self.fail(action, err)

    def manual(self, actions: list[Action], suspend: bool) -> None:
        actions = self.ready(actions, self.user_ids)

        def call(batch: list[Action]) -> None:
            self.client.manual_enrol(
                [
                    ManualEnrolment(
                        roleid=a.details["roleid"],
                        userid=uid,
                        courseid=a.details["courseid"],
                        timeend=a.details["timeend"],
                        suspend=True if suspend else None,
                    )
                    for a in batch
                    for uid in self.user_ids(a)
                ]
            )

        # Not retried one by one: each enrol call re-sends Moodle's welcome mail.
        self.batch(actions, call, one_by_one_is_safe=False)

    def retire_sync(self, action: Action) -> None:
        try:
            if action.kind == "delete_sync":
                self.client.delete_cohort_sync(action.details["instance"])
            else:
                self.client.update_cohort_sync(action.details["instance"], status=1)
        except MoodleError as err:
            self.fail(action, err)
        else:
            self.ok(action, instance=action.details["instance"])

    def delete_cohorts(self, actions: list[Action]) -> None:
        self.batch(
            actions,
            lambda b: self.client.delete_cohorts([a.details["cohortid"] for a in b]),
            one_by_one_is_safe=True,
        )


def apply_plan(
    plan: Plan, client: Any, journal: Journal, progress: bool | None = None
) -> ApplyResult:
    """Execute ``plan`` (already checked: fresh, within failsafes or approved)."""
    show = sys.stderr.isatty() if progress is None else progress
    return _Applier(plan, client, journal, show).run()
