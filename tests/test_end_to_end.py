"""End to end through the CLI: `reconcile plan/apply/approve` against a Moodle emulator,
APOGÉE in sqlite and a real slapd, exactly as the nightly job runs against production.

The ``world`` fixture (tests/conftest.py, tests/support/world.py) holds the repository, the
sources and the emulator.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import git
import yaml
from support.world import TOKEN, World, shipped_seed

from reconciler.cli import exitcodes
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.planning.state import COHORT_MARKER

NOW = "2026-11-28T02:00:00Z"


def test_first_apply_from_empty_moodle_then_nothing_to_do(world: World) -> None:
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES, out
    assert out.splitlines()[0].startswith("Plan: ")
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert " 0 failed, 0 skipped" in out

    expected = {f"e{etu}" for _, etu in world.vet_members("L1HIS-101")}
    members = world.cohort_members("etp-L1HIS-101")
    assert members and members <= expected  # students without a directory account are pending
    assert members <= world.enrolled("HIST-L1-MOD")
    assert world.cohort_members("man-retardataires-l1-histoire") == {"e22401187", "e22403350"}
    assert {"e22409001", "e22409002", "e22409003"} <= world.enrolled("HIST-L1-MOD")

    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert out.splitlines()[0] == "Plan: no changes."
    journal = (world.repo / ".reconciler" / "journal.jsonl").read_text().splitlines()
    assert journal and all(json.loads(line)["result"] == "ok" for line in journal)


def test_student_dropping_out_leaves_cohort_and_course(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    [gone] = world.cancel_ia("L1HIS-101", 1)
    assert gone in world.cohort_members("etp-L1HIS-101")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES and "remove 1 of" in out and gone in out
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    assert gone not in world.cohort_members("etp-L1HIS-101")
    assert gone not in world.enrolled("HIST-L1-MOD", active=False)  # unenrolaction 0


def test_expiring_soon_is_warned_and_expired_sync_is_disabled(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    code, out = world.run("plan", "-p", "ecampus", "--now", "2027-01-20T10:00:00Z")
    assert "; 1 sync expires within 14 days." in out.splitlines()[0]
    assert (
        "expiring: HIST-L1-MOD: sync of man-retardataires-l1-histoire (student) expires on 2027-01-31"
        in out
    )

    late = "2027-02-01T10:00:00Z"
    code, out = world.run("plan", "-p", "ecampus", "--now", late)
    assert code == exitcodes.CHANGES
    assert "- disable cohort sync of man-retardataires-l1-histoire as student" in out
    assert world.run("apply", "-p", "ecampus", "--now", late)[0] == exitcodes.OK
    assert not ({"e22401187", "e22403350"} & world.enrolled("HIST-L1-MOD", active=True))
    assert world.run("plan", "-p", "ecampus", "--now", late)[1].startswith("Plan: no changes")


def test_failsafe_stops_apply_until_that_exact_plan_is_approved(
    world: World, tmp_path: Path
) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    size = len(world.cohort_members("etp-L1HIS-101"))
    gone = world.cancel_ia("L1HIS-101", size)  # the whole étape vanishes from APOGÉE
    before = world.cohort_members("etp-L1HIS-101")

    plan_file = tmp_path / "plan.json"
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))
    assert code == exitcodes.FAILSAFE, out
    assert "FAILSAFE TRIPPED" in out and "per_cohort_removal_percent [etp-L1HIS-101]" in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.FAILSAFE
    assert world.cohort_members("etp-L1HIS-101") == before  # nothing applied

    code, out = world.run("approve", str(plan_file), "--by", "admin", "--now", NOW)
    assert code == 0 and "Approved sha256:" in out
    code, out = world.run("apply", str(plan_file), "--now", NOW)
    assert code == exitcodes.OK, out
    assert "approved by admin" in out
    assert not (set(gone) & world.cohort_members("etp-L1HIS-101"))


def test_approval_covers_only_its_own_plan(world: World, tmp_path: Path) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    world.cancel_ia("L1HIS-101", len(world.cohort_members("etp-L1HIS-101")))
    plan_file = tmp_path / "plan.json"
    assert world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))[0] == 3
    assert world.run("approve", str(plan_file), "--by", "admin", "--now", NOW)[0] == 0
    world.cancel_ia("L2HIS-101", len(world.vet_members("L2HIS-101")))  # a different plan now
    code, _ = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.FAILSAFE


def test_stale_plan_is_refused(world: World, tmp_path: Path) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    world.cancel_ia("L1HIS-101", 1)
    plan_file = tmp_path / "plan.json"
    assert world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))[0] == 2
    with world.client() as c:  # someone changes Moodle in between
        cohort = next(
            x for x in c.get_cohorts() if x["idnumber"] == "man-retardataires-l1-histoire"
        )
        user = c.get_users_by_field("username", ["e22409001"])[0]
        c.add_cohort_members([(int(cohort["id"]), int(user["id"]))])
    code, out = world.run("apply", str(plan_file), "--now", NOW)
    assert code == exitcodes.STALE
    assert "Moodle's state changed" in out


def test_unhealthy_source_leaves_general_cohorts_alone(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    before = world.cohort_members("etp-L1HIS-101")
    with sqlite3.connect(world.apogee) as conn:  # APOGÉE answers nothing for the year
        conn.execute("DELETE FROM ins_adm_etp WHERE cod_anu = '2026'")
    manual = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    manual.write_text(manual.read_text().replace("  - e22409003\n", ""), encoding="utf-8")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.UNHEALTHY, out
    assert "sources-unhealthy" in out and "etp-L1HIS-101" not in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW, "--allow-dirty")
    assert code == exitcodes.UNHEALTHY, out
    assert world.cohort_members("etp-L1HIS-101") == before
    assert "e22409003" not in world.cohort_members("man-auditeurs-libres-histoire")


def test_unmanaged_cohorts_and_instances_are_untouched(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    with world.client() as c:
        hand = next(x for x in c.get_cohorts() if x["idnumber"] == "man-fait-main")
        assert COHORT_MARKER not in (hand["description"] or "")
        syncs = [i for i in c.cohort_sync_instances(-1) if i.cohortid == int(hand["id"])]
        assert len(syncs) == 1 and syncs[0].status == 0
    assert world.cohort_members("man-fait-main") == {"e22401187"}
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and "Unmanaged (left alone): 1" in out


def test_moodle_fault_mid_apply_then_clean_rerun(world: World) -> None:
    world.emu.inject_fault("exception", function="local_ws_enrolcohort_add_instance", on_call=1)
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.ERROR
    assert "FAILED create_sync" in out
    assert world.cohort_members("man-retardataires-l1-histoire")  # independent work went on
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes")


def test_declaration_error_plans_nothing(world: World) -> None:
    bad = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    bad.write_text("idnumber: [broken\n", encoding="utf-8")
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW, "--allow-dirty")
    assert code == exitcodes.ERROR and "declarations have errors" in out
    assert world.emu.call_counts.get("core_cohort_create_cohorts", 0) == 0


def test_plan_records_commit_and_dirty_tree_is_refused(world: World, tmp_path: Path) -> None:
    head = git.Repo(world.repo).head.commit.hexsha
    plan_file = tmp_path / "plan.json"
    world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))
    saved = json.loads(plan_file.read_text())
    assert (saved["commit"], saved["dirty"]) == (head, False)
    assert saved["format_version"] == 1 and saved["digest"].startswith("sha256:")

    extra = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-nouveaux.yaml"
    extra.write_text(
        "idnumber: man-nouveaux\nname: Nouveaux\nowners: [a@b.fr]\nmembers: [e22409001]\n"
    )
    world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))
    assert json.loads(plan_file.read_text())["dirty"] is True
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.ERROR and "uncommitted changes" in out
    assert world.emu.call_counts.get("core_cohort_create_cohorts", 0) == 0


def test_changed_since_focuses_the_report_on_the_merge_request(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    base = git.Repo(world.repo).head.commit.hexsha
    world.cancel_ia("L1HIS-101", 1)  # drift from the sources, not from this merge request
    sync_file = world.repo / "cohorts" / "ecampus" / "syncs" / "HIST-L1-MOD.yaml"
    sync_file.write_text(
        sync_file.read_text() + "  - cohort: etp-L1HIS-102\n    role: student\n"
        "    reason: distance students too\n"
    )
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, "--changed-since", base)
    assert code == exitcodes.CHANGES
    lines = out.splitlines()
    assert lines[0].startswith("Plan: 1 to add, 0 to change, 1 to remove")
    assert lines[1].startswith(f"Focus: the changes declared since {base} (1 of 2 actions)")
    assert "cohort sync of etp-L1HIS-102 as student" in out
    assert "remove 1 of" not in out


def test_accounts_are_created_when_enabled(world: World) -> None:
    platforms = world.repo / "cohorts" / "platforms.yaml"
    doc = yaml.safe_load(platforms.read_text(encoding="utf-8"))
    doc["platforms"]["ecampus"]["accounts"] = {"create": True, "auth": "ldap"}
    platforms.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    git.Repo(world.repo).git.commit("-am", "create accounts")
    newcomer = world.data.students[0].login  # first student: a member of the first VET
    with world.client() as c:
        c.delete_users([int(c.get_users_by_field("username", [newcomer])[0]["id"])])
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    with world.client() as c:
        [user] = c.get_users_by_field("username", [newcomer])
        assert user["auth"] == "ldap"
    assert newcomer in world.cohort_members("etp-L1HIS-101")


def test_missing_or_wrong_token_is_a_clear_error_that_never_shows_the_token(world: World) -> None:
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, env={"ECAMPUS_TOKEN": ""})
    assert code == exitcodes.ERROR and "set the environment variable ECAMPUS_TOKEN" in out
    secret = "s3cr3t-wrong-token-0123456789"
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW, env={"ECAMPUS_TOKEN": secret})
    assert code == exitcodes.ERROR and "nothing applied" in out
    assert secret not in out
    assert world.emu.call_counts.get("core_cohort_create_cohorts", 0) == 0


def test_read_only_token_plans_everything_but_cannot_apply(tmp_path: Path, world: World) -> None:
    reads = [
        "core_webservice_get_site_info",
        "core_cohort_get_cohorts",
        "core_cohort_get_cohort_members",
        "core_user_get_users_by_field",
        "core_course_get_courses_by_field",
        "core_group_get_course_groups",
        "core_enrol_get_enrolled_users",
        "local_ws_enrolcohort_get_instances",
    ]
    with MoodleEmulator(EmulatorConfig(token=TOKEN, functions=reads)) as readonly:
        readonly.seed(shipped_seed(world.data))
        env = {"ECAMPUS_URL": readonly.url}
        code, out = world.run("plan", "-p", "ecampus", "--now", NOW, env=env)
        assert code == exitcodes.CHANGES, out
        assert "+ cohort sync of etp-L1HIS-101 as student" in out and "plugin-missing" not in out
        code, out = world.run("apply", "-p", "ecampus", "--now", NOW, env=env)
        assert code == exitcodes.ERROR and "nothing applied" in out
        assert "may not call core_cohort_add_cohort_members, core_cohort_create_cohorts" in out
        assert set(readonly.call_counts) <= set(reads)  # not one write was attempted
