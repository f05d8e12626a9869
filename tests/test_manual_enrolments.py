"""``method: manual`` end to end through the CLI: enrolments recorded in the ledger, ended when
their member leaves or their sync goes, whatever cut the run that should have ended them
(issue 9 item 6, issue 10 finding 3).

The shipped ecampus declarations enrol ``man-auditeurs-libres-histoire`` (e22409001..3)
manually into HIST-L1-MOD as students until 2027-02-15. ``world`` is the repository, APOGÉE,
the directory and each Moodle backend in turn (the emulator, the real 4.5 site);
``emu_world`` the emulator alone, for the scenarios that inject faults.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.world import World

from reconciler.applying import runner
from reconciler.cli import exitcodes
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.types import ManualEnrolment, NewUser

NOW = "2026-11-28T02:00:00Z"
COURSE = "HIST-L1-MOD"
COHORT = "man-auditeurs-libres-histoire"
AUDITORS = {"e22409001", "e22409002", "e22409003"}
STUDENT, EDITING_TEACHER = 5, 3


@pytest.fixture
def world(backends_world: World) -> World:
    """This module's scenarios run on each Moodle backend (conftest's ``backends_world``);
    ``emu_world`` keeps those that need the emulator."""
    return backends_world


def cohort_file(world: World, idnumber: str = COHORT) -> Path:
    return world.repo / "cohorts" / "ecampus" / "cohorts" / f"{idnumber}.yaml"


def syncs_file(world: World) -> Path:
    return world.repo / "cohorts" / "ecampus" / "syncs" / f"{COURSE}.yaml"


def ledger_file(world: World) -> Path:
    return world.repo / ".reconciler" / "manual-enrolments-ecampus.json"


def commit(world: World, message: str) -> None:
    import git

    repo = git.Repo(world.repo)
    repo.git.add(A=True)
    repo.index.commit(message)


def edit_yaml(path: Path, change: Any) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def drop_member(world: World, username: str) -> None:
    edit_yaml(cohort_file(world), lambda d: d["members"].remove(username))
    commit(world, f"{username} leaves {COHORT}")


def add_member(world: World, username: str, idnumber: str = COHORT) -> None:
    edit_yaml(cohort_file(world, idnumber), lambda d: d["members"].append(username))
    commit(world, f"{username} joins {idnumber}")


def drop_manual_sync(world: World) -> None:
    edit_yaml(syncs_file(world),
              lambda d: d.update(syncs=[s for s in d["syncs"] if s["cohort"] != COHORT]))
    commit(world, f"no more manual sync of {COHORT}")


def roles(world: World, username: str) -> list[str] | None:
    """The role shortnames of ``username``'s active enrolments in the course (None: not
    active); one entry per role assignment, as Moodle lists them."""
    with world.client() as c:
        courseid = int(c.get_courses_by_field("shortname", COURSE)[0]["id"])
        for user in c.get_enrolled_users(courseid, onlyactive=True,
                                         userfields=("id", "username", "roles")):
            if user["username"] == username:
                return sorted(r["shortname"] for r in user.get("roles") or [])
    return None


def course_id(world: World) -> int:
    with world.client() as c:
        return int(c.get_courses_by_field("shortname", COURSE)[0]["id"])


def ledger_entries(world: World) -> dict[str, str]:
    """username -> state of the ledger's entries for the auditors' sync."""
    doc = json.loads(ledger_file(world).read_text(encoding="utf-8"))
    [section] = doc["sites"].values()
    return {e["username"]: e["state"] for e in section["entries"] if e["cohort"] == COHORT}


def converged(world: World) -> None:
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK and out.startswith("Plan: no changes"), out


def test_first_apply_records_each_enrolment_before_making_it(world: World) -> None:
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert ledger_entries(world) == dict.fromkeys(AUDITORS, "enrolled")
    assert world.enrolled(COURSE) >= AUDITORS
    converged(world)


@pytest.mark.parametrize("fault", ["http500", "drop", "timeout", "exception"])
def test_an_end_cut_by_a_moodle_fault_is_finished_by_the_next_run(
    emu_world: World, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run removes e22409003 from the cohort, then its enrolment's end fails: the next
    plan still owes the end (the cohort no longer shows any removal), and a clean run ends it."""
    world = emu_world
    # A short client timeout, and an emulator that holds a "timeout" fault a little longer.
    monkeypatch.setattr(runner, "_default_client", lambda platform, environ, use="write":
                        MoodleClient(platform.effective_url(dict(environ)),
                                     platform.token(dict(environ), use) or "",
                                     timeout=1.0, backoff=0.01))
    world.emu.fault_timeout_s = 2.0
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    drop_member(world, "e22409003")

    # A 500 or a dropped connection may hide a commit: the client re-reads, finds the end not
    # done and sends it once more; that one fails too, so the run is cut all the same.
    times = 2 if fault in ("http500", "drop") else 1
    world.emu.inject_fault(fault, function="enrol_manual_enrol_users", on_call=1, times=times)
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.ERROR, out
    assert f"FAILED end_manual {COURSE}/{COHORT}/student: enrol_manual_enrol_users" in out
    assert "e22409003" not in world.cohort_members(COHORT)  # the removal went through
    assert roles(world, "e22409003") == ["student"]  # the end did not

    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES, out
    assert "remove 1 of" not in out  # nothing changes in the cohort any more
    assert f"- end the manual enrolment of 1 former member of {COHORT} as student" in out
    assert ledger_entries(world)["e22409003"] == "enrolled"
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert roles(world, "e22409003") is None
    assert "e22409003" in world.enrolled(COURSE, active=False)  # ended, not unenrolled
    assert ledger_entries(world)["e22409003"] == "ended"
    assert roles(world, "e22409001") == ["student"]
    converged(world)


def test_a_kill_between_the_removal_and_the_end_is_finished_by_the_next_run(
    emu_world: World
) -> None:
    """``reconcile apply`` as the nightly job runs it, in its own process, SIGKILLed while
    the end call of e22409003's enrolment is on the wire (after the membership removal)."""
    world = emu_world
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    drop_member(world, "e22409003")
    world.emu.fault_timeout_s = 10.0  # the call hangs, unanswered, until the kill
    world.emu.inject_fault("timeout", function="enrol_manual_enrol_users", on_call=1)
    world.emu.reset_counters()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "--repo", str(world.repo),
         "apply", "-p", "ecampus", "--now", NOW],
        env={**os.environ, **world.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while world.emu.call_counts["enrol_manual_enrol_users"] < 1:
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "the end call never came"
            time.sleep(0.02)
        assert world.emu.call_counts["core_cohort_delete_cohort_members"] == 1
        assert proc.poll() is None, "the apply ended before the kill (machine too slow?)"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert "e22409003" not in world.cohort_members(COHORT)
    assert roles(world, "e22409003") == ["student"]

    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert "end_manual" in out
    assert roles(world, "e22409003") is None
    converged(world)


def test_a_removed_manual_sync_ends_the_enrolments_it_made(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    drop_manual_sync(world)
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES, out
    assert out.splitlines()[0] == "Plan: 0 to add, 0 to change, 3 to remove."
    assert (f"- end the manual sync of {COHORT} as student: its 3 manual enrolments end "
            "(end date → now): e22409001, e22409002, e22409003") in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert not AUDITORS & world.enrolled(COURSE)
    assert world.enrolled(COURSE, active=False) >= AUDITORS  # kept, with grades: not unenrolled
    assert world.cohort_members(COHORT) == AUDITORS  # the cohort is still declared
    converged(world)


def test_removing_a_manual_sync_counts_in_the_failsafes(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    edit_yaml(world.repo / "cohorts" / "platforms.yaml", lambda d: d["platforms"]["ecampus"]
              .setdefault("failsafes", {}).update(max_memberships_removed=2))
    drop_manual_sync(world)
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.FAILSAFE, out
    assert "max_memberships_removed: 3 > limit 2" in out
    assert world.enrolled(COURSE) >= AUDITORS  # nothing applied


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_a_removed_manual_cohort_ends_the_enrolments_of_its_sync(world: World, how: str) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    if how == "deleted":  # the cohort's file and the sync that names it go together
        cohort_file(world).unlink()
        drop_manual_sync(world)
    else:  # its last day in force was yesterday (Paris); the sync stays declared
        edit_yaml(cohort_file(world), lambda d: d.update(expires="2026-11-27"))
        commit(world, f"{COHORT} expired")
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.CHANGES, out
    assert f"- end the manual sync of {COHORT} as student: its 3 manual enrolments end" in out
    assert "- delete cohort (3 members)" in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert not AUDITORS & world.enrolled(COURSE)
    assert COHORT not in world.cohorts()
    converged(world)


def test_enrolments_someone_else_made_survive(world: World) -> None:
    """e22409001 teaches the course (enrolled by hand before any apply): never enrolled nor
    ended by the sync. e22401187 is a student of the course through a cohort sync and joins
    the auditors: not enrolled manually, and keeps the course when the manual sync goes.
    e22409002, enrolled by the sync, then also given the course by the cohort sync, keeps
    that one when the manual one ends."""
    with world.client() as c:
        teacher = int(c.get_users_by_field("username", ["e22409001"])[0]["id"])
        c.manual_enrol([ManualEnrolment(EDITING_TEACHER, teacher, course_id(world))])
    # A declared enrolment left undone: everything else applied, the plan incomplete (exit 7)
    # until someone gives the role by hand.
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE, out
    assert "(manual-enrolled-otherwise ×1)" in out and " 0 failed, 0 skipped" in out
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE and "manual-enrolled-otherwise" in out, out
    assert roles(world, "e22409001") == ["editingteacher"]
    assert set(ledger_entries(world)) == {"e22409002", "e22409003"}

    add_member(world, "e22401187")  # a student of the course through etp/retardataires
    add_member(world, "e22409002", "man-retardataires-l1-histoire")
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE, out
    assert "(manual-enrolled-otherwise ×1)" in out  # still the teacher alone
    assert roles(world, "e22409002") == ["student", "student"]  # manual + cohort sync
    assert "e22401187" not in ledger_entries(world)

    drop_manual_sync(world)
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert "its 2 manual enrolments end (end date → now): e22409002, e22409003" in out, out
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    assert roles(world, "e22409001") == ["editingteacher"]
    assert roles(world, "e22401187") == ["student"]
    assert roles(world, "e22409002") is not None  # still in through the cohort sync
    assert roles(world, "e22409003") is None
    converged(world)


def test_a_lost_ledger_plans_no_removal_and_says_so(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    ledger_file(world).unlink(missing_ok=True)  # the CI cache was lost
    drop_member(world, "e22409003")
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    assert roles(world, "e22409003") == ["student"]  # left to its end date
    ledger_file(world).unlink(missing_ok=True)  # lost again: what does a plan say?
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert "manual-ledger-missing" in out and "nothing is ended on the strength" in out
    assert "2 member(s) of method: manual syncs already active in the course" in out
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    # The record starts again, and says until when it cannot be complete.
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert "manual-ledger-incomplete" in out and "2027-02-15" in out


def test_a_ledger_of_another_site_is_neither_used_nor_overwritten(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    production = json.loads(ledger_file(world).read_text(encoding="utf-8"))
    [site] = production["sites"]
    production["sites"] = {"https://ecampus.example.org": production["sites"][site]}
    ledger_file(world).write_text(json.dumps(production), encoding="utf-8")
    drop_member(world, "e22409003")
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.OK, out
    assert roles(world, "e22409003") == ["student"]  # not ended on another site's record
    kept = json.loads(ledger_file(world).read_text(encoding="utf-8"))["sites"]
    assert kept["https://ecampus.example.org"] == production["sites"]["https://ecampus.example.org"]
    assert site in kept


def test_an_unreadable_ledger_stops_the_run_with_one_line(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    ledger_file(world).write_text("{not json", encoding="utf-8")
    drop_member(world, "e22409003")
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.ERROR
    [line] = out.strip().splitlines()
    assert line.startswith("error: ") and "manual-enrolments-ecampus.json" in line
    assert "move it aside" in line and "nothing applied" in line
    assert "e22409003" in world.cohort_members(COHORT)


def test_a_member_added_later_is_recorded_then_ended_when_they_leave(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    with world.client() as c:
        c.create_users([NewUser("e22409004", "Quatre", "X", "e22409004@example.org",
                                auth="manual", password="Passw0rd!x")])
    add_member(world, "e22409004")
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    assert ledger_entries(world)["e22409004"] == "enrolled"
    assert roles(world, "e22409004") == ["student"]
    drop_member(world, "e22409004")
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    assert roles(world, "e22409004") is None
    converged(world)
