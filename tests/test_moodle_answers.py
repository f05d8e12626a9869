"""Moodle answers of the wrong shape, through the client and through ``reconcile plan`` and
``reconcile apply``: one line naming the function and the field, never a traceback, and
nothing written to Moodle after a bad read.

The world is small and source-free (one platform without general cohorts): a managed cohort
to update, one to delete, a group, a cohort sync and a ``method: manual`` sync, so that a
plan calls every read function the reconciler uses and an apply every write function.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.garbage_moodle import GarbageProxy
from test_moodle_client_unit import FakeResponse, make

from reconciler.cli import exitcodes, main
from reconciler.cli.errors import DEBUG_HINT
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle import returns
from reconciler.moodle.errors import MoodleError, UnexpectedAnswer
from reconciler.moodle.functions import IS_READ
from reconciler.moodle.types import NewGroup
from reconciler.planning.state import COHORT_MARKER

TOKEN = "answers-token"
NOW = "2026-11-28T02:00:00Z"
TRANSCRIPT = Path(__file__).resolve().parent / "data" / "moodle" / "session-shared.jsonl"

PLATFORMS = """\
academic_year: "2026"
platforms:
  prelude:
    url: https://prelude.example.org
    general_cohorts:
      enabled: false
    manual_cohorts:
      idnumber_prefix: "man-"
    sync_policy:
      cohort_sync: allowed
      max_temporary_days: 120
"""
FILES = {
    "prelude/cohorts/man-tuteurs.yaml": """\
        idnumber: man-tuteurs
        name: Tuteurs
        owners: [someone@example.org]
        members: [alice, bob, carol]
        """,
    "prelude/cohorts/man-new.yaml": """\
        idnumber: man-new
        name: Nouvelle
        owners: [someone@example.org]
        members: [alice]
        """,
    "prelude/syncs/C1.yaml": """\
        course: C1
        syncs:
          - cohort: man-tuteurs
            role: student
            group: Tuteurs
            reason: the tutors follow the course
          - cohort: man-new
            role: teacher
            method: manual
            expires: 2027-01-15
            reason: temporary teachers
        """,
}
SEED: dict[str, Any] = {
    "courses": [{"shortname": "C1", "fullname": "Course one"}],
    "users": [{"username": u, "firstname": u, "lastname": "X"}
              for u in ("alice", "bob", "carol", "dave")],
    "cohorts": [
        {"idnumber": "man-tuteurs", "name": "Tuteurs (old name)",
         "description": COHORT_MARKER, "members": ["alice", "dave"]},
        {"idnumber": "man-old", "name": "Old", "description": COHORT_MARKER,
         "members": ["dave"]},
    ],
}
# What a plan of this world reads, and what its apply writes.
PLAN_READS = (
    "core_webservice_get_site_info",
    "core_cohort_get_cohorts",
    "core_cohort_get_cohort_members",
    "core_user_get_users_by_field",
    "core_course_get_courses_by_field",
    "local_ws_enrolcohort_get_instances",
    "core_group_get_course_groups",
    "core_enrol_get_enrolled_users",
)
WRITES = tuple(f for f, read in IS_READ.items() if not read)


@dataclass
class World:
    repo: Path
    emu: MoodleEmulator
    proxy: GarbageProxy

    def run(self, *args: str) -> tuple[int, str, BaseException | None]:
        env = {"PRELUDE_URL": self.proxy.url, "PRELUDE_TOKEN": TOKEN}
        result = CliRunner().invoke(main, ["--repo", str(self.repo), *args], env=env)
        # The CLI turns a bug into one line too: here any such line is a failure.
        assert DEBUG_HINT not in result.output, result.output[-2000:]
        exc = result.exception
        return result.exit_code, result.output, None if isinstance(exc, SystemExit) else exc

    def writes(self) -> list[str]:
        return [f for f, *_ in self.emu.call_log if f in WRITES]


@contextmanager
def world_at(root: Path) -> Iterator[World]:
    """The repository under ``root``, a seeded emulator and the proxy in front of it."""
    repo = root / "repo"
    (repo / "cohorts").mkdir(parents=True)
    (repo / "cohorts" / "platforms.yaml").write_text(PLATFORMS, encoding="utf-8")
    for name, text in FILES.items():
        path = repo / "cohorts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    with MoodleEmulator(EmulatorConfig(token=TOKEN)) as emu, GarbageProxy(emu.url) as proxy:
        emu.seed(SEED)
        yield World(repo, emu, proxy)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with world_at(tmp_path) as world:
        yield world


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_the_world_plans_every_read_and_applies_every_kind_of_write(world: World) -> None:
    code, out, exc = world.run("plan", "-p", "prelude", "--now", NOW)
    assert exc is None and code == exitcodes.CHANGES, out
    assert set(PLAN_READS) <= set(world.proxy.seen), world.proxy.seen
    code, out, exc = world.run("apply", "-p", "prelude", "--now", NOW, "--allow-dirty")
    assert exc is None and code == exitcodes.OK, out
    assert {
        "core_cohort_create_cohorts", "core_cohort_update_cohorts",
        "core_cohort_add_cohort_members", "core_cohort_delete_cohort_members",
        "core_cohort_delete_cohorts", "core_group_create_groups",
        "local_ws_enrolcohort_add_instance", "enrol_manual_enrol_users",
    } <= set(world.writes())


# The kinds of issue 12: a number, null, a string, a row whose field has the wrong type.
GARBAGE = {
    "a number": ("42", "expected {outer}, got 42"),
    "null": ("null", "expected {outer}, got null"),
    "a string": ('"x"', 'expected {outer}, got "x"'),
}


def _outer(function: str) -> str:
    shape = returns.RETURNS[function]
    return "a list" if isinstance(shape, returns.Many) else "an object"


@pytest.mark.parametrize("function", PLAN_READS)
def test_plan_with_a_garbage_answer_is_one_line_naming_the_function(
    world: World, function: str
) -> None:
    for body, expected in GARBAGE.values():
        world.proxy.doctor(function, body)
        code, out, exc = world.run("plan", "-p", "prelude", "--now", NOW)
        assert exc is None, f"{body}: {type(exc).__name__}: {exc}"
        assert code == exitcodes.ERROR, (body, out)
        line = one_error_line(out)
        assert line == (
            f"error: {function}: answer: " + expected.format(outer=_outer(function))
        )
        assert world.proxy.doctored >= 1
    assert world.writes() == []


# One row per read, with one field of the wrong type (what the reader reads first).
BAD_ROWS = {
    "core_webservice_get_site_info": ({"functions": [{"name": 7}]},
                                      "answer.functions[0].name: expected a string, got 7"),
    "core_cohort_get_cohorts": ([{"id": "x", "name": "n", "idnumber": "man-x",
                                  "description": "", "visible": True}],
                                'answer[0].id: expected an integer, got "x"'),
    "core_cohort_get_cohort_members": ([{"cohortid": 1, "userids": ["7"]}],
                                       'answer[0].userids[0]: expected an integer, got "7"'),
    "core_user_get_users_by_field": ([{"id": 3}],
                                     "answer[0].username: missing (expected a string)"),
    "core_course_get_courses_by_field": ({"courses": [{"id": 2, "shortname": None}]},
                                         "answer.courses[0].shortname: expected a string, "
                                         "got null"),
    "local_ws_enrolcohort_get_instances": ({"id": -1, "data": [{"object": "enrol"}]},
                                           "answer.data[0].id: missing (expected an integer)"),
    "core_group_get_course_groups": ([{"id": 1, "name": ["G"]}],
                                     "answer[0].name: expected a string, got a list"),
    "core_enrol_get_enrolled_users": ([{"id": 5, "roles": [{"roleid": True}]}],
                                      "answer[0].roles[0].roleid: expected an integer, "
                                      "got true"),
}


@pytest.mark.parametrize("function", PLAN_READS)
def test_plan_with_a_row_of_the_wrong_type_names_the_field(world: World, function: str) -> None:
    body, where = BAD_ROWS[function]
    world.proxy.doctor(function, json.dumps(body))
    code, out, exc = world.run("plan", "-p", "prelude", "--now", NOW)
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code == exitcodes.ERROR
    assert one_error_line(out) == f"error: {function}: {where}"
    assert world.writes() == []


@pytest.mark.parametrize("function", PLAN_READS)
def test_apply_after_a_garbage_read_writes_nothing(world: World, function: str) -> None:
    world.proxy.doctor(function, "42")
    code, out, exc = world.run("apply", "-p", "prelude", "--now", NOW, "--allow-dirty")
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code == exitcodes.ERROR
    assert f"{function}: answer: expected" in one_error_line(out)
    assert world.writes() == []


APPLY_WRITES = (
    "core_cohort_create_cohorts",
    "core_cohort_update_cohorts",
    "core_cohort_add_cohort_members",
    "core_cohort_delete_cohort_members",
    "core_cohort_delete_cohorts",
    "core_group_create_groups",
    "local_ws_enrolcohort_add_instance",
    "enrol_manual_enrol_users",
)


@pytest.mark.parametrize("function", APPLY_WRITES)
def test_apply_with_a_garbage_write_answer_reports_that_action_failed(
    world: World, function: str
) -> None:
    # The write reached Moodle and committed; its answer is nonsense.
    world.proxy.doctor(function, '[{"id": "x"}]', forward=True)
    code, out, exc = world.run("apply", "-p", "prelude", "--now", NOW, "--allow-dirty")
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code == exitcodes.ERROR
    assert "Traceback" not in out
    failed = [line for line in out.splitlines() if line.lstrip().startswith("FAILED")]
    assert failed and all(f"{function}: answer" in line for line in failed), out
    # The next run finishes the work from Moodle's state.
    world.proxy.doctor(None, "")
    code, out, exc = world.run("apply", "-p", "prelude", "--now", NOW, "--allow-dirty")
    assert exc is None and code == exitcodes.OK, out
    code, out, exc = world.run("plan", "-p", "prelude", "--now", NOW)
    assert exc is None and code == exitcodes.OK, out


# -- the table itself ---------------------------------------------------------------------


def test_every_function_the_client_knows_has_a_return_structure() -> None:
    assert sorted(IS_READ) == sorted(returns.RETURNS)


def test_every_answer_a_real_moodle_gave_fits_its_declared_structure() -> None:
    checked = 0
    for line in TRANSCRIPT.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        function, answer = record.get("wsfunction"), record.get("response")
        if function not in returns.RETURNS or not isinstance(answer, (dict, list, type(None))):
            continue
        if isinstance(answer, dict) and "exception" in answer:
            continue
        assert returns.find_mismatch(function, answer) is None, (record["seq"], function)
        checked += 1
    assert checked > 100


def test_the_message_names_the_function_and_the_field() -> None:
    rows = [{"id": n, "name": "n", "idnumber": "i", "description": "", "visible": True}
            for n in range(3)]
    rows.append({**rows[0], "id": "x"})
    with pytest.raises(UnexpectedAnswer) as info:
        returns.check_answer("core_cohort_get_cohorts", rows)
    assert str(info.value) == 'core_cohort_get_cohorts: answer[3].id: expected an integer, got "x"'
    assert isinstance(info.value, MoodleError) and info.value.function == "core_cohort_get_cohorts"


def test_void_functions_answer_null_only() -> None:
    returns.check_answer("core_cohort_delete_cohorts", None)
    with pytest.raises(UnexpectedAnswer, match=r"answer: expected null \(no return value\), got "):
        returns.check_answer("core_cohort_delete_cohorts", {"warnings": []})


def test_long_values_are_cut_in_the_message() -> None:
    text = returns.Mismatch("answer.x", returns.INT, "y" * 500).text()
    assert len(text) < 100 and text.endswith("…")


# -- bodies that are not answers at all -----------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "core_cohort_get_cohorts: answer: expected a list, got an empty body"),
        ("[" * 100_000, "core_cohort_get_cohorts: [protocolerror] answer is JSON nested too "
                        "deeply to read"),
        ("<html><body>Proxy error</body></html>", "core_cohort_get_cohorts: [protocolerror] "
         "answer is not JSON: '<html><body>Proxy error</body></html>'"),
        ('[{"id": 1, "na', "core_cohort_get_cohorts: [protocolerror] answer is not JSON: "
                          "'[{\"id\": 1, \"na'"),
        ("Infinity", "core_cohort_get_cohorts: answer: expected a list, got Infinity"),
    ],
)
def test_bodies_that_are_not_answers(body: str, message: str) -> None:
    client, _ = make([FakeResponse(body)])
    with pytest.raises(MoodleError) as info:
        client.get_cohorts()
    assert str(info.value) == message


def test_an_error_body_of_any_shape_is_one_line() -> None:
    deep: Any = "x"
    for _ in range(400):
        deep = [deep]
    body = {"exception": "moodle_exception", "errorcode": 42, "message": {"nested": deep},
            "debuginfo": ["a", "b"]}
    client, _ = make([body])
    with pytest.raises(MoodleError) as info:
        client.get_cohorts()
    assert str(info.value) == "core_cohort_get_cohorts: [42] an object (a list)"


@pytest.mark.parametrize("rows", [0, 2])
def test_a_create_answering_another_number_of_rows_is_refused(rows: int) -> None:
    """Moodle answers one row per item created; pairing ids with items needs that."""
    answer = [{"id": 10 + n, "courseid": 2, "name": f"G{n}"} for n in range(rows)]
    client, _ = make([answer])
    with pytest.raises(UnexpectedAnswer) as info:
        client.create_groups([NewGroup(2, "G")])
    assert str(info.value) == (
        f"core_group_create_groups: answer: expected 1 row(s), one per item sent, got {rows}"
    )


def test_apply_with_a_create_answering_no_row_reports_that_action_failed(world: World) -> None:
    world.proxy.doctor("core_group_create_groups", "[]", forward=True)
    code, out, exc = world.run("apply", "-p", "prelude", "--now", NOW, "--allow-dirty")
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code == exitcodes.ERROR
    assert ("FAILED create_group C1/Tuteurs: core_group_create_groups: answer: expected 1 "
            "row(s), one per item sent, got 0") in out


# -- declarations that break a rule of the whole set: validate refuses them, plan must not
# -- crash on them (plan does not run the lint rules)

RULE_BREAKERS = {
    "manual-needs-expires": {"prelude/syncs/C1.yaml": FILES["prelude/syncs/C1.yaml"].replace(
        "            expires: 2027-01-15\n", "")},
    "duplicate-sync": {"prelude/syncs/C1.yaml": FILES["prelude/syncs/C1.yaml"].replace(
        "          - cohort: man-new\n            role: teacher",
        "          - cohort: man-tuteurs\n            role: student")},
    "duplicate-idnumber": {"prelude/cohorts/man-copy.yaml": FILES["prelude/cohorts/man-new.yaml"]},
    "malformed-username": {"prelude/cohorts/man-new.yaml": FILES["prelude/cohorts/man-new.yaml"]
                           .replace("[alice]", "[Alice, 'jean dupont', alice]")},
    "duplicate-member": {"prelude/cohorts/man-new.yaml": FILES["prelude/cohorts/man-new.yaml"]
                         .replace("[alice]", "[alice, alice]")},
    "unknown-cohort": {"prelude/syncs/C1.yaml": FILES["prelude/syncs/C1.yaml"].replace(
        "cohort: man-new", "cohort: man-nowhere")},
    "file-name": {"prelude/cohorts/man-new.yaml": FILES["prelude/cohorts/man-new.yaml"].replace(
        "idnumber: man-new", "idnumber: man-other")},
    "idnumber-prefix": {"prelude/cohorts/man-new.yaml": FILES["prelude/cohorts/man-new.yaml"]
                        .replace("idnumber: man-new", "idnumber: outside")},
    "sync-too-long": {"prelude/syncs/C1.yaml": FILES["prelude/syncs/C1.yaml"].replace(
        "expires: 2027-01-15", "expires: 2029-01-15")},
    "expired": {"prelude/syncs/C1.yaml": FILES["prelude/syncs/C1.yaml"].replace(
        "expires: 2027-01-15", "expires: 2020-01-15")},
}


@pytest.mark.parametrize("rule", sorted(RULE_BREAKERS))
def test_plan_on_declarations_breaking_a_rule_never_crashes(world: World, rule: str) -> None:
    for name, text in RULE_BREAKERS[rule].items():
        (world.repo / "cohorts" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    validate = CliRunner().invoke(main, ["--repo", str(world.repo), "validate", "--today",
                                         NOW[:10]])
    assert f": {rule}: " in validate.output, validate.output
    code, out, exc = world.run("plan", "-p", "prelude", "--now", NOW)
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code in (0, 1, 2, 3, 7), out  # 7: a plan left incomplete by what Moodle answered
    assert world.writes() == []
