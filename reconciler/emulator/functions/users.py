"""core_user_*: create, update, delete, get_users_by_field."""

from __future__ import annotations

import re
from typing import Any

from .. import sync
from ..errors import WSError, coding_error, invalid_parameter, missing_record, moodle_error
from ..model import User
from ..params import Multiple, Single, Value, clean_param, dflt, opt
from .base import Call, wsfunction

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
AUTH_PLUGINS = {"manual", "nologin", "email", "ldap", "cas", "db", "lti", "oauth2", "shibboleth"}
INTERNAL_AUTH = {"manual", "email", "nologin"}

_USER_KEYS = {
    "createpassword": opt(Value("bool")),
    "username": Value("username"),
    "auth": dflt(Value("alphanumext"), "manual"),
    "password": opt(Value("raw")),
    "firstname": Value("notags"),
    "lastname": Value("notags"),
    "email": Value("raw_trimmed"),
    "maildisplay": opt(Value("int")),
    "city": opt(Value("notags")),
    "country": opt(Value("alpha")),
    "timezone": opt(Value("raw")),
    "description": opt(Value("raw")),
    "firstnamephonetic": opt(Value("notags")),
    "lastnamephonetic": opt(Value("notags")),
    "middlename": opt(Value("notags")),
    "alternatename": opt(Value("notags")),
    "interests": opt(Value("text")),
    "idnumber": dflt(Value("raw"), ""),
    "institution": opt(Value("text")),
    "department": opt(Value("text")),
    "phone1": opt(Value("notags")),
    "phone2": opt(Value("notags")),
    "address": opt(Value("text")),
    "lang": dflt(Value("lang"), "en"),
    "calendartype": dflt(Value("alphanumext"), "gregorian"),
    "theme": opt(Value("theme")),
    "mailformat": opt(Value("int")),
    "customfields": opt(Multiple(Single({"type": Value("alphanumext"), "value": Value("raw")}))),
    "preferences": opt(Multiple(Single({"type": Value("raw"), "value": Value("raw")}))),
}
_STORED = ("city", "country", "timezone", "description", "institution", "department",
           "mailformat", "theme")


def _password_problem(password: str) -> str | None:
    """The default password policy (8 chars, digit, lower, upper, non-alphanumeric)."""
    if len(password) < 8:
        return "Passwords must be at least 8 characters long."
    if not re.search(r"[0-9]", password):
        return "Passwords must have at least 1 digit(s)."
    if not re.search(r"[a-z]", password):
        return "Passwords must have at least 1 lower case letter(s)."
    if not re.search(r"[A-Z]", password):
        return "Passwords must have at least 1 upper case letter(s)."
    if not re.search(r"[^a-zA-Z0-9]", password):
        return "The password must have at least 1 special character(s) such as *, -, or #."
    return None


@wsfunction("core_user_create_users", {"users": Multiple(Single(_USER_KEYS))})
def create_users(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    state = call.state
    out = []
    for item in params["users"]:
        for name in ("username", "firstname", "lastname"):
            if item[name].strip() == "":
                raise invalid_parameter(f"The field {name} cannot be blank")
        if item["username"] in state.user_by_username:
            raise invalid_parameter(f"Username already exists: {item['username']}")
        if item["auth"] not in AUTH_PLUGINS:
            raise invalid_parameter(f"Invalid authentication type: {item['auth']}")
        if item["lang"] != "en":
            raise invalid_parameter(f"Invalid language code: {item['lang']}")
        password = item.get("password") or ""
        if item["auth"] in INTERNAL_AUTH and not password and not item.get("createpassword"):
            raise invalid_parameter(
                "Invalid password: you must provide a password, or set createpassword."
            )
        email = item["email"]
        if not _EMAIL.match(email):
            raise invalid_parameter(f"Email address is invalid: {email}")
        lowered = email.lower()
        if any(u.email.lower() == lowered for u in _users_with_email(state, lowered)):
            raise invalid_parameter(f"Email address already exists: {email}")
        if password and item["auth"] in INTERNAL_AUTH:
            problem = _password_problem(password)
            if problem:
                raise moodle_error(problem, problem)
        uid = state.next_id("user")
        user = User(uid, item["username"], item["firstname"], item["lastname"], email,
                    auth=item["auth"], idnumber=item["idnumber"], lang=item["lang"],
                    password="hashed" if password else "", timecreated=call.now,
                    timemodified=call.now)
        for name in _STORED:
            if name in item:
                setattr(user, name, item[name])
        user.contextid = state.new_context("user", uid)
        state.add_user(user)
        out.append({"id": uid, "username": user.username})
    return out


def _users_with_email(state: Any, lowered: str) -> list[User]:
    ids = state.users_by_email_ci.get(lowered, ())
    return [state.users[i] for i in ids if not state.users[i].deleted]


_UPDATE_KEYS = {
    "id": Value("int"),
    "username": opt(Value("username")),
    "auth": opt(Value("alphanumext")),
    "suspended": opt(Value("bool")),
    "password": opt(Value("raw")),
    "firstname": opt(Value("notags")),
    "lastname": opt(Value("notags")),
    "email": opt(Value("raw_trimmed")),
    "city": opt(Value("notags")),
    "country": opt(Value("alpha")),
    "timezone": opt(Value("raw")),
    "description": opt(Value("raw")),
    "idnumber": opt(Value("raw")),
    "institution": opt(Value("text")),
    "department": opt(Value("text")),
    "lang": opt(Value("lang")),
    "theme": opt(Value("theme")),
    "mailformat": opt(Value("int")),
}


@wsfunction("core_user_update_users", {"users": Multiple(Single(_UPDATE_KEYS))})
def update_users(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    warnings = []
    for item in params["users"]:
        user = state.live_user(item["id"])
        if user is None:
            warnings.append({"item": "user", "itemid": item["id"],
                             "warningcode": "invaliduserid", "message": "Invalid user ID"})
            continue
        if "username" in item and item["username"] != user.username and \
                item["username"] in state.user_by_username:
            warnings.append({"item": "user", "itemid": item["id"],
                             "warningcode": "usernameexists",
                             "message": "Username already exists"})
            continue
        changes = {k: v for k, v in item.items() if k not in ("id", "password")}
        if "suspended" in changes:
            changes["suspended"] = int(changes["suspended"])
        changes["timemodified"] = call.now
        state.update_user(user, **changes)
    return {"warnings": warnings}


@wsfunction("core_user_delete_users", {"userids": Multiple(Value("int"))})
def delete_users(call: Call, params: dict[str, Any]) -> None:
    state = call.state
    for userid in params["userids"]:
        user = state.live_user(userid)
        if user is None:
            raise missing_record("user", "id = ? AND deleted = ?", [userid, 0])
        if userid == 2:
            raise moodle_error("useradminodelete", "You can not delete the site administrator")
        for cohortid in sorted(state.user_cohorts.get(userid, set())):
            state.remove_cohort_member(cohortid, userid)
            sync.member_removed(state, cohortid, userid, sync.UNENROL)
        for (enrolid, uid) in [k for k in state.user_enrolments if k[1] == userid]:
            sync.unenrol_user(state, state.enrols[enrolid], uid)
        # delete_user() frees the username: it becomes "<email>.<time>".
        state.update_user(user, deleted=1, username=f"{user.email}.{call.now}")


_FIELD_TYPES = {"id": "int", "idnumber": "raw", "username": "username", "email": "raw_trimmed"}


@wsfunction("core_user_get_users_by_field", {
    "field": Value("alpha"), "values": Multiple(Value("raw")),
})
def get_users_by_field(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    field = params["field"]
    if field not in _FIELD_TYPES:
        raise coding_error("invalid field parameter")
    state = call.state
    ids: set[int] = set()
    for value in params["values"]:
        cleaned = clean_param(value, _FIELD_TYPES[field])
        if str(cleaned) != value:
            raise invalid_parameter(
                f"The field '{field}' value is invalid: {value}(cleaned value: {cleaned})"
            )
        if field == "id":
            ids.add(cleaned)
        elif field == "username":
            if cleaned in state.user_by_username:
                ids.add(state.user_by_username[cleaned])
        elif field == "idnumber":
            ids |= state.users_by_idnumber.get(cleaned, set())
        else:
            ids |= state.users_by_email.get(cleaned, set())
    users = [state.live_user(i) for i in sorted(ids)]
    return [user_details(call, u) for u in users if u is not None]


def user_details(call: Call, u: User) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": u.id, "username": u.username, "firstname": u.firstname, "lastname": u.lastname,
        "fullname": f"{u.firstname} {u.lastname}", "email": u.email, "department": u.department,
    }
    if u.institution:
        d["institution"] = u.institution
    d.update({
        "idnumber": u.idnumber, "firstaccess": 0, "lastaccess": 0, "auth": u.auth,
        "suspended": bool(u.suspended), "confirmed": bool(u.confirmed), "lang": u.lang,
        "theme": u.theme, "timezone": u.timezone, "mailformat": u.mailformat, "trackforums": 0,
    })
    if u.description:
        d["description"], d["descriptionformat"] = call.fmt.text(u.description)
    if u.city:
        d["city"] = u.city
    if u.country:
        d["country"] = u.country
    d["profileimageurlsmall"] = call.picture("f2")
    d["profileimageurl"] = call.picture("f1")
    return d


def require_user(call: Call, userid: int) -> User:
    user = call.state.live_user(userid)
    if user is None:
        raise WSError("dml_missing_record_exception", "invaliduser", "Invalid user")
    return user
