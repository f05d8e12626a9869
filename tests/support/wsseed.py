"""Seed a Moodle site — the emulator or the real 4.5 site — through its web services only.

One code path for both backends, so that a scenario starts from the same Moodle state on
each. The spec is the shape of ``MoodleEmulator.seed``::

    {"categories": [{"name", "idnumber", "parent"?}],          # reused when the idnumber exists
     "courses": [{"shortname", "fullname", "category_idnumber"?, "startdate"?, "enddate"?}],
     "users": [{"username", "firstname", "lastname", "email", "auth"?, "idnumber"?}],
     "cohorts": [{"idnumber", "name", "description"?, "category_idnumber"?, "members": [...]}],
     "cohort_syncs": [{"course", "cohort", "roleid"?, "group"?, "name"?, "status"?}],
     "enrolments": [{"course", "username", "roleid"?, "timeend"?, "suspend"?}]}

Users that already exist (by username) are reused, as on a long-lived real site. A user
without ``auth`` gets ``ldap`` (no password needed, as the directory's students); the real
site refuses ``manual`` without a password.

Also :func:`wipe` (delete every course and cohort: a clean platform on a shared site, in a
couple of seconds where ``reset.sh`` takes four) and :func:`read_state` (what the
differential test compares).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.moodle.client import MoodleClient
from reconciler.moodle.types import (
    ManualEnrolment,
    NewCategory,
    NewCohort,
    NewCourse,
    NewGroup,
    NewUser,
)

SITE_COURSE = 1


def seed(client: MoodleClient, spec: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Create what ``spec`` lists; returns the ids by kind and key (idnumber, shortname,
    username). Raises MoodleError on the first refusal (a broken fixture must be loud)."""
    ids: dict[str, dict[str, int]] = {"category": {}, "course": {}, "user": {}, "cohort": {}}
    for item in spec.get("categories", []):
        found = client.get_categories({"idnumber": item["idnumber"]})
        if found:
            ids["category"][item["idnumber"]] = int(found[0]["id"])
            continue
        parent = item.get("parent") or 0
        if isinstance(parent, str) and not parent.isdigit():
            parent = ids["category"][parent]
        created = client.create_categories(
            [NewCategory(item["name"], int(parent), item["idnumber"])])[0]
        ids["category"][item["idnumber"]] = int(created["id"])

    courses = [NewCourse(c["fullname"], c["shortname"],
                         ids["category"].get(c.get("category_idnumber", ""), 1),
                         c.get("idnumber"), startdate=c.get("startdate"),
                         enddate=c.get("enddate"))
               for c in spec.get("courses", [])]
    for row in client.create_courses(courses) if courses else []:
        ids["course"][row["shortname"]] = int(row["id"])

    users = spec.get("users", [])
    names = [u["username"] for u in users]
    for row in client.get_users_by_field("username", names) if names else []:
        ids["user"][row["username"]] = int(row["id"])
    missing = [NewUser(u["username"], u["firstname"], u["lastname"], u["email"],
                       auth=u.get("auth", "ldap"), idnumber=u.get("idnumber"))
               for u in users if u["username"] not in ids["user"]]
    for row in client.create_users(missing) if missing else []:
        ids["user"][row["username"]] = int(row["id"])

    cohorts = spec.get("cohorts", [])
    new = [NewCohort(c["name"], c["idnumber"],
                     "idnumber" if c.get("category_idnumber") else "system",
                     c.get("category_idnumber", ""), description=c.get("description"),
                     descriptionformat=1 if c.get("description") else None,
                     visible=c.get("visible"))
           for c in cohorts]
    for row in client.create_cohorts(new) if new else []:
        ids["cohort"][row["idnumber"]] = int(row["id"])
    members = [(ids["cohort"][c["idnumber"]], ids["user"][u])
               for c in cohorts for u in c.get("members", [])]
    if members:
        client.add_cohort_members(members)

    groups: dict[tuple[int, str], int] = {}
    for item in spec.get("cohort_syncs", []):
        course = ids["course"][item["course"]]
        groupid = 0
        if item.get("group"):
            key = (course, item["group"])
            if key not in groups:
                groups[key] = int(client.create_groups([NewGroup(course, item["group"])])[0]["id"])
            groupid = groups[key]
        client.add_cohort_sync(course, ids["cohort"][item["cohort"]],
                               int(item.get("roleid", 5)), groupid=groupid,
                               name=item.get("name", ""), status=int(item.get("status", 0)))

    enrolments = [ManualEnrolment(int(e.get("roleid", 5)), ids["user"][e["username"]],
                                  ids["course"][e["course"]], timeend=e.get("timeend"),
                                  suspend=e.get("suspend"))
                  for e in spec.get("enrolments", [])]
    if enrolments:
        client.manual_enrol(enrolments)
    return ids


def wipe(client: MoodleClient) -> None:
    """Delete every course but the site course (their instances, enrolments and groups go
    with them) and every cohort. Users and categories stay (the web services cannot delete
    categories; users are reused by :func:`seed`)."""
    courses = [int(c["id"]) for c in client.get_courses_by_field() if int(c["id"]) != SITE_COURSE]
    if courses:
        client.call("core_course_delete_courses", {"courseids": courses})
    cohorts = [int(c["id"]) for c in client.get_cohorts()]
    if cohorts:
        client.delete_cohorts(cohorts)


def read_state(client: MoodleClient) -> dict[str, Any]:
    """The Moodle state a scenario leaves, read back through the web services and keyed by
    what people write (idnumbers, shortnames, usernames, role shortnames), never by ids,
    which differ between sites. Lists are sorted: order is not part of the comparison.

    ``{"cohorts": {idnumber: {name, description, visible, members: [username]}},
       "instances": [{course, cohort, role, group, status, name}],
       "courses": {shortname: {"enrolled": {username: {roles, active}},
                               "groups": {name: [username]}}}}``
    """
    roles = {1: "manager", 2: "coursecreator", 3: "editingteacher", 4: "teacher",
             5: "student", 6: "guest", 7: "user", 8: "frontpage"}
    cohorts = client.get_cohorts()
    members = client.get_cohort_members([int(c["id"]) for c in cohorts]) if cohorts else {}
    user_ids = sorted({u for ids in members.values() for u in ids})
    usernames = {int(u["id"]): u["username"]
                 for u in (client.get_users_by_field("id", user_ids) if user_ids else [])}
    state: dict[str, Any] = {"cohorts": {}, "instances": [], "courses": {}}
    for c in cohorts:
        state["cohorts"][c["idnumber"]] = {
            "name": c["name"],
            "description": c.get("description") or "",
            "visible": bool(c.get("visible")),
            "members": sorted(usernames.get(u, f"#{u}") for u in members.get(int(c["id"]), [])),
        }
    for inst in client.cohort_sync_instances(-1):
        state["instances"].append({
            "course": inst.course_shortname, "cohort": inst.cohort_idnumber,
            "role": roles.get(inst.roleid, str(inst.roleid)), "group": inst.group_name or "",
            "status": inst.status, "name": inst.name or ""})
    state["instances"].sort(key=lambda i: tuple(str(v) for v in i.values()))
    for course in client.get_courses_by_field():
        if int(course["id"]) == SITE_COURSE:
            continue
        cid = int(course["id"])
        everyone = client.get_enrolled_users(cid, userfields=("id", "username", "roles"))
        active = {int(u["id"]) for u in client.get_enrolled_users(
            cid, onlyactive=True, userfields=("id",))}
        groups = client.get_course_groups(cid)
        group_members = client.get_group_members([int(g["id"]) for g in groups]) if groups else {}
        names = {int(u["id"]): u["username"] for u in everyone}
        state["courses"][course["shortname"]] = {
            "enrolled": {u["username"]: {
                "roles": sorted(roles.get(int(r["roleid"]), str(r["roleid"]))
                                for r in u.get("roles") or []),
                "active": int(u["id"]) in active} for u in everyone},
            "groups": {g["name"]: sorted(names.get(u, f"#{u}")
                                         for u in group_members.get(int(g["id"]), []))
                       for g in groups},
        }
    return state
