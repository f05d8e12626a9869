"""local_ws_enrolcohort v3.3.3 (learningworks), as recorded on 4.5: the four functions."""

from __future__ import annotations

from typing import Any

from .. import sync
from ..errors import WSError, plugin_error
from ..model import COURSE_ASSIGNABLE_ROLES, ROLES, Enrol
from ..params import Multiple, Single, Value, dflt, opt
from ..state import SITE_COURSE_ID, State
from .base import PLUGIN_VERSION, Call, wsfunction

NOT_FOUND = "Object does not exist!"
UNAVAILABLE = "Object is not available at this context!"
NO_GROUP_NAME = "Enrol instance group none."


# The plugin's return structures (externallib.php: webservice_function_returns and
# webservice_function_enrolment_instance_returns). Moodle checks every answer against them
# after the function ran: a PARAM_TEXT name that strip_tags would change (a cohort named
# "L1 <Droit>") turns the answer into invalidresponse, although the write is committed.
def _item_keys() -> dict[str, Any]:
    return {"object": Value("text"), "id": opt(Value("int")), "name": opt(Value("text")),
            "courseid": opt(Value("int")), "cohortid": opt(Value("int")),
            "roleid": opt(Value("int")), "groupid": opt(Value("int")),
            "idnumber": opt(Value("raw")), "shortname": opt(Value("text")),
            "status": opt(Value("int")), "active": opt(Value("text")),
            "visible": opt(Value("int")), "format": opt(Value("plugin"))}


def _returns(items: dict[str, Any]) -> Single:
    return Single({"id": Value("int"), "code": Value("int"), "message": Value("text"),
                   "data": Multiple(opt(Single(items)))})


RETURNS = _returns(_item_keys())
INSTANCE_RETURNS = _returns({
    **_item_keys(),
    "course": opt(Single({"object": Value("text"), "id": Value("int"), "idnumber": Value("raw"),
                          "name": Value("text"), "shortname": Value("text"),
                          "visible": Value("int"), "format": Value("plugin")})),
    "cohort": opt(Single({"object": Value("text"), "id": Value("int"), "idnumber": Value("raw"),
                          "name": Value("text"), "visible": Value("int")})),
    "role": opt(Single({"object": Value("text"), "id": Value("int"),
                        "shortname": Value("text")})),
    "group": opt(Single({"object": Value("text"), "id": Value("int"),
                         "courseid": Value("int"), "name": Value("text")})),
})


def _not_found(kind: str, cls: str, ident: int) -> WSError:
    return plugin_error(cls, "objectnotfound", NOT_FOUND, f"Could not find {kind} with id {ident}")


def _course(state: State, courseid: int, verb: str = "add instance to") -> Any:
    course = state.courses.get(courseid)
    if course is None:
        raise _not_found("course", "course_not_found_exception", courseid)
    if courseid == SITE_COURSE_ID:
        raise plugin_error("course_is_site_exception", "invalidcourse", "Course is invalid!",
                           f"Can not {verb} the site course.")
    return course


def _role(roleid: int) -> None:
    if roleid not in ROLES:
        raise _not_found("role", "role_not_found_exception", roleid)
    if roleid not in COURSE_ASSIGNABLE_ROLES:
        raise plugin_error("role_not_assignable_at_context_exception", "unavailableatcontext",
                           UNAVAILABLE, f"Role with id {roleid} is not assignable at this context.")


def _group(state: State, groupid: int, courseid: int) -> None:
    if groupid in (0, -1):
        return
    group = state.groups.get(groupid)
    if group is None or group.courseid != courseid:
        raise _not_found("group", "group_not_found_exception", groupid)


def _status(status: int) -> None:
    if status not in (0, 1):
        raise plugin_error(
            "invalid_status_exception", "invalidstatus", "Invalid enrolment instance status!",
            "Possible values for enrolment instance status are: 0 - Enabled, 1 - Disabled. "
            f"Got {status}.",
        )


def _instance(state: State, enrolid: int) -> Enrol:
    enrol = state.enrols.get(enrolid)
    if enrol is None or enrol.enrol != "cohort":
        raise _not_found("cohort enrol instance", "cohort_enrol_instance_not_found_exception",
                         enrolid)
    return enrol


def _course_item(state: State, courseid: int) -> dict[str, Any]:
    c = state.courses[courseid]
    return {"object": "course", "id": c.id, "name": c.fullname, "idnumber": c.idnumber,
            "shortname": c.shortname, "visible": c.visible, "format": c.format}


def _cohort_item(state: State, cohortid: int) -> dict[str, Any]:
    c = state.cohorts.get(cohortid)
    if c is None:  # instance left pointing at a deleted cohort
        return {"object": "cohort", "id": cohortid, "name": "", "idnumber": "", "visible": 0}
    return {"object": "cohort", "id": c.id, "name": c.name, "idnumber": c.idnumber,
            "visible": c.visible}


def _role_item(roleid: int) -> dict[str, Any]:
    return {"object": "role", "id": roleid, "shortname": ROLES[roleid][0]}


def _group_item(state: State, groupid: int | None) -> dict[str, Any]:
    group = state.groups.get(groupid or 0)
    if group is None:
        return {"object": "group", "id": 0, "name": NO_GROUP_NAME, "courseid": -1}
    return {"object": "group", "id": group.id, "name": group.name, "courseid": group.courseid}


def _enrol_item(e: Enrol, name: str | None = None) -> dict[str, Any]:
    return {"object": "enrol", "id": e.id, "name": e.name if name is None else name,
            "courseid": e.courseid, "cohortid": e.customint1, "roleid": e.roleid,
            "groupid": e.customint2 or 0, "status": e.status}


def _nested(state: State, e: Enrol) -> dict[str, Any]:
    """An ``enrol`` item as delete/get return it, with nested objects (other key order)."""
    item = _enrol_item(e)
    course = _course_item(state, e.courseid)
    item["course"] = {k: course[k] for k in
                      ("object", "id", "idnumber", "name", "shortname", "visible", "format")}
    cohort = _cohort_item(state, e.customint1 or 0)
    item["cohort"] = {k: cohort[k] for k in ("object", "id", "idnumber", "name", "visible")}
    item["role"] = _role_item(e.roleid)
    group = _group_item(state, e.customint2)
    item["group"] = {k: group[k] for k in ("object", "id", "courseid", "name")}
    return item


@wsfunction("local_ws_enrolcohort_add_instance", {"instance": Single({
    "courseid": Value("int"),
    "cohortid": Value("int"),
    "roleid": Value("int"),
    "groupid": dflt(Value("int"), 0),
    "name": dflt(Value("text"), ""),
    "status": dflt(Value("int"), 0),
})}, version=PLUGIN_VERSION, plugin=True, returns=RETURNS)
def add_instance(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    p = params["instance"]
    course = _course(state, p["courseid"])
    cohort = state.cohorts.get(p["cohortid"])
    if cohort is None:
        raise _not_found("cohort", "cohort_not_found_exception", p["cohortid"])
    if cohort.contextid not in state.course_parent_contexts(course):
        raise plugin_error("cohort_not_available_at_context_exception", "unavailableatcontext",
                           UNAVAILABLE, f"Cohort with id {cohort.id} is not available at this "
                           "context.")
    _role(p["roleid"])
    _group(state, p["groupid"], course.id)
    _status(p["status"])
    for other in state.course_instances(course.id, "cohort"):
        if other.customint1 == cohort.id and other.roleid == p["roleid"]:
            raise plugin_error(
                "cohort_enrol_instance_already_synced_with_role_exception",
                "enrolcohortalreadysyncedwithrole",
                "A cohort enrol instance for this role already exists",
                f"A cohort enrol instance with id {other.id} is already synchronised with the "
                f"role {p['roleid']}",
            )
    # v3.3.3 bug: the requested status is replaced by the default (enabled).
    status = 0 if call.config.plugin_quirks else p["status"]
    groupid = p["groupid"]
    if groupid == -1:
        groupid = sync.create_cohort_group(state, course.id, cohort.name).id
    enrol = state.add_enrol(Enrol(state.next_id("enrol"), "cohort", course.id, status,
                                  roleid=p["roleid"], name=p["name"], customint1=cohort.id,
                                  customint2=groupid))
    sync.sync_course(state, course.id, call.config.unenrolaction)
    shown = p["name"] or (f"Cohort sync ({cohort.name} - {ROLES[p['roleid']][1]}) - "
                          "Using system generated name.")
    data_status = 0 if call.config.plugin_quirks else p["status"]
    return {"id": enrol.id, "code": 201, "message": "Cohort enrolment instance added.", "data": [
        _course_item(state, course.id),
        _cohort_item(state, cohort.id),
        _role_item(p["roleid"]),
        {"object": "data", "name": p["name"], "cohortid": cohort.id, "roleid": p["roleid"],
         "groupid": p["groupid"], "status": data_status},
        _group_item(state, groupid),
        _enrol_item(enrol, shown),
    ]}


@wsfunction("local_ws_enrolcohort_update_instance", {"instance": Single({
    "id": Value("int"),
    "name": opt(Value("text")),
    "status": opt(Value("int")),
    "roleid": opt(Value("int")),
    "groupid": opt(Value("int")),
})}, version=PLUGIN_VERSION, plugin=True, returns=RETURNS)
def update_instance(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    p = params["instance"]
    enrol = _instance(state, p["id"])
    if "roleid" in p:
        _role(p["roleid"])
    if "groupid" in p:
        _group(state, p["groupid"], enrol.courseid)
    if "status" in p:
        _status(p["status"])
    shown = {"object": "params", "id": enrol.id,
             "name": p["name"] if p.get("name") else (enrol.name or ""),
             "roleid": p.get("roleid", enrol.roleid),
             "groupid": p.get("groupid", enrol.customint2 or 0),
             "status": p.get("status", enrol.status)}
    if len(p) == 1:
        return {"id": enrol.id, "code": 200,
                "message": "No changes were made to the cohort enrolment instance.",
                "data": [shown]}
    changes: dict[str, Any] = {}
    if p.get("name"):
        changes["name"] = p["name"]
    elif "name" in p and not call.config.plugin_quirks:
        changes["name"] = ""  # the 4.0 fork resets to the generated name; v3.3.3 ignores it
    if "status" in p:
        changes["status"] = p["status"]
    if "roleid" in p and p["roleid"] != enrol.roleid:
        for userid in list(state.enrol_users.get(enrol.id, ())):
            state.role_unassign_all(enrol.courseid, userid, "enrol_cohort", enrol.id,
                                    enrol.roleid)
        changes["roleid"] = p["roleid"]
    groupid = None
    if "groupid" in p:
        groupid = p["groupid"]
        if groupid == -1:
            cohort = state.cohorts.get(enrol.customint1 or 0)
            groupid = sync.create_cohort_group(state, enrol.courseid,
                                               cohort.name if cohort else "").id
        changes["customint2"] = groupid
    state.update_enrol(enrol, **changes)
    sync.sync_course(state, enrol.courseid, call.config.unenrolaction)
    data = [shown]
    if "roleid" in p:
        data.append(_role_item(p["roleid"]))
    data += [_course_item(state, enrol.courseid), _cohort_item(state, enrol.customint1 or 0)]
    if groupid is not None:
        data.append(_group_item(state, groupid))
    data.append(_enrol_item(enrol, enrol.name or ""))
    return {"id": enrol.id, "code": 200, "message": "Cohort enrolment instance updated.",
            "data": data}


@wsfunction("local_ws_enrolcohort_delete_instance", {"instance": Single({"id": Value("int")})},
            version=PLUGIN_VERSION, plugin=True, returns=INSTANCE_RETURNS)
def delete_instance(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    enrol = _instance(state, params["instance"]["id"])
    item = _nested(state, enrol)
    sync.delete_instance(state, enrol)
    return {"id": enrol.id, "code": 200, "message": "Cohort enrolment instance deleted.",
            "data": [item]}


@wsfunction("local_ws_enrolcohort_get_instances", {"course": Single({"id": Value("int")})},
            version=PLUGIN_VERSION, plugin=True, returns=INSTANCE_RETURNS)
def get_instances(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    courseid = params["course"]["id"]
    if courseid == -1:
        orders = state.course_sortorders()
        courses = sorted((c for c in state.courses.values() if c.id != SITE_COURSE_ID),
                         key=lambda c: -orders.get(c.id, 0))
        instances = [e for c in courses for e in _physical(state, c.id)]
        message = (f"Found {len(instances)} cohort enrolment instances in {len(courses)} "
                   "courses (All courses).")
    else:
        _course(state, courseid, "get instances of")
        instances = _physical(state, courseid)
        message = (f"Found {len(instances)} cohort enrolment instances for the course with "
                   f"id {courseid}.")
    return {"id": courseid, "code": 200, "message": message,
            "data": [_nested(state, e) for e in instances]}


def _physical(state: State, courseid: int) -> list[Enrol]:
    found = [state.enrols[i] for i in state.course_enrols.get(courseid, ())]
    return sorted((e for e in found if e.enrol == "cohort"), key=lambda e: e.pos)
