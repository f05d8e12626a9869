"""Property: whatever a server answers, the Moodle client returns or raises a MoodleError
naming the function (never TypeError/KeyError/…), and ``reconcile plan`` prints a plan or
one ``error:`` line, writing nothing to Moodle.

Answers are drawn three ways: any JSON at all; answers of the declared shape (the table
in ``reconciler.moodle.returns``) with random values; and such answers with one node
replaced, removed or nulled, which is where a lax check would let a wrong type through.
Bodies that are not JSON (empty, truncated, HTML, ``NaN``, 100,000 nested brackets) too.
See ``support/fuzz.py`` for the CI bounds and the on-demand campaign.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import CAMPAIGN, case, fuzz_settings, report
from test_moodle_answers import APPLY_WRITES, NOW, PLAN_READS, World, world_at
from test_moodle_client_unit import FakeResponse, make

from reconciler.moodle import returns
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.errors import MoodleError
from reconciler.moodle.types import (
    ManualEnrolment,
    ManualUnenrolment,
    NewCategory,
    NewCohort,
    NewCourse,
    NewGroup,
    NewUser,
)
from reconciler.planning.state import COHORT_MARKER, INSTANCE_PREFIX

# Every client method, by the function it calls (a few call it more than one way).
CALLS: dict[str, Callable[[MoodleClient], Any]] = {
    "core_webservice_get_site_info": lambda c: c.capabilities(),
    "core_cohort_get_cohorts": lambda c: (c.get_cohorts(), c.get_cohorts([2, 1])),
    "core_cohort_search_cohorts": lambda c: c.search_cohorts("man-", 1, "all"),
    "core_cohort_create_cohorts": lambda c: c.create_cohorts([NewCohort("N", "man-x")]),
    "core_cohort_update_cohorts": lambda c: c.update_cohorts([
        {"id": 1, "categorytype": {"type": "system", "value": ""}, "name": "N",
         "idnumber": "man-x"}]),
    "core_cohort_delete_cohorts": lambda c: c.delete_cohorts([1]),
    "core_cohort_add_cohort_members": lambda c: c.add_cohort_members([(1, 2), (1, 3)]),
    "core_cohort_delete_cohort_members": lambda c: c.delete_cohort_members([(1, 2)]),
    "core_cohort_get_cohort_members": lambda c: (
        c.get_cohort_members([1, 2]), c.get_cohort_members([3], ignore_missing=True)),
    "core_user_get_users_by_field": lambda c: (
        c.get_users_by_field("username", ["alice", "bob"]), c.get_users_by_field("id", [7]),
        c.get_users_by_field("email", ["a@x.org"]), c.get_users_by_field("idnumber", ["1"])),
    "core_user_get_users": lambda c: c.call("core_user_get_users", {"criteria": []}),
    "core_user_create_users": lambda c: c.create_users([NewUser("alice", "A", "L", "a@x")]),
    "core_user_update_users": lambda c: c.call("core_user_update_users", {"users": []}),
    "core_user_delete_users": lambda c: c.delete_users([9]),
    "core_course_create_categories": lambda c: c.create_categories([NewCategory("Cat")]),
    "core_course_get_categories": lambda c: c.get_categories({"idnumber": "CAT"}),
    "core_course_create_courses": lambda c: c.create_courses([NewCourse("F", "C1", 1)]),
    "core_course_get_courses": lambda c: c.call("core_course_get_courses"),
    "core_course_get_courses_by_field": lambda c: (
        c.get_courses_by_field(), c.get_courses_by_field("ids", [2, 3]),
        c.get_courses_by_field("shortname", "C1")),
    "core_enrol_get_enrolled_users": lambda c: c.get_enrolled_users(
        2, onlyactive=True, userfields=("id", "roles")),
    "core_enrol_get_course_enrolment_methods": lambda c: c.get_course_enrolment_methods(2),
    "core_enrol_get_users_courses": lambda c: c.call("core_enrol_get_users_courses",
                                                     {"userid": 3}),
    "enrol_manual_enrol_users": lambda c: c.manual_enrol([ManualEnrolment(5, 3, 2)]),
    "enrol_manual_unenrol_users": lambda c: c.manual_unenrol([ManualUnenrolment(3, 2)]),
    "core_group_create_groups": lambda c: c.create_groups([NewGroup(2, "G")]),
    "core_group_get_course_groups": lambda c: c.get_course_groups(2),
    "core_group_get_groups": lambda c: c.call("core_group_get_groups", {"groupids": [1]}),
    "core_group_add_group_members": lambda c: c.add_group_members([(1, 3)]),
    "core_group_delete_group_members": lambda c: c.delete_group_members([(1, 3)]),
    "core_group_get_group_members": lambda c: c.get_group_members([1, 2]),
    "core_group_delete_groups": lambda c: c.delete_groups([1]),
    "local_ws_enrolcohort_get_instances": lambda c: c.cohort_sync_instances(-1),
    "local_ws_enrolcohort_add_instance": lambda c: c.add_cohort_sync(2, 1, 5, status=1),
    "local_ws_enrolcohort_update_instance": lambda c: c.update_cohort_sync(13, status=1),
    "local_ws_enrolcohort_delete_instance": lambda c: c.delete_cohort_sync(13),
}

# -- answers ----------------------------------------------------------------------------


def _keys(shape: returns.Shape | returns.Void) -> set[str]:
    if isinstance(shape, returns.Single):
        return set(shape.keys).union(*(_keys(s) for s in shape.keys.values()))
    if isinstance(shape, returns.Many):
        return _keys(shape.item)
    return set()


KEYS = sorted(set().union(*(_keys(s) for s in returns.RETURNS.values()))
              | {"exception", "errorcode", "message", "debuginfo", "object"})
TEXTS = ["man-tuteurs", "man-new", "man-old", "C1", "alice", "bob", "dave", "student",
         "teacher", "enrol", "course", "cohort", "role", "group", "Tuteurs", COHORT_MARKER,
         INSTANCE_PREFIX + "man-tuteurs", "", " ", "<b>x</b>", "\u00e9", "0"]
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-3, 20)
           | st.floats(allow_nan=False) | st.text(max_size=12) | st.sampled_from(TEXTS))
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)


def conforming(shape: returns.Shape) -> st.SearchStrategy[Any]:
    """Answers of the declared shape, with random values that look like real ones."""
    if isinstance(shape, returns.Value):
        values = {
            returns.INT: st.integers(-1, 20) | st.integers(),
            returns.BOOL: st.booleans(),
            returns.NUMBER: st.integers() | st.floats(allow_nan=False),
            returns.TEXT: st.sampled_from(TEXTS) | st.text(max_size=12),
            returns.SCALAR: st.sampled_from(TEXTS) | st.integers() | st.booleans(),
        }[shape.kind]
        return values | st.none() if shape.null else values
    if isinstance(shape, returns.Many):
        return st.lists(conforming(shape.item), max_size=4)
    required = {k: conforming(v) for k, v in shape.keys.items() if not v.optional}
    optional = {k: conforming(v) for k, v in shape.keys.items() if v.optional}
    return st.fixed_dictionaries(required, optional=optional)


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _nodes(inner, (*path, key))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            yield from _nodes(inner, (*path, n))


def damaged(data: st.DataObject, value: Any) -> Any:
    """``value`` with one node replaced by anything, nulled or removed."""
    path = data.draw(st.sampled_from(list(_nodes(value))), label="node")
    how = data.draw(st.sampled_from(["replace", "null", "remove"]), label="damage")
    if not path:
        return None if how != "replace" else data.draw(any_json)
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if how == "remove":
        del parent[path[-1]]
    else:
        parent[path[-1]] = None if how == "null" else data.draw(any_json)
    return value


def answer_body(data: st.DataObject, function: str) -> tuple[str, Any]:
    """(body text, decoded answer or a marker for non-JSON bodies)."""
    shape = returns.RETURNS[function]
    kind = data.draw(st.sampled_from(["any", "valid", "damaged", "text"]), label="answer")
    if kind == "text":
        text = data.draw(st.sampled_from(
            ["", " ", "null", "NaN", "Infinity", "[" * 100_000, '{"id": 1, "na', "<html>500</html>",
             '{"exception": "x"}', '{"exception": "Error", "message": "leak"}',
             '{"exception": {"deep": [1]}, "errorcode": [], "message": {"a": 1}}']))
        return text, None
    if kind == "any" or isinstance(shape, returns.Void):
        value = data.draw(any_json, label="json")
    else:
        value = data.draw(conforming(shape), label="valid")
        if kind == "damaged":
            value = damaged(data, value)
    return json.dumps(value), value


@pytest.fixture(scope="module", autouse=True)
def _campaign_report() -> Iterator[None]:
    yield
    if CAMPAIGN:
        print("\n" + report())


def test_every_function_the_client_knows_is_fuzzed() -> None:
    assert sorted(CALLS) == sorted(returns.RETURNS)


@pytest.mark.parametrize("function", sorted(CALLS))
@fuzz_settings(8, campaign_weight=0.1)
@given(data=st.data())
def test_any_answer_gives_a_result_or_a_moodle_error(function: str, data: st.DataObject) -> None:
    body, value = answer_body(data, function)
    client, session = make([FakeResponse(body)] * 64, concurrency=1, read_retries=0)
    with case("client"), client:
        try:
            CALLS[function](client)
        except MoodleError as err:
            assert err.function in returns.RETURNS and str(err).startswith(err.function)
            assert "\n" not in str(err), str(err)
        else:
            assert value is None or returns.find_mismatch(function, value) is None, (
                f"{function} accepted {body[:200]}"
            )
    assert session.bodies, "the client sent nothing"


@pytest.fixture(scope="module")
def plan_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world_at(tmp_path_factory.mktemp("fuzz-answers")) as world:
        yield world


@pytest.mark.parametrize("function", PLAN_READS)
@fuzz_settings(5, campaign_weight=0.04)
@given(data=st.data())
def test_plan_with_any_answer_is_a_plan_or_one_error_line(
    plan_world: World, function: str, data: st.DataObject
) -> None:
    body, value = answer_body(data, function)
    plan_world.proxy.doctor(function, body)
    with case("plan (answers)"):
        code, out, exc = plan_world.run("plan", "-p", "prelude", "--now", NOW)
    plan_world.proxy.doctor(None, "")
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code in (0, 1, 2, 3, 7), out  # 7: a plan left incomplete by what Moodle answered
    if code == 1:
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), out[-2000:]
    if value is not None and returns.find_mismatch(function, value) is not None:
        assert code == 1 and function in out, (body[:300], out)
    assert plan_world.writes() == []


@pytest.mark.parametrize("function", APPLY_WRITES)
@fuzz_settings(1, campaign_weight=0.005)
@given(data=st.data())
def test_apply_with_any_write_answer_reports_each_action(
    tmp_path_factory: pytest.TempPathFactory, function: str, data: st.DataObject
) -> None:
    body, value = answer_body(data, function)
    with world_at(tmp_path_factory.mktemp("fuzz-apply")) as world:
        # The write reaches Moodle and commits; only its answer is drawn.
        world.proxy.doctor(function, body, forward=True)
        with case("apply (write answers)"):
            code, out, exc = world.run("apply", "-p", "prelude", "--now", NOW, "--allow-dirty")
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code in (0, 1), out
    assert "Traceback" not in out and "Applied " in out, out[-2000:]
    if value is not None and returns.find_mismatch(function, value) is not None:
        assert code == 1 and f"{function}: " in out, (body[:300], out)
