"""Actual state of one platform, read from Moodle in bulk.

A no-op nightly plan costs a handful of calls whatever the number of cohorts: one for site
info, one for every cohort, a few batched member reads, batched look-ups of the users the
user-id map cannot vouch for tonight (planning/usermap.py), one for every cohort-sync
instance of the site (which name their courses), plus one per course that declares a
group or a manual-enrolment sync (the course patterns' syncs included) or that the
manual-enrolment ledger names. A platform with course patterns reads every course in one
call more (a pattern needs all of them), and every course category in one more when a
pattern names a category.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Protocol

from ..moodle.errors import InvalidResponse, MoodleError, RecordNotFound, UnexpectedAnswer
from ..moodle.types import Capabilities, CohortSyncInstance
from ..settings import PlatformSettings
from .patterns import expand_patterns, needs_categories
from .state import (
    ActualCategory,
    ActualCohort,
    ActualInstance,
    ActualState,
    DesiredState,
    DesiredSync,
)
from .usermap import UserResolver

LIST_INSTANCES = "local_ws_enrolcohort_get_instances"
GET_CATEGORIES = "core_course_get_categories"
# Declared courses no instance shows yet, asked one by one up to this many; more, and every
# course of the site is read in one call.
COURSES_ONE_BY_ONE = 50
SITE_COURSE = 1  # never a sync target
log = logging.getLogger("reconciler.reader")


class MoodleReads(Protocol):
    """The narrow part of the client the reader needs (a test can hand a small fake)."""

    def capabilities(self) -> Capabilities: ...
    def get_cohorts(self, ids: Any = None) -> list[dict[str, Any]]: ...
    def get_cohort_members(self, cohort_ids: Any) -> dict[int, list[int]]: ...
    def get_users_by_field(self, field: str, values: Any) -> list[dict[str, Any]]: ...
    def get_courses_by_field(self, field: str = "", value: Any = "") -> list[dict[str, Any]]: ...
    def get_categories(self, criteria: Any = None) -> list[dict[str, Any]]: ...
    def cohort_sync_instances(self, courseid: int = -1) -> list[CohortSyncInstance]: ...
    def cohort_sync_instances_by_course(
        self, course_ids: Any
    ) -> tuple[list[CohortSyncInstance], dict[int, MoodleError]]: ...
    def get_course_groups(self, courseid: int) -> list[dict[str, Any]]: ...
    def get_enrolled_users(self, courseid: int, **options: Any) -> list[dict[str, Any]]: ...
    def run_concurrently(self, calls: Any) -> list[Any]: ...


def read_actual(
    client: MoodleReads,
    platform: PlatformSettings,
    desired: DesiredState,
    users: UserResolver | None = None,
    *,
    unmanaged_members: Callable[[Mapping[str, Any]], bool] | None = None,
    recorded_courses: Iterable[int] = (),
) -> ActualState:
    """What Moodle holds for ``platform``, in a handful of bulk calls (module docstring).

    A cohort is read as managed when its idnumber matches the platform's managed patterns,
    or when ``desired`` declares it with ``adopt: true`` (an existing cohort adopted as it
    is, outside the prefix). ``unmanaged_members`` (import and audit) picks, from Moodle's
    ``core_cohort_get_cohorts`` records, the unmanaged cohorts whose members are read too,
    in the same batched ``core_cohort_get_cohort_members`` and user look-ups; they land in
    ``ActualState.unmanaged_cohorts`` and are never planned. ``users`` identifies the users
    (every username a desired cohort names, every member id read), through the user-id map
    when it has one (default: everyone looked up). ``recorded_courses`` (course ids the
    manual-enrolment ledger names) have their active enrolments read as the courses of
    declared manual syncs do; those Moodle no longer has land in
    ``ActualState.missing_courses``. Raises MoodleError.
    """
    actual = ActualState()
    caps = client.capabilities()
    # Reading instances is all a plan needs: merge-request jobs hold read-only tokens whose
    # service lists only get_instances; the write functions are checked when applying.
    actual.plugin_available = not caps.missing([LIST_INSTANCES])

    adopted = {idnumber for idnumber, c in desired.cohorts.items() if c.adopt}
    managed: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for cohort in client.get_cohorts():
        idnumber = cohort.get("idnumber") or ""
        if idnumber and (platform.is_managed_idnumber(idnumber) or idnumber in adopted):
            managed.append(cohort)
        else:
            actual.unmanaged_cohort_ids[int(cohort["id"])] = idnumber
            if unmanaged_members is not None and unmanaged_members(cohort):
                others.append(cohort)
    wanted_ids = [int(c["id"]) for c in managed + others]
    members = client.get_cohort_members(wanted_ids) if wanted_ids else {}
    for cohort in managed:
        actual.cohorts[cohort["idnumber"]] = _cohort(cohort, members)
    for cohort in others:
        actual.unmanaged_cohorts[int(cohort["id"])] = _cohort(cohort, members)

    # Users: everyone a desired cohort names, and whoever is a member of a cohort read.
    wanted = set().union(*(c.members for c in desired.cohorts.values()))
    read = [*actual.cohorts.values(), *actual.unmanaged_cohorts.values()]
    member_ids = set().union(*(c.members for c in read))
    (users or UserResolver()).resolve(client, actual, caps.siteurl, wanted, member_ids)

    if actual.plugin_available:
        actual.instances = [_instance(i) for i in _all_instances(client, actual)]
    if desired.patterns:  # which courses a pattern matches: every course, maybe categories
        read_courses(client, caps, desired, actual)
    elif not actual.all_courses_read:
        actual.courses = _read_courses(client, desired, actual.instances)

    # The course patterns' syncs count as declared ones for what is read next.
    expanded = expand_patterns(desired, actual)
    declared = [s for s in expanded.syncs if s.course in actual.courses]
    group_courses = sorted(_courses_needing_groups(actual, declared))
    manual_courses = {actual.courses[s.course] for s in declared if s.method == "manual"}
    answers = client.run_concurrently([partial(client.get_course_groups, c) for c in group_courses])
    for courseid, groups in zip(group_courses, answers, strict=True):
        actual.groups[courseid] = {g["name"]: int(g["id"]) for g in groups}
    _read_enrolments(client, actual, sorted(manual_courses), sorted(set(recorded_courses)))
    return actual


def _read_enrolments(
    client: MoodleReads, actual: ActualState, declared: list[int], recorded: list[int]
) -> None:
    """Active enrolments and their roles (``onlyactive``) of the ``declared`` manual
    courses, then of the ``recorded`` ones not among them: a recorded course Moodle no longer
    has (``invalidrecord``) is noted as missing, any other error is raised."""

    def read(courseid: int, tolerate_missing: bool) -> list[dict[str, Any]] | None:
        try:
            return client.get_enrolled_users(courseid, onlyactive=True, userfields=("id", "roles"))
        except RecordNotFound:
            if tolerate_missing:
                return None
            raise

    courses = [(c, False) for c in declared] + [(c, True) for c in recorded if c not in declared]
    answers = client.run_concurrently([partial(read, c, t) for c, t in courses])
    missing = set()
    for (courseid, _), enrolled in zip(courses, answers, strict=True):
        if enrolled is None:
            missing.add(courseid)
            continue
        actual.enrolled[courseid] = {
            int(u["id"]): frozenset(int(r["roleid"]) for r in u.get("roles") or [])
            for u in enrolled
        }
    actual.missing_courses = frozenset(missing)


def read_courses(client: MoodleReads, caps: Capabilities, desired: DesiredState,
                 actual: ActualState) -> None:
    """What course patterns are matched against: every course of the site (the site course
    left out) with its category, in one ``core_course_get_courses_by_field`` call (none when
    ``actual`` already holds them all: the course-by-course fallback read them), and the
    categories themselves in one more when a course pattern of ``desired`` names a category
    (``read_categories``). Raises MoodleError."""
    if not actual.all_courses_read:
        read_all_courses(client, actual)
    if needs_categories(desired):
        actual.categories, actual.categories_problem = read_categories(client, caps)


def read_all_courses(client: MoodleReads, actual: ActualState) -> None:
    """Every course of the site (the site course left out) in one
    ``core_course_get_courses_by_field`` call into ``actual.courses`` (shortname -> id) and
    ``actual.course_categories`` (shortname -> category id), and ``all_courses_read`` set.
    Raises MoodleError."""
    actual.courses, actual.course_categories = {}, {}
    for course in client.get_courses_by_field():
        if int(course["id"]) != SITE_COURSE:
            actual.courses[course["shortname"]] = int(course["id"])
            actual.course_categories[course["shortname"]] = int(course.get("categoryid") or 0)
    actual.all_courses_read = True


def read_categories(client: MoodleReads, caps: Capabilities
                    ) -> tuple[dict[int, ActualCategory], str | None]:
    """Every course category in one ``core_course_get_categories`` call (no criteria), and
    why they cannot place courses by idnumber, if so: the token's service lacks the function,
    or Moodle gives no ``idnumber`` key, as it does to a token without
    ``moodle/category:manage`` (course/externallib.php, "Some fields only returned for
    admin"). Raises MoodleError (``UnexpectedAnswer`` for a ``path`` that is not
    ``/<id>/<id>…``)."""
    if caps.missing([GET_CATEGORIES]):
        return {}, f"the token's web service lacks {GET_CATEGORIES}"
    found = client.get_categories()
    if any("idnumber" not in c for c in found):
        return {}, ("Moodle gives this token no category idnumbers (its user needs "
                    "moodle/category:manage)")
    categories = {}
    for index, c in enumerate(found):
        parts = str(c["path"]).split("/")
        if parts[0] or not all(p.isdigit() for p in parts[1:]):
            raise UnexpectedAnswer(
                f"answer[{index}].path: expected /<id>/<id>…, got {c['path']!r}", GET_CATEGORIES)
        categories[int(c["id"])] = ActualCategory(
            id=int(c["id"]), idnumber=c.get("idnumber") or None,
            path=tuple(int(p) for p in parts[1:]))
    return categories, None


def _read_courses(
    client: MoodleReads, desired: DesiredState, instances: list[ActualInstance]
) -> dict[str, int]:
    """Shortname -> id of every course a declared sync names that exists, and of every
    course a cohort-sync instance is in.

    The instances already name their course: a converged site costs no course call (reading
    every course costs a real Moodle about 3 ms a course, with all its details). A declared
    course no instance shows is asked by shortname; when there are more than
    ``COURSES_ONE_BY_ONE`` (a first run), every course is read in one call instead.
    """
    courses = {i.course: i.courseid for i in instances if i.course and i.courseid != SITE_COURSE}
    missing = sorted({s.course for s in desired.syncs} - courses.keys())
    if len(missing) > COURSES_ONE_BY_ONE:
        answers = [client.get_courses_by_field()]
    else:
        answers = client.run_concurrently(
            [partial(client.get_courses_by_field, "shortname", name) for name in missing]
        )
    for found in answers:
        for course in found:
            if int(course["id"]) != SITE_COURSE:
                courses[course["shortname"]] = int(course["id"])
    return courses


def _all_instances(client: MoodleReads, actual: ActualState) -> list[CohortSyncInstance]:
    """Every cohort-sync instance of the site in one call; if that call fails because of one
    course's data (a name holding markup answers ``invalidresponse`` for the course and for
    the whole site, issue 10), course by course, recording the courses that cannot be read
    in ``actual.unreadable_courses`` so that the plan warns instead of stopping. The course
    by course reading needs every course: it reads them all into ``actual.courses`` first
    (one call; only on this rare path)."""
    try:
        return client.cohort_sync_instances(-1)
    except InvalidResponse as err:
        # Only Moodle's own check of its answer says "one course's data": any other failure
        # (an answer of the wrong shape, the transport, the token), here or from the course
        # by course pass, stops the plan as before.
        log.warning("get_instances for all courses failed (%s); reading course by course", err)
        read_all_courses(client, actual)
        instances, broken = client.cohort_sync_instances_by_course(
            sorted(actual.courses.values()))
        other = next((e for e in broken.values() if not isinstance(e, InvalidResponse)), None)
        if other is not None:
            raise other from None
        if len(actual.courses) != 1 and len(broken) == len(actual.courses):
            raise  # no course answers: not one course's data
        actual.unreadable_courses = {cid: str(e) for cid, e in broken.items()}
        return instances


def _cohort(cohort: Mapping[str, Any], members: Mapping[int, list[int]]) -> ActualCohort:
    cid = int(cohort["id"])
    return ActualCohort(
        id=cid,
        idnumber=cohort.get("idnumber") or "",
        name=cohort["name"],
        description=cohort.get("description") or "",
        visible=bool(cohort.get("visible", True)),
        members=frozenset(members.get(cid, [])),
    )


def _instance(inst: CohortSyncInstance) -> ActualInstance:
    return ActualInstance(
        id=inst.id,
        courseid=inst.courseid,
        cohortid=inst.cohortid,
        roleid=inst.roleid,
        groupid=inst.groupid,
        name=inst.name or "",
        status=inst.status,
        course=inst.course_shortname or "",
        cohort=inst.cohort_idnumber or "",
        group=inst.group_name or "",
    )


def _courses_needing_groups(actual: ActualState, syncs: list[DesiredSync]) -> set[int]:
    """Courses whose groups must be read: a declared group no existing instance already
    shows by name (the plugin names each instance's group, so a converged course costs
    no call)."""
    shown = {(i.course, i.cohort, i.roleid, i.group) for i in actual.instances}
    return {
        actual.courses[s.course]
        for s in syncs
        if s.group
        and (s.method == "manual" or (s.course, s.cohort, s.roleid, s.group) not in shown)
    }
