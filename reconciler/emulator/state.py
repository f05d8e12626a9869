"""The in-memory site: tables, indexes and journaled changes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .journal import Journal
from .model import (
    ENROL_INSTANCE_DISABLED,
    ENROL_INSTANCE_ENABLED,
    Category,
    Cohort,
    Course,
    Enrol,
    Group,
    RoleAssignment,
    User,
    UserEnrolment,
)

SYSTEM_CONTEXT = 1
SITE_COURSE_ID = 1
# A fresh 4.5 install uses context ids 1-10 (system, site course, Category 1, admin, blocks).
FIRST_FREE_CONTEXT = 11


class State:
    """A fresh Moodle: guest (1), admin (2), site course (1), Category 1 (1)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.j = Journal()
        self.users: dict[int, User] = {}
        self.user_by_username: dict[str, int] = {}
        self.users_by_idnumber: dict[str, set[int]] = {}
        self.users_by_email: dict[str, set[int]] = {}
        self.users_by_email_ci: dict[str, set[int]] = {}  # allowaccountssameemail=0 check
        self.categories: dict[int, Category] = {}
        self.category_by_idnumber: dict[str, int] = {}
        self.courses: dict[int, Course] = {}
        self.course_by_shortname: dict[str, int] = {}
        self.course_by_idnumber: dict[str, int] = {}
        self.cohorts: dict[int, Cohort] = {}
        self.cohorts_by_idnumber: dict[str, set[int]] = {}
        self.cohort_members: dict[int, dict[int, int]] = {}  # cohortid -> userid -> timeadded
        self.user_cohorts: dict[int, set[int]] = {}
        self.groups: dict[int, Group] = {}
        self.course_groups: dict[int, set[int]] = {}
        self.group_members: dict[int, dict[int, tuple[str, int]]] = {}  # -> (component, itemid)
        self.enrols: dict[int, Enrol] = {}
        self.course_enrols: dict[int, set[int]] = {}
        self.cohort_enrols: dict[int, set[int]] = {}
        self.user_enrolments: dict[tuple[int, int], UserEnrolment] = {}  # (enrolid, userid)
        self.enrol_users: dict[int, set[int]] = {}
        self.user_course_enrols: dict[tuple[int, int], set[int]] = {}  # (userid, courseid)
        self.course_users: dict[int, set[int]] = {}
        self.user_ues: dict[int, set[int]] = {}  # userid -> enrolids
        self.role_assignments: dict[int, RoleAssignment] = {}
        self.ras_by_course_user: dict[tuple[int, int], set[int]] = {}
        self.contexts: dict[int, tuple[str, int]] = {SYSTEM_CONTEXT: ("system", 0)}
        # Sequences are not transactional in PostgreSQL: rolled-back calls burn ids.
        self._seq: dict[str, int] = {}
        self._next_context = FIRST_FREE_CONTEXT
        self._pos = 0
        self._install()

    # -- helpers -----------------------------------------------------------------------------
    def now(self) -> int:
        return int(self.clock())

    def next_id(self, table: str) -> int:
        value = self._seq.get(table, 0) + 1
        self._seq[table] = value
        return value

    def next_pos(self) -> int:
        self._pos += 1
        return self._pos

    def new_context(self, level: str, instance: int) -> int:
        cid = self._next_context
        self._next_context += 1
        self.j.set_item(self.contexts, cid, (level, instance))
        return cid

    def _install(self) -> None:
        t = 1795858287
        self._seq.update(user=2, course=1, course_categories=1)
        self.users[1] = User(1, "guest", "Guest user", " ", "root@localhost", auth="manual",
                             contextid=0, timecreated=t)
        self.users[2] = User(2, "admin", "Admin", "User", "admin@example.com", contextid=5,
                             timecreated=t)
        for u in self.users.values():
            self._index_user(u)
        site = Course(SITE_COURSE_ID, 0, "Real Moodle Test Site", "realmoodle",
                      summary="loopback test",
                      format="site", contextid=2, timecreated=t, timemodified=1795858335,
                      cacherev=1795859918)
        site.options = {"showgrades": 1, "newsitems": 3, "enablecompletion": 0,
                        "showactivitydates": False, "showcompletionconditions": None}
        self.courses[1] = site
        self.course_by_shortname[site.shortname] = 1
        self.contexts[2] = ("course", 1)
        cat = Category(1, "Category 1", None, 0, contextid=3, timemodified=t)
        self.categories[1] = cat
        self.contexts[3] = ("coursecat", 1)
        self.course_groups[1] = set()
        self.course_enrols[1] = set()

    # -- users -------------------------------------------------------------------------------
    def _index_user(self, u: User) -> None:
        self.user_by_username[u.username] = u.id
        self.users_by_idnumber.setdefault(u.idnumber, set()).add(u.id)
        self.users_by_email.setdefault(u.email, set()).add(u.id)
        self.users_by_email_ci.setdefault(u.email.lower(), set()).add(u.id)

    def add_user(self, u: User) -> User:
        j = self.j
        j.set_item(self.users, u.id, u)
        j.set_item(self.user_by_username, u.username, u.id)
        j.add(self._bucket(self.users_by_idnumber, u.idnumber), u.id)
        j.add(self._bucket(self.users_by_email, u.email), u.id)
        j.add(self._bucket(self.users_by_email_ci, u.email.lower()), u.id)
        return u

    def _bucket(self, index: dict[Any, set[int]], key: Any) -> set[int]:
        bucket = index.get(key)
        if bucket is None:
            bucket = set()
            self.j.set_item(index, key, bucket)
        return bucket

    def update_user(self, u: User, **fields: Any) -> None:
        j = self.j
        for name, value in fields.items():
            if name == "username":
                j.del_item(self.user_by_username, u.username)
                j.set_item(self.user_by_username, value, u.id)
            elif name == "idnumber":
                j.discard(self._bucket(self.users_by_idnumber, u.idnumber), u.id)
                j.add(self._bucket(self.users_by_idnumber, value), u.id)
            elif name == "email":
                j.discard(self._bucket(self.users_by_email, u.email), u.id)
                j.add(self._bucket(self.users_by_email, value), u.id)
                j.discard(self._bucket(self.users_by_email_ci, u.email.lower()), u.id)
                j.add(self._bucket(self.users_by_email_ci, value.lower()), u.id)
            j.set_attr(u, name, value)

    def live_user(self, userid: int) -> User | None:
        u = self.users.get(userid)
        return u if u is not None and not u.deleted else None

    # -- categories and courses --------------------------------------------------------------
    def add_category(self, cat: Category) -> Category:
        cat.contextid = self.new_context("coursecat", cat.id)
        self.j.set_item(self.categories, cat.id, cat)
        if cat.idnumber:
            self.j.set_item(self.category_by_idnumber, cat.idnumber, cat.id)
        return cat

    def category_path(self, catid: int) -> list[int]:
        path: list[int] = []
        while catid:
            path.append(catid)
            catid = self.categories[catid].parent
        return list(reversed(path))

    def category_sortorders(self) -> dict[int, int]:
        """fix_course_sortorder(): depth-first, siblings in creation order, 10000 apart."""
        children: dict[int, list[int]] = {}
        for cat in self.categories.values():
            children.setdefault(cat.parent, []).append(cat.id)
        order: dict[int, int] = {}
        stack = list(reversed(sorted(children.get(0, []))))
        while stack:
            cid = stack.pop()
            order[cid] = (len(order) + 1) * 10000
            stack.extend(reversed(sorted(children.get(cid, []))))
        return order

    def course_sortorders(self) -> dict[int, int]:
        """Course sortorder: category's + rank, the newest course first in its category."""
        catorders = self.category_sortorders()
        by_cat: dict[int, list[int]] = {}
        for c in self.courses.values():
            if c.id != SITE_COURSE_ID:
                by_cat.setdefault(c.category, []).append(c.id)
        out = {SITE_COURSE_ID: 1}
        for cat, ids in by_cat.items():
            for rank, cid in enumerate(sorted(ids, reverse=True), start=1):
                out[cid] = catorders.get(cat, 0) + rank
        return out

    def add_course(self, course: Course) -> Course:
        j = self.j
        course.contextid = self.new_context("course", course.id)
        j.set_item(self.courses, course.id, course)
        j.set_item(self.course_by_shortname, course.shortname, course.id)
        if course.idnumber:
            j.set_item(self.course_by_idnumber, course.idnumber, course.id)
        j.set_item(self.course_groups, course.id, set())
        j.set_item(self.course_enrols, course.id, set())
        j.set_item(self.course_users, course.id, set())
        # enrol_plugins_enabled = manual,guest,self: each new course gets the three instances.
        self.add_enrol(Enrol(self.next_id("enrol"), "manual", course.id, ENROL_INSTANCE_ENABLED,
                             roleid=5))
        self.add_enrol(Enrol(self.next_id("enrol"), "guest", course.id, ENROL_INSTANCE_DISABLED))
        self.add_enrol(Enrol(self.next_id("enrol"), "self", course.id, ENROL_INSTANCE_DISABLED,
                             roleid=5, customint1=0, customint2=0))
        return course

    def course_parent_contexts(self, course: Course) -> list[int]:
        ctxs = [SYSTEM_CONTEXT]
        if course.category:
            ctxs += [self.categories[c].contextid for c in self.category_path(course.category)]
        return ctxs

    # -- cohorts -----------------------------------------------------------------------------
    def add_cohort(self, cohort: Cohort) -> Cohort:
        cohort.pos = self.next_pos()
        self.j.set_item(self.cohorts, cohort.id, cohort)
        self.j.add(self._bucket(self.cohorts_by_idnumber, cohort.idnumber), cohort.id)
        self.j.set_item(self.cohort_members, cohort.id, {})
        return cohort

    def update_cohort(self, cohort: Cohort, **fields: Any) -> None:
        if "idnumber" in fields and fields["idnumber"] != cohort.idnumber:
            self.j.discard(self._bucket(self.cohorts_by_idnumber, cohort.idnumber), cohort.id)
            self.j.add(self._bucket(self.cohorts_by_idnumber, fields["idnumber"]), cohort.id)
        for name, value in fields.items():
            self.j.set_attr(cohort, name, value)
        self.j.set_attr(cohort, "pos", self.next_pos())

    def remove_cohort(self, cohort: Cohort) -> None:
        for userid in list(self.cohort_members.get(cohort.id, {})):
            self.remove_cohort_member(cohort.id, userid)
        self.j.del_item(self.cohort_members, cohort.id)
        self.j.discard(self._bucket(self.cohorts_by_idnumber, cohort.idnumber), cohort.id)
        self.j.del_item(self.cohorts, cohort.id)

    def add_cohort_member(self, cohortid: int, userid: int) -> None:
        self.j.set_item(self.cohort_members[cohortid], userid, self.now())
        self.j.add(self._bucket(self.user_cohorts, userid), cohortid)

    def remove_cohort_member(self, cohortid: int, userid: int) -> None:
        self.j.del_item(self.cohort_members[cohortid], userid)
        self.j.discard(self._bucket(self.user_cohorts, userid), cohortid)

    # -- groups ------------------------------------------------------------------------------
    def add_group(self, group: Group) -> Group:
        self.j.set_item(self.groups, group.id, group)
        self.j.add(self.course_groups[group.courseid], group.id)
        self.j.set_item(self.group_members, group.id, {})
        return group

    def add_group_member(self, groupid: int, userid: int, component: str = "",
                         itemid: int = 0) -> None:
        members = self.group_members[groupid]
        if userid not in members:
            self.j.set_item(members, userid, (component, itemid))

    def remove_group_member(self, groupid: int, userid: int) -> None:
        self.j.del_item(self.group_members[groupid], userid)

    # -- enrolment instances -----------------------------------------------------------------
    def add_enrol(self, enrol: Enrol) -> Enrol:
        j = self.j
        enrol.pos = self.next_pos()
        enrol.sortorder = len(self.course_enrols[enrol.courseid])
        enrol.timecreated = enrol.timemodified = self.now()
        j.set_item(self.enrols, enrol.id, enrol)
        j.add(self.course_enrols[enrol.courseid], enrol.id)
        j.set_item(self.enrol_users, enrol.id, set())
        if enrol.enrol == "cohort" and enrol.customint1:
            j.add(self._bucket(self.cohort_enrols, enrol.customint1), enrol.id)
        return enrol

    def update_enrol(self, enrol: Enrol, **fields: Any) -> None:
        for name, value in fields.items():
            self.j.set_attr(enrol, name, value)
        self.j.set_attr(enrol, "timemodified", self.now())
        self.j.set_attr(enrol, "pos", self.next_pos())

    def remove_enrol(self, enrol: Enrol) -> None:
        j = self.j
        j.del_item(self.enrol_users, enrol.id)
        j.discard(self.course_enrols[enrol.courseid], enrol.id)
        if enrol.enrol == "cohort" and enrol.customint1:
            j.discard(self._bucket(self.cohort_enrols, enrol.customint1), enrol.id)
        j.del_item(self.enrols, enrol.id)

    def course_instances(self, courseid: int, kind: str | None = None) -> list[Enrol]:
        found = [self.enrols[i] for i in self.course_enrols.get(courseid, ())]
        if kind:
            found = [e for e in found if e.enrol == kind]
        return sorted(found, key=lambda e: (e.sortorder, e.id))

    # -- user enrolments ---------------------------------------------------------------------
    def add_ue(self, ue: UserEnrolment, courseid: int) -> None:
        j = self.j
        j.set_item(self.user_enrolments, (ue.enrolid, ue.userid), ue)
        j.add(self.enrol_users[ue.enrolid], ue.userid)
        j.add(self._bucket(self.user_course_enrols, (ue.userid, courseid)), ue.enrolid)
        j.add(self.course_users[courseid], ue.userid)
        j.add(self._bucket(self.user_ues, ue.userid), ue.enrolid)

    def remove_ue(self, enrolid: int, userid: int, courseid: int) -> None:
        j = self.j
        j.del_item(self.user_enrolments, (enrolid, userid))
        j.discard(self.enrol_users[enrolid], userid)
        j.discard(self._bucket(self.user_ues, userid), enrolid)
        bucket = self._bucket(self.user_course_enrols, (userid, courseid))
        j.discard(bucket, enrolid)
        if not bucket:
            j.discard(self.course_users[courseid], userid)

    # -- role assignments --------------------------------------------------------------------
    def role_assign(self, roleid: int, courseid: int, userid: int, component: str = "",
                    itemid: int = 0) -> None:
        bucket = self._bucket(self.ras_by_course_user, (courseid, userid))
        for raid in bucket:
            ra = self.role_assignments[raid]
            if (ra.roleid, ra.component, ra.itemid) == (roleid, component, itemid):
                return
        ra = RoleAssignment(self.next_id("role_assignments"), roleid, courseid, userid,
                            component, itemid)
        self.j.set_item(self.role_assignments, ra.id, ra)
        self.j.add(bucket, ra.id)

    def role_unassign_all(self, courseid: int, userid: int, component: str | None = None,
                          itemid: int | None = None, roleid: int | None = None) -> None:
        bucket = self._bucket(self.ras_by_course_user, (courseid, userid))
        for raid in list(bucket):
            ra = self.role_assignments[raid]
            if component is not None and ra.component != component:
                continue
            if itemid is not None and ra.itemid != itemid:
                continue
            if roleid is not None and ra.roleid != roleid:
                continue
            self.j.discard(bucket, raid)
            self.j.del_item(self.role_assignments, raid)

    def user_roles(self, courseid: int, userid: int) -> list[RoleAssignment]:
        ids = self.ras_by_course_user.get((courseid, userid), ())
        ras = [self.role_assignments[i] for i in ids]
        return sorted(ras, key=lambda ra: (ra.roleid, ra.id))

    # -- bulk access -------------------------------------------------------------------------
    def enrols_of(self, ids: Iterable[int]) -> list[Enrol]:
        return [self.enrols[i] for i in ids if i in self.enrols]
