"""Bad input on the command line never ends in a traceback (issue 12): bad option values are
usage errors naming the option, saved plans that are not plans are one line and write
nothing, every error goes through one mapping to an exit code, and --debug shows the rest."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.cliworld import NOW, TOKEN, CliWorld, cli_world, make_repo

from reconciler.cli import exitcodes, main
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.types import ManualEnrolment, NewCourse, NewUser


@pytest.fixture
def world(tmp_path: Path) -> Iterator[CliWorld]:
    with cli_world(tmp_path) as w:
        yield w


def run(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--repo", str(repo), *args])


def one_clean_line(result: Result) -> str:
    """The run's only output line; it failed cleanly (exit 1, no traceback)."""
    assert result.exit_code == exitcodes.ERROR, result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines, "an error must say something"
    return lines[-1]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["validate", "--today", "20/01/2027"], "--today"),
        (["expiring", "--today", "2027-13-01"], "--today"),
        (["plan", "-p", "prelude", "--now", "tomorrow"], "--now"),
        (["apply", "-p", "prelude", "--now", "2026-11-31T00:00:00Z"], "--now"),
        (["expiring", "--within", "2x"], "--within"),
        (["expiring", "--within", "fortnight"], "--within"),
        (["emulator", "serve", "--token", "t", "--port", "70000"], "--port"),
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_option(
    tmp_path: Path, args: list[str], option: str
) -> None:
    result = run(make_repo(tmp_path), *args)
    assert result.exit_code == exitcodes.ERROR, result.output  # never 2, "changes pending"
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_durations_take_days_and_weeks(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    days = run(repo, "expiring", "--within", "14d", "--today", "2027-01-10", "--format", "json")
    weeks = run(repo, "expiring", "--within", "2w", "--today", "2027-01-10", "--format", "json")
    assert days.exit_code == weeks.exit_code == 0, weeks.output
    assert json.loads(weeks.stdout) == json.loads(days.stdout) != []


def test_unknown_platform_is_one_line_naming_the_known_ones(world: CliWorld) -> None:
    line = one_clean_line(world.run("plan", "--platform", "nowhere", "--now", NOW))
    assert line == "error: unknown platform 'nowhere' (known: collegium, ecampus, prelude)"


def test_a_path_that_matches_no_declaration_is_an_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    line = one_clean_line(run(repo, "validate", str(repo / "cohorts" / "nope.yaml")))
    assert line.startswith("error: ") and "nope.yaml: no declaration file there" in line
    ok = run(repo, "validate", str(repo / "cohorts" / "prelude"))
    assert ok.exit_code == 0 and "files checked" in ok.output


def test_emulator_serve_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            main, ["emulator", "serve", "--token", "t", "--port", str(port)]
        )
    line = one_clean_line(result)
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")


def test_usage_mistakes_exit_1_not_2(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    assert run(repo, "plan").exit_code == exitcodes.ERROR  # --platform missing
    assert run(repo, "apply").exit_code == exitcodes.ERROR  # neither plan nor --platform
    assert run(repo, "no-such-command").exit_code == exitcodes.ERROR


# -- saved plans --------------------------------------------------------------------------

BAD_PLANS = {
    "array": "[]",
    "null": "null",
    "number": "1",
    "string": '"x"',
    "huge number": "1e999",
    "NaN": "NaN",
    "deep nesting": "[" * 100_000,
    "truncated": '{"format_version": 1, "platform": ',
    "not UTF-8": b"\xff\xfe{}",
    "empty": "",
}


def _saved_plan(world: CliWorld, tmp_path: Path) -> dict:
    path = tmp_path / "good.json"
    result = world.run("plan", "-p", "prelude", "--now", NOW, "--out", str(path))
    assert result.exit_code == exitcodes.CHANGES, result.output
    return json.loads(path.read_text(encoding="utf-8"))


def _tampered(plan: dict) -> dict[str, dict]:
    wrong_type = json.loads(json.dumps(plan))
    wrong_type["actions"][0]["details"]["visible"] = "yes"
    unknown_kind = json.loads(json.dumps(plan))
    unknown_kind["actions"][0]["kind"] = "drop_database"
    digest = json.loads(json.dumps(plan))
    digest["actions"][1]["details"]["usernames"].append("intruder")
    missing = json.loads(json.dumps(plan))
    del missing["actions"][0]["details"]["name"]
    top_type = json.loads(json.dumps(plan))
    top_type["warnings"] = {"not": "a list"}
    return {
        "wrong field type": wrong_type,
        "unknown kind": unknown_kind,
        "tampered digest": digest,
        "missing field": missing,
        "wrong top-level type": top_type,
    }


def test_saved_plans_that_are_not_plans_are_one_line_and_write_nothing(
    world: CliWorld, tmp_path: Path
) -> None:
    cases: dict[str, str | bytes] = dict(BAD_PLANS)
    cases.update({k: json.dumps(v) for k, v in _tampered(_saved_plan(world, tmp_path)).items()})
    approvals = world.repo / ".reconciler" / "approvals.json"
    said: dict[str, str] = {}
    for name, content in cases.items():
        path = tmp_path / "bad.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        for command in (
            ["apply", str(path), "--now", NOW],
            ["approve", str(path), "--by", "me", "--now", NOW],
            ["mr-note", str(path), "--dry-run"],
        ):
            result = world.run(*command)
            line = one_clean_line(result)
            assert line.startswith(f"error: {path}: "), (name, command[0], result.output)
            assert len(result.output.strip().splitlines()) == 1, (name, result.output)
            said[name] = line
        assert world.emu.write_calls() == {}, name
        assert not approvals.exists(), name
    assert "its digest does not match its content" in said["tampered digest"]
    assert "'drop_database' is not one of" in said["unknown kind"]
    assert "at actions/0/details/visible: 'yes' is not of type 'boolean'" in said["wrong field type"]
    assert "nested deeper than" in said["deep nesting"]


# -- one mapping, --debug -----------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    world: CliWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr("reconciler.cli.plan.make_plan", broken)
    line = one_clean_line(world.run("plan", "-p", "prelude", "--now", NOW))
    assert line == (
        "error: unexpected RuntimeError: a bug over two lines (run with --debug for details)"
    )
    result = CliRunner().invoke(
        main,
        ["--repo", str(world.repo), "--debug", "plan", "-p", "prelude", "--now", NOW],
        env=world.env,
    )
    assert result.exit_code == exitcodes.ERROR
    assert "Traceback (most recent call last)" in result.output
    assert 'raise RuntimeError("a bug' in result.output


def test_reconciler_errors_carry_their_exit_codes() -> None:
    from reconciler.errors import ExitCode, PlanFileError, ReconcilerError, StalePlan
    from reconciler.moodle.errors import MoodleError
    from reconciler.planning.failsafe import FailsafeTripped

    assert issubclass(MoodleError, ReconcilerError) and MoodleError.exit_code == ExitCode.ERROR
    assert StalePlan.exit_code == exitcodes.STALE == 5
    assert FailsafeTripped.exit_code == exitcodes.FAILSAFE == 3
    assert PlanFileError.exit_code == exitcodes.ERROR == 1


def test_apply_prints_one_line_per_action_in_a_ci_log(world: CliWorld) -> None:
    """stderr is not a terminal here, as in a CI job: each applied action is one line."""
    result = world.run("apply", "-p", "prelude", "--now", NOW)
    assert result.exit_code == exitcodes.OK, result.output
    assert result.stderr.splitlines() == [
        "[1/3] create_cohort man-prepa-ifsi: ok",
        "[2/3] add_members man-prepa-ifsi: ok",
        "[3/3] enrol_manual PRELUDE-METHODO/man-prepa-ifsi/student: ok",
    ]


def test_a_stale_plan_says_exactly_what_moved(world: CliWorld, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert world.run("plan", "-p", "prelude", "--now", NOW, "--out", str(plan_file)).exit_code == 2
    with MoodleClient(world.emu.url, TOKEN) as client:  # someone changes Moodle in between
        [gone] = client.get_users_by_field("username", ["fc-crobert"])
        client.delete_users([int(gone["id"])])
        client.create_courses([NewCourse(fullname="Other", shortname="OTHER", categoryid=1)])
    result = world.run("apply", str(plan_file), "--now", NOW)
    assert result.exit_code == exitcodes.STALE
    assert result.stderr.splitlines() == [
        "error: stale plan, nothing applied: Moodle's state changed since the plan was made. "
        "Make a new plan.",
        "What moved (saved plan → a plan made now):",
        f"~ add_members man-prepa-ifsi: usernames -fc-crobert; userids -{gone['id']}",
        f"~ enrol_manual PRELUDE-METHODO/man-prepa-ifsi/student: usernames -fc-crobert; "
        f"userids -{gone['id']}",
    ]
    assert world.emu.write_calls() == {
        "core_user_delete_users": 1, "core_course_create_courses": 1,
    }  # fmt: skip

    # Moodle moved where no action looks: the actions are the same, the data is not. (A
    # course nobody declares is not read, so creating one moves nothing: a teacher enrolled
    # by hand in the course the plan reads does.)
    assert world.run("plan", "-p", "prelude", "--now", NOW, "--out", str(plan_file)).exit_code == 2
    with MoodleClient(world.emu.url, TOKEN) as client:
        [teacher] = client.create_users([NewUser(username="prof-x", firstname="P", lastname="X",
                                                 email="prof-x@x.fr", password="Prof-x-1!")])
        [course] = client.get_courses_by_field("shortname", "PRELUDE-METHODO")
        client.manual_enrol([ManualEnrolment(roleid=3, userid=int(teacher["id"]),
                                             courseid=int(course["id"]))])
    result = world.run("apply", str(plan_file), "--now", NOW)
    assert result.exit_code == exitcodes.STALE
    assert result.stderr.splitlines()[1] == (
        "The actions are the same; only the data they were computed on moved."
    )
