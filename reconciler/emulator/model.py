"""Rows of the Moodle tables the emulator keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES: dict[int, tuple[str, str]] = {
    1: ("manager", "Manager"),
    2: ("coursecreator", "Course creator"),
    3: ("editingteacher", "Teacher"),
    4: ("teacher", "Non-editing teacher"),
    5: ("student", "Student"),
    6: ("guest", "Guest"),
    7: ("user", "Authenticated user"),
    8: ("frontpage", "Authenticated user on site home"),
}
# Roles whose context levels include "course": what an admin may assign in a course.
COURSE_ASSIGNABLE_ROLES = {1, 3, 4, 5}

ENROL_USER_ACTIVE, ENROL_USER_SUSPENDED = 0, 1
ENROL_INSTANCE_ENABLED, ENROL_INSTANCE_DISABLED = 0, 1


@dataclass(slots=True)
class User:
    id: int
    username: str
    firstname: str
    lastname: str
    email: str
    auth: str = "manual"
    idnumber: str = ""
    suspended: int = 0
    confirmed: int = 1
    deleted: int = 0
    lang: str = "en"
    theme: str = ""
    timezone: str = "99"
    mailformat: int = 1
    department: str = ""
    institution: str = ""
    city: str = ""
    country: str = ""
    description: str = ""
    password: str = ""
    contextid: int = 0
    timecreated: int = 0
    timemodified: int = 0


@dataclass(slots=True)
class Category:
    id: int
    name: str
    idnumber: str | None  # None: NULL in the table (the install's "Category 1")
    parent: int
    description: str = ""
    descriptionformat: int = 1
    visible: int = 1
    theme: str = ""
    contextid: int = 0
    timemodified: int = 0


@dataclass(slots=True)
class Course:
    id: int
    category: int
    fullname: str
    shortname: str
    idnumber: str = ""
    summary: str = ""
    summaryformat: int = 1
    format: str = "topics"
    startdate: int = 0
    enddate: int = 0
    visible: int = 1
    contextid: int = 0
    timecreated: int = 0
    timemodified: int = 0
    cacherev: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Cohort:
    id: int
    contextid: int
    name: str
    idnumber: str
    description: str = ""
    descriptionformat: int = 1
    visible: int = 1
    theme: str = ""
    timecreated: int = 0
    timemodified: int = 0
    pos: int = 0  # PostgreSQL physical order: updated rows move to the end


@dataclass(slots=True)
class Group:
    id: int
    courseid: int
    name: str
    description: str = ""
    descriptionformat: int = 1
    enrolmentkey: str | None = None
    idnumber: str = ""
    visibility: int = 0
    participation: int = 1
    timecreated: int = 0


@dataclass(slots=True)
class Enrol:
    id: int
    enrol: str
    courseid: int
    status: int
    roleid: int = 0
    name: str | None = None
    customint1: int | None = None  # cohort id for enrol_cohort
    customint2: int | None = None  # group id for enrol_cohort (0 none)
    sortorder: int = 0
    pos: int = 0
    timecreated: int = 0
    timemodified: int = 0


@dataclass(slots=True)
class UserEnrolment:
    id: int
    enrolid: int
    userid: int
    status: int = ENROL_USER_ACTIVE
    timestart: int = 0
    timeend: int = 0
    timecreated: int = 0


@dataclass(slots=True)
class RoleAssignment:
    id: int
    roleid: int
    courseid: int
    userid: int
    component: str = ""
    itemid: int = 0
