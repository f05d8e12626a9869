"""The rest of the recorded service: listed by get_site_info, rarely used by the reconciler.

Shapes follow Moodle 4.5's return descriptions; none of these calls is in the recording.
enrol_meta instances enrol the child course's current users once (no continuous meta sync).
"""

from __future__ import annotations

from typing import Any

from .. import sync
from ..errors import invalid_parameter, missing_record, missing_user, moodle_error
from ..model import ROLES, Enrol
from ..params import Multiple, Single, Value, dflt, opt
from ..state import State
from .base import Call, wsfunction
from .courses import course_details
from .enrol import require_course, users_courses
from .users import user_details

_USER_KEYS = {"id", "lastname", "firstname", "idnumber", "username", "email", "auth"}


@wsfunction("core_user_get_users", {
    "criteria": Multiple(Single({"key": Value("alpha"), "value": Value("raw")})),
})
def get_users(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    users = [u for u in state.users.values() if not u.deleted and u.id != 1]
    warnings = []
    for crit in params["criteria"]:
        key, value = crit["key"], crit["value"]
        if key not in _USER_KEYS:
            warnings.append({"item": key, "warningcode": "invalidfieldparameter",
                             "message": f"The search key '{key}' is not supported, look at the "
                                        "web service documentation"})
            continue
        if key in ("lastname", "firstname", "email"):
            pattern = value.lower().replace("%", "")
            users = [u for u in users if pattern in str(getattr(u, key)).lower()]
        else:
            users = [u for u in users if str(getattr(u, key)) == value]
    if warnings:
        users = []
    return {"users": [user_details(call, u) for u in sorted(users, key=lambda u: u.id)],
            "warnings": warnings}


@wsfunction("core_course_get_courses", {
    "options": dflt(Single({"ids": opt(Multiple(Value("int")))}), {}),
})
def get_courses(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    ids = params["options"].get("ids")
    if ids:
        for cid in ids:
            require_course(state, cid)
        courses = [state.courses[c] for c in dict.fromkeys(ids)]
    else:
        courses = [state.courses[c] for c in sorted(state.courses)]
    orders = state.course_sortorders()
    catorders = state.category_sortorders()
    out = []
    for c in courses:
        full = course_details(call, c, orders)
        out.append({
            "id": c.id, "shortname": full["shortname"], "categoryid": c.category,
            "categorysortorder": catorders.get(c.category, 0), "fullname": full["fullname"],
            "displayname": full["displayname"], "idnumber": c.idnumber,
            "summary": full["summary"], "summaryformat": full["summaryformat"],
            "format": c.format, "showgrades": full["showgrades"],
            "newsitems": full["newsitems"], "startdate": c.startdate, "enddate": c.enddate,
            "maxbytes": full["maxbytes"], "showreports": full["showreports"],
            "visible": c.visible, "groupmode": full["groupmode"],
            "groupmodeforce": full["groupmodeforce"],
            "defaultgroupingid": full["defaultgroupingid"], "timecreated": c.timecreated,
            "timemodified": c.timemodified, "enablecompletion": full["enablecompletion"],
            "completionnotify": full["completionnotify"], "lang": full["lang"],
            "forcetheme": "", "courseformatoptions": full.get("courseformatoptions", []),
            "showactivitydates": full["showactivitydates"],
            "showcompletionconditions": full["showcompletionconditions"],
        })
    return out


@wsfunction("core_enrol_get_users_courses", {
    "userid": Value("int"), "returnusercount": dflt(Value("bool"), True),
})
def get_users_courses(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    if state.live_user(params["userid"]) is None:
        raise missing_user(params["userid"])
    out = []
    for c in users_courses(state, params["userid"], call.now, {}):
        item: dict[str, Any] = {"id": c.id, "shortname": call.fmt.string(c.shortname),
                                "fullname": call.fmt.string(c.fullname),
                                "displayname": call.fmt.string(c.fullname)}
        if params["returnusercount"]:
            item["enrolledusercount"] = len(state.course_users.get(c.id, ()))
        item.update({"idnumber": c.idnumber, "visible": c.visible,
                     "summary": call.fmt.text(c.summary)[0], "summaryformat": 1,
                     "format": c.format, "showgrades": True, "lang": "",
                     "enablecompletion": True, "completionhascriteria": False,
                     "completionusertracked": True, "category": c.category,
                     "progress": None, "completed": False, "startdate": c.startdate,
                     "enddate": c.enddate, "marker": 0, "lastaccess": None,
                     "isfavourite": False, "hidden": False, "overviewfiles": [],
                     "showactivitydates": True, "showcompletionconditions": True,
                     "timemodified": c.timemodified})
        out.append(item)
    return out


_ASSIGNMENT = Single({"roleid": Value("int"), "userid": Value("int"),
                      "contextid": opt(Value("int")), "contextlevel": opt(Value("alpha")),
                      "instanceid": opt(Value("int"))})


def _course_of(state: State, item: dict[str, Any]) -> int:
    if "contextid" in item:
        level, instance = state.contexts.get(item["contextid"], ("", 0))
        if not level:
            raise missing_record("context", "id = ?", [item["contextid"]])
    elif "contextlevel" in item and "instanceid" in item:
        level, instance = item["contextlevel"], item["instanceid"]
    else:
        raise invalid_parameter("Missing parameters for context")
    if level != "course" or instance not in state.courses:
        raise moodle_error("emulatorunsupported",
                           "The emulator keeps role assignments in course contexts only")
    return instance


@wsfunction("core_role_assign_roles", {"assignments": Multiple(_ASSIGNMENT)})
def assign_roles(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for item in params["assignments"]:
        courseid = _course_of(state, item)
        if item["roleid"] not in ROLES:
            raise missing_record("role", "id = ?", [item["roleid"]])
        if state.live_user(item["userid"]) is None:
            raise missing_user(item["userid"])
        state.role_assign(item["roleid"], courseid, item["userid"])


@wsfunction("core_role_unassign_roles", {"unassignments": Multiple(_ASSIGNMENT)})
def unassign_roles(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for item in params["unassignments"]:
        courseid = _course_of(state, item)
        state.role_unassign_all(courseid, item["userid"], "", 0, item["roleid"])


@wsfunction("enrol_meta_add_instances", {"instances": Multiple(Single({
    "metacourseid": Value("int"), "courseid": Value("int"),
    "creategroup": dflt(Value("bool"), False),
}))}, version="2024100700")
def meta_add_instances(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for item in params["instances"]:
        meta, child = item["metacourseid"], item["courseid"]
        require_course(state, meta)
        require_course(state, child)
        if meta == child:
            raise invalid_parameter("Meta course and linked course cannot be the same")
        existing = [e for e in state.course_instances(meta, "meta") if e.customint1 == child]
        if existing:
            out.append({"metacourseid": meta, "courseid": child, "status": False})
            continue
        enrol = state.add_enrol(Enrol(state.next_id("enrol"), "meta", meta, 0,
                                      customint1=child))
        for userid in sorted(state.course_users.get(child, ())):
            roles = {ra.roleid for ra in state.user_roles(child, userid)}
            sync.enrol_user(state, enrol, userid)
            for roleid in sorted(roles):
                state.role_assign(roleid, meta, userid, "enrol_meta", enrol.id)
        out.append({"metacourseid": meta, "courseid": child, "status": True})
    return out


@wsfunction("enrol_meta_delete_instances", {"instances": Multiple(Single({
    "metacourseid": Value("int"), "courseid": Value("int"),
}))}, version="2024100700")
def meta_delete_instances(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for item in params["instances"]:
        meta, child = item["metacourseid"], item["courseid"]
        require_course(state, meta)
        found = [e for e in state.course_instances(meta, "meta") if e.customint1 == child]
        for enrol in found:
            sync.delete_instance(state, enrol)
        out.append({"metacourseid": meta, "courseid": child, "status": bool(found)})
    return out
