"""Action kinds, one table: what each kind of change is, does, writes with and weighs.

A plan is a list of :class:`Action`; each carries typed details (one frozen dataclass per
kind, below) and its kind's :class:`ActionKind` entry in :data:`KINDS`. Everything else
reads this table instead of naming kinds: the planner builds the details, the applier runs
the kinds phase by phase in the table's order (one handler per kind), the renderers ask the
details for their line, the failsafes ask them for their :class:`Weight`, and
``schemas/plan.schema.json`` has one ``details`` shape per kind (a test holds them together).

Every action also carries a :class:`Reason`: why the plan has it (a code of :data:`REASONS`,
one line for people, and where it comes from). Each kind lists the reason codes it may carry
(``ActionKind.reasons``); the history of applied changes and ``reconcile explain`` show them.

To add a kind: a details class here, its ``KINDS`` entry (with its reason codes), its shape in
the plan schema, its handler in ``applying.applier`` (``tests/test_action_kinds.py`` lists
whatever is missing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Effect = Literal["add", "change", "remove"]
Section = Literal["cohort", "course", "user"]
SHOWN_NAMES = 5


def abbreviate(names: Iterable[str], shown: int = SHOWN_NAMES) -> str:
    """``a, b, c … and N more``: the first ``shown`` names of a long list."""
    names = list(names)
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head} … and {len(names) - shown} more"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


@dataclass(frozen=True)
class CohortLoss:
    """Members one action takes out of one cohort (the per-cohort failsafe)."""

    removed: int
    size_before: int
    deleted: bool = False


@dataclass(frozen=True)
class Weight:
    """What one action counts for in the failsafes (DESIGN §5.1)."""

    memberships_removed: int = 0  # cohort memberships or course enrolments ended
    syncs_removed: int = 0  # cohort-sync instances disabled or deleted, manual syncs retired
    members_added: int = 0  # an emptied cohort that also gains members is not "emptied"
    cohort_loss: CohortLoss | None = None


NO_WEIGHT = Weight()


@dataclass(frozen=True)
class Details:
    """Base of every kind's details: what the applier needs, with ids read from Moodle."""

    KIND: ClassVar[str]

    def count(self) -> int:
        """Objects this action touches in the plan's counts (each member counts one)."""
        return 1

    def weight(self) -> Weight:
        """What the action counts for in the failsafes (nothing unless it removes)."""
        return NO_WEIGHT

    def describe(self) -> str:
        """The action's line in the text and Markdown renderings, without its target."""
        raise NotImplementedError

    def course_name(self) -> str | None:
        """The course shortname the action is about, if any (grouping and focus)."""
        return getattr(self, "course", None)

    def cohort_idnumber(self) -> str | None:
        """The cohort idnumber the action is about, if any (focus on a merge request)."""
        return getattr(self, "cohort", None)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, fields in declaration order (tuples become lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Details:
        """The details of a saved plan (already checked against the plan schema)."""
        return cls(**{f.name: _frozen(data[f.name]) for f in dataclasses.fields(cls)})


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _frozen(v) for k, v in value.items()}
    return value


# -- reasons ----------------------------------------------------------------------------

# Why an action is in a plan: the codes, one line each (the plan schema's enum is this list).
REASONS: dict[str, str] = {
    "declared": "the declarations ask for it (a manual cohort, its members, a course's sync)",
    "in-sources": "an inscription administrative in force with a directory account "
    "(general cohorts)",
    "account-needed": "a member the directory knows has no Moodle account yet",
    "drift": "Moodle differs from the declaration",
    "adopt": "a declaration takes over an existing object (adopt: true)",
    "undeclared": "the declarations no longer ask for it",
    "expired": "its declared expiry date has passed",
    "left-sources": "no inscription administrative in force with a directory account any "
    "more (general cohorts)",
    "etape-empty": "the étape has no inscription administrative in force any more",
    "left-cohort": "the member left the cohort that a method: manual sync follows",
    "pattern": "the course matches a course pattern (shortname or category) declaring the sync",
    "pattern-unmatched": "the course no longer matches the course pattern that declared the "
    "sync",
}


@dataclass(frozen=True)
class Reason:
    """Why the plan has an action: ``code`` (a key of :data:`REASONS`), ``text`` (one line
    for people, e.g. ``no longer listed in cohorts/ecampus/cohorts/man-x.yaml:1``) and
    ``source`` (where it comes from: a declaration's ``file:line``, ``APOGÉE <VET>``, or
    empty when nothing declares it any more)."""

    code: str
    text: str
    source: str = ""

    def __post_init__(self) -> None:
        if self.code not in REASONS:
            raise ValueError(f"unknown reason code {self.code!r}")

    def to_json(self) -> dict[str, str]:
        """``{"code", "text", "source"}`` as the plan schema describes a reason."""
        return {"code": self.code, "text": self.text, "source": self.source}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reason:
        """The reason a ``to_json`` document describes."""
        return cls(str(data["code"]), str(data["text"]), str(data.get("source", "")))


# -- users ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateUser(Details):
    """A Moodle account for a student the directory knows (``accounts.create``)."""

    KIND = "create_user"
    username: str
    firstname: str
    lastname: str
    email: str
    auth: str

    def describe(self) -> str:
        return f"create user {self.username} ({self.firstname} {self.lastname})"


# -- cohorts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateCohort(Details):
    """A new cohort with the reconciler's marker; its members follow in ``add_members``."""

    KIND = "create_cohort"
    idnumber: str
    name: str
    description: str
    visible: bool
    category: str | None  # category idnumber; None: system context
    cohort_kind: Literal["general", "manual"]

    def cohort_idnumber(self) -> str | None:
        return self.idnumber

    def describe(self) -> str:
        where = f" in category {self.category}" if self.category else ""
        return f"create cohort {self.name!r}{where}"


@dataclass(frozen=True)
class UpdateCohort(Details):
    """Name, description or visibility back to the declaration (or an adoption)."""

    KIND = "update_cohort"
    cohortid: int
    idnumber: str
    name: str
    description: str
    visible: bool
    category: str | None
    changes: Mapping[str, tuple[Any, Any]]  # field -> (Moodle's value, the declared value)
    adopt: bool

    def cohort_idnumber(self) -> str | None:
        return self.idnumber

    def describe(self) -> str:
        parts = [f"{k} {v[0]!r} → {v[1]!r}" for k, v in self.changes.items() if k != "description"]
        if "description" in self.changes:
            parts.append("description")
        verb = "adopt and update" if self.adopt else "update"
        return f"{verb} " + ", ".join(parts)


@dataclass(frozen=True)
class AddMembers(Details):
    """Members to add; ``cohortid``/``userids`` are None for what this plan creates."""

    KIND = "add_members"
    cohort: str
    cohortid: int | None
    usernames: tuple[str, ...]
    userids: tuple[int | None, ...]
    size_before: int

    def count(self) -> int:
        return len(self.usernames)

    def weight(self) -> Weight:
        return Weight(members_added=len(self.usernames))

    def describe(self) -> str:
        n = len(self.usernames)
        return f"add {n} member{'s' * (n != 1)}: {abbreviate(self.usernames)}"


@dataclass(frozen=True)
class RemoveMembers(Details):
    """Members Moodle names that the declaration or the sources no longer list."""

    KIND = "remove_members"
    cohort: str
    cohortid: int
    usernames: tuple[str, ...]
    userids: tuple[int, ...]
    size_before: int

    def count(self) -> int:
        return len(self.usernames)

    def weight(self) -> Weight:
        removed = len(self.usernames)
        return Weight(
            memberships_removed=removed, cohort_loss=CohortLoss(removed, int(self.size_before))
        )

    def describe(self) -> str:
        return (
            f"remove {len(self.usernames)} of {_plural(self.size_before, 'member')}: "
            f"{abbreviate(self.usernames)}"
        )


@dataclass(frozen=True)
class DeleteCohort(Details):
    """A managed cohort nothing declares or uses any more, deleted with its members."""

    KIND = "delete_cohort"
    cohort: str
    cohortid: int
    members: int

    def weight(self) -> Weight:
        size = int(self.members)
        return Weight(memberships_removed=size, cohort_loss=CohortLoss(size, size, deleted=True))

    def describe(self) -> str:
        return f"delete cohort ({self.members} members)"


# -- courses ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateGroup(Details):
    """A course group a sync declares and the course lacks."""

    KIND = "create_group"
    course: str
    courseid: int
    name: str

    def describe(self) -> str:
        return f"create group {self.name!r}"


@dataclass(frozen=True)
class CreateSync(Details):
    """A cohort-sync instance (``enrol_cohort``) named ``reconciler: <cohort> (<role>)``;
    ids are None for a cohort or group this plan creates."""

    KIND = "create_sync"
    course: str
    courseid: int
    cohort: str
    cohortid: int | None
    role: str
    roleid: int
    group: str | None
    groupid: int | None
    name: str
    reason: str

    def describe(self) -> str:
        group = f", group {self.group!r}" if self.group else ""
        return f"cohort sync of {self.cohort} as {self.role}{group}"


@dataclass(frozen=True)
class UpdateSync(Details):
    """The reconciler's own instance back to its declaration (enabled, group, name)."""

    KIND = "update_sync"
    instance: int
    course: str
    courseid: int
    cohort: str
    role: str
    group: str | None
    groupid: int | None
    name: str
    changes: Mapping[str, tuple[Any, Any]]  # field -> (Moodle's value, the declared value)

    def describe(self) -> str:
        parts = [f"{k} {v[0]!r} → {v[1]!r}" for k, v in self.changes.items()]
        return f"cohort sync of {self.cohort} as {self.role}: " + ", ".join(parts)


@dataclass(frozen=True)
class RetireSync(Details):
    """Shared fields of the two ways an instance no longer declared goes."""

    instance: int
    course: str
    cohort: str
    role: str
    # The instance's course: the applier re-reads it when an answer may hide a commit.
    courseid: int

    def weight(self) -> Weight:
        return Weight(syncs_removed=1)


@dataclass(frozen=True)
class DisableSync(RetireSync):
    """``sync_policy.on_removal: disable`` (the default): enrolments stay, suspended."""

    KIND = "disable_sync"

    def describe(self) -> str:
        return f"disable cohort sync of {self.cohort} as {self.role} (enrolments kept)"


@dataclass(frozen=True)
class DeleteSync(RetireSync):
    """``sync_policy.on_removal: delete``: Moodle unenrols the instance's users."""

    KIND = "delete_sync"

    def describe(self) -> str:
        return f"delete cohort sync of {self.cohort} as {self.role} (unenrols its users)"


@dataclass(frozen=True)
class EnrolManual(Details):
    """Members of the cohort not yet enrolled with the role (``enrol_manual``), each until
    ``timeend`` (Unix time of 23:59:59 Europe/Paris on the last day in force). The applier
    records them in the ledger before the call."""

    KIND = "enrol_manual"
    course: str
    courseid: int
    cohort: str
    role: str
    roleid: int
    timeend: int
    usernames: tuple[str, ...]
    userids: tuple[int | None, ...]
    expires: str  # the declared last day, YYYY-MM-DD

    def count(self) -> int:
        return len(self.usernames)

    def describe(self) -> str:
        n = len(self.usernames)
        return (
            f"enrol {n} member{'s' * (n != 1)} of {self.cohort} manually as {self.role} "
            f"until {self.expires}: {abbreviate(self.usernames)}"
        )


@dataclass(frozen=True)
class ManualEnds(Details):
    """Shared fields of the two ways the ledger's manual enrolments end: one course, the
    sync's cohort and role, the users (all in the ledger, all active with the role). The
    applier sets each enrolment's ``timeend`` to the time of the call (``enrol_manual``
    keeps the enrolment, its role and grades; Moodle treats it as ended at that second)."""

    course: str
    courseid: int
    cohort: str
    role: str
    roleid: int
    usernames: tuple[str, ...]
    userids: tuple[int, ...]

    def count(self) -> int:
        return len(self.usernames)


@dataclass(frozen=True)
class EndManual(ManualEnds):
    """Users the ledger says this sync enrolled, who are no longer members of its cohort."""

    KIND = "end_manual"

    def weight(self) -> Weight:
        return Weight(memberships_removed=len(self.usernames))

    def describe(self) -> str:
        n = len(self.usernames)
        return (
            f"end the manual enrolment of {n} former member{'s' * (n != 1)} of "
            f"{self.cohort} as {self.role} (end date → now): {abbreviate(self.usernames)}"
        )


@dataclass(frozen=True)
class RetireManual(ManualEnds):
    """A ``method: manual`` sync no longer declared (deleted, expired, or its manual cohort
    removed or expired): every enrolment the ledger says it made, still active, ends."""

    KIND = "retire_manual"

    def weight(self) -> Weight:
        return Weight(memberships_removed=len(self.usernames), syncs_removed=1)

    def describe(self) -> str:
        n = len(self.usernames)
        return (
            f"end the manual sync of {self.cohort} as {self.role}: its {n} manual "
            f"enrolment{'s' * (n != 1)} end (end date → now): {abbreviate(self.usernames)}"
        )


# -- the table --------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionKind:
    """One kind of action: when it runs, what it does, which Moodle functions it writes with."""

    name: str
    phase: int  # adds before removes (DESIGN §5.6); kinds of one phase are independent
    effect: Effect
    writes: tuple[str, ...]  # web-service functions (checked against the token before applying)
    details: type[Details]
    section: Section  # where the renderers list it: under its cohort, its course or users
    summary: str  # one line for people (ARCHITECTURE.md, reviews)
    reasons: tuple[str, ...]  # the reason codes (REASONS) an action of this kind may carry

    @property
    def symbol(self) -> str:
        return SYMBOL[self.effect]


SYMBOL: dict[Effect, str] = {"add": "+", "change": "~", "remove": "-"}

# In the order the applier runs them.
_TABLE: tuple[ActionKind, ...] = (
    ActionKind("create_user", 1, "add", ("core_user_create_users",), CreateUser, "user",
               "create the Moodle account of a student the directory knows",
               ("account-needed",)),
    ActionKind("create_cohort", 2, "add", ("core_cohort_create_cohorts",), CreateCohort,
               "cohort", "create a declared or general cohort, marked as the reconciler's",
               ("declared", "in-sources")),
    ActionKind("update_cohort", 2, "change", ("core_cohort_update_cohorts",), UpdateCohort,
               "cohort", "bring a cohort's name, description, visibility back (or adopt it)",
               ("drift", "adopt")),
    ActionKind("add_members", 3, "add", ("core_cohort_add_cohort_members",), AddMembers,
               "cohort", "add members to a cohort", ("declared", "in-sources")),
    ActionKind("create_group", 4, "add", ("core_group_create_groups",), CreateGroup, "course",
               "create a course group a sync declares", ("declared", "pattern")),
    ActionKind("create_sync", 5, "add", ("local_ws_enrolcohort_add_instance",), CreateSync,
               "course", "create a cohort-sync instance in a course", ("declared", "pattern")),
    ActionKind("update_sync", 5, "change", ("local_ws_enrolcohort_update_instance",),
               UpdateSync, "course", "re-enable, regroup or rename the reconciler's instance",
               ("drift", "adopt")),
    ActionKind("enrol_manual", 6, "add", ("enrol_manual_enrol_users",), EnrolManual, "course",
               "enrol cohort members manually with an end date (method: manual)",
               ("declared", "pattern")),
    ActionKind("remove_members", 7, "remove", ("core_cohort_delete_cohort_members",),
               RemoveMembers, "cohort", "remove members from a cohort",
               ("undeclared", "left-sources", "etape-empty")),
    ActionKind("end_manual", 8, "remove", ("enrol_manual_enrol_users",), EndManual, "course",
               "end (end date → now) the manual enrolment of members who left the cohort",
               ("left-cohort",)),
    ActionKind("retire_manual", 8, "remove", ("enrol_manual_enrol_users",), RetireManual,
               "course", "end every manual enrolment of a method: manual sync no longer declared",
               ("undeclared", "expired", "pattern-unmatched")),
    ActionKind("disable_sync", 9, "remove", ("local_ws_enrolcohort_update_instance",),
               DisableSync, "course", "disable an instance no longer declared (the default)",
               ("undeclared", "expired", "pattern-unmatched")),
    ActionKind("delete_sync", 9, "remove", ("local_ws_enrolcohort_delete_instance",),
               DeleteSync, "course", "delete an instance no longer declared (unenrols)",
               ("undeclared", "expired", "pattern-unmatched")),
    ActionKind("delete_cohort", 10, "remove", ("core_cohort_delete_cohorts",), DeleteCohort,
               "cohort", "delete a managed cohort nothing declares or uses",
               ("undeclared", "expired", "etape-empty")),
)  # fmt: skip
KINDS: dict[str, ActionKind] = {k.name: k for k in _TABLE}


@dataclass(frozen=True)
class Action:
    """One change of a plan: its kind, what it is about (``target``), typed details and why
    the plan has it (``reason``, a code its kind allows).

    ``target`` is a cohort idnumber, ``course/cohort/role``, ``course/group`` or a username.
    """

    kind: str
    target: str
    details: Details
    reason: Reason

    def __post_init__(self) -> None:
        spec = KINDS[self.kind]
        if type(self.details) is not spec.details:
            raise TypeError(f"{self.kind} takes {spec.details.__name__}, not {self.details!r}")
        if self.reason.code not in spec.reasons:
            raise ValueError(
                f"{self.kind} cannot carry the reason {self.reason.code!r} "
                f"(allowed: {', '.join(spec.reasons)})"
            )

    @classmethod
    def of(cls, target: str, details: Details, reason: Reason) -> Action:
        """The action whose kind is its details' kind."""
        return cls(details.KIND, target, details, reason)

    @property
    def spec(self) -> ActionKind:
        return KINDS[self.kind]

    @property
    def phase(self) -> int:
        return self.spec.phase

    @property
    def effect(self) -> Effect:
        return self.spec.effect

    @property
    def weight(self) -> int:
        """How many objects the action touches (members count one each)."""
        return self.details.count()

    def line(self) -> tuple[str, str]:
        """(symbol, description) of the action as the renderers show it, without target."""
        return self.spec.symbol, self.details.describe()

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "target", "details", "reason"}`` as the plan schema describes an
        action."""
        return {
            "kind": self.kind,
            "target": self.target,
            "details": self.details.to_json(),
            "reason": self.reason.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Action:
        """The action a ``to_json`` document describes (already checked by the schema)."""
        kind = KINDS[data["kind"]]
        return cls(
            kind.name,
            data["target"],
            kind.details.from_json(data["details"]),
            Reason.from_json(data["reason"]),
        )


def write_functions(actions: Sequence[Action]) -> list[str]:
    """Every web-service function ``actions`` write with, sorted (checked before applying)."""
    return sorted({f for a in actions for f in a.spec.writes})
