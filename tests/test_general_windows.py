"""End to end through the CLI (emulator, sqlite APOGÉE, real slapd): the leavers' grace period
and the rollover overlap of the general cohorts (issue 17, items 2 and 3), run night after
night as the scheduled pipeline does."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
from jsonschema import Draft202012Validator
from support.world import World, make_repo, open_world, shipped_seed, write_platforms

from reconciler.cli import exitcodes

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
TIGHT = {"small_cohort_size": 3, "per_cohort_removal_floor": 1,
         "per_cohort_max_removal_percent": 50}
RECORD = Path(".reconciler/leavers/ecampus.json")


def at(day: int, start: dt.datetime = NOW) -> str:
    return (start + dt.timedelta(days=day)).isoformat()


@pytest.fixture
def grace_world(tmp_path, slapd, sources_data) -> Iterator[World]:
    """The shipped declarations as they are (Ecampus: 14 days of grace, at most 30), the
    failsafes tightened as in the ``world`` fixture."""
    repo = make_repo(tmp_path, {"platforms": {"ecampus": {"failsafes": TIGHT}}})
    with open_world(tmp_path, repo, sources_data, slapd.environ(),
                    shipped_seed(sources_data)) as world:
        yield world


def nightly(world: World, first: int, last: int, start: dt.datetime = NOW) -> None:
    """``reconcile apply -p ecampus`` once a night, days ``first`` to ``last``."""
    for day in range(first, last + 1):
        code, out = world.run("apply", "-p", "ecampus", "--now", at(day, start))
        assert code == exitcodes.OK, (day, out)


def commit(world: World, overrides: dict, message: str) -> None:
    write_platforms(world.repo, overrides)
    git.Repo(world.repo).git.commit("-am", message)


def test_a_cancelled_ia_keeps_its_student_fourteen_days_then_removes_them(
    grace_world: World,
) -> None:
    world = grace_world
    nightly(world, 0, 0)
    [gone] = world.cancel_ia("L1HIS-101", 1)
    code, out = world.run("plan", "-p", "ecampus", "--now", at(0))
    assert code == exitcodes.OK, out
    assert out.splitlines()[0].startswith("Plan: no changes")
    assert "Grace period for leavers: 14 days (at most 30); 1 member leaving" in out
    assert f"etp-L1HIS-101: leaving on 2026-12-12: {gone}" in out
    nightly(world, 0, 13)
    assert gone in world.cohort_members("etp-L1HIS-101")
    assert gone in world.enrolled("HIST-L1-MOD")
    saved = json.loads((world.repo / RECORD).read_text())
    assert saved["cohorts"] == {"etp-L1HIS-101": {gone: {"since": "2026-11-28"}}}
    assert saved["observed_on"] == "2026-12-11"

    code, out = world.run("plan", "-p", "ecampus", "--now", at(14))
    assert code == exitcodes.CHANGES, out
    assert "- remove 1 of" in out and gone in out
    assert "nobody leaving" in out
    nightly(world, 14, 14)
    assert gone not in world.cohort_members("etp-L1HIS-101")
    assert gone not in world.enrolled("HIST-L1-MOD", active=False)
    nightly(world, 15, 15)  # the record forgets them once Moodle has let them go
    assert json.loads((world.repo / RECORD).read_text())["cohorts"] == {}


def test_a_cancellation_corrected_within_the_grace_costs_nothing(grace_world: World) -> None:
    world = grace_world
    nightly(world, 0, 0)
    etp, vrs = "L1HIS", "101"
    [gone] = world.cancel_ia(f"{etp}-{vrs}", 1)
    nightly(world, 0, 3)
    with sqlite3.connect(world.apogee) as conn:  # the mistake is put right on day 4
        conn.execute("UPDATE ins_adm_etp SET eta_iae = 'E' WHERE cod_anu = '2026' AND "
                     "cod_etp = ? AND cod_vrs_vet = ? AND eta_iae = 'A' AND cod_ind IN "
                     "(SELECT cod_ind FROM individu WHERE 'e' || cod_etu = ?)",
                     (etp, vrs, gone))
    code, out = world.run("plan", "-p", "ecampus", "--now", at(4))
    assert code == exitcodes.OK and "nobody leaving" in out, out
    nightly(world, 4, 4)
    nightly(world, 20, 20)
    assert gone in world.cohort_members("etp-L1HIS-101")
    journal = (world.repo / ".reconciler" / "journal.jsonl").read_text()
    assert gone not in journal  # never removed, never added back: nothing happened to them


def test_a_lost_or_rolled_back_record_only_restarts_the_grace(grace_world: World) -> None:
    world = grace_world
    nightly(world, 0, 0)
    [gone] = world.cancel_ia("L1HIS-101", 1)
    nightly(world, 0, 2)
    old_copy = world.repo.parent / "leavers-day2.json"
    shutil.copy(world.repo / RECORD, old_copy)
    (world.repo / RECORD).unlink()  # the CI cache is lost
    code, out = world.run("plan", "-p", "ecampus", "--now", at(14))
    assert code == exitcodes.OK, out
    assert "! grace-restarted: leavers record none saved yet" in out
    assert f"etp-L1HIS-101: leaving on 2026-12-26: {gone}" in out  # day 14 + 14
    shutil.copy(old_copy, world.repo / RECORD)  # a cache restored from an older pipeline
    code, out = world.run("plan", "-p", "ecampus", "--now", at(14))
    assert code == exitcodes.OK, out
    assert ("grace-restarted: leavers record last saved on 2026-11-30, 12 days ago (more than "
            "max_gap_days 1)") in out
    assert f"leaving on 2026-12-26: {gone}" in out and "remove" not in out
    (world.repo / RECORD).write_text("{not json", encoding="utf-8")  # broken
    code, out = world.run("apply", "-p", "ecampus", "--now", at(14))
    assert code == exitcodes.OK, out
    assert gone in world.cohort_members("etp-L1HIS-101")
    assert json.loads((world.repo / RECORD).read_text())["cohorts"] == {
        "etp-L1HIS-101": {gone: {"since": "2026-12-12"}}}


def test_the_failsafes_count_the_removals_on_the_day_they_happen(
    grace_world: World, tmp_path: Path,
) -> None:
    world = grace_world
    # Nights apart, for speed: the record vouches for 14 days without a run.
    commit(world, {"platforms": {"ecampus": {"general_cohorts": {"grace_period": {
        "max_gap_days": 14}}}}}, "runs may be two weeks apart")
    nightly(world, 0, 0)
    before = world.cohort_members("etp-L1HIS-101")
    gone = world.cancel_ia("L1HIS-101", len(world.vet_members("L1HIS-101")))  # the whole étape
    code, out = world.run("plan", "-p", "ecampus", "--now", at(0))
    assert code == exitcodes.OK, out  # nothing removed today: no failsafe to trip
    assert f"{len(before)} members leaving" in out
    nightly(world, 0, 0)
    nightly(world, 13, 13)
    assert world.cohort_members("etp-L1HIS-101") == before
    plan_file = tmp_path / "plan.json"
    code, out = world.run("plan", "-p", "ecampus", "--now", at(14), "--out", str(plan_file))
    assert code == exitcodes.FAILSAFE, out
    assert "per_cohort_removal_percent [etp-L1HIS-101]" in out
    assert world.run("approve", str(plan_file), "--by", "admin", "--now", at(14))[0] == 0
    code, out = world.run("apply", str(plan_file), "--now", at(14))
    assert code == exitcodes.OK, out
    assert not (set(gone) & world.cohort_members("etp-L1HIS-101"))


def test_a_course_may_ask_for_a_longer_grace_up_to_the_maximum(grace_world: World) -> None:
    world = grace_world
    syncs = world.repo / "cohorts" / "ecampus" / "syncs" / "HIST-L1-MOD.yaml"
    text = syncs.read_text(encoding="utf-8")
    syncs.write_text(text.replace("  - cohort: etp-L1HIS-101\n    role: student\n",
                                  "  - cohort: etp-L1HIS-101\n    role: student\n"
                                  "    grace_days: 30\n"), encoding="utf-8")
    git.Repo(world.repo).git.commit("-am", "HIST-L1-MOD keeps its leavers 30 days")
    code, out = world.run("validate", "--today", "2026-11-28")
    assert code == 0, out
    nightly(world, 0, 0)
    [gone] = world.cancel_ia("L1HIS-101", 1)
    code, out = world.run("plan", "-p", "ecampus", "--now", at(0))
    assert f"etp-L1HIS-101 (grace 30 days): leaving on 2026-12-28: {gone}" in out, out

    syncs.write_text(syncs.read_text(encoding="utf-8").replace("grace_days: 30",
                                                               "grace_days: 31"))
    code, out = world.run("validate", "--today", "2026-11-28")
    assert code == 1
    assert ("cohorts/ecampus/syncs/HIST-L1-MOD.yaml:6:5: grace-too-long: grace_days 31 is "
            "longer than ecampus's grace_period.max_days 30") in out


def members_of_2025_not_back(world: World, vet: str) -> set[str]:
    """Moodle usernames of last year's students of ``vet`` without any IA in force in 2026."""
    etp, vrs = vet.split("-")
    in_force = ("SELECT iae.cod_ind FROM ins_adm_etp iae JOIN ins_adm_anu iaa ON "
                "iaa.cod_ind = iae.cod_ind AND iaa.cod_anu = iae.cod_anu WHERE "
                "iae.eta_iae = 'E' AND iaa.eta_iaa = 'E' AND iae.cod_anu = ?")
    with sqlite3.connect(world.apogee) as conn:
        rows = conn.execute(
            f"SELECT 'e' || cod_etu FROM individu WHERE cod_ind IN ({in_force} AND "
            f"iae.cod_etp = ? AND iae.cod_vrs_vet = ?) AND cod_ind NOT IN ({in_force})",
            ("2025", etp, vrs, "2026")).fetchall()
    return {login for (login,) in rows}


def test_the_overlap_keeps_last_years_students_until_the_window_ends(
    grace_world: World, tmp_path: Path,
) -> None:
    world = grace_world
    commit(world, {"platforms": {"ecampus": {"general_cohorts": {
        "rollover_overlap": {"from": "07-01", "until": "10-15"}}}}}, "overlap on ecampus")
    start = dt.datetime(2026, 10, 14, 2, 0, tzinfo=dt.UTC)
    plan_file = tmp_path / "plan.json"
    code, out = world.run("plan", "-p", "ecampus", "--now", at(0, start), "--out",
                          str(plan_file))
    assert code == exitcodes.CHANGES, out
    saved = json.loads(plan_file.read_text())
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    Draft202012Validator(schema).validate(saved)
    overlap = saved["general"]["overlap"]
    assert (overlap["from"], overlap["until"], overlap["in_force"]) == (
        "2026-07-01", "2026-10-15", True)
    brought = {i: c["previous_year"] for i, c in overlap["cohorts"].items() if c["previous_year"]}
    assert brought and overlap["members"]["previous_year"] > 0
    idnumber = sorted(brought)[0]
    vet = idnumber.removeprefix("etp-")
    assert (f"Rollover overlap 2026-07-01 → 2026-10-15: in force: "
            f"{overlap['members']['academic_year']} members from the IAs of 2026, "
            f"{overlap['members']['previous_year']} more from those of 2025 not re-registered "
            "yet") in out
    assert f"{idnumber}: {overlap['cohorts'][idnumber]['academic_year']} from 2026 + " in out

    nightly(world, 0, 1, start)  # 14 and 15 October
    last_year = members_of_2025_not_back(world, vet)
    members = world.cohort_members(idnumber)
    this_year = {f"e{etu}" for _, etu in world.vet_members(vet)}
    assert members - this_year and members - this_year <= last_year

    # 16 October: the window is over; last year's students go at once, without grace.
    code, out = world.run("plan", "-p", "ecampus", "--now", at(2, start), "--out",
                          str(plan_file))
    assert "Rollover overlap 2026-07-01 → 2026-10-15: not in force (members: the IAs of 2026 " \
           "only)" in out
    assert "! grace-not-applied: the rollover overlap window ended:" in out
    assert code == exitcodes.CHANGES, out  # a few students per cohort: within the failsafes
    assert "leaving on" not in out and "nobody leaving" in out
    code, out = world.run("apply", str(plan_file), "--now", at(2, start))
    assert code == exitcodes.OK, out
    assert world.cohort_members(idnumber) <= this_year


def test_a_rollover_without_window_behaves_as_today(grace_world: World, tmp_path: Path) -> None:
    """Last year's cohorts, then academic_year moves on in a merge request: whoever did not
    re-register goes at once (no grace), the failsafes stop it, an approval lets it through."""
    world = grace_world
    commit(world, {"academic_year": "2025"}, "the year 2025-2026")
    june = dt.datetime(2026, 6, 20, 2, 0, tzinfo=dt.UTC)
    nightly(world, 0, 1, june)
    old = world.cohort_members("etp-L1HIS-101")
    assert old
    commit(world, {"academic_year": "2026"}, "rollover to 2026-2027")
    plan_file = tmp_path / "plan.json"
    code, out = world.run("plan", "-p", "ecampus", "--now", at(2, june), "--out", str(plan_file))
    assert code == exitcodes.FAILSAFE, out
    assert "! grace-not-applied: the academic year changed (2025 → 2026):" in out
    assert "leaving on" not in out
    code, _ = world.run("apply", "-p", "ecampus", "--now", at(2, june))
    assert code == exitcodes.FAILSAFE
    assert world.cohort_members("etp-L1HIS-101") == old  # nothing applied
    assert world.run("approve", str(plan_file), "--by", "admin", "--now", at(2, june))[0] == 0
    code, out = world.run("apply", str(plan_file), "--now", at(2, june))
    assert code == exitcodes.OK, out
    now = {f"e{etu}" for _, etu in world.vet_members("L1HIS-101")}
    assert world.cohort_members("etp-L1HIS-101") <= now


def test_a_record_that_cannot_be_saved_stops_the_apply_before_any_write(
    grace_world: World,
) -> None:
    """Without its record every grace would restart at every run and never end: say so."""
    world = grace_world
    (world.repo / ".reconciler").mkdir()
    (world.repo / ".reconciler" / "leavers").write_text("a file where a folder should be")
    code, out = world.run("apply", "-p", "ecampus", "--now", at(0))
    assert code == exitcodes.ERROR, out
    assert "cannot save the leavers record" in out and "nothing applied" in out
    assert "Traceback" not in out
    assert world.emu.call_counts.get("core_cohort_create_cohorts", 0) == 0
