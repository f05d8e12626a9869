"""core_enrol_* reads and enrol_manual_* writes."""

from __future__ import annotations

from typing import Any

from .. import sync
from ..errors import WSError, invalid_parameter, missing_record, moodle_error
from ..model import COURSE_ASSIGNABLE_ROLES, ROLES, Course
from ..params import Multiple, Single, Value, dflt, opt
from ..state import State
from .base import Call, wsfunction

_DEFAULT_FIELDS = ["id", "username", "firstname", "lastname", "fullname", "email",
                   "department", "idnumber", "firstaccess", "lastaccess", "lastcourseaccess",
                   "profileimageurlsmall", "profileimageurl", "groups", "roles",
                   "enrolledcourses"]


def require_course(state: State, courseid: int) -> Course:
    course = state.courses.get(courseid)
    if course is None:
        raise missing_record("course", "id = ?", [courseid])
    return course


def _active_in_course(state: State, userid: int, courseid: int, now: int) -> bool:
    return any(
        sync.is_active(state, state.user_enrolments[(enrolid, userid)], now)
        for enrolid in state.user_course_enrols.get((userid, courseid), ())
    )


@wsfunction("core_enrol_get_enrolled_users", {
    "courseid": Value("int"),
    "options": dflt(Multiple(Single({"name": Value("alphanumext"), "value": Value("raw")})), []),
})
def get_enrolled_users(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    course = require_course(state, params["courseid"])
    opts = {o["name"]: o["value"] for o in params["options"]}
    onlyactive = opts.get("onlyactive", "0") not in ("", "0")
    onlysuspended = opts.get("onlysuspended", "0") not in ("", "0")
    if onlyactive and onlysuspended:
        raise WSError("coding_exception", "codingerror", "Coding error detected, it must be "
                      "fixed by a programmer: Both onlyactive and onlysuspended are set, this "
                      "is probably not what you want!")
    sortby = opts.get("sortby", "id")
    if sortby not in ("id", "firstname", "lastname", "siteorder"):
        raise invalid_parameter("Invalid sort field")
    direction = opts.get("sortdirection", "ASC").upper()
    if direction not in ("ASC", "DESC"):
        raise invalid_parameter("Invalid sort direction")
    fields = ([f.strip() for f in opts["userfields"].split(",")]
              if "userfields" in opts else _DEFAULT_FIELDS)
    now = call.now
    users = [state.users[u] for u in state.course_users.get(course.id, ())
             if not state.users[u].deleted]
    if onlyactive:
        users = [u for u in users if _active_in_course(state, u.id, course.id, now)]
    elif onlysuspended:
        users = [u for u in users if not _active_in_course(state, u.id, course.id, now)]
    if "groupid" in opts and opts["groupid"] not in ("", "0"):
        members = state.group_members.get(int(opts["groupid"]), {})
        users = [u for u in users if u.id in members]
    keys = {"id": lambda u: (u.id,), "firstname": lambda u: (u.firstname, u.id),
            "lastname": lambda u: (u.lastname, u.id),
            "siteorder": lambda u: (u.lastname, u.firstname, u.id)}[sortby]
    users.sort(key=keys, reverse=direction == "DESC")
    start = int(opts.get("limitfrom", "0") or 0)
    limit = int(opts.get("limitnumber", "0") or 0)
    users = users[start:start + limit] if limit else users[start:]
    orders: dict[int, int] = {}
    return [_enrolled_user(call, course, u, fields, orders) for u in users]


def _enrolled_user(call: Call, course: Course, u: Any, fields: list[str],
                   orders: dict[int, int]) -> dict[str, Any]:
    state = call.state
    want = set(fields)
    out: dict[str, Any] = {"id": u.id}
    for name in ("username", "firstname", "lastname"):
        if name in want:
            out[name] = getattr(u, name)
    out["fullname"] = f"{u.firstname} {u.lastname}"
    for name in ("email", "department", "idnumber"):
        if name in want:
            out[name] = getattr(u, name)
    for name in ("firstaccess", "lastaccess", "lastcourseaccess"):
        if name in want:
            out[name] = 0
    if "profileimageurlsmall" in want:
        out["profileimageurlsmall"] = call.picture("f2")
    if "profileimageurl" in want:
        out["profileimageurl"] = call.picture("f1")
    if "groups" in want:
        groups = [state.groups[g] for g in sorted(state.course_groups.get(course.id, ()))
                  if u.id in state.group_members[g]]
        if groups:
            out["groups"] = [{"id": g.id, "name": call.fmt.string(g.name),
                              "description": call.fmt.text(g.description)[0],
                              "descriptionformat": g.descriptionformat} for g in groups]
    if "roles" in want:
        out["roles"] = [{"roleid": ra.roleid, "name": "", "shortname": ROLES[ra.roleid][0],
                         "sortorder": 0} for ra in state.user_roles(course.id, u.id)]
    if "enrolledcourses" in want:
        courses = users_courses(state, u.id, call.now, orders)
        if courses:
            out["enrolledcourses"] = [{"id": c.id, "fullname": call.fmt.string(c.fullname),
                                       "shortname": call.fmt.string(c.shortname)}
                                      for c in courses]
    return out


def users_courses(state: State, userid: int, now: int,
                  orders: dict[int, int]) -> list[Course]:
    """enrol_get_users_courses(onlyactive): visible DESC, sortorder ASC. ``orders`` is a
    per-call cache of course sortorders, filled on first use."""
    found = {state.enrols[enrolid].courseid for enrolid in state.user_ues.get(userid, ())
             if sync.is_active(state, state.user_enrolments[(enrolid, userid)], now)}
    courses = [state.courses[c] for c in found]
    if len(courses) > 1 and not orders:
        orders.update(state.course_sortorders())
    return sorted(courses, key=lambda c: (-c.visible, orders.get(c.id, 0)))


@wsfunction("core_enrol_get_course_enrolment_methods", {"courseid": Value("int")})
def get_course_enrolment_methods(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    course = require_course(state, params["courseid"])
    names = {"self": "Self enrolment (Student)", "guest": "Guest access"}
    return [{"id": e.id, "courseid": course.id, "type": e.enrol, "name": names[e.enrol],
             "status": "1", "wsfunction": f"enrol_{e.enrol}_get_instance_info"}
            for e in state.course_instances(course.id) if e.status == 0 and e.enrol in names]


@wsfunction("enrol_manual_enrol_users", {"enrolments": Multiple(Single({
    "roleid": Value("int"),
    "userid": Value("int"),
    "courseid": Value("int"),
    "timestart": opt(Value("int")),
    "timeend": opt(Value("int")),
    "suspend": opt(Value("int")),
}))}, version="2024100700")
def manual_enrol_users(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for item in params["enrolments"]:
        courseid, userid, roleid = item["courseid"], item["userid"], item["roleid"]
        if courseid not in state.courses:
            raise invalid_parameter("Context does not exist")
        if roleid not in COURSE_ASSIGNABLE_ROLES:
            raise moodle_error(
                "wsusercannotassign",
                f"You don't have the permission to assign this role ({roleid}) to this user "
                f"({userid}) in this course ({courseid}).",
            )
        manual = [e for e in state.course_instances(courseid, "manual") if e.status == 0]
        if not manual:
            raise moodle_error("wsnoinstance", "Manual enrolment plugin instance doesn't exist "
                               f"or is disabled for the course (id = {courseid})")
        user = state.live_user(userid)
        if user is None:
            raise missing_record("user", "id = ?", [userid])  # core_user::get_user(MUST_EXIST)
        # The after_user_enrolled hook runs before the role is assigned, on every call (new
        # or existing enrolment): enrol_manual sends the course welcome message from the
        # course contact (coursecontact = editingteacher), if there is one.
        if (call.config.mail_fails and not user.suspended
                and _has_contact(state, courseid)):
            call.after_commit = moodle_error(MESSAGE_NOT_SENT, f"error/{MESSAGE_NOT_SENT}")
        sync.enrol_user(state, manual[0], userid, roleid, item.get("timestart", 0),
                        item.get("timeend", 0), 1 if item.get("suspend") else 0)


# core\message\manager::send_message_to_processors: messages are buffered during the
# transaction and sent after the commit; a failed send throws this moodle_exception.
MESSAGE_NOT_SENT = "Message was not sent."
COURSE_CONTACT_ROLE = 3  # $CFG->coursecontact default: editingteacher


def _has_contact(state: State, courseid: int) -> bool:
    return any(ra.roleid == COURSE_CONTACT_ROLE
               for userid in state.course_users.get(courseid, ())
               for ra in state.user_roles(courseid, userid))


@wsfunction("enrol_manual_unenrol_users", {"enrolments": Multiple(Single({
    "userid": Value("int"),
    "courseid": Value("int"),
    "roleid": opt(Value("int")),  # accepted and ignored up to 5.1
}))}, version="2024100700")
def manual_unenrol_users(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for item in params["enrolments"]:
        courseid, userid = item["courseid"], item["userid"]
        if courseid not in state.courses:  # context_course::instance(MUST_EXIST)
            raise missing_record("course", "id = ?", [courseid], "id,category")
        manual = state.course_instances(courseid, "manual")
        if not manual:
            raise moodle_error("wsnoinstance", "Manual enrolment plugin instance doesn't exist "
                               f"or is disabled for the course (id = {courseid})")
        if state.live_user(userid) is None:
            raise missing_record("user", "id = ?", [userid])
        sync.unenrol_user(state, manual[0], userid)
