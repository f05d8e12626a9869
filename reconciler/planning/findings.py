"""What the planner's phases hand each other: their findings (actions, warnings, unmanaged
look-alikes, pending usernames) and the small pure helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .actions import Action, Details, Reason
from .plan import Warning
from .state import (
    COHORT_MARKER,
    INSTANCE_PREFIX,
    ActualState,
    DesiredCohort,
    DesiredState,
    DesiredSync,
)
from .warnings import WARNING_KINDS


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

    def add(self, target: str, details: Details, reason: Reason) -> None:
        """One action on ``target`` and why the plan has it."""
        self.actions.append(Action.of(target, details, reason))

    def warn(self, code: str, message: str, target: str = "") -> None:
        """Add a warning; ``code`` must be in ``planning.warnings`` (which says whether it
        makes the plan incomplete)."""
        if code not in WARNING_KINDS:
            raise ValueError(f"warning code {code!r} is not in planning.warnings")
        self.warnings.append(Warning(code, message, target))


@dataclass
class Accounts(Findings):
    """``plan_accounts``' result: the usernames whose account this plan creates."""

    creating: frozenset[str] = frozenset()


@dataclass
class Cohorts(Findings):
    """``plan_cohorts``' result: the cohorts it creates."""

    created: frozenset[str] = frozenset()


@dataclass
class Notices:
    """``plan_notices``' result: syncs expiring soon and the run's general warnings."""

    expiring: list[dict[str, Any]]
    warnings: list[Warning]


def member_reason(want: DesiredCohort, adding: bool) -> Reason:
    """Why members join (``adding``) or leave the desired cohort ``want``: its declaration
    lists them (manual) or the sources name them (general, ``want.source`` is the VET)."""
    if want.kind == "general":
        if adding:
            return Reason("in-sources", f"inscription administrative in force in "
                          f"{vet_of(want)} with a directory account", want.source)
        return Reason("left-sources", f"no inscription administrative in force in {vet_of(want)} "
                      "with a directory account any more", want.source)
    if adding:
        return Reason("declared", f"listed in {want.source}", want.source)
    return Reason("undeclared", f"no longer listed in {want.source}", want.source)


def declared_reason(sync: DesiredSync, text: str) -> Reason:
    """Why the plan adds what ``sync`` asks for: its course file (``declared``, ``text``),
    or the course pattern matching the course (``pattern``)."""
    if sync.pattern is not None:
        return Reason("pattern", f"{sync.course} matches pattern {sync.pattern} "
                      f"({sync.source})", sync.source)
    return Reason("declared", text, sync.source)


def pattern_unmatched(course: str, cohort: str, role: str, desired: DesiredState
                      ) -> Reason | None:
    """``pattern-unmatched`` when ``course`` no longer matches (or is excluded from) a
    resolved course pattern that syncs ``cohort`` as ``role``, and nothing else declares it
    there; None when no pattern explains the retirement."""
    for entry in desired.pattern_report:
        pair = {"cohort": cohort, "role": role}
        if entry["unresolved"] is not None or pair not in entry["syncs"]:
            continue
        if course in entry["courses"]:
            continue  # still matched: the retirement has another cause
        excluded = [e["by"] for e in entry["excluded"] if e["course"] == course]
        why = (f"is left out of pattern {entry['name']} ({excluded[0]})" if excluded else
               f"does not match pattern {entry['name']} ({entry['rule']})")
        return Reason(
            "pattern-unmatched",
            f"{course} {why}, which syncs {cohort} as {role}, and no course file declares "
            "it there",
            entry["source"],
        )
    return None


def vet_of(want: DesiredCohort) -> str:
    """``L1HIS-101`` from a general cohort's source ``APOGÉE L1HIS-101``."""
    return want.source.split(" ", 1)[-1]


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


