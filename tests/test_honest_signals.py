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
    # The pipeline's commands say the same (README: the reconcile ci exit codes).
    code, out = world.run("ci", "apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE, out
    assert out.splitlines()[-1].startswith("incomplete: 1 thing the declarations ask"), out


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


# -- item 5: a rollover says it is a rollover --------------------------------------------------


def _moves_from_actions(plan: dict) -> dict[str, int]:
    """What the JSON plan's actions do to the general cohorts (etp-…), counted here apart."""
    moves = dict.fromkeys(("cohorts_created", "cohorts_emptied", "cohorts_deleted",
                           "memberships_added", "memberships_removed"), 0)
    gaining, emptied = set(), set()
    for action in plan["actions"]:
        d, kind = action["details"], action["kind"]
        cohort = d.get("cohort") or d.get("idnumber") or ""
        if not cohort.startswith("etp-"):
            continue
        if kind == "create_cohort":
            moves["cohorts_created"] += 1
        elif kind == "add_members":
            moves["memberships_added"] += len(d["usernames"])
            gaining.add(cohort)
        elif kind == "remove_members":
            moves["memberships_removed"] += len(d["usernames"])
            if len(d["usernames"]) == d["size_before"]:
                emptied.add(cohort)
        elif kind == "delete_cohort":
            moves["cohorts_deleted"] += 1
            moves["memberships_removed"] += d["members"]
    moves["cohorts_emptied"] = len(emptied - gaining)
    return moves


def test_a_rollover_names_itself_first_in_text_markdown_json_and_the_note(
    world: World, tmp_path: Path
) -> None:
    write_platforms(world.repo, {"academic_year": "2025"})  # the fixture holds 2025 and 2026
    _commit(world, "academic year 2025")
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out  # the last good run is now 2025's
    write_platforms(world.repo, {"academic_year": "2026"})
    _commit(world, "rollover: academic year 2026")

    plan_file, md_file = tmp_path / "plan.json", tmp_path / "plan.md"
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file),
                          "--markdown-out", str(md_file))
    assert code == exitcodes.FAILSAFE, out  # hundreds of removals: the failsafes hold it
    saved = json.loads(plan_file.read_text(encoding="utf-8"))
    moves = saved["sources"]["rollover"]["moves"]
    assert saved["sources"]["rollover"]["from"] == "2025"
    assert saved["sources"]["rollover"]["to"] == "2026"
    expected = _moves_from_actions(saved)
    assert {k: moves[k] for k in expected} == expected
    assert moves["memberships_removed"] > 50 and moves["memberships_added"] > 50

    lines = out.splitlines()
    assert lines[0].startswith("Plan: ")
    assert lines[1] == (
        "Academic-year rollover 2025 → 2026 (platforms.yaml): "
        f"{moves['cohorts_created']} general cohort{'s' * (moves['cohorts_created'] != 1)} "
        f"created, {moves['cohorts_emptied']} emptied, {moves['cohorts_deleted']} deleted; "
        f"{moves['memberships_added']} memberships added, {moves['memberships_removed']} "
        "removed."
    )
    assert lines[2].startswith("The failsafes stop this plan: apply refuses it until its "
                               f"digest {saved['digest']} is approved")
    assert lines[3].startswith("Sources: academic-year rollover: the last good run was for 2025")
    assert saved["notices"] == lines[1:1 + len(saved["notices"])]

    markdown = md_file.read_text(encoding="utf-8").splitlines()
    assert markdown[0].startswith("### 🛑 `ecampus`: Plan: ")
    assert markdown[2:2 + len(saved["notices"])] == [f"> - {n}" for n in saved["notices"]]

    code, note = world.run("mr-note", str(plan_file), "--dry-run")
    assert code == exitcodes.OK, note
    assert f"> - {lines[1]}" in note.splitlines()[:6]

    # The approval the first lines name lets exactly this plan through.
    assert world.run("approve", str(plan_file), "--by", "admin", "--now", NOW)[0] == 0
    code, out = world.run("apply", str(plan_file), "--now", NOW)
    assert code == exitcodes.OK, out
    printed = [line for line in out.splitlines() if not line.startswith("[")]  # no progress
    assert printed[0].startswith("Plan: ")
    assert printed[1].startswith("Academic-year rollover 2025 → 2026")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and "rollover" not in out, out  # recorded: no longer news


def test_every_note_of_the_sources_reaches_the_plan_s_first_lines(world: World) -> None:
    write_platforms(world.repo, {"academic_year": "2025"})  # APOGÉE's open year is 2026
    _commit(world, "academic year 2025")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, "--format", "json")
    assert code == exitcodes.CHANGES, out
    plan = json.loads(out)
    notes = plan["sources"]["notes"]
    assert "APOGÉE's open year is 2026; platforms.yaml says 2025 (used as is)" in notes
    assert "no last good run recorded: counts not compared" in notes
    assert plan["notices"] == [f"Sources: {n}" for n in notes]
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert out.splitlines()[1:1 + len(notes)] == [f"Sources: {n}" for n in notes]
