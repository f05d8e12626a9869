"""Desired and actual state of one platform: plain values the planner compares.

The desired side speaks in idnumbers, shortnames and usernames (what people write); the
actual side keeps Moodle's ids next to them so that the applier can act without guessing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal, Protocol

# Written into the description of every cohort the reconciler creates, and into the name of
# every cohort-sync instance: ownership is read back from Moodle itself, never from a local file.
COHORT_MARKER = "<!-- managed-by: cohort-reconciler -->"
INSTANCE_PREFIX = "reconciler: "

CohortKind = Literal["general", "manual"]


@dataclass(frozen=True)
class DesiredCohort:
    idnumber: str
    name: str
    kind: CohortKind
    members: frozenset[str]
    source: str
    description: str = ""
    visible: bool = True
    category: str | None = None
    adopt: bool = False
    # Logins the sources cannot vouch for either way (two accounts, one student number):
    # neither added nor removed.
    uncertain: frozenset[str] = frozenset()
    # Leavers in their grace period (general cohorts): members kept, never added.
    kept: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DesiredSync:
    course: str
    cohort: str
    role: str
    roleid: int
    method: Literal["cohort", "manual"]
    reason: str
    source: str
    group: str | None = None
    expires: dt.date | None = None
    adopt: bool = False
    owners: tuple[str, ...] = ()
    grace_days: int | None = None  # general cohorts: this course's grace for leavers
    pattern: str | None = None  # the course pattern it comes from, if any

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.course, self.cohort, self.role)


@dataclass(frozen=True)
class DesiredPattern:
    """A course pattern before it meets Moodle's courses: the courses it selects (``shortname``
    glob and/or ``category`` idnumber, with ``subcategories``, minus ``exclude`` globs) and its
    ``syncs`` (in force today; ``course`` is the pattern's label until expanded)."""

    name: str
    rule: str
    source: str
    owners: tuple[str, ...]
    syncs: tuple[DesiredSync, ...]
    shortname: str | None = None
    category: str | None = None
    subcategories: bool = False
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewAccount:
    username: str
    firstname: str
    lastname: str
    email: str


class AccountDetails(Protocol):
    """What creating a Moodle account takes: a :class:`NewAccount`, or a directory person
    (``sources.Person``) as the sources gave it."""

    @property
    def firstname(self) -> str: ...
    @property
    def lastname(self) -> str: ...
    @property
    def email(self) -> str: ...


@dataclass
class DesiredState:
    platform: str
    cohorts: dict[str, DesiredCohort] = field(default_factory=dict)
    syncs: list[DesiredSync] = field(default_factory=list)
    expired_syncs: list[DesiredSync] = field(default_factory=list)
    expired_cohorts: list[str] = field(default_factory=list)
    # When the sources are unhealthy, every general cohort stays exactly as Moodle has it.
    general_frozen: bool = False
    frozen_reasons: list[str] = field(default_factory=list)
    general_pattern: str | None = None
    adopt_general: bool = False
    # username -> details, for the accounts the plan may create (read only when one is
    # missing in Moodle; the directory's people are shared, not copied).
    accounts: Mapping[str, AccountDetails] = field(default_factory=dict)
    # Names Moodle could not return as written (markup for its PARAM_TEXT), made safe:
    # ("cohort", idnumber, safe name) or ("group", course, safe name) -> the name as written.
    unsafe_names: dict[tuple[str, str, str], str] = field(default_factory=dict)
    source_digest: str = ""
    source_stats: dict = field(default_factory=dict)
    # What the plan says about the general cohorts' windows (``Plan.general``): the rollover
    # overlap and the leavers in their grace period.
    general_report: dict = field(default_factory=dict)
    # (code, message) warnings the desired side has for the plan.
    notices: list[tuple[str, str]] = field(default_factory=list)
    # Course patterns, expanded into ``syncs`` once Moodle's courses are known
    # (``planning.patterns.expand_patterns``), and the courses whose own file leaves a
    # pattern out: course shortname -> {pattern name: that file's location}.
    patterns: list[DesiredPattern] = field(default_factory=list)
    pattern_exclusions: dict[str, dict[str, str]] = field(default_factory=dict)
    patterns_expanded: bool = False
    # (cohort idnumber, role) whose cohort-sync instances are never retired in this plan:
    # a pattern whose courses cannot be told (categories unreadable) holds them as they are.
    held_syncs: frozenset[tuple[str, str]] = frozenset()
    # What the plan says of each pattern (``Plan.patterns``), filled by the expansion.
    pattern_report: list[dict] = field(default_factory=list)
    # Manual cohorts whose review is due, or due within the warning window (``Plan.reviews``).
    reviews: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class ActualCohort:
    id: int
    idnumber: str
    name: str
    description: str
    visible: bool
    members: frozenset[int]

    @property
    def owned(self) -> bool:
        return COHORT_MARKER in self.description


@dataclass(frozen=True)
class ActualInstance:
    id: int
    courseid: int
    cohortid: int
    roleid: int
    groupid: int
    name: str
    status: int  # 0 enabled, 1 disabled
    course: str = ""  # shortname, when Moodle says it
    cohort: str = ""  # idnumber, when Moodle says it
    group: str = ""  # group name, when Moodle says it

    @property
    def owned(self) -> bool:
        return self.name.startswith(INSTANCE_PREFIX)


@dataclass(frozen=True)
class ActualCategory:
    """A Moodle course category: ``idnumber`` None when Moodle gives none (install's
    "Category 1", or a token without ``moodle/category:manage``, which Moodle denies the
    idnumbers); ``path`` the category ids from the top down to this one."""

    id: int
    idnumber: str | None
    path: tuple[int, ...]


@dataclass
class ActualState:
    cohorts: dict[str, ActualCohort] = field(default_factory=dict)
    unmanaged_cohort_ids: dict[int, str] = field(default_factory=dict)  # id -> idnumber
    # Unmanaged cohorts whose members were read on request (import, audit): never planned,
    # not part of the fingerprint.
    unmanaged_cohorts: dict[int, ActualCohort] = field(default_factory=dict)  # id -> cohort
    users: dict[str, int] = field(default_factory=dict)  # username -> id
    usernames: dict[int, str] = field(default_factory=dict)  # id -> username
    courses: dict[str, int] = field(default_factory=dict)  # shortname -> id
    course_categories: dict[str, int] = field(default_factory=dict)  # shortname -> category id
    # Whether ``courses`` holds every course of the site (course patterns, or the reader's
    # course-by-course fallback), not only those the instances and declarations name.
    all_courses_read: bool = False
    # Read only when a course pattern names a category (one call); None: not read.
    categories: dict[int, ActualCategory] | None = None
    categories_problem: str | None = None  # why the categories cannot place courses
    groups: dict[int, dict[str, int]] = field(default_factory=dict)  # courseid -> name -> id
    instances: list[ActualInstance] = field(default_factory=list)
    # Active enrolments (onlyactive) of every course with a declared manual sync or named by
    # the manual-enrolment ledger: course id -> user id -> role ids.
    enrolled: dict[int, dict[int, frozenset[int]]] = field(default_factory=dict)
    # Courses the ledger names that Moodle no longer has (their enrolments went with them).
    missing_courses: frozenset[int] = frozenset()
    plugin_available: bool = True
    # Courses whose cohort-sync instances Moodle could not return (course id -> the error):
    # the site-wide read failed and the course-by-course fallback failed for these.
    unreadable_courses: dict[int, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A digest of everything the planner read: a saved plan is stale once it moves."""
        canon = {
            "cohorts": sorted(
                [c.idnumber, c.id, c.name, c.description, c.visible, sorted(c.members)]
                for c in self.cohorts.values()
            ),
            "users": sorted(self.users.items()),
            "courses": sorted(self.courses.items()),
            "groups": sorted((cid, sorted(g.items())) for cid, g in self.groups.items()),
            # [field, value] pairs in field-name order: the form dataclasses.asdict gave,
            # built directly (asdict deep-copies every instance: 0.3 s at 3,000).
            "instances": sorted(
                [[name, getattr(i, name)] for name in _INSTANCE_FIELDS] for i in self.instances
            ),
            "enrolled": sorted(
                (cid, sorted((uid, sorted(r)) for uid, r in users.items()))
                for cid, users in self.enrolled.items()
            ),
            "plugin": self.plugin_available,
        }
        # Only when there are some: the digest of a healthy state stays as it always was.
        if self.unreadable_courses:
            canon["unreadable"] = sorted(self.unreadable_courses)
        if self.missing_courses:  # courses the ledger names that Moodle no longer has
            canon["missing_courses"] = sorted(self.missing_courses)
        if self.categories is not None:  # only what category patterns read
            canon["categories"] = sorted(
                [c.id, c.idnumber or "", list(c.path)] for c in self.categories.values())
            canon["course_categories"] = sorted(self.course_categories.items())
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


_INSTANCE_FIELDS = sorted(f.name for f in fields(ActualInstance))
