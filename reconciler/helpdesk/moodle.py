"""One person in Moodle, read in a handful of calls, as the planner's actual state.

The nightly reader (``planning.reader``) reads every user, course and enrolment the plan may
touch. Here only what concerns one person is read, and the :class:`ActualState` it gives is
that of the whole platform *restricted to the person*: every managed cohort (its membership
limited to the person), the cohort-sync instances and courses of the cohorts the person is
or should be in, and the person's enrolment in those courses. The planner, run on it, then
decides for this person exactly what it decides in the nightly plan.

Calls: site info, the user, every cohort, the members of every cohort (batched, a few
calls), every cohort-sync instance, the person's active courses, and per course concerned
its enrolled users (and its groups when a declared group is not shown yet); courses no
instance names are looked up by shortname. When a course pattern syncs one of the person's
cohorts (or a course is asked about and the platform has patterns), every course is read in
one call, and the categories in one more if a pattern names one, as the nightly reader does:
the pattern's syncs then concern the person like declared ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

# The nightly reader's own conversions (private to it), so that both readers build the same
# values from the same Moodle answers.
from ..planning.patterns import expand_patterns, needs_categories
from ..planning.reader import (
    GET_CATEGORIES,
    LIST_INSTANCES,
    SITE_COURSE,
    read_all_courses,
    read_categories,
)
from ..planning.reader import _cohort as actual_cohort
from ..planning.reader import _courses_needing_groups as courses_needing_groups
from ..planning.reader import _instance as actual_instance
from ..planning.state import (
    COHORT_MARKER,
    ActualCohort,
    ActualState,
    DesiredCohort,
    DesiredState,
    DesiredSync,
)
from ..settings import PlatformSettings

# The person's active courses in one call; a service without it costs one call a course.
USERS_COURSES = "core_enrol_get_users_courses"


@dataclass
class MoodlePerson:
    """What Moodle shows about the person, for people.

    ``account``: ``{id, username, auth, suspended}`` or None. ``cohorts``: every cohort the
    person is a member of (``idnumber``, ``name``, ``id``, ``managed``). ``courses``: per
    course concerned, ``{shortname, id (None: missing), active, roles, roles_read,
    through, instances}``: whether the person's enrolment is active, their roles when read
    (``roles_read``: the courses of ``method: manual`` syncs and the course asked about),
    the enabled cohort syncs of their cohorts that enrol them, every instance of their
    cohorts there. ``other_courses``: active enrolments elsewhere (shortnames; None when the
    token may not list them). ``calls``: web-service calls per function.
    """

    account: dict[str, Any] | None = None
    cohorts: list[dict[str, Any]] = field(default_factory=list)
    courses: list[dict[str, Any]] = field(default_factory=list)
    other_courses: list[str] | None = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    plugin_available: bool = True

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, as ``explain`` shows them."""
        return {
            "account": self.account,
            "cohorts": self.cohorts,
            "courses": self.courses,
            "other_courses": self.other_courses,
            "plugin_available": self.plugin_available,
            "calls": self.calls,
        }


class _Counted:
    """Counts the web-service requests each step makes (the transport's own counter)."""

    def __init__(self, client: Any, calls: dict[str, int]) -> None:
        self.client, self.calls = client, calls

    def __call__(self, function: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        transport = getattr(self.client, "transport", None)
        before = getattr(transport, "calls", 0)
        try:
            return method(*args, **kwargs)
        finally:
            made = getattr(transport, "calls", before + 1) - before
            self.calls[function] = self.calls.get(function, 0) + made


def person_cohorts(desired: DesiredState, actual: ActualState, username: str,
                   uid: int | None) -> set[str]:
    """Idnumbers of the cohorts ``username`` (Moodle id ``uid``) is or should be in: the
    desired ones that name them (members or uncertain) and the managed ones Moodle lists
    them in."""
    wanted = {c.idnumber for c in desired.cohorts.values()
              if username in c.members or username in c.uncertain}
    have = {c.idnumber for c in actual.cohorts.values() if uid is not None and uid in c.members}
    return wanted | have


def read_person_actual(
    client: Any,
    platform: PlatformSettings,
    desired: DesiredState,
    username: str,
    *,
    courses: Iterable[str] = (),
    cohorts: Iterable[str] = (),
    recorded: Iterable[str] = (),
) -> tuple[ActualState, MoodlePerson, DesiredState]:
    """What Moodle holds for ``username`` on ``platform``, restricted to them (module doc).

    ``desired``: the platform's desired state already restricted to the person (its syncs
    are all the declared ones, its course patterns not expanded yet); ``courses`` and
    ``cohorts``: also concern these (``--course``, ``--cohort``); ``recorded``: the
    shortnames of the courses where the manual-enrolment ledger says the reconciler enrolled
    the person (their enrolment and roles are read there too, as the nightly reader does, so
    that an end still owed shows even when no declaration names the course any more). Gives
    the actual state, the view for people, and ``desired`` to plan with: only the syncs and
    expired syncs that concern the person, the course patterns' among them (expanded against
    every course of the site when one concerns the person, its unresolved ones holding their
    instances). Raises MoodleError.
    """
    read = _Reading(client, platform, MoodlePerson(), ActualState())
    caps = read.call("core_webservice_get_site_info", client.capabilities)
    read.actual.plugin_available = read.view.plugin_available = not caps.missing(
        [LIST_INSTANCES])
    uid = read.account(username)
    mine = read.cohorts(desired, uid)
    concern = person_cohorts(desired, read.actual, username, uid) | set(cohorts)
    wanted = set(courses)
    read.instances({c.id for i, c in read.actual.cohorts.items() if i in concern}
                   | {c for c in mine if c in read.actual.unmanaged_cohort_ids}, wanted)
    desired = read.patterns(desired, caps, concern, wanted)
    syncs = [s for s in desired.syncs if s.cohort in concern or s.course in wanted]
    expired = [s for s in desired.expired_syncs if s.cohort in concern or s.course in wanted]
    recorded = set(recorded)
    names = {s.course for s in [*syncs, *expired]} | {
        i.course for i in read.actual.instances} | wanted | recorded
    names.discard("")
    active = read.courses(names, uid, with_courses=not caps.missing([USERS_COURSES]))
    manual = {s.course for s in [*syncs, *expired] if s.method == "manual"} | recorded
    read.enrolments(names, uid, active, manual | wanted, mine)
    read.groups([s for s in syncs if s.course in read.actual.courses])
    read.view.calls = {k: v for k, v in read.view.calls.items() if v}
    return read.actual, read.view, replace(desired, syncs=syncs, expired_syncs=expired)


@dataclass
class _Reading:
    """The steps of ``read_person_actual``, each filling ``actual`` (for the planner) and
    ``view`` (for people) and counting its calls."""

    client: Any
    platform: PlatformSettings
    view: MoodlePerson
    actual: ActualState
    # A token that may not list the person's courses: roles (and activeness) read everywhere.
    read_roles_everywhere: bool = False

    def call(self, function: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)``, its requests counted under ``function``."""
        return _Counted(self.client, self.view.calls)(function, method, *args, **kwargs)

    def account(self, username: str) -> int | None:
        """The person's Moodle id (None: no account)."""
        found = self.call("core_user_get_users_by_field", self.client.get_users_by_field,
                          "username", [username])
        if not found:
            return None
        user = found[0]
        uid = int(user["id"])
        self.view.account = {"id": uid, "username": user.get("username"),
                             "auth": user.get("auth"), "suspended": bool(user.get("suspended"))}
        self.actual.users[username] = uid
        self.actual.usernames[uid] = username
        return uid

    def cohorts(self, desired: DesiredState, uid: int | None) -> set[int]:
        """Every cohort, as the nightly reader tells managed ones from the others, with the
        person's membership only; the ids of the cohorts the person is in."""
        adopted = {i for i, c in desired.cohorts.items() if c.adopt}
        every = self.call("core_cohort_get_cohorts", self.client.get_cohorts)
        ids = [int(c["id"]) for c in every]
        members = (self.call("core_cohort_get_cohort_members", self.client.get_cohort_members,
                             ids) if uid is not None and ids else {})
        mine = {cid for cid, users in members.items() if uid in users}
        for cohort in every:
            cid, idnumber = int(cohort["id"]), cohort.get("idnumber") or ""
            managed = bool(idnumber) and (self.platform.is_managed_idnumber(idnumber)
                                          or idnumber in adopted)
            if cid in mine:
                self.view.cohorts.append({"idnumber": idnumber, "name": cohort.get("name"),
                                          "id": cid, "managed": managed})
            if managed:
                self.actual.cohorts[idnumber] = actual_cohort(
                    cohort, {cid: [uid] if cid in mine else []})
            else:
                self.actual.unmanaged_cohort_ids[cid] = idnumber
        return mine

    def instances(self, cohort_ids: set[int], courses: set[str]) -> None:
        """The cohort-sync instances of those cohorts and courses (one call for the site)."""
        if not self.actual.plugin_available:
            return
        found = self.call(LIST_INSTANCES, self.client.cohort_sync_instances, -1)
        self.actual.instances = [actual_instance(i) for i in found
                                 if i.cohortid in cohort_ids or i.course_shortname in courses]

    def patterns(self, desired: DesiredState, caps: Any, concern: set[str],
                 wanted: set[str]) -> DesiredState:
        """``desired`` with the course patterns that concern the person expanded (those
        syncing one of the ``concern`` cohorts, every one when a course is ``wanted``), after
        reading every course (one call) and the categories (one more, when one of those
        patterns names a category); the other patterns dropped, as they concern nobody
        here. Nothing is read when no pattern concerns the person."""
        mine = [p for p in desired.patterns
                if wanted or any(s.cohort in concern for s in p.syncs)]
        desired = replace(desired, patterns=mine)
        if not mine:
            return expand_patterns(desired, self.actual)
        self.call("core_course_get_courses_by_field", read_all_courses, self.client,
                  self.actual)
        if needs_categories(desired):
            self.actual.categories, self.actual.categories_problem = self.call(
                GET_CATEGORIES, read_categories, self.client, caps)
        return expand_patterns(desired, self.actual)

    def courses(self, names: set[str], uid: int | None, with_courses: bool) -> dict[str, int]:
        """The ids of the courses ``names`` (the instances name theirs; the person's active
        courses, one call; the rest by shortname); gives the person's active courses
        (shortname -> id), and sets ``view.other_courses`` (None when the token may not
        list them)."""
        actual = self.actual
        if not actual.all_courses_read:  # else a course pattern had every course read
            actual.courses = {i.course: i.courseid for i in actual.instances
                              if i.course and i.courseid != SITE_COURSE}
        active: dict[str, int] = {}
        if uid is not None and with_courses:
            for course in self.call(USERS_COURSES, self.client.get_users_courses, uid):
                active[str(course.get("shortname"))] = int(course["id"])
        for name in names & active.keys():
            actual.courses.setdefault(name, active[name])
        missing = sorted(names - actual.courses.keys())
        answers = self.call(
            "core_course_get_courses_by_field", self.client.run_concurrently,
            [partial(self.client.get_courses_by_field, "shortname", n) for n in missing])
        for found in answers:
            for course in found:
                if int(course["id"]) != SITE_COURSE:
                    actual.courses[course["shortname"]] = int(course["id"])
        self.view.other_courses = sorted(set(active) - names) if with_courses else None
        self.read_roles_everywhere = not with_courses
        return active

    def enrolments(self, names: set[str], uid: int | None, active: dict[str, int],
                   roles_wanted: set[str], mine: set[int]) -> None:
        """The person's enrolment in each course concerned. Roles are read (one call a
        course) only where the planner needs the enrolment (``method: manual`` syncs, as
        the nightly reader does) and for the course asked about; elsewhere the person's
        active courses and the instances of their cohorts say how they are enrolled."""
        actual = self.actual
        concerned = sorted(n for n in names if n in actual.courses)
        read = [n for n in concerned if n in roles_wanted or self.read_roles_everywhere]
        answers = self.call(
            "core_enrol_get_enrolled_users", self.client.run_concurrently,
            [partial(self.client.get_enrolled_users, actual.courses[n], onlyactive=True,
                     userfields=("id", "roles")) for n in read] if uid is not None else [])
        roles_in: dict[str, frozenset[int]] = {}
        for name, users in zip(read if uid is not None else [], answers, strict=True):
            me = next((u for u in users if int(u["id"]) == uid), None)
            if me is not None:
                roles_in[name] = frozenset(int(r["roleid"]) for r in me.get("roles") or [])
                active.setdefault(name, actual.courses[name])
            actual.enrolled[actual.courses[name]] = (
                {uid: roles_in[name]} if uid is not None and name in roles_in else {})
        role = {rid: n for n, rid in self.platform.roles.items()}
        for name in concerned:
            courseid = actual.courses[name]
            here = [i for i in actual.instances if i.courseid == courseid]
            self.view.courses.append({
                "shortname": name,
                "id": courseid,
                "active": name in active,
                "roles": sorted(role.get(r, str(r)) for r in roles_in.get(name, ())),
                "roles_read": name in read,
                "through": [f"cohort sync {i.id} of {i.cohort} as {role.get(i.roleid, i.roleid)}"
                            for i in here if i.status == 0 and i.cohortid in mine],
                "instances": [
                    {"id": i.id, "cohort": i.cohort, "role": role.get(i.roleid, str(i.roleid)),
                     "group": i.group or None, "enabled": i.status == 0, "owned": i.owned,
                     "name": i.name}
                    for i in here
                ],
            })
        for name in sorted(names - set(concerned)):
            self.view.courses.append({"shortname": name, "id": None, "active": False,
                                      "roles": [], "roles_read": False, "through": [],
                                      "instances": []})

    def groups(self, syncs: list[DesiredSync]) -> None:
        """The groups of the courses whose declared group no instance shows yet (the
        nightly reader's rule)."""
        courses = sorted(courses_needing_groups(self.actual, syncs))
        answers = self.call("core_group_get_course_groups", self.client.run_concurrently,
                            [partial(self.client.get_course_groups, c) for c in courses])
        for courseid, found in zip(courses, answers, strict=True):
            self.actual.groups[courseid] = {g["name"]: int(g["id"]) for g in found}



def restrict_desired(desired: DesiredState, username: str) -> DesiredState:
    """``desired`` restricted to ``username``: each cohort keeps only that member (or that
    uncertain login), accounts only theirs. Syncs are kept whole (the reader picks those
    that concern the person)."""
    cohorts = {
        idnumber: replace(c, members=c.members & {username}, uncertain=c.uncertain & {username})
        for idnumber, c in desired.cohorts.items()
    }
    return replace(
        desired,
        cohorts=cohorts,
        accounts={k: v for k, v in desired.accounts.items() if k == username},
    )


def general_shells(desired: DesiredState, actual: ActualState, platform: PlatformSettings,
                   vets: dict[str, str]) -> DesiredState:
    """``desired`` with, for every managed general cohort Moodle has that the person's IAs
    do not make, the cohort as Moodle has it with no member: the nightly keeps such a cohort
    for the other students of its étape (explain reads only this person), so what it decides
    for the person is to take them out. ``vets``: ``{cohort idnumber: VET}`` the person's
    other IAs name (their reason then names the VET)."""
    if desired.general_frozen or not platform.general_cohorts.enabled:
        return desired
    regex = platform.general_cohorts.idnumber_regex()
    cohorts = dict(desired.cohorts)
    for idnumber, have in actual.cohorts.items():
        if idnumber in cohorts or not regex.match(idnumber) or not have.owned:
            continue
        cohorts[idnumber] = _shell(have, vets.get(idnumber, idnumber))
    return replace(desired, cohorts=cohorts)


def _shell(have: ActualCohort, vet: str) -> DesiredCohort:
    description = have.description.replace(COHORT_MARKER, "").rstrip("\n")
    return DesiredCohort(
        idnumber=have.idnumber,
        name=have.name,
        kind="general",
        members=frozenset(),
        source=f"APOGÉE {vet}",
        description=description,
        visible=have.visible,
    )
