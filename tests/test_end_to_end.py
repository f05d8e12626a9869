"""End to end through the CLI: `reconcile plan/apply/approve` against Moodle, APOGÉE in
sqlite and a real slapd, exactly as the nightly job runs against production.

The scenarios that use this module's ``world`` run on both Moodle backends through the same
code: the project's emulator and the real Moodle 4.5 site (``backend`` fixture; the real one
is skipped without a site, required in CI), seeded through the web services on both.
``emu_world`` scenarios need what only the emulator has (injected faults, call counters).
tests/support/world.py holds the repository, the sources and the Moodle.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import git
import pytest
import yaml
from support.world import World

from reconciler.cli import exitcodes
from reconciler.moodle.errors import InvalidResponse
from reconciler.moodle.types import ManualEnrolment, NewCohort
from reconciler.planning.state import COHORT_MARKER

NOW = "2026-11-28T02:00:00Z"


@pytest.fixture
def world(backends_world: World) -> World:
    """This module's scenarios run on each Moodle backend (conftest's ``backends_world``);
    ``emu_world`` keeps those that need the emulator."""
    return backends_world


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
    # method: manual: each member enrolled by enrol_manual, active until the expiry date
    assert {"e22409001", "e22409002", "e22409003"} <= world.enrolled("HIST-L1-MOD")
    # a group: the late registrations' sync puts its members into "Inscriptions tardives"
    course = world.state()["courses"]["HIST-L1-MOD"]
    assert course["groups"] == {"Inscriptions tardives": ["e22401187", "e22403350"]}

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


def test_approval_covers_only_its_own_plan(emu_world: World, tmp_path: Path) -> None:
    assert emu_world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    emu_world.cancel_ia("L1HIS-101", len(emu_world.cohort_members("etp-L1HIS-101")))
    plan_file = tmp_path / "plan.json"
    assert emu_world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))[0] == 3
    assert emu_world.run("approve", str(plan_file), "--by", "admin", "--now", NOW)[0] == 0
    emu_world.cancel_ia("L2HIS-101", len(emu_world.vet_members("L2HIS-101")))  # a different plan now
    code, _ = emu_world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.FAILSAFE


def test_stale_plan_is_refused(emu_world: World, tmp_path: Path) -> None:
    assert emu_world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    emu_world.cancel_ia("L1HIS-101", 1)
    plan_file = tmp_path / "plan.json"
    assert emu_world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))[0] == 2
    with emu_world.client() as c:  # someone changes Moodle in between
        cohort = next(
            x for x in c.get_cohorts() if x["idnumber"] == "man-retardataires-l1-histoire"
        )
        user = c.get_users_by_field("username", ["e22409001"])[0]
        c.add_cohort_members([(int(cohort["id"]), int(user["id"]))])
    code, out = emu_world.run("apply", str(plan_file), "--now", NOW)
    assert code == exitcodes.STALE
    assert "Moodle's state changed" in out


def test_unhealthy_source_leaves_general_cohorts_alone(emu_world: World) -> None:
    assert emu_world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    before = emu_world.cohort_members("etp-L1HIS-101")
    with sqlite3.connect(emu_world.apogee) as conn:  # APOGÉE answers nothing for the year
        conn.execute("DELETE FROM ins_adm_etp WHERE cod_anu = '2026'")
    manual = emu_world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    manual.write_text(manual.read_text().replace("  - e22409003\n", ""), encoding="utf-8")
    code, out = emu_world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.UNHEALTHY, out
    assert "sources-unhealthy" in out and "etp-L1HIS-101" not in out
    code, out = emu_world.run("apply", "-p", "ecampus", "--now", NOW, "--allow-dirty")
    assert code == exitcodes.UNHEALTHY, out
    assert emu_world.cohort_members("etp-L1HIS-101") == before
    assert "e22409003" not in emu_world.cohort_members("man-auditeurs-libres-histoire")


def test_unmanaged_cohorts_and_instances_are_untouched(emu_world: World) -> None:
    assert emu_world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    with emu_world.client() as c:
        hand = next(x for x in c.get_cohorts() if x["idnumber"] == "man-fait-main")
        assert COHORT_MARKER not in (hand["description"] or "")
        syncs = [i for i in c.cohort_sync_instances(-1) if i.cohortid == int(hand["id"])]
        assert len(syncs) == 1 and syncs[0].status == 0
    assert emu_world.cohort_members("man-fait-main") == {"e22401187"}
    code, out = emu_world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and "Unmanaged (left alone): 1" in out


def test_moodle_fault_mid_apply_then_clean_rerun(emu_world: World) -> None:
    emu_world.emu.inject_fault("exception", function="local_ws_enrolcohort_add_instance", on_call=1)
    code, out = emu_world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.ERROR
    assert "FAILED create_sync" in out
    assert emu_world.cohort_members("man-retardataires-l1-histoire")  # independent work went on
    code, out = emu_world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    code, out = emu_world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes")


def test_declaration_error_plans_nothing(emu_world: World) -> None:
    bad = emu_world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    bad.write_text("idnumber: [broken\n", encoding="utf-8")
    code, out = emu_world.run("apply", "-p", "ecampus", "--now", NOW, "--allow-dirty")
    assert code == exitcodes.ERROR and "declarations have errors" in out
    assert emu_world.emu.call_counts.get("core_cohort_create_cohorts", 0) == 0


def test_plan_records_commit_and_dirty_tree_is_refused(emu_world: World, tmp_path: Path) -> None:
    head = git.Repo(emu_world.repo).head.commit.hexsha
    plan_file = tmp_path / "plan.json"
    emu_world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))
    saved = json.loads(plan_file.read_text())
    assert (saved["commit"], saved["dirty"]) == (head, False)
    assert saved["format_version"] == 1 and saved["digest"].startswith("sha256:")

    extra = emu_world.repo / "cohorts" / "ecampus" / "cohorts" / "man-nouveaux.yaml"
    extra.write_text(
        "idnumber: man-nouveaux\nname: Nouveaux\nowners: [a@b.fr]\nmembers: [e22409001]\n"
    )
    emu_world.run("plan", "-p", "ecampus", "--now", NOW, "--out", str(plan_file))
    assert json.loads(plan_file.read_text())["dirty"] is True
    code, out = emu_world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.ERROR and "uncommitted changes" in out
    assert emu_world.emu.call_counts.get("core_cohort_create_cohorts", 0) == 0


def test_changed_since_focuses_the_report_on_the_merge_request(emu_world: World) -> None:
    assert emu_world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    base = git.Repo(emu_world.repo).head.commit.hexsha
    emu_world.cancel_ia("L1HIS-101", 1)  # drift from the sources, not from this merge request
    sync_file = emu_world.repo / "cohorts" / "ecampus" / "syncs" / "HIST-L1-MOD.yaml"
    sync_file.write_text(
        sync_file.read_text() + "  - cohort: etp-L1HIS-102\n    role: student\n"
        "    reason: distance students too\n"
    )
    code, out = emu_world.run("plan", "-p", "ecampus", "--now", NOW, "--changed-since", base)
    assert code == exitcodes.CHANGES
    lines = out.splitlines()
    assert lines[0].startswith("Plan: 1 to add, 0 to change, 1 to remove")
    assert lines[1].startswith(f"Focus: the changes declared since {base} (1 of 2 actions)")
    assert "cohort sync of etp-L1HIS-102 as student" in out
    assert "remove 1 of" not in out


def test_accounts_are_created_when_enabled(emu_world: World) -> None:
    platforms = emu_world.repo / "cohorts" / "platforms.yaml"
    doc = yaml.safe_load(platforms.read_text(encoding="utf-8"))
    doc["platforms"]["ecampus"]["accounts"] = {"create": True, "auth": "ldap"}
    platforms.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    git.Repo(emu_world.repo).git.commit("-am", "create accounts")
    newcomer = emu_world.data.students[0].login  # first student: a member of the first VET
    with emu_world.client() as c:
        c.delete_users([int(c.get_users_by_field("username", [newcomer])[0]["id"])])
    code, out = emu_world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    with emu_world.client() as c:
        [user] = c.get_users_by_field("username", [newcomer])
        assert user["auth"] == "ldap"
    assert newcomer in emu_world.cohort_members("etp-L1HIS-101")


def test_missing_or_wrong_token_is_a_clear_error_that_never_shows_the_token(emu_world: World) -> None:
    code, out = emu_world.run("plan", "-p", "ecampus", "--now", NOW, env={"ECAMPUS_TOKEN": ""})
    assert code == exitcodes.ERROR and "set the environment variable ECAMPUS_TOKEN" in out
    secret = "s3cr3t-wrong-token-0123456789"
    code, out = emu_world.run("apply", "-p", "ecampus", "--now", NOW, env={"ECAMPUS_TOKEN": secret})
    assert code == exitcodes.ERROR and "nothing applied" in out
    assert secret not in out
    assert emu_world.emu.call_counts.get("core_cohort_create_cohorts", 0) == 0


def test_read_only_token_plans_everything_but_cannot_apply(world: World) -> None:
    readonly = {"ECAMPUS_TOKEN": world.backend.readonly_token}
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, env=readonly)
    assert code == exitcodes.CHANGES, out
    assert "+ cohort sync of etp-L1HIS-101 as student" in out and "plugin-missing" not in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW, env=readonly)
    assert code == exitcodes.ERROR and "nothing applied" in out
    assert "may not call core_cohort_add_cohort_members, core_cohort_create_cohorts" in out
    assert set(world.state()["cohorts"]) == {"man-fait-main"}  # not one write


def test_adopt_takes_over_a_hand_made_cohort_and_its_sync(world: World) -> None:
    base = world.repo / "cohorts" / "ecampus"
    (base / "cohorts" / "man-fait-main.yaml").write_text(
        "idnumber: man-fait-main\nname: Fait main (repris)\nowners: [a@b.fr]\nadopt: true\n"
        "members: [e22401187, e22409001]\n", encoding="utf-8")
    (base / "syncs" / "OTHER.yaml").write_text(
        "course: OTHER\nsyncs:\n  - cohort: man-fait-main\n    role: student\n"
        "    adopt: true\n    reason: taken over from the hand-made set-up\n", encoding="utf-8")
    world.commit("adopt the hand-made cohort")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES, out
    assert "Unmanaged" not in out
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    state = world.state()
    adopted = state["cohorts"]["man-fait-main"]
    assert adopted["name"] == "Fait main (repris)" and COHORT_MARKER in adopted["description"]
    assert adopted["members"] == ["e22401187", "e22409001"]
    [sync] = [i for i in state["instances"] if i["cohort"] == "man-fait-main"]
    assert (sync["course"], sync["name"], sync["status"]) == (
        "OTHER", "reconciler: man-fait-main (student)", 0)
    assert world.enrolled("OTHER") == {"e22401187", "e22409001"}
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes"), out


# -- issue 10, finding 1: markup in a cohort name ------------------------------------------


def test_markup_in_an_apogee_label_is_made_safe_before_it_reaches_moodle(world: World) -> None:
    """Before the fix the cohort was created as 'Licence 1 <Histoire> (L1HIS-101)', its
    sync answered invalidresponse (apply exit 1) and every later plan of the platform
    failed (exit 1)."""
    with sqlite3.connect(world.apogee) as conn:
        conn.execute("UPDATE version_etape SET lib_web_vet = 'Licence 1 <Histoire>'"
                     " WHERE cod_etp = 'L1HIS' AND cod_vrs_vet = '101'")
    safe = "Licence 1 \u2039Histoire\u203a (L1HIS-101)"
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES, out
    assert f"+ create cohort '{safe}'" in out and "name-made-safe" in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    state = world.state()
    assert state["cohorts"]["etp-L1HIS-101"]["name"] == safe
    assert any(i["cohort"] == "etp-L1HIS-101" for i in state["instances"])
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes"), out


def test_a_manual_cohort_name_with_markup_is_refused_with_its_line(world: World) -> None:
    path = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    path.write_text(path.read_text().replace("name: Auditeurs libres histoire moderne",
                                             "name: Auditeurs <libres>"), encoding="utf-8")
    world.commit("a name with markup")
    code, out = world.run("validate")
    assert code == exitcodes.ERROR
    assert ("cohorts/ecampus/cohorts/man-auditeurs-libres-histoire.yaml:3:7: "
            "markup-in-name: cohort name 'Auditeurs <libres>'") in out
    # validate is the merge request's gate; should a plan run anyway, Moodle still never
    # receives the name as written
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert "+ create cohort 'Auditeurs \u2039libres\u203a'" in out and "name-made-safe" in out
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    state = world.state()
    assert state["cohorts"]["man-auditeurs-libres-histoire"]["name"] == "Auditeurs \u2039libres\u203a"


def _break_course(world: World, idnumber: str, name: str, course: str, marker: bool) -> None:
    """A synced cohort whose name holds markup, as a hand (or the reconciler before the fix)
    left it: the add commits, then answers invalidresponse (recorded on the real site)."""
    with world.client() as c:
        description = COHORT_MARKER if marker else ""
        [cohort] = c.create_cohorts([NewCohort(name, idnumber, description=description,
                                               descriptionformat=1)])
        users = c.get_users_by_field("username", ["e22401187"])
        c.add_cohort_members([(int(cohort["id"]), int(users[0]["id"]))])
        courseid = int(c.get_courses_by_field("shortname", course)[0]["id"])
        with pytest.raises(InvalidResponse):
            c.add_cohort_sync(courseid, int(cohort["id"]), 5,
                              name=f"reconciler: {idnumber} (student)" if marker else "")


def test_a_course_moodle_cannot_read_is_a_warning_not_a_stopped_platform(world: World) -> None:
    """Before the fix every plan exited 1 ('Moodle: ... [invalidresponse]'): the site-wide
    get_instances failed and nothing else was planned."""
    _break_course(world, "fait-main-balise", "Fait <main>", "OTHER", marker=False)
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES, out
    assert "course-unreadable" in out and "course OTHER (id " in out
    assert "+ cohort sync of etp-L1HIS-101 as student" in out  # the rest is planned
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert "course OTHER" in out  # apply repeats the warning
    assert world.cohort_members("etp-L1HIS-101") <= world.enrolled("HIST-L1-MOD")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes") and "OTHER" in out


def test_a_platform_broken_by_an_earlier_unsafe_name_heals(world: World) -> None:
    """The reconciler itself created 'L1 <Histoire>' before the fix and synced it: the next
    runs rename it to the safe name, and the course can be read again."""
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    manual = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-tuteurs.yaml"
    manual.write_text("idnumber: man-tuteurs\nname: Tuteurs histoire\nowners: [a@b.fr]\n"
                      "members: [e22401187]\n", encoding="utf-8")
    sync = world.repo / "cohorts" / "ecampus" / "syncs" / "OTHER.yaml"
    sync.write_text("course: OTHER\nsyncs:\n  - cohort: man-tuteurs\n    role: student\n"
                    "    reason: tutorat\n", encoding="utf-8")
    world.commit("tutors")
    _break_course(world, "man-tuteurs", "Tuteurs <histoire>", "OTHER", marker=True)
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    # The rename is applied; the sync of the unreadable course waits (incomplete, exit 7).
    assert code == exitcodes.INCOMPLETE and "sync-waits" in out, out
    assert world.state()["cohorts"]["man-tuteurs"]["name"] == "Tuteurs histoire"
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes"), out
    assert "course-unreadable" not in out
    [inst] = [i for i in world.state()["instances"] if i["cohort"] == "man-tuteurs"]
    assert (inst["course"], inst["status"]) == ("OTHER", 0)


# -- issue 10, finding 2: a mail failure is not a failed enrolment -------------------------


def test_a_welcome_mail_that_fails_is_a_warning_not_a_failed_enrolment(world: World) -> None:
    """The course has a contact (an editingteacher) and mail sending fails (emulator: its
    switch; real site: smtphosts pointed at a closed port). Before the fix apply reported
    'FAILED enrol_manual' and exited 1 while the enrolments were in place."""
    with world.client() as c:
        course = int(c.get_courses_by_field("shortname", "HIST-L1-MOD")[0]["id"])
        teacher = int(c.get_users_by_field("username", ["e22409003"])[0]["id"])
        c.manual_enrol([ManualEnrolment(3, teacher, course)])  # the course contact
    manual = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    manual.write_text(manual.read_text().replace("  - e22409003\n", ""), encoding="utf-8")
    world.commit("the contact is not an auditeur")
    with world.backend.mail_failing():
        code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert "0 failed" in out and "done with a warning" in out
    assert "WARNING enrol_manual HIST-L1-MOD/man-auditeurs-libres-histoire/student" in out
    assert "Message was not sent." in out
    assert {"e22409001", "e22409002"} <= world.enrolled("HIST-L1-MOD")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes"), out
