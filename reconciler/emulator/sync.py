"""Enrolment side effects: enrol_plugin API and the enrol_cohort observers and task."""

from __future__ import annotations

from .model import (
    ENROL_INSTANCE_ENABLED,
    ENROL_USER_ACTIVE,
    ENROL_USER_SUSPENDED,
    Enrol,
    Group,
    UserEnrolment,
)
from .state import State

UNENROL, KEEP, SUSPEND, SUSPEND_NOROLES = 0, 1, 2, 3


def _component(enrol: Enrol) -> tuple[str, int]:
    """Manual roles carry no component (roles not protected); cohort and meta ones do."""
    if enrol.enrol in ("cohort", "meta"):
        return f"enrol_{enrol.enrol}", enrol.id
    return "", 0


def enrol_user(state: State, enrol: Enrol, userid: int, roleid: int = 0, timestart: int = 0,
               timeend: int = 0, status: int | None = None) -> None:
    """enrol_plugin::enrol_user: create or update the enrolment, then assign the role."""
    ue = state.user_enrolments.get((enrol.id, userid))
    if ue is None:
        ue = UserEnrolment(state.next_id("user_enrolments"), enrol.id, userid,
                           ENROL_USER_ACTIVE if status is None else status, timestart, timeend,
                           state.now())
        state.add_ue(ue, enrol.courseid)
    else:
        state.j.set_attr(ue, "timestart", timestart)
        state.j.set_attr(ue, "timeend", timeend)
        if status is not None:
            state.j.set_attr(ue, "status", status)
    if roleid:
        component, itemid = _component(enrol)
        state.role_assign(roleid, enrol.courseid, userid, component, itemid)


def unenrol_user(state: State, enrol: Enrol, userid: int) -> None:
    """enrol_plugin::unenrol_user; the last enrolment in a course also drops roles/groups."""
    if (enrol.id, userid) not in state.user_enrolments:
        return
    courseid = enrol.courseid
    component, itemid = _component(enrol)
    if component:
        state.role_unassign_all(courseid, userid, component, itemid)
        for gid in state.course_groups.get(courseid, ()):
            if state.group_members[gid].get(userid) == (component, itemid):
                state.remove_group_member(gid, userid)
    state.remove_ue(enrol.id, userid, courseid)
    if not state.user_course_enrols.get((userid, courseid)):
        state.role_unassign_all(courseid, userid)
        for gid in state.course_groups.get(courseid, ()):
            if userid in state.group_members[gid]:
                state.remove_group_member(gid, userid)


def delete_instance(state: State, enrol: Enrol) -> None:
    for userid in sorted(state.enrol_users.get(enrol.id, ())):
        unenrol_user(state, enrol, userid)
    state.remove_enrol(enrol)


def cohort_enrol_member(state: State, enrol: Enrol, userid: int) -> None:
    ue = state.user_enrolments.get((enrol.id, userid))
    if ue is None:
        enrol_user(state, enrol, userid)
    elif ue.status != ENROL_USER_ACTIVE:
        state.j.set_attr(ue, "status", ENROL_USER_ACTIVE)
    if enrol.roleid:
        state.role_assign(enrol.roleid, enrol.courseid, userid, "enrol_cohort", enrol.id)
    if enrol.customint2 and enrol.customint2 in state.groups:
        state.add_group_member(enrol.customint2, userid, "enrol_cohort", enrol.id)


def _apply_removal(state: State, enrol: Enrol, userid: int, action: int) -> None:
    ue = state.user_enrolments.get((enrol.id, userid))
    if ue is None:
        return
    if action == UNENROL:
        unenrol_user(state, enrol, userid)
    elif action in (SUSPEND, SUSPEND_NOROLES):
        if ue.status != ENROL_USER_SUSPENDED:
            state.j.set_attr(ue, "status", ENROL_USER_SUSPENDED)
        if action == SUSPEND_NOROLES:
            state.role_unassign_all(enrol.courseid, userid, "enrol_cohort", enrol.id)


def member_added(state: State, cohortid: int, userid: int) -> None:
    """Observer of cohort_member_added: enrol through every enabled instance, now."""
    for enrol in _cohort_instances(state, cohortid):
        if enrol.status == ENROL_INSTANCE_ENABLED:
            cohort_enrol_member(state, enrol, userid)


def member_removed(state: State, cohortid: int, userid: int, action: int) -> None:
    """Observer of cohort_member_removed: every instance, enabled or not."""
    for enrol in _cohort_instances(state, cohortid):
        _apply_removal(state, enrol, userid, action)


def cohort_deleted(state: State, cohortid: int, action: int) -> None:
    for enrol in _cohort_instances(state, cohortid):
        if action == UNENROL:
            delete_instance(state, enrol)
        else:
            state.update_enrol(enrol, status=1)
            if action != SUSPEND:
                for userid in list(state.enrol_users.get(enrol.id, ())):
                    state.role_unassign_all(enrol.courseid, userid, "enrol_cohort", enrol.id)


def _cohort_instances(state: State, cohortid: int) -> list[Enrol]:
    return sorted(state.enrols_of(state.cohort_enrols.get(cohortid, ())), key=lambda e: e.id)


def sync_course(state: State, courseid: int | None, action: int) -> None:
    """enrol_cohort_sync(): what the hourly task (and add/update/status) converges."""
    if courseid is None:
        instances = [e for e in state.enrols.values() if e.enrol == "cohort"]
    else:
        instances = state.course_instances(courseid, "cohort")
    for enrol in sorted(instances, key=lambda e: e.id):
        members = state.cohort_members.get(enrol.customint1 or 0, {})
        enrolled = state.enrol_users.get(enrol.id, set())
        if enrol.status == ENROL_INSTANCE_ENABLED:
            for userid in members:
                ue = state.user_enrolments.get((enrol.id, userid))
                if ue is None or ue.status != ENROL_USER_ACTIVE:
                    cohort_enrol_member(state, enrol, userid)
        for userid in sorted(enrolled - set(members)):
            _apply_removal(state, enrol, userid, action)
        for userid in sorted(state.enrol_users.get(enrol.id, set())):
            ue = state.user_enrolments[(enrol.id, userid)]
            active = ue.status == ENROL_USER_ACTIVE and enrol.status == ENROL_INSTANCE_ENABLED
            if active and enrol.roleid:
                state.role_assign(enrol.roleid, enrol.courseid, userid, "enrol_cohort", enrol.id)
            if not active and action != SUSPEND:
                state.role_unassign_all(enrol.courseid, userid, "enrol_cohort", enrol.id)
            if enrol.customint2 and enrol.customint2 in state.groups:
                state.add_group_member(enrol.customint2, userid, "enrol_cohort", enrol.id)
        _drop_stale_group_members(state, enrol)


def _drop_stale_group_members(state: State, enrol: Enrol) -> None:
    """Memberships this instance made in a group it no longer targets, or for leavers."""
    for gid in list(state.course_groups.get(enrol.courseid, ())):
        members = state.group_members[gid]
        for userid, (component, itemid) in list(members.items()):
            if component != "enrol_cohort" or itemid != enrol.id:
                continue
            if gid != enrol.customint2 or (enrol.id, userid) not in state.user_enrolments:
                state.remove_group_member(gid, userid)


def create_cohort_group(state: State, courseid: int, cohortname: str) -> Group:
    """enrol_cohort_create_new_group(): "<cohort> cohort", then " (2)"... if taken."""
    taken = {state.groups[g].name for g in state.course_groups.get(courseid, ())}
    base = f"{cohortname} cohort"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    group = Group(state.next_id("groups"), courseid, name, "", 0, None, "",
                  timecreated=state.now())
    return state.add_group(group)


def is_active(state: State, ue: UserEnrolment, now: int) -> bool:
    enrol = state.enrols.get(ue.enrolid)
    return (
        enrol is not None
        and enrol.status == ENROL_INSTANCE_ENABLED
        and ue.status == ENROL_USER_ACTIVE
        and ue.timestart <= now
        and (ue.timeend == 0 or ue.timeend > now)
    )
