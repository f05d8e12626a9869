"""What each web-service function answers, and the check of every answer against it.

A real Moodle never answers a shape its function does not declare: before it sends an answer,
``external_api::clean_returnvalue`` checks it against the function's ``*_returns()``
description and answers ``invalidresponse`` instead. A proxy, a half-upgraded site, another
plugin version or a broken fake can still answer ``42``, ``null`` or rows whose ``id`` is a
string; without this check that surfaced as a ``TypeError`` or ``KeyError`` deep in the reader
or the applier. Here every answer the client receives is checked once, against the table
below, and a mismatch becomes :class:`~reconciler.moodle.errors.UnexpectedAnswer`, naming
the function and the field (``core_cohort_get_cohorts: answer[3].id: expected an integer,
got "x"``).

The table mirrors the ``*_returns()`` declarations of Moodle 4.5 (``cohort/externallib.php``,
``user/externallib.php``, ``course/externallib.php``, ``enrol/externallib.php``,
``enrol/manual/externallib.php``, ``group/externallib.php``,
``webservice/externallib.php``) and of local_ws_enrolcohort v3.3.3 (``externallib.php``,
``webservice_function_returns`` and ``webservice_function_enrolment_instance_returns``),
checked against the answers recorded from a real Moodle 4.5.5. A key is *required* here
when the client or the reconciler reads it (Moodle requires nearly all of them too; where it
declares one optional, the comment says so); the other keys listed are only type-checked
when present, and keys not listed are not checked at all (a newer Moodle may add some): a
key nothing here reads is no reason to stop a run.

Value kinds follow what ``clean_returnvalue`` makes of each ``PARAM_*`` type: ``PARAM_INT``
is always a JSON integer, ``PARAM_BOOL`` a JSON boolean, text types a JSON string.
``PARAM_RAW`` passes any scalar through unchanged; it is checked as a string where the value
comes from a database text column (names, idnumbers, descriptions), as any scalar elsewhere.
Moodle allows ``null`` in any value unless declared ``NULL_NOT_ALLOWED``; the client accepts
it only where a real site was seen to send it (``null=True``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .errors import UnexpectedAnswer

INT = "an integer"
BOOL = "a boolean"
NUMBER = "a number"
TEXT = "a string"
SCALAR = "a string, number or boolean"


@dataclass(frozen=True)
class Value:
    """``external_value``: one scalar of ``kind`` (INT, BOOL, NUMBER, TEXT or SCALAR)."""

    kind: str
    optional: bool = False
    null: bool = False


@dataclass(frozen=True)
class Single:
    """``external_single_structure``: a JSON object with these keys."""

    keys: dict[str, Shape]
    optional: bool = False


@dataclass(frozen=True)
class Many:
    """``external_multiple_structure``: a JSON list of ``item``."""

    item: Shape
    optional: bool = False


Shape = Value | Single | Many


@dataclass(frozen=True)
class Void:
    """A function whose ``*_returns()`` is ``null``: Moodle answers the JSON literal null."""


Returns = Shape | Void


@dataclass(frozen=True)
class Mismatch:
    """Where an answer departs from its declared shape: ``path`` such as ``answer[3].id``."""

    path: str
    expected: str
    got: Any = field(default=None)
    missing: bool = False

    def text(self) -> str:
        if self.missing:
            return f"{self.path}: missing (expected {self.expected})"
        return f"{self.path}: expected {self.expected}, got {describe(self.got)}"


def describe(value: Any, limit: int = 40) -> str:
    """A short, printable rendering of a JSON value for an error line."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # pragma: no cover - json.loads output always dumps
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the shapes Moodle declares --------------------------------------------------------------

# external_warnings: an optional list; warningcode and message are required in each item.
WARNINGS = Many(
    Single({"item": Value(TEXT, optional=True), "itemid": Value(INT, optional=True),
            "warningcode": Value(SCALAR), "message": Value(TEXT)}),
    optional=True,
)
# external_format_value: PARAM_INT.
FORMAT = Value(INT, optional=True)

# core_cohort_external::get_cohorts_returns / search_cohorts_returns / create_cohorts_returns.
# ``theme`` is null when cohort themes are off (get_cohorts, search_cohorts).
COHORT = Single({
    "id": Value(INT),
    "name": Value(TEXT),
    "idnumber": Value(TEXT),
    "description": Value(TEXT),
    "descriptionformat": FORMAT,
    "visible": Value(BOOL),
    "theme": Value(TEXT, optional=True, null=True),
})

# core_user_external::user_description (get_users_by_field, get_users).
USER = Single({
    "id": Value(INT),
    # VALUE_OPTIONAL in Moodle (shown to who may see it); the reconciler matches on it.
    "username": Value(TEXT),
    "fullname": Value(TEXT, optional=True),
    "email": Value(TEXT, optional=True),
    "idnumber": Value(TEXT, optional=True),
    "suspended": Value(BOOL, optional=True),
})

# core_enrol_external::get_enrolled_users_returns: the ``userfields`` option decides which
# keys come besides id (and fullname).
ENROLLED_USER = Single({
    "id": Value(INT),
    "fullname": Value(TEXT, optional=True),
    "username": Value(TEXT, optional=True),
    "roles": Many(
        Single({"roleid": Value(INT), "name": Value(TEXT, optional=True),
                "shortname": Value(TEXT, optional=True), "sortorder": Value(INT, optional=True)}),
        optional=True,
    ),
    "groups": Many(
        Single({"id": Value(INT), "name": Value(TEXT, optional=True)}), optional=True),
})

# core_course_external::get_course_structure(false) (get_courses_by_field).
COURSE = Single({
    "id": Value(INT),
    "shortname": Value(TEXT),
    "fullname": Value(TEXT, optional=True),
    "displayname": Value(TEXT, optional=True),
    "categoryid": Value(INT, optional=True),
    "categoryname": Value(TEXT, optional=True),
    "summary": Value(TEXT, optional=True),
    "summaryformat": FORMAT,
    "idnumber": Value(TEXT, optional=True),
})

# core_group_external group structure (create_groups, get_course_groups, get_groups).
# get_course_groups sends the enrolment key as null to who may not see it.
GROUP = Single({
    "id": Value(INT),
    "name": Value(TEXT),
    "courseid": Value(INT, optional=True),
    "description": Value(TEXT, optional=True),
    "descriptionformat": FORMAT,
    "enrolmentkey": Value(TEXT, optional=True, null=True),
    "idnumber": Value(TEXT, optional=True),
    "visibility": Value(INT, optional=True),
    "participation": Value(BOOL, optional=True),
})

# local_ws_enrolcohort_external::webservice_function_returns (add/update_instance) and
# webservice_function_enrolment_instance_returns (get_instances/delete_instance): every
# item key but ``object`` is VALUE_OPTIONAL; an ``enrol`` item must carry its id (see
# ENROL_ITEM_NEEDS).
_PLUGIN_ITEM_KEYS: dict[str, Shape] = {
    "object": Value(TEXT),
    "id": Value(INT, optional=True),
    "name": Value(TEXT, optional=True),
    "courseid": Value(INT, optional=True),
    "cohortid": Value(INT, optional=True),
    "roleid": Value(INT, optional=True),
    "groupid": Value(INT, optional=True),
    "idnumber": Value(SCALAR, optional=True, null=True),
    "shortname": Value(TEXT, optional=True),
    "status": Value(INT, optional=True),
    "active": Value(TEXT, optional=True),
    "visible": Value(INT, optional=True),
    "format": Value(TEXT, optional=True),
}
_NESTED: dict[str, Shape] = {
    "course": Single({"object": Value(TEXT), "id": Value(INT),
                      "idnumber": Value(SCALAR, optional=True, null=True),
                      "name": Value(TEXT, optional=True), "shortname": Value(TEXT),
                      "visible": Value(INT, optional=True), "format": Value(TEXT, optional=True)},
                     optional=True),
    "cohort": Single({"object": Value(TEXT), "id": Value(INT),
                      "idnumber": Value(SCALAR, null=True), "name": Value(TEXT, optional=True),
                      "visible": Value(INT, optional=True)}, optional=True),
    "role": Single({"object": Value(TEXT), "id": Value(INT), "shortname": Value(TEXT)},
                   optional=True),
    "group": Single({"object": Value(TEXT), "id": Value(INT),
                     "courseid": Value(INT, optional=True), "name": Value(TEXT)}, optional=True),
}
_PLUGIN_HEAD: dict[str, Shape] = {
    "id": Value(INT),
    "code": Value(INT, optional=True),
    "message": Value(TEXT, optional=True),
}
PLUGIN_ANSWER = Single({**_PLUGIN_HEAD, "data": Many(Single(_PLUGIN_ITEM_KEYS))})
PLUGIN_INSTANCE_ANSWER = Single(
    {**_PLUGIN_HEAD, "data": Many(Single({**_PLUGIN_ITEM_KEYS, **_NESTED}))})
# What the client reads of an ``object: enrol`` item (CohortSyncInstance.from_enrol_item).
ENROL_ITEM_NEEDS = ("id",)

RETURNS: dict[str, Returns] = {
    # webservice/externallib.php: core_webservice_external::get_site_info_returns
    "core_webservice_get_site_info": Single({
        "functions": Many(Single({"name": Value(TEXT), "version": Value(TEXT, optional=True)})),
        "release": Value(TEXT, optional=True),
        "version": Value(TEXT, optional=True),
        "sitename": Value(TEXT, optional=True),
        "userid": Value(INT, optional=True),
    }),
    # cohort/externallib.php: core_cohort_external
    "core_cohort_get_cohorts": Many(COHORT),
    "core_cohort_search_cohorts": Single({"cohorts": Many(COHORT)}),
    "core_cohort_create_cohorts": Many(COHORT),
    "core_cohort_update_cohorts": Void(),
    "core_cohort_delete_cohorts": Void(),
    "core_cohort_add_cohort_members": Single({"warnings": WARNINGS}),
    "core_cohort_delete_cohort_members": Void(),
    "core_cohort_get_cohort_members": Many(
        Single({"cohortid": Value(INT), "userids": Many(Value(INT))})),
    # user/externallib.php: core_user_external
    "core_user_get_users_by_field": Many(USER),
    "core_user_get_users": Single({"users": Many(USER), "warnings": WARNINGS}),
    "core_user_create_users": Many(Single({"id": Value(INT), "username": Value(TEXT)})),
    "core_user_update_users": Single({"warnings": WARNINGS}),
    "core_user_delete_users": Void(),
    # course/externallib.php: core_course_external
    "core_course_get_courses_by_field": Single({"courses": Many(COURSE), "warnings": WARNINGS}),
    "core_course_get_courses": Many(Single({
        "id": Value(INT), "shortname": Value(TEXT), "categoryid": Value(INT, optional=True),
        "fullname": Value(TEXT, optional=True), "idnumber": Value(TEXT, optional=True)})),
    "core_course_create_courses": Many(Single({"id": Value(INT), "shortname": Value(TEXT)})),
    # get_categories_returns: idnumber, visible, visibleold, timemodified and theme only
    # to who may manage categories; idnumber null when unset (the install's "Category 1").
    # Course patterns read idnumber and path (planning.reader.read_categories).
    "core_course_get_categories": Many(Single({
        "id": Value(INT), "name": Value(TEXT), "idnumber": Value(TEXT, optional=True, null=True),
        "parent": Value(INT, optional=True), "path": Value(TEXT),
        "depth": Value(INT, optional=True), "coursecount": Value(INT, optional=True),
        "visible": Value(INT, optional=True)})),
    "core_course_create_categories": Many(Single({"id": Value(INT),
                                                  "name": Value(TEXT, optional=True)})),
    # enrol/externallib.php: core_enrol_external
    "core_enrol_get_enrolled_users": Many(ENROLLED_USER),
    "core_enrol_get_course_enrolment_methods": Many(Single({
        "id": Value(INT), "courseid": Value(INT), "type": Value(TEXT),
        "name": Value(TEXT, optional=True),
        # PARAM_RAW: the self and guest plugins put a boolean or a string here.
        "status": Value(SCALAR, optional=True)})),
    "core_enrol_get_users_courses": Many(Single({
        "id": Value(INT), "shortname": Value(TEXT), "fullname": Value(TEXT, optional=True)})),
    # enrol/manual/externallib.php: enrol_manual_external
    "enrol_manual_enrol_users": Void(),
    "enrol_manual_unenrol_users": Void(),
    # group/externallib.php: core_group_external
    "core_group_create_groups": Many(GROUP),
    "core_group_get_course_groups": Many(GROUP),
    "core_group_get_groups": Many(GROUP),
    "core_group_add_group_members": Void(),
    "core_group_delete_group_members": Void(),
    "core_group_delete_groups": Void(),
    "core_group_get_group_members": Many(
        Single({"groupid": Value(INT), "userids": Many(Value(INT))})),
    # local_ws_enrolcohort externallib.php
    "local_ws_enrolcohort_get_instances": PLUGIN_INSTANCE_ANSWER,
    "local_ws_enrolcohort_delete_instance": PLUGIN_INSTANCE_ANSWER,
    "local_ws_enrolcohort_add_instance": PLUGIN_ANSWER,
    "local_ws_enrolcohort_update_instance": PLUGIN_ANSWER,
}


# -- the check --------------------------------------------------------------------------------
#
# Each shape is compiled once into a function of the answer that returns None when it fits,
# or the fault: the steps (keys and indices, innermost first) leading to the faulty value,
# what was expected there, what was found, and whether it was missing. Paths are only
# spelled out on failure: a nightly plan checks some 100,000 values.

_Fault = tuple[list[str | int], str, Any, bool]
_Check = Callable[[Any], "_Fault | None"]
# JSON decoding yields exactly these classes (never subclasses), so the check is a set lookup.
_CLASSES: dict[str, frozenset[type]] = {
    INT: frozenset({int}),
    BOOL: frozenset({bool}),
    NUMBER: frozenset({int, float}),
    TEXT: frozenset({str}),
    SCALAR: frozenset({str, int, float, bool}),
}


def _compile(shape: Shape) -> _Check:
    if isinstance(shape, Value):
        return _compile_value(shape)
    if isinstance(shape, Many):
        return _compile_many(shape)
    return _compile_single(shape)


def _compile_value(shape: Value) -> _Check:
    allowed = _CLASSES[shape.kind] | ({type(None)} if shape.null else set())
    kind = shape.kind

    def check(value: Any) -> _Fault | None:
        return None if value.__class__ in allowed else ([], kind, value, False)

    return check


def _compile_many(shape: Many) -> _Check:
    item = _compile(shape.item)
    allowed = (
        _CLASSES[shape.item.kind] | ({type(None)} if shape.item.null else set())
        if isinstance(shape.item, Value)
        else None
    )

    def check(value: Any) -> _Fault | None:
        if value.__class__ is not list:
            return [], "a list", value, False
        if allowed is not None and all(x.__class__ in allowed for x in value):
            return None  # lists of ids: one pass, no call per item
        for n, element in enumerate(value):
            fault = item(element)
            if fault is not None:
                fault[0].append(n)
                return fault
        return None

    return check


def _compile_single(shape: Single) -> _Check:
    fields = [(key, inner.optional, _compile(inner), _expected(inner))
              for key, inner in shape.keys.items()]

    def check(value: Any) -> _Fault | None:
        if value.__class__ is not dict:
            return [], "an object", value, False
        for key, optional, inner, expected in fields:
            if key in value:
                fault = inner(value[key])
                if fault is not None:
                    fault[0].append(key)
                    return fault
            elif not optional:
                return [key], expected, None, True
        return None

    return check


def _expected(shape: Shape) -> str:
    if isinstance(shape, Value):
        return shape.kind
    return "a list" if isinstance(shape, Many) else "an object"


@cache
def _checker(function: str) -> _Check | None:
    returns = RETURNS.get(function)
    if returns is None or isinstance(returns, Void):
        return None
    return _compile(returns)


def _path(steps: list[str | int]) -> str:
    return "answer" + "".join(
        f"[{step}]" if isinstance(step, int) else f".{step}" for step in reversed(steps)
    )


def _plugin_items(answer: Any) -> Mismatch | None:
    for n, item in enumerate(answer["data"]):
        if item["object"] != "enrol":
            continue
        for key in ENROL_ITEM_NEEDS:
            if item.get(key) is None:
                return Mismatch(f"answer.data[{n}].{key}", INT, missing=True)
    return None


def find_mismatch(function: str, answer: Any) -> Mismatch | None:
    """Where ``answer`` (decoded JSON, not an error body) departs from what ``function``
    returns (depth first, the first place found), or None. Functions missing from
    :data:`RETURNS` are not checked."""
    if isinstance(RETURNS.get(function), Void):
        return None if answer is None else Mismatch("answer", "null (no return value)", answer)
    check = _checker(function)
    if check is None:
        return None
    fault = check(answer)
    if fault is not None:
        steps, expected, got, missing = fault
        return Mismatch(_path(steps), expected, got, missing)
    if function.startswith("local_ws_enrolcohort_"):
        return _plugin_items(answer)
    return None


def check_answer(function: str, answer: Any) -> None:
    """Raise :class:`~reconciler.moodle.errors.UnexpectedAnswer` when ``answer`` is not of
    the shape ``function`` declares (see :data:`RETURNS`); return None when it is."""
    found = find_mismatch(function, answer)
    if found is not None:
        raise UnexpectedAnswer(found.text(), function)
