"""core_course_*: categories and courses."""

from __future__ import annotations

from typing import Any

from ..errors import PhpError, WSError, invalid_parameter, moodle_error
from ..model import Category, Course
from ..params import Multiple, Single, Value, clean_param, dflt, opt
from ..state import SITE_COURSE_ID
from .base import Call, wsfunction

_FILTERS = ["displayh5p", "activitynames", "mathjaxloader", "emoticon", "urltolink",
            "mediaplugin"]


@wsfunction("core_course_create_categories", {"categories": Multiple(Single({
    "name": Value("text"),
    "parent": dflt(Value("int"), 0),
    "idnumber": opt(Value("raw")),
    "description": opt(Value("raw")),
    "descriptionformat": dflt(Value("int"), 1),
    "theme": opt(Value("theme")),
}))})
def create_categories(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for item in params["categories"]:
        parent = item["parent"]
        if parent and parent not in state.categories:
            raise moodle_error("unknowcategory", "Category not known!")
        idnumber = item.get("idnumber", "")
        if idnumber and idnumber in state.category_by_idnumber:
            raise moodle_error("categoryidnumbertaken",
                               "ID number is already used for another category")
        cat = Category(state.next_id("course_categories"), item["name"], idnumber, parent,
                       item.get("description", ""), item["descriptionformat"],
                       theme=item.get("theme", ""), timemodified=call.now)
        state.add_category(cat)
        out.append({"id": cat.id, "name": call.fmt.string(cat.name)})
    return out


@wsfunction("core_course_get_categories", {
    "criteria": dflt(Multiple(Single({"key": Value("alpha"), "value": Value("raw")})), []),
    "addsubcategories": dflt(Value("bool"), True),
})
def get_categories(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    cats = list(state.categories.values())
    for crit in params["criteria"]:
        key, value = crit["key"], crit["value"]
        if key == "ids":
            wanted = {int(v) for v in value.split(",") if v.strip().isdigit()}
            cats = [c for c in cats if c.id in wanted]
        elif key in ("id", "parent", "visible"):
            cats = [c for c in cats if str(getattr(c, key)) == value]
        elif key in ("name", "idnumber", "theme"):
            cats = [c for c in cats if getattr(c, key) == value]
        else:
            raise invalid_parameter(f"The key {key} is not supported")
    if params["addsubcategories"] and params["criteria"]:
        found = {c.id for c in cats}
        for c in state.categories.values():
            if c.id not in found and any(p in found for p in state.category_path(c.id)):
                cats.append(c)
    orders = state.category_sortorders()
    out = []
    for c in sorted(cats, key=lambda c: orders.get(c.id, 0)):
        path = state.category_path(c.id)
        desc, descfmt = call.fmt.text(c.description, c.descriptionformat)
        record = {
            "id": c.id, "name": call.fmt.string(c.name), "idnumber": c.idnumber,
            "description": desc, "descriptionformat": descfmt, "parent": c.parent,
            "sortorder": orders.get(c.id, 0),
            "coursecount": sum(1 for x in state.courses.values() if x.category == c.id),
            "visible": c.visible, "visibleold": c.visible, "timemodified": c.timemodified,
            "depth": len(path), "path": "".join(f"/{p}" for p in path), "theme": c.theme,
        }
        if not call.config.category_manager:
            # course/externallib.php: "Some fields only returned for admin."
            for key in _MANAGER_ONLY:
                del record[key]
        out.append(record)
    return out


# The keys core_course_get_categories gives only with moodle/category:manage.
_MANAGER_ONLY = ("idnumber", "visible", "visibleold", "timemodified", "theme")


_COURSE_KEYS = {
    "fullname": Value("text"),
    "shortname": Value("text"),
    "categoryid": Value("int"),
    "idnumber": opt(Value("raw")),
    "summary": opt(Value("raw")),
    "summaryformat": dflt(Value("int"), 1),
    "format": opt(Value("alphanumext")),
    "showgrades": opt(Value("int")),
    "newsitems": opt(Value("int")),
    "startdate": opt(Value("int")),
    "enddate": opt(Value("int")),
    "numsections": opt(Value("int")),
    "maxbytes": opt(Value("int")),
    "showreports": opt(Value("int")),
    "visible": opt(Value("int")),
    "hiddensections": opt(Value("int")),
    "groupmode": opt(Value("int")),
    "groupmodeforce": opt(Value("int")),
    "defaultgroupingid": opt(Value("int")),
    "enablecompletion": opt(Value("int")),
    "completionnotify": opt(Value("int")),
    "lang": opt(Value("lang")),
    "forcetheme": opt(Value("theme")),
    "courseformatoptions": opt(Multiple(Single({"name": Value("alphanumext"),
                                                "value": Value("raw")}))),
    "customfields": opt(Multiple(Single({"shortname": Value("alphanumext"),
                                         "value": Value("raw")}))),
}
_OPTION_KEYS = ("showgrades", "newsitems", "maxbytes", "showreports", "groupmode",
                "groupmodeforce", "defaultgroupingid", "enablecompletion", "completionnotify",
                "lang")


def category_context_error(catid: int) -> WSError:
    return moodle_error(
        "errorcatcontextnotvalid",
        f"You cannot execute functions in the category context (category id:{catid}). "
        "The context error message was: Invalid parameter value detected",
    )


@wsfunction("core_course_create_courses", {"courses": Multiple(Single(_COURSE_KEYS))})
def create_courses(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for item in params["courses"]:
        if item["categoryid"] not in state.categories:
            raise category_context_error(item["categoryid"])
        if item["shortname"] in state.course_by_shortname:
            raise moodle_error("shortnametaken", "Short name is already used for another "
                               f"course ({item['shortname']})")
        idnumber = item.get("idnumber", "")
        if idnumber and idnumber in state.course_by_idnumber:
            raise moodle_error("courseidnumbertaken",
                               f"ID number is already used for another course ({idnumber})")
        course = Course(state.next_id("course"), item["categoryid"], item["fullname"],
                        item["shortname"], idnumber, item.get("summary", ""),
                        item["summaryformat"], item.get("format", "topics"),
                        item.get("startdate", 0), item.get("enddate", 0),
                        item.get("visible", 1), timecreated=call.now, timemodified=call.now,
                        cacherev=call.now)
        course.options = {k: item[k] for k in _OPTION_KEYS if k in item}
        if "hiddensections" in item:
            course.options["hiddensections"] = item["hiddensections"]
        state.add_course(course)
        out.append({"id": course.id, "shortname": course.shortname})
    return out


@wsfunction("core_course_get_courses_by_field", {
    "field": dflt(Value("alpha"), ""), "value": dflt(Value("raw"), ""),
})
def get_courses_by_field(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    field, value = params["field"], params["value"]
    if field == "":
        courses = [state.courses[i] for i in sorted(state.courses)]
    elif field in ("id", "category"):
        number = clean_param(value, "int")
        attr = "id" if field == "id" else "category"
        courses = sorted((c for c in state.courses.values() if getattr(c, attr) == number),
                         key=lambda c: c.id)
    elif field == "ids":
        ids = [int(v) for v in clean_param(value, "sequence").split(",") if v]
        courses = []
        for cid in dict.fromkeys(ids):
            if cid not in state.courses:
                # Real 4.5 bug: the loop assigns a property on the missing course record.
                raise PhpError('Attempt to assign property "contextvalidated" on null')
            courses.append(state.courses[cid])
    elif field == "shortname":
        cid = state.course_by_shortname.get(clean_param(value, "text"))
        courses = [state.courses[cid]] if cid else []
    elif field == "idnumber":
        cid = state.course_by_idnumber.get(value)
        courses = [state.courses[cid]] if cid else []
    elif field == "sectionid":
        courses = []
    else:
        raise invalid_parameter("Invalid field name")
    orders = state.course_sortorders()
    return {"courses": [course_details(call, c, orders) for c in courses], "warnings": []}


def course_details(call: Call, c: Course, orders: dict[int, int]) -> dict[str, Any]:
    state = call.state
    fmt = call.fmt
    site = c.id == SITE_COURSE_ID
    opts = c.options
    cat = state.categories.get(c.category)
    summary, summaryformat = fmt.text(c.summary, c.summaryformat)
    methods = [e.enrol for e in state.course_instances(c.id) if e.status == 0]
    out: dict[str, Any] = {
        "id": c.id,
        "fullname": fmt.string(c.fullname),
        "displayname": fmt.string(c.fullname),
        "shortname": fmt.string(c.shortname),
        "courseimage": f"{call.siteurl}/pluginfile.php/{c.contextid}/course/generated/course.svg",
        "categoryid": c.category,
        "categoryname": fmt.string(cat.name) if cat else "",
        "sortorder": orders.get(c.id, 0),
        "summary": summary,
        "summaryformat": summaryformat,
        "summaryfiles": [],
        "overviewfiles": [],
        "showactivitydates": opts.get("showactivitydates", True),
        "showcompletionconditions": opts.get("showcompletionconditions", True),
        "contacts": [],
        "enrollmentmethods": methods,
        "idnumber": c.idnumber,
        "format": c.format,
        "showgrades": opts.get("showgrades", 1),
        "newsitems": opts.get("newsitems", 5),
        "startdate": c.startdate,
        "enddate": c.enddate,
        "maxbytes": opts.get("maxbytes", 0),
        "showreports": opts.get("showreports", 0),
        "visible": c.visible,
        "groupmode": opts.get("groupmode", 0),
        "groupmodeforce": opts.get("groupmodeforce", 0),
        "defaultgroupingid": opts.get("defaultgroupingid", 0),
        "enablecompletion": opts.get("enablecompletion", 1),
        "completionnotify": opts.get("completionnotify", 0),
        "lang": opts.get("lang", ""),
        "theme": "",
        "marker": 0,
        "legacyfiles": 0,
        "calendartype": "",
        "timecreated": c.timecreated,
        "timemodified": c.timemodified,
        "requested": 0,
        "cacherev": c.cacherev,
        "filters": [{"filter": f, "localstate": 0, "inheritedstate": 1} for f in _FILTERS],
    }
    if not site:
        out["courseformatoptions"] = [
            {"name": "hiddensections", "value": opts.get("hiddensections", 1)},
            {"name": "coursedisplay", "value": 0},
            {"name": "indentation", "value": "1"},
        ]
    return out
