"""What the planner's phases hand each other: their findings (actions, warnings, unmanaged
look-alikes, pending usernames) and the small pure helpers they share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .actions import Action, Details
from .plan import Warning
from .state import COHORT_MARKER, INSTANCE_PREFIX, ActualState, DesiredCohort, DesiredSync

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


