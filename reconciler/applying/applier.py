"""The applier: the only code that writes to Moodle. It executes a checked plan, in phases.

Takes a ``Plan`` (already checked: fresh, within the failsafes or approved), a client with
the write calls of :class:`MoodleWrites`, a ``Journal`` and an optional progress callback;
gives an :class:`ApplyResult` (done, failed, skipped). Adds run before removes (the kinds
in the order of ``planning.actions.KINDS``). Actions of one kind are batched into as few
calls as the client allows; when a batch fails, its actions are retried one by one only
where that is safe (cohort and member writes: Moodle refuses a batch whole, and adding or
removing a member twice is harmless), so that one bad cohort does not stop the others; manual
enrolments and groups are not (each enrol call re-sends a welcome mail; a group created
twice exists twice). Every action is journaled; a failed action never stops an independent
one, and an action whose prerequisite failed (its cohort, user or group was not created) is
skipped with the reason. A failure that says every later call would fail too (the token
refused, maintenance, web services off, the site unreachable: ``stops_the_run``) stops the
run: the remaining actions are skipped as not attempted, for the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from ..moodle.errors import (
    InvalidToken,
    MoodleError,
    MoodleHTTPError,
    MoodleUnavailable,
    SiteMaintenance,
)
from ..moodle.types import ManualEnrolment, NewCohort, NewGroup, NewUser
from ..planning.actions import (
    KINDS,
    Action,
    AddMembers,
    CreateCohort,
    CreateGroup,
    CreateSync,
    CreateUser,
    DeleteCohort,
    EnrolManual,
    RemoveMembers,
    RetireSync,
    SuspendManual,
    UpdateCohort,
    UpdateSync,
    write_functions,
)
from ..planning.plan import Plan
from .journal import Journal


class MoodleWrites(Protocol):
    """The narrow part of the client the applier needs (``MoodleClient`` has it; a test
    hands a small fake). Each call raises ``MoodleError`` when Moodle refuses or fails it."""

    def create_users(self, users: Sequence[NewUser]) -> list[dict[str, Any]]: ...
    def create_cohorts(self, cohorts: Sequence[NewCohort]) -> list[dict[str, Any]]: ...
    def update_cohorts(self, cohorts: Sequence[Mapping[str, Any]]) -> None: ...
    def delete_cohorts(self, ids: Iterable[int]) -> None: ...
    def add_cohort_members(self, members: Iterable[tuple[int, int]]) -> Any: ...
    def delete_cohort_members(self, members: Iterable[tuple[int, int]]) -> None: ...
    def create_groups(self, groups: Sequence[NewGroup]) -> list[dict[str, Any]]: ...
    def manual_enrol(self, enrolments: Sequence[ManualEnrolment]) -> list[str]: ...
    def add_cohort_sync(
        self, courseid: int, cohortid: int, roleid: int, *, groupid: int = 0, name: str = ""
    ) -> int: ...
    def update_cohort_sync(
        self,
        instance_id: int,
        *,
        name: str | None = None,
        groupid: int | None = None,
        status: int | None = None,
        courseid: int | None = None,
    ) -> Any: ...
    def delete_cohort_sync(self, instance_id: int, *, courseid: int | None = None) -> Any: ...


Outcome = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class Progress:
    """One action finished: the ``index``-th of ``total``, how, and why when not ok."""

    index: int
    total: int
    action: Action
    outcome: Outcome
    message: str = ""

    def line(self) -> str:
        """``[3/12] create_sync C1/man-x/student: ok`` (the CLI's line for a CI log)."""
        how = {"ok": "ok", "failed": "FAILED: ", "skipped": "skipped: "}[self.outcome]
        if self.outcome == "ok":
            text = f"ok, with a warning: {self.message}" if self.message else how
        else:
            text = how + self.message
        return f"[{self.index}/{self.total}] {self.action.kind} {self.action.target}: {text}"


ProgressCallback = Callable[[Progress], None]


def required_functions(plan: Plan) -> list[str]:
    """The web-service functions applying ``plan`` writes with (the action kinds' table)."""
    return write_functions(plan.actions)


def stops_the_run(error: Exception) -> bool:
    """Whether a failed write says every later call would fail the same way: the token
    refused (revoked mid-run), the site in maintenance, web services switched off (403), or
    the site unreachable (a request that provably never left). Writing on would only repeat
    the failure once per action."""
    if isinstance(error, InvalidToken | SiteMaintenance):
        return True
    if isinstance(error, MoodleHTTPError):
        return error.status == 403
    return isinstance(error, MoodleUnavailable) and not error.maybe_applied


NOT_ATTEMPTED = "not attempted"


@dataclass
class ApplyResult:
    """Each action's outcome: ``done``, ``failed`` (with Moodle's message), ``skipped`` (with
    why: a prerequisite that failed, or ``not attempted`` once the run stopped). ``stopped``
    is the site-wide failure that stopped the run (``stops_the_run``), else None.
    ``warnings`` are actions *done* about which Moodle said something worth telling (e.g. a
    welcome mail that was not sent): they do not fail the run."""

    done: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)
    skipped: list[tuple[Action, str]] = field(default_factory=list)
    stopped: str | None = None
    warnings: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    @property
    def not_attempted(self) -> list[Action]:
        """The actions skipped because the run stopped before them."""
        return [a for a, why in self.skipped if why.startswith(NOT_ATTEMPTED)]


class _Applier:
    def __init__(
        self,
        plan: Plan,
        client: MoodleWrites,
        journal: Journal,
        progress: ProgressCallback | None,
    ) -> None:
        self.plan, self.client, self.journal = plan, client, journal
        self.result = ApplyResult()
        self.users: dict[str, int] = {}
        self.cohorts: dict[str, int] = {}
        self.groups: dict[tuple[int, str], int] = {}
        self.progress = progress
        self.total = len(plan.actions)

    # -- bookkeeping --------------------------------------------------------------------

    def _tell(self, action: Action, outcome: Outcome, message: str = "") -> None:
        if self.progress is not None:
            n = len(self.result.done) + len(self.result.failed) + len(self.result.skipped)
            self.progress(Progress(n, self.total, action, outcome, message))

    def ok(self, action: Action, warning: str | None = None, **extra: Any) -> None:
        self.result.done.append(action)
        if warning:
            self.result.warnings.append((action, warning))
            extra["warning"] = warning
        self.journal.record(action.kind, action.target, "ok", **extra)
        self._tell(action, "ok", warning or "")

    def fail(self, action: Action, error: Exception | str) -> None:
        message = str(error)
        self.result.failed.append((action, message))
        self.journal.record(action.kind, action.target, "failed", error=message)
        self._tell(action, "failed", message)
        if isinstance(error, Exception) and stops_the_run(error) and not self.result.stopped:
            self.result.stopped = message

    def attempted(self, actions: Iterable[Action]) -> list[Action]:
        """``actions``, or none once the run has stopped: each is then skipped as not
        attempted (the next run does it)."""
        if self.result.stopped is None:
            return list(actions)
        for action in actions:
            self.skip(action, f"{NOT_ATTEMPTED}: the run stopped at {self.result.stopped}")
        return []

    def skip(self, action: Action, why: str) -> None:
        self.result.skipped.append((action, why))
        self.journal.record(action.kind, action.target, "skipped", reason=why)
        self._tell(action, "skipped", why)

    def batch(
        self, actions: list[Action], call: Callable[[list[Action]], Any], one_by_one_is_safe: bool
    ) -> None:
        """Run ``call`` on all actions; on failure, retry singly when that is safe. A call
        may return warnings (strings): the actions are done, each with those warnings."""
        actions = self.attempted(actions)
        if not actions:
            return
        try:
            notes = call(actions)
        except MoodleError as err:
            if not one_by_one_is_safe or len(actions) == 1 or stops_the_run(err):
                for action in actions:
                    self.fail(action, err)
                return
            for action in actions:
                self.batch([action], call, one_by_one_is_safe=False)
            return
        warning = "; ".join(notes) if isinstance(notes, list) and notes else None
        for action in actions:
            self.ok(action, warning=warning)

    # -- resolution ---------------------------------------------------------------------

    def user_ids(self, action: Action) -> list[int]:
        d = action.details
        assert isinstance(d, AddMembers | RemoveMembers | EnrolManual | SuspendManual)
        ids = []
        for name, uid in zip(d.usernames, d.userids, strict=True):
            resolved = uid if uid is not None else self.users.get(name)
            if resolved is None:
                raise LookupError(f"user {name} was not created")
            ids.append(int(resolved))
        return ids

    def cohort_id(self, action: Action) -> int:
        d = action.details
        assert isinstance(d, AddMembers | RemoveMembers | CreateSync)
        cid = d.cohortid or self.cohorts.get(d.cohort)
        if cid is None:
            raise LookupError(f"cohort {d.cohort} was not created")
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

    # -- one handler per kind -----------------------------------------------------------

    def run(self) -> ApplyResult:
        """Each kind in the table's order (phases ascending), with its handler."""
        by_kind: dict[str, list[Action]] = {}
        for action in self.plan.sorted_actions():
            by_kind.setdefault(action.kind, []).append(action)
        for kind in KINDS:
            actions = by_kind.get(kind)
            if actions:
                HANDLERS[kind](self, actions)
        return self.result

    def create_users(self, actions: list[Action]) -> None:
        actions = self.attempted(actions)
        if not actions:
            return
        users = [a.details for a in actions]
        assert all(isinstance(u, CreateUser) for u in users)
        try:
            created = self.client.create_users(
                [
                    NewUser(
                        username=u.username,
                        firstname=u.firstname,
                        lastname=u.lastname,
                        email=u.email,
                        auth=u.auth,
                    )
                    for u in users
                    if isinstance(u, CreateUser)
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
        def new(d: CreateCohort) -> NewCohort:
            return NewCohort(
                name=d.name,
                idnumber=d.idnumber,
                category_type="idnumber" if d.category else "system",
                category_value=d.category or "",
                description=d.description,
                descriptionformat=1,
                visible=d.visible,
            )

        def call(batch: list[Action]) -> None:
            rows = self.client.create_cohorts([new(_of(CreateCohort, a)) for a in batch])
            for row in rows:
                self.cohorts[row["idnumber"]] = int(row["id"])

        # Creating one by one after a failed batch is safe only when the batch was refused
        # whole (Moodle rolls it back): a lost answer might have created some; the next
        # run finds those and adopts nothing by mistake, since they carry our marker.
        self.batch(actions, call, one_by_one_is_safe=True)

    def update_cohorts(self, actions: list[Action]) -> None:
        def row(d: UpdateCohort) -> dict[str, Any]:
            return {
                "id": d.cohortid,
                "categorytype": (
                    {"type": "idnumber", "value": d.category}
                    if d.category
                    else {"type": "system", "value": ""}
                ),
                "name": d.name,
                "idnumber": d.idnumber,
                "description": d.description,
                "descriptionformat": 1,
                "visible": d.visible,
            }

        def call(batch: list[Action]) -> None:
            self.client.update_cohorts([row(_of(UpdateCohort, a)) for a in batch])

        self.batch(actions, call, one_by_one_is_safe=True)

    def add_members(self, actions: list[Action]) -> None:
        self.members(actions, add=True)

    def remove_members(self, actions: list[Action]) -> None:
        self.members(actions, add=False)

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
            groups = [_of(CreateGroup, a) for a in batch]
            created = self.client.create_groups(
                [NewGroup(courseid=g.courseid, name=g.name) for g in groups]
            )
            for group, row in zip(groups, created, strict=True):
                self.groups[(group.courseid, group.name)] = int(row["id"])

        self.batch(actions, call, one_by_one_is_safe=False)

    def _group_id(self, d: CreateSync | UpdateSync) -> int:
        if not d.group:
            return 0
        gid = d.groupid or self.groups.get((d.courseid, d.group))
        if not gid:
            raise LookupError(f"group {d.group!r} was not created")
        return int(gid)

    def create_syncs(self, actions: list[Action]) -> None:
        for action in actions:
            if not self.attempted([action]):
                continue
            d = _of(CreateSync, action)
            try:
                groupid = self._group_id(d)
                cohortid = self.cohort_id(action)
            except LookupError as why:
                self.skip(action, str(why))
                continue
            try:
                instance = self.client.add_cohort_sync(
                    d.courseid, cohortid, d.roleid, groupid=groupid, name=d.name
                )
            except MoodleError as err:
                self.fail(action, err)
            else:
                self.ok(action, instance=instance)

    def update_syncs(self, actions: list[Action]) -> None:
        for action in actions:
            if not self.attempted([action]):
                continue
            d = _of(UpdateSync, action)
            try:
                groupid = self._group_id(d)
            except LookupError as why:
                self.skip(action, str(why))
                continue
            try:
                self.client.update_cohort_sync(
                    d.instance,
                    name=d.name if "name" in d.changes else None,
                    status=0 if "status" in d.changes else None,
                    groupid=groupid if "group" in d.changes else None,
                    courseid=d.courseid,  # to re-read an answer that may hide a commit
                )
            except MoodleError as err:
                self.fail(action, err)
            else:
                self.ok(action, instance=d.instance)

    def enrol_manual(self, actions: list[Action]) -> None:
        self.manual(actions, suspend=False)

    def suspend_manual(self, actions: list[Action]) -> None:
        self.manual(actions, suspend=True)

    def manual(self, actions: list[Action], suspend: bool) -> None:
        actions = self.ready(actions, self.user_ids)

        def call(batch: list[Action]) -> list[str]:
            enrolments = []
            for action in batch:
                d = action.details
                assert isinstance(d, EnrolManual | SuspendManual)
                enrolments += [
                    ManualEnrolment(
                        roleid=d.roleid,
                        userid=uid,
                        courseid=d.courseid,
                        timeend=d.timeend,
                        suspend=True if suspend else None,
                    )
                    for uid in self.user_ids(action)
                ]
            # Done in Moodle, but its welcome mail failed: warnings, not failures (issue 10).
            return self.client.manual_enrol(enrolments)

        # Not retried one by one: each enrol call re-sends Moodle's welcome mail.
        self.batch(actions, call, one_by_one_is_safe=False)

    def disable_syncs(self, actions: list[Action]) -> None:
        self._retire(actions, lambda d: self.client.update_cohort_sync(
            d.instance, status=1, courseid=d.courseid))

    def delete_syncs(self, actions: list[Action]) -> None:
        self._retire(actions, lambda d: self.client.delete_cohort_sync(
            d.instance, courseid=d.courseid))

    def _retire(self, actions: list[Action], call: Callable[[RetireSync], Any]) -> None:
        # The course lets the client re-read an answer that may hide a commit.
        for action in actions:
            if not self.attempted([action]):
                continue
            d = _of(RetireSync, action)
            try:
                call(d)
            except MoodleError as err:
                self.fail(action, err)
            else:
                self.ok(action, instance=d.instance)

    def delete_cohorts(self, actions: list[Action]) -> None:
        self.batch(
            actions,
            lambda b: self.client.delete_cohorts([_of(DeleteCohort, a).cohortid for a in b]),
            one_by_one_is_safe=True,
        )


D = TypeVar("D")


def _of(kind: type[D], action: Action) -> D:
    """The action's details as the type its handler expects (the table guarantees it)."""
    details = action.details
    assert isinstance(details, kind), (action.kind, kind)
    return details


# One handler per action kind (``tests/test_action_kinds.py`` checks none is missing).
HANDLERS: dict[str, Callable[[_Applier, list[Action]], None]] = {
    "create_user": _Applier.create_users,
    "create_cohort": _Applier.create_cohorts,
    "update_cohort": _Applier.update_cohorts,
    "add_members": _Applier.add_members,
    "create_group": _Applier.create_groups,
    "create_sync": _Applier.create_syncs,
    "update_sync": _Applier.update_syncs,
    "enrol_manual": _Applier.enrol_manual,
    "remove_members": _Applier.remove_members,
    "suspend_manual": _Applier.suspend_manual,
    "disable_sync": _Applier.disable_syncs,
    "delete_sync": _Applier.delete_syncs,
    "delete_cohort": _Applier.delete_cohorts,
}


def apply_plan(
    plan: Plan,
    client: MoodleWrites,
    journal: Journal,
    progress: ProgressCallback | None = None,
) -> ApplyResult:
    """Execute ``plan`` (already checked: fresh, within failsafes or approved) with
    ``client``'s writes, journaling each action and telling ``progress`` as each ends.
    Moodle's refusals become failed actions, never exceptions."""
    return _Applier(plan, client, journal, progress).run()
