"""core_cohort_*: cohorts and their members."""

from __future__ import annotations

from typing import Any

from .. import sync
from ..errors import WSError, coding_error, invalid_parameter, missing_record, missing_user
from ..model import Cohort
from ..params import Multiple, Single, Value, dflt, opt
from ..state import SYSTEM_CONTEXT, State
from .base import Call, wsfunction

_CATEGORYTYPE = Single({"type": Value("text"), "value": Value("raw")})
_CUSTOMFIELDS = opt(Multiple(Single({"shortname": Value("alphanumext"), "value": Value("raw")})))
_FORMATS = {0, 1, 2, 4}


def _resolve_context(state: State, categorytype: dict[str, str], update: bool) -> int:
    kind, value = categorytype["type"], categorytype["value"]
    if kind not in ("idnumber", "id", "system"):
        raise invalid_parameter(f"category type must be id, idnumber or system:{kind}")
    if kind == "system":
        return SYSTEM_CONTEXT
    catid = None
    if kind == "id":
        if value.isdigit() and int(value) in state.categories:
            catid = int(value)
    else:
        catid = state.category_by_idnumber.get(value)
    if catid is None:
        if update:
            raise invalid_parameter(f"category not exists: category={value}")
        raise invalid_parameter(f"category not exists: category {kind} = {value}")
    return state.categories[catid].contextid


def _idnumber_taken(state: State, idnumber: str) -> bool:
    return bool(state.cohorts_by_idnumber.get(idnumber))


def cohort_out(call: Call, c: Cohort, create: bool = False) -> dict[str, Any]:
    desc, descfmt = call.fmt.text(c.description, c.descriptionformat)
    out = {"id": c.id, "name": c.name, "idnumber": c.idnumber, "description": desc,
           "descriptionformat": descfmt, "visible": bool(c.visible), "theme": c.theme}
    if not create:
        out["customfields"] = []
    return out


@wsfunction("core_cohort_create_cohorts", {"cohorts": Multiple(Single({
    "categorytype": _CATEGORYTYPE,
    "name": Value("raw"),
    "idnumber": Value("raw"),
    "description": opt(Value("raw")),
    "descriptionformat": dflt(Value("int"), 1),
    "visible": opt(Value("bool")),
    "theme": opt(Value("theme")),
    "customfields": _CUSTOMFIELDS,
}))})
def create_cohorts(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for item in params["cohorts"]:
        contextid = _resolve_context(state, item["categorytype"], update=False)
        if _idnumber_taken(state, item["idnumber"]):
            raise invalid_parameter(f"record already exists: idnumber={item['idnumber']}")
        if item["descriptionformat"] not in _FORMATS:
            raise WSError("moodle_exception", "formatnotsupported",
                          "Format not supported")
        cohort = Cohort(state.next_id("cohort"), contextid, item["name"], item["idnumber"],
                        item.get("description", ""), item["descriptionformat"],
                        int(item.get("visible", True)), timecreated=call.now,
                        timemodified=call.now)
        state.add_cohort(cohort)
        out.append(cohort_out(call, cohort, create=True))
    return out


@wsfunction("core_cohort_update_cohorts", {"cohorts": Multiple(Single({
    "id": Value("int"),
    "categorytype": _CATEGORYTYPE,
    "name": Value("raw"),
    "idnumber": Value("raw"),
    "description": opt(Value("raw")),
    "descriptionformat": dflt(Value("int"), 1),
    "visible": opt(Value("bool")),
    "theme": opt(Value("theme")),
    "customfields": _CUSTOMFIELDS,
}))})
def update_cohorts(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for item in params["cohorts"]:
        if item["name"].strip() == "":
            raise invalid_parameter("Invalid cohort name")
        cohort = require_cohort(state, item["id"])
        contextid = _resolve_context(state, item["categorytype"], update=True)
        changes: dict[str, Any] = {"contextid": contextid, "name": item["name"],
                                   "idnumber": item["idnumber"],
                                   "descriptionformat": item["descriptionformat"],
                                   "timemodified": call.now}
        if "description" in item:
            changes["description"] = item["description"]
        if "visible" in item:
            changes["visible"] = int(item["visible"])
        state.update_cohort(cohort, **changes)  # no idnumber uniqueness check, as in Moodle


def require_cohort(state: State, cohortid: int) -> Cohort:
    cohort = state.cohorts.get(cohortid)
    if cohort is None:
        raise missing_record("cohort", "id = ?", [cohortid])
    return cohort


@wsfunction("core_cohort_delete_cohorts", {"cohortids": Multiple(Value("int"))})
def delete_cohorts(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for cohortid in params["cohortids"]:
        cohort = require_cohort(state, cohortid)
        state.remove_cohort(cohort)  # members go without per-member events
        sync.cohort_deleted(state, cohortid, call.config.unenrolaction)


@wsfunction("core_cohort_get_cohorts", {
    "cohortids": dflt(Multiple(Value("int")), []),
})
def get_cohorts(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    if params["cohortids"]:
        found = {i: state.cohorts[i] for i in params["cohortids"] if i in state.cohorts}
        cohorts = list(found.values())
    else:
        cohorts = list(state.cohorts.values())
    cohorts.sort(key=lambda c: c.pos)  # PostgreSQL physical order
    return [cohort_out(call, c) for c in cohorts]


_LEVELS = {"system": 10, "10": 10, "coursecat": 40, "40": 40, "course": 50, "50": 50,
           "user": 30, "30": 30}


def _search_context(state: State, ctx: dict[str, Any]) -> int:
    if ctx["contextid"]:
        if ctx["contextid"] not in state.contexts:
            raise missing_record("context", "id = ?", [ctx["contextid"]])
        return ctx["contextid"]
    level = _LEVELS.get(str(ctx["contextlevel"]))
    if level is None:
        raise invalid_parameter("Missing parameters for context")
    if level == 10:
        return SYSTEM_CONTEXT
    tables = {40: ("course_categories", state.categories), 50: ("course", state.courses),
              30: ("user", state.users)}
    table_name, table = tables[level]
    row = table.get(ctx["instanceid"])
    if row is None:  # context_xxx::instance(MUST_EXIST) reads the instance's own table
        raise missing_record(table_name, "id = ?", [ctx["instanceid"]])
    return row.contextid


def _matches(c: Cohort, query: str) -> bool:
    if not query:
        return True
    q = query.lower()
    return q in c.name.lower() or q in c.idnumber.lower() or q in c.description.lower()


def _by_name(cohorts: list[Cohort]) -> list[Cohort]:
    return sorted(cohorts, key=lambda c: (c.name, c.idnumber, c.pos))


def _window(items: list[Cohort], offset: int, limit: int) -> list[Cohort]:
    return items[offset:offset + limit] if limit > 0 else items[offset:]


def _parent_contexts(state: State, contextid: int) -> list[int]:
    level, instance = state.contexts[contextid]
    if level == "coursecat":
        return [SYSTEM_CONTEXT] + [state.categories[c].contextid
                                   for c in state.category_path(instance)[:-1]]
    if level == "course":
        return state.course_parent_contexts(state.courses[instance])
    return [SYSTEM_CONTEXT] if level != "system" else []


@wsfunction("core_cohort_search_cohorts", {
    "query": Value("raw"),
    "context": Single({"contextid": dflt(Value("int"), 0),
                       "contextlevel": dflt(Value("alphanum"), ""),
                       "instanceid": dflt(Value("int"), 0)}),
    "includes": dflt(Value("alpha"), "parents"),
    "limitfrom": dflt(Value("int"), 0),
    "limitnum": dflt(Value("int"), 25),
})
def search_cohorts(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    includes, query = params["includes"], params["query"]
    limitfrom, limitnum = params["limitfrom"], params["limitnum"]
    contextid = _search_context(state, params["context"])
    if includes not in ("self", "parents", "all"):
        raise coding_error("Invalid parameter value for 'includes'.")
    # cohort_get_cohorts()/cohort_get_all_cohorts() take limitfrom as a page number.
    page_offset = limitfrom * limitnum
    if includes == "all":
        pool = [c for c in state.cohorts.values() if _matches(c, query)]
        return {"cohorts": [cohort_out(call, c)
                            for c in _window(_by_name(pool), page_offset, limitnum)]}
    own = _by_name([c for c in state.cohorts.values()
                    if c.contextid == contextid and _matches(c, query)])
    out = [cohort_out(call, c) for c in _window(own, page_offset, limitnum)]
    if includes == "parents" and contextid != SYSTEM_CONTEXT:
        parents = set(_parent_contexts(state, contextid))
        pool = _by_name([c for c in state.cohorts.values()
                         if c.contextid in parents and _matches(c, query)])
        for c in _window(pool, limitfrom, limitnum):  # offset semantics here
            out.append({"id": c.id, "name": c.name, "idnumber": c.idnumber, "description": "",
                        "descriptionformat": 2, "visible": bool(c.visible),
                        "customfields": []})
    return {"cohorts": out}


_TYPE = Single({"type": Value("alphanumext"), "value": Value("raw")})


def _find_cohort(state: State, kind: str, value: str) -> int | None:
    if kind == "id":
        return int(value) if value.isdigit() and int(value) in state.cohorts else None
    ids = state.cohorts_by_idnumber.get(value)
    return min(ids, key=lambda i: state.cohorts[i].pos) if ids else None


def _find_user(state: State, kind: str, value: str) -> int | None:
    if kind == "id":
        uid = int(value) if value.isdigit() else None
    else:
        uid = state.user_by_username.get(value)
    return uid if uid is not None and state.live_user(uid) else None


@wsfunction("core_cohort_add_cohort_members", {
    "members": Multiple(Single({"cohorttype": _TYPE, "usertype": _TYPE})),
})
def add_cohort_members(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    warnings = []
    for member in params["members"]:
        ctype, cvalue = member["cohorttype"]["type"], member["cohorttype"]["value"]
        utype, uvalue = member["usertype"]["type"], member["usertype"]["value"]
        if ctype not in ("id", "idnumber"):
            warnings.append(("1", f"invalid parameter: cohortype={ctype}"))
            continue
        if utype not in ("id", "username"):
            warnings.append(("1", f"invalid parameter: usertype={utype}"))
            continue
        cohortid = _find_cohort(state, ctype, cvalue)
        if cohortid is None:
            warnings.append(("2", f"cohort {ctype}={cvalue} not exists"))
            continue
        userid = _find_user(state, utype, uvalue)
        if userid is None:
            warnings.append(("2", f"user {utype}={uvalue} not exists"))
            continue
        if userid in state.cohort_members[cohortid]:
            warnings.append(
                ("3", f"record already exists: cohort({ctype}={cvalue} {utype}={uvalue})")
            )
            continue
        state.add_cohort_member(cohortid, userid)
        sync.member_added(state, cohortid, userid)
    return {"warnings": [{"warningcode": code, "message": msg} for code, msg in warnings]}


@wsfunction("core_cohort_delete_cohort_members", {
    "members": Multiple(Single({"cohortid": Value("int"), "userid": Value("int")})),
})
def delete_cohort_members(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for member in params["members"]:
        cohortid, userid = member["cohortid"], member["userid"]
        require_cohort(state, cohortid)
        if state.live_user(userid) is None:
            raise missing_user(userid)
        if userid in state.cohort_members[cohortid]:
            state.remove_cohort_member(cohortid, userid)
        # cohort_member_removed fires even for a non-member.
        sync.member_removed(state, cohortid, userid, call.config.unenrolaction)


@wsfunction("core_cohort_get_cohort_members", {"cohortids": Multiple(Value("int"))})
def get_cohort_members(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for cohortid in params["cohortids"]:
        require_cohort(state, cohortid)
        members = state.cohort_members[cohortid]
        users = state.users
        # ORDER BY lastname, firstname; PostgreSQL leaves ties in physical-order-dependent
        # order, the emulator breaks them by id.
        ordered = sorted(members, key=lambda u: (users[u].lastname, users[u].firstname, u))
        out.append({"cohortid": cohortid, "userids": ordered})
    return out
