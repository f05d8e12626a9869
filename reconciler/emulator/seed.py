"""Bulk setup without HTTP: the shape of ``MoodleEmulator.seed``."""

from __future__ import annotations

from typing import Any

from . import sync
from .model import Category, Cohort, Course, Enrol, Group, User
from .state import SYSTEM_CONTEXT, State


def _category_id(state: State, item: dict[str, Any], key_id: str, key_idnumber: str) -> int:
    if item.get(key_id) not in (None, ""):
        return int(item[key_id])
    if item.get(key_idnumber):
        return state.category_by_idnumber[item[key_idnumber]]
    return 0


def seed_state(state: State, data: dict[str, Any]) -> None:
    now = state.now()
    for item in data.get("categories", []):
        parent = item.get("parent") or 0
        if isinstance(parent, str) and not parent.isdigit():
            parent = state.category_by_idnumber[parent]
        state.add_category(Category(state.next_id("course_categories"), item["name"],
                                    item.get("idnumber", ""), int(parent),
                                    item.get("description", ""), timemodified=now))
    for item in data.get("courses", []):
        catid = _category_id(state, item, "categoryid", "category_idnumber") or 1
        state.add_course(Course(state.next_id("course"), catid, item["fullname"],
                                item["shortname"], item.get("idnumber", ""),
                                startdate=item.get("startdate", 0),
                                enddate=item.get("enddate", 0), timecreated=now,
                                timemodified=now, cacherev=now))
    for item in data.get("users", []):
        uid = state.next_id("user")
        user = User(uid, item["username"], item.get("firstname", ""), item.get("lastname", ""),
                    item.get("email", f"{item['username']}@example.invalid"),
                    auth=item.get("auth", "manual"), idnumber=item.get("idnumber", ""),
                    suspended=int(bool(item.get("suspended", 0))), timecreated=now)
        user.contextid = state.new_context("user", uid)
        state.add_user(user)
    for item in data.get("cohorts", []):
        if item.get("contextid"):
            contextid = int(item["contextid"])
        elif item.get("category_idnumber"):
            cat = state.categories[state.category_by_idnumber[item["category_idnumber"]]]
            contextid = cat.contextid
        else:
            contextid = SYSTEM_CONTEXT
        cohort = state.add_cohort(Cohort(state.next_id("cohort"), contextid, item["name"],
                                         item["idnumber"], item.get("description", ""),
                                         visible=int(item.get("visible", 1)),
                                         timecreated=now, timemodified=now))
        for username in item.get("members", []):
            state.add_cohort_member(cohort.id, state.user_by_username[username])
    for item in data.get("cohort_syncs", []):
        course = state.courses[state.course_by_shortname[item["course"]]]
        cohortid = min(state.cohorts_by_idnumber[item["cohort"]])
        groupid = 0
        if item.get("group"):
            groupid = _group(state, course.id, item["group"])
        enrol = state.add_enrol(Enrol(state.next_id("enrol"), "cohort", course.id,
                                      int(item.get("status", 0)), roleid=int(item.get("roleid", 5)),
                                      name=item.get("name", ""), customint1=cohortid,
                                      customint2=groupid))
        if enrol.status == 0:
            for userid in state.cohort_members[cohortid]:
                sync.cohort_enrol_member(state, enrol, userid)
    for item in data.get("enrolments", []):
        course = state.courses[state.course_by_shortname[item["course"]]]
        manual = state.course_instances(course.id, "manual")[0]
        sync.enrol_user(state, manual, state.user_by_username[item["username"]],
                        int(item.get("roleid", 5)), int(item.get("timestart", 0)),
                        int(item.get("timeend", 0) or 0), int(item.get("status", 0)))


def _group(state: State, courseid: int, name: str) -> int:
    for gid in state.course_groups[courseid]:
        if state.groups[gid].name == name:
            return gid
    group = Group(state.next_id("groups"), courseid, name, timecreated=state.now())
    return state.add_group(group).id
