"""Typed inputs and outputs of the Moodle client.

Each ``to_params`` builds the mapping in the key order Moodle declares (and the recorded
transcripts use); ``None`` means "do not send the key".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The four functions of local_ws_enrolcohort (CONTRACT §4.2); no core function can list or
# change cohort-sync instances (CONTRACT §1.1).
PLUGIN_FUNCTIONS: tuple[str, ...] = (
    "local_ws_enrolcohort_get_instances",
    "local_ws_enrolcohort_add_instance",
    "local_ws_enrolcohort_update_instance",
    "local_ws_enrolcohort_delete_instance",
)


@dataclass(frozen=True)
class NewCohort:
    name: str
    idnumber: str
    # categorytype: "system" (value ignored), "id" or "idnumber" of a course category.
    category_type: str = "system"
    category_value: str | int = ""
    description: str | None = None
    descriptionformat: int | None = None
    visible: bool | None = None
    theme: str | None = None
    customfields: list[Mapping[str, Any]] | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "categorytype": {"type": self.category_type, "value": str(self.category_value)},
            "name": self.name,
            "idnumber": self.idnumber,
            "description": self.description,
            "descriptionformat": self.descriptionformat,
            "visible": self.visible,
            "theme": self.theme,
            "customfields": self.customfields,
        }


@dataclass(frozen=True)
class NewUser:
    username: str
    firstname: str
    lastname: str
    email: str
    auth: str | None = None
    password: str | None = None
    createpassword: bool | None = None
    idnumber: str | None = None
    lang: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_params(self) -> dict[str, Any]:
        # Transcript order (seq 15): username, auth, password, firstname, lastname, email,
        # idnumber. Moodle requires lower-case usernames (PARAM_USERNAME).
        params: dict[str, Any] = {
            "username": self.username,
            "auth": self.auth,
            "createpassword": self.createpassword,
            "password": self.password,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "email": self.email,
            "idnumber": self.idnumber,
            "lang": self.lang,
        }
        params.update(self.extra)
        return params


@dataclass(frozen=True)
class NewCategory:
    name: str
    parent: int = 0
    idnumber: str | None = None
    description: str | None = None
    descriptionformat: int | None = None
    theme: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parent": self.parent,
            "idnumber": self.idnumber,
            "description": self.description,
            "descriptionformat": self.descriptionformat,
            "theme": self.theme,
        }


@dataclass(frozen=True)
class NewCourse:
    fullname: str
    shortname: str
    categoryid: int
    idnumber: str | None = None
    summary: str | None = None
    startdate: int | None = None
    enddate: int | None = None
    visible: bool | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "fullname": self.fullname,
            "shortname": self.shortname,
            "categoryid": self.categoryid,
            "idnumber": self.idnumber,
            "summary": self.summary,
            "startdate": self.startdate,
            "enddate": self.enddate,
            "visible": self.visible,
        }


@dataclass(frozen=True)
class ManualEnrolment:
    """One ``enrol_manual_enrol_users`` item.

    Moodle overwrites both times on re-enrolment and defaults a missing ``timestart`` to 0,
    so send both when only one should change (OBSERVED §4, seq 108).
    """

    roleid: int
    userid: int
    courseid: int
    timestart: int | None = None
    timeend: int | None = None
    suspend: bool | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "roleid": self.roleid,
            "userid": self.userid,
            "courseid": self.courseid,
            "timestart": self.timestart,
            "timeend": self.timeend,
            "suspend": self.suspend,
        }


@dataclass(frozen=True)
class ManualUnenrolment:
    userid: int
    courseid: int
    # Ignored by <= 5.1 and rejected ("Unexpected keys") by 5.2+: leave it None.
    roleid: int | None = None

    def to_params(self) -> dict[str, Any]:
        return {"userid": self.userid, "courseid": self.courseid, "roleid": self.roleid}


@dataclass(frozen=True)
class NewGroup:
    courseid: int
    name: str
    description: str = ""
    descriptionformat: int | None = None
    enrolmentkey: str | None = None
    idnumber: str | None = None
    visibility: int | None = None
    participation: bool | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "courseid": self.courseid,
            "name": self.name,
            "description": self.description,
            "descriptionformat": self.descriptionformat,
            "enrolmentkey": self.enrolmentkey,
            "idnumber": self.idnumber,
            "visibility": self.visibility,
            "participation": self.participation,
        }


@dataclass(frozen=True)
class CohortSyncInstance:
    """One enrol_cohort instance, normalised from the plugin's nested answers."""

    id: int
    courseid: int
    cohortid: int
    roleid: int
    groupid: int
    name: str
    status: int
    course_shortname: str | None = None
    course_idnumber: str | None = None
    cohort_idnumber: str | None = None
    cohort_name: str | None = None
    role_shortname: str | None = None
    group_name: str | None = None

    @property
    def enabled(self) -> bool:
        return self.status == 0

    @classmethod
    def from_enrol_item(
        cls, item: Mapping[str, Any], siblings: Iterable[Mapping[str, Any]] = ()
    ) -> CohortSyncInstance:
        """From an ``object: enrol`` item; nested (get/delete) or flat siblings (add/update)."""
        related: dict[str, Mapping[str, Any]] = {}
        for sib in siblings:
            if isinstance(sib, Mapping) and sib.get("object") in ("course", "cohort", "role",
                                                                   "group"):
                related[str(sib["object"])] = sib
        for kind in ("course", "cohort", "role", "group"):
            nested = item.get(kind)
            if isinstance(nested, Mapping):
                related[kind] = nested
        course = related.get("course", {})
        cohort = related.get("cohort", {})
        role = related.get("role", {})
        group = related.get("group", {})
        groupid = int(item.get("groupid") or 0)
        return cls(
            id=int(item["id"]),
            courseid=int(item.get("courseid", course.get("id", 0))),
            cohortid=int(item.get("cohortid", cohort.get("id", 0))),
            roleid=int(item.get("roleid", role.get("id", 0))),
            groupid=groupid,
            name=str(item.get("name") or ""),
            status=int(item.get("status") or 0),
            course_shortname=_opt_str(course.get("shortname")),
            course_idnumber=_opt_str(course.get("idnumber")),
            cohort_idnumber=_opt_str(cohort.get("idnumber")),
            cohort_name=_opt_str(cohort.get("name")),
            role_shortname=_opt_str(role.get("shortname")),
            # "no group" is reported as a pseudo group id 0 named "Enrol instance group none."
            group_name=_opt_str(group.get("name")) if groupid else None,
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Capabilities:
    """What the token's service allows, from ``core_webservice_get_site_info``."""

    functions: frozenset[str]
    release: str | None = None
    version: str | None = None
    # The site's own URL (wwwroot): what tells one Moodle site from another.
    siteurl: str | None = None

    @property
    def has_cohort_sync_plugin(self) -> bool:
        return all(f in self.functions for f in PLUGIN_FUNCTIONS)

    def missing(self, required: Iterable[str]) -> list[str]:
        seen: dict[str, None] = {}
        for name in required:
            if name not in self.functions:
                seen.setdefault(name, None)
        return list(seen)

    def require(self, required: Iterable[str]) -> None:
        """Raise :class:`MissingFunctions` naming what the service lacks."""
        from .errors import MissingFunctions

        missing = self.missing(required)
        if not missing:
            return
        plugin = [m for m in missing if m in PLUGIN_FUNCTIONS]
        core = [m for m in missing if m not in PLUGIN_FUNCTIONS]
        parts = []
        if plugin:
            parts.append(
                "cohort-sync instances cannot be listed or changed without the "
                "local_ws_enrolcohort plugin functions: " + ", ".join(plugin)
                + " (install the plugin and add them to the token's service)"
            )
        if core:
            parts.append("the token's web service lacks the functions: " + ", ".join(core)
                         + " (add them to the external service)")
        raise MissingFunctions("; ".join(parts), missing)
