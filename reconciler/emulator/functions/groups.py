"""core_group_*."""

from __future__ import annotations

from typing import Any

from ..errors import invalid_parameter, missing_record, missing_user, moodle_error
from ..model import Group
from ..params import Multiple, Single, Value, dflt, opt
from ..state import State
from .base import Call, wsfunction


def _course_context_error(courseid: int) -> Exception:
    return moodle_error(
        "errorcoursecontextnotvalid",
        f"You cannot execute functions in the course context (course id:{courseid}). "
        "The context error message was: Invalid parameter value detected",
    )


def group_out(call: Call, g: Group) -> dict[str, Any]:
    return {"id": g.id, "courseid": g.courseid, "name": call.fmt.string(g.name),
            "description": call.fmt.text(g.description)[0],
            "descriptionformat": g.descriptionformat, "enrolmentkey": g.enrolmentkey,
            "idnumber": g.idnumber, "visibility": g.visibility,
            "participation": bool(g.participation)}


def require_group(state: State, groupid: int) -> Group:
    group = state.groups.get(groupid)
    if group is None:
        raise missing_record("groups", "id = ?", [groupid])
    return group


@wsfunction("core_group_create_groups", {"groups": Multiple(Single({
    "courseid": Value("int"),
    "name": Value("text"),
    "description": Value("raw"),
    "descriptionformat": dflt(Value("int"), 1),
    "enrolmentkey": opt(Value("raw")),
    "idnumber": opt(Value("raw")),
    "visibility": dflt(Value("int"), 0),
    "participation": dflt(Value("bool"), True),
    "customfields": opt(Multiple(Single({"shortname": Value("alphanumext"),
                                         "value": Value("raw")}))),
}))})
def create_groups(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for item in params["groups"]:
        courseid, name = item["courseid"], item["name"]
        if name.strip() == "":
            raise invalid_parameter("Invalid group name")
        existing = state.course_groups.get(courseid, set())
        if any(state.groups[g].name == name for g in existing):
            raise invalid_parameter("Group with the same name already exists in the course")
        if courseid not in state.courses:
            raise _course_context_error(courseid)
        if item["visibility"] not in (0, 1, 2, 3):
            raise invalid_parameter("Invalid group visibility")
        idnumber = item.get("idnumber", "")
        if idnumber and any(state.groups[g].idnumber == idnumber for g in existing):
            raise moodle_error("idnumbertaken", "This ID number is already in use")
        group = Group(state.next_id("groups"), courseid, name, item["description"],
                      item["descriptionformat"], item.get("enrolmentkey"), idnumber,
                      item["visibility"], int(item["participation"]), call.now)
        state.add_group(group)
        out.append({"id": group.id, "courseid": courseid, "name": name,
                    "description": group.description,
                    "descriptionformat": group.descriptionformat,
                    "enrolmentkey": item.get("enrolmentkey", ""), "idnumber": idnumber,
                    "visibility": group.visibility,
                    "participation": bool(group.participation)})
    return out


# core_group_external::get_course_groups_returns: with moodlewssettingraw a group name
# holding markup (a cohort-sync group "L1 <Droit> cohort") fails PARAM_TEXT: invalidresponse.
_COURSE_GROUPS = Multiple(Single({
    "id": Value("int"), "courseid": Value("int"), "name": Value("text"),
    "description": Value("raw"), "descriptionformat": Value("int"),
    "enrolmentkey": Value("raw"), "idnumber": Value("raw"), "visibility": Value("int"),
    "participation": Value("bool")}))


@wsfunction("core_group_get_course_groups", {"courseid": Value("int")},
            returns=_COURSE_GROUPS)
def get_course_groups(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    if params["courseid"] not in state.courses:
        raise _course_context_error(params["courseid"])
    groups = [state.groups[g] for g in state.course_groups[params["courseid"]]]
    return [group_out(call, g) for g in sorted(groups, key=lambda g: (g.name, g.id))]


@wsfunction("core_group_get_groups", {"groupids": Multiple(Value("int"))})
def get_groups(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [group_out(call, require_group(call.state, g)) for g in params["groupids"]]


@wsfunction("core_group_delete_groups", {"groupids": Multiple(Value("int"))})
def delete_groups(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for groupid in params["groupids"]:
        group = require_group(state, groupid)
        for userid in list(state.group_members[groupid]):
            state.remove_group_member(groupid, userid)
        state.j.discard(state.course_groups[group.courseid], groupid)
        state.j.del_item(state.group_members, groupid)
        state.j.del_item(state.groups, groupid)


_MEMBERS = Multiple(Single({"groupid": Value("int"), "userid": Value("int")}))


@wsfunction("core_group_add_group_members", {"members": _MEMBERS})
def add_group_members(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for member in params["members"]:
        group = require_group(state, member["groupid"])
        if state.live_user(member["userid"]) is None:
            raise missing_user(member["userid"])
        if member["userid"] not in state.course_users.get(group.courseid, set()):
            raise invalid_parameter("Only enrolled users may be members of groups")
        state.add_group_member(group.id, member["userid"])


@wsfunction("core_group_delete_group_members", {"members": _MEMBERS})
def delete_group_members(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for member in params["members"]:
        group = require_group(state, member["groupid"])
        user = state.live_user(member["userid"])
        if user is None:
            raise missing_user(member["userid"])
        component = state.group_members[group.id].get(user.id, ("", 0))[0]
        if component:
            raise moodle_error(
                "errorremovenotpermitted",
                "You do not have permission to remove automatically-added group member "
                f"{user.firstname} {user.lastname}",
            )
        state.remove_group_member(group.id, user.id)


@wsfunction("core_group_get_group_members", {"groupids": Multiple(Value("int"))})
def get_group_members(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for groupid in params["groupids"]:
        require_group(state, groupid)
        users = state.users
        members = sorted(state.group_members[groupid],
                         key=lambda u: (users[u].lastname, users[u].firstname, u))
        out.append({"groupid": groupid, "userids": members})
    return out
