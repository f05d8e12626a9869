"""Honest signals (issue 9, items 5 and 7; DESIGN §5.8), through the CLI.

* Nothing planned is silently skipped: every warning of the plan is printed by ``apply``
  too, and a plan that cannot do what the declarations ask (the plugin missing, a declared
  course or cohort missing in Moodle...) makes ``plan`` and ``apply`` exit 7, after doing
  everything else.
* A rollover says it is a rollover: the plan's first lines name it (from → to), the counts it
  moves and the approval the failsafe expects; every note of the sources' health too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import git
from support.world import World, write_platforms

from reconciler.cli import exitcodes

NOW = "2026-11-28T02:00:00Z"
AFTER_EXPIRY = "2027-02-01T10:00:00Z"  # man-retardataires-l1-histoire and its sync expired
SYNCS = Path("cohorts/ecampus/syncs")


def _commit(world: World, message: str) -> None:
    repo = git.Repo(world.repo)
    repo.git.add(A=True)
    repo.index.commit(message)


def _add_sync_file(world: World, course: str, cohort: str) -> None:
    (world.repo / SYNCS / f"{course}.yaml").write_text(
        f"course: {course}\nowners: [a.b@unicaen.fr]\nsyncs:\n"
        f"  - cohort: {cohort}\n    role: student\n    reason: test\n",
        encoding="utf-8",
    )


def _warning_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("warning: ")]


# -- item 7: nothing planned is silently skipped ---------------------------------------------


def test_plugin_missing_is_incomplete_never_a_silent_success(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    enrolled = world.enrolled("HIST-L1-MOD")
    assert {"e22401187", "e22403350"} <= enrolled  # through the sync that expires
    world.emu.set_config(plugin=False)  # local_ws_enrolcohort uninstalled (or out of service)

    code, out = world.run("plan", "-p", "ecampus", "--now", AFTER_EXPIRY)
    assert code == exitcodes.INCOMPLETE, out
    code, out = world.run("apply", "-p", "ecampus", "--now", AFTER_EXPIRY)
    assert code == exitcodes.INCOMPLETE, out
    assert "Applied " in out and "Traceback" not in out
    warnings = _warning_lines(out)
    # The expired sync cannot be disabled: said, not reported as done.
    assert any("plugin-missing" in w and "man-retardataires-l1-histoire" in w for w in warnings)
    assert out.splitlines()[-1].startswith("incomplete: "), out
    # The expired cohort is kept: without the plugin nobody can tell which instances use it,
    # and deleting it would delete them and unenrol their users.
    assert "man-retardataires-l1-histoire" in world.cohorts()
    assert {"e22401187", "e22403350"} <= world.enrolled("HIST-L1-MOD", active=False)

    world.emu.set_config(plugin=True)  # back: the next run finishes the work
    code, out = world.run("apply", "-p", "ecampus", "--now", AFTER_EXPIRY)
    assert code == exitcodes.OK, out
    assert not {"e22401187", "e22403350"} & world.enrolled("HIST-L1-MOD", active=True)
    assert world.run("plan", "-p", "ecampus", "--now", AFTER_EXPIRY)[0] == exitcodes.OK


def test_a_declared_course_missing_in_moodle_makes_plan_and_apply_exit_7(world: World) -> None:
    _add_sync_file(world, "HIST-L2-NOUVEAU", "etp-L2HIS-101")
    _commit(world, "a sync for a course not created yet")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE, out
    assert "course-missing" in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE, out
    assert any("course HIST-L2-NOUVEAU does not exist" in w for w in _warning_lines(out))
    # Everything else was applied.
    assert world.cohort_members("etp-L1HIS-101")
    assert world.run("plan", "-p", "ecampus", "--now", NOW)[0] == exitcodes.INCOMPLETE


def test_a_declared_cohort_nobody_produces_makes_apply_exit_7(world: World) -> None:
    _add_sync_file(world, "OTHER", "etp-NOPE-999")  # a general cohort no IA produces
    _commit(world, "a sync of a cohort that does not exist")
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE, out
    assert any("cohort-missing" in w and "etp-NOPE-999" in w for w in _warning_lines(out))


def test_apply_prints_every_warning_of_the_plan(world: World) -> None:
    code, plan_out = world.run("plan", "-p", "ecampus", "--now", "2027-01-20T10:00:00Z")
    planned = [line.strip()[2:] for line in plan_out.splitlines() if line.startswith("  ! ")]
    assert planned, plan_out  # "expiring" at least
    code, out = world.run("apply", "-p", "ecampus", "--now", "2027-01-20T10:00:00Z")
    assert code == exitcodes.OK, out
    assert sorted(w.removeprefix("warning: ") for w in _warning_lines(out)) == sorted(planned)


def test_unhealthy_wins_over_incomplete_and_failsafe_over_unhealthy(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    _add_sync_file(world, "HIST-L2-NOUVEAU", "etp-L2HIS-101")
    _commit(world, "a sync for a course not created yet")
    code, _ = world.run("plan", "-p", "ecampus", "--now", NOW, env={"APOGEE_URL": "sqlite:///x"})
    assert code == exitcodes.UNHEALTHY  # 4 > 7: the cause, not its consequence

    # A manual cohort emptied (tripping the per-cohort failsafe) while sources are down.
    path = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"members:\n(  - .*\n)+", "members: []\n", text), encoding="utf-8")
    write_platforms(world.repo, {"platforms": {"ecampus": {"failsafes": {
        "small_cohort_size": 1, "per_cohort_removal_floor": 0}}}})
    _commit(world, "empty a manual cohort")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, env={"APOGEE_URL": "sqlite:///x"})
    assert code == exitcodes.FAILSAFE, out  # 3 > 4: nothing will be applied at all
    code, _ = world.run("apply", "-p", "ecampus", "--now", NOW, env={"APOGEE_URL": "sqlite:///x"})
    assert code == exitcodes.FAILSAFE


def test_saved_plan_json_says_it_is_incomplete(world: World, tmp_path: Path) -> None:
    _add_sync_file(world, "HIST-L2-NOUVEAU", "etp-L2HIS-101")
    _commit(world, "a sync for a course not created yet")
    out_file = tmp_path / "plan.json"
    code, _ = world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(out_file))
    assert code == exitcodes.INCOMPLETE
    saved = json.loads(out_file.read_text(encoding="utf-8"))
    assert saved["incomplete"] == [
        w for w in saved["warnings"] if w["code"] == "course-missing"
    ]
