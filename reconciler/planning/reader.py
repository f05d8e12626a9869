"""Actual state of one platform, read from Moodle in bulk.

A no-op nightly plan costs a handful of calls whatever the number of cohorts: one for site
info, one for every cohort, a few batched member reads, batched user look-ups, one for every
course, one for every course category when a course pattern names a category, one for every
cohort-sync instance of the site, plus one per course that declares a group or a
manual-enrolment sync (the course patterns' syncs included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

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

LIST_INSTANCES = "local_ws_enrolcohort_get_instances"
GET_CATEGORIES = "core_course_get_categories"


class MoodleReads(Protocol):
    """The narrow part of the client the reader needs (a test can hand a small fake)."""

    def capabilities(self) -> Capabilities: ...
    def get_cohorts(self, ids: Any = None) -> list[dict[str, Any]]: ...
    def get_cohort_members(self, cohort_ids: Any) -> dict[int, list[int]]: ...
    def get_users_by_field(self, field: str, values: Any) -> list[dict[str, Any]]: ...
    def get_courses_by_field(self, field: str = "", value: Any = "") -> list[dict[str, Any]]: ...
    def get_categories(self, criteria: Any = None) -> list[dict[str, Any]]: ...
    def cohort_sync_instances(self, courseid: int = -1) -> list[CohortSyncInstance]: ...
    def get_course_groups(self, courseid: int) -> list[dict[str, Any]]: ...
    def get_enrolled_users(self, courseid: int, **options: Any) -> list[dict[str, Any]]: ...
    def run_concurrently(self, calls: Any) -> list[Any]: ...


def read_actual(
    client: MoodleReads,
    platform: PlatformSettings,
    desired: DesiredState,
    *,
    unmanaged_members: Callable[[Mapping[str, Any]], bool] | None = None,
) -> ActualState:
    """What Moodle holds for ``platform``, in a handful of bulk calls (module docstring).

    A cohort is read as managed when its idnumber matches the platform's managed patterns,
    or when ``desired`` declares it with ``adopt: true`` (an existing cohort adopted as it
    is, outside the prefix). ``unmanaged_members`` (import and audit) picks, from Moodle's
    ``core_cohort_get_cohorts`` records, the unmanaged cohorts whose members are read too,
    in the same batched ``core_cohort_get_cohort_members`` and user look-ups; they land in
    ``ActualState.unmanaged_cohorts`` and are never planned. Raises MoodleError.
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

    # Users: everyone a desired cohort names, then whoever is a member but was not named.
    wanted = sorted(set().union(*(c.members for c in desired.cohorts.values())))
    for user in client.get_users_by_field("username", wanted) if wanted else []:
        actual.users[user["username"]] = int(user["id"])
        actual.usernames[int(user["id"])] = user["username"]
    read = [*actual.cohorts.values(), *actual.unmanaged_cohorts.values()]
    member_ids = set().union(*(c.members for c in read)) if read else set()
    unknown = sorted(member_ids - set(actual.usernames))
    for user in client.get_users_by_field("id", unknown) if unknown else []:
        actual.usernames[int(user["id"])] = user["username"]

    read_courses(client, caps, desired, actual)

    if actual.plugin_available:
        actual.instances = [_instance(i) for i in client.cohort_sync_instances(-1)]

    # The course patterns' syncs count as declared ones for what is read next.
    expanded = expand_patterns(desired, actual)
    declared = [s for s in expanded.syncs if s.course in actual.courses]
    group_courses = sorted(_courses_needing_groups(actual, declared))
    manual_courses = sorted({actual.courses[s.course] for s in declared if s.method == "manual"})
    answers = client.run_concurrently([partial(client.get_course_groups, c) for c in group_courses])
    for courseid, groups in zip(group_courses, answers, strict=True):
        actual.groups[courseid] = {g["name"]: int(g["id"]) for g in groups}
    answers = client.run_concurrently(
        [
            partial(client.get_enrolled_users, c, onlyactive=True, userfields=("id", "roles"))
            for c in manual_courses
        ],
    )
    for courseid, enrolled in zip(manual_courses, answers, strict=True):
        actual.enrolled[courseid] = {
            int(u["id"]): frozenset(int(r["roleid"]) for r in u.get("roles") or [])
            for u in enrolled
        }
    return actual


def read_courses(client: MoodleReads, caps: Capabilities, desired: DesiredState,
                 actual: ActualState) -> None:
    """Fill ``actual``'s courses (the site course left out) with their categories, in one
    ``core_course_get_courses_by_field`` call, and the categories themselves in one more when
    a course pattern of ``desired`` names a category (``read_categories``). Raises
    MoodleError."""
    for course in client.get_courses_by_field():
        if int(course["id"]) != 1:  # the site course is never a sync target
            actual.courses[course["shortname"]] = int(course["id"])
            actual.course_categories[course["shortname"]] = int(course.get("categoryid") or 0)
    if needs_categories(desired):
        actual.categories, actual.categories_problem = read_categories(client, caps)


def read_categories(client: MoodleReads, caps: Capabilities
                    ) -> tuple[dict[int, ActualCategory], str | None]:
    """Every course category in one ``core_course_get_categories`` call (no criteria), and
    why they cannot place courses by idnumber, if so: the token's service lacks the function,
    or Moodle gives no ``idnumber`` key, as it does to a token without
    ``moodle/category:manage`` (course/externallib.php, "Some fields only returned for
    admin"). Raises MoodleError."""
    if caps.missing([GET_CATEGORIES]):
        return {}, f"the token's web service lacks {GET_CATEGORIES}"
    found = client.get_categories()
    if any("idnumber" not in c for c in found):
        return {}, ("Moodle gives this token no category idnumbers (its user needs "
                    "moodle/category:manage)")
    return {
        int(c["id"]): ActualCategory(
            id=int(c["id"]),
            idnumber=c.get("idnumber") or None,
            path=tuple(int(p) for p in str(c.get("path") or "").split("/") if p),
        )
        for c in found
    }, None


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
