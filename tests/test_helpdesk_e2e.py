"""``reconcile explain`` and ``reconcile history`` end to end through the CLI, on the demo
world: APOGÉE in sqlite, the real slapd (with its anomalies), a Moodle emulator (issue 16).

Each help-desk case: an IA in force but no Moodle account, an IA cancelled last night, a
manual cohort synced with ``method: manual`` that expired, a removal blocked by a tripped
failsafe, two directory entries for one student number; and a history that outlives the
CI cache.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
import yaml
from support.slapd import Slapd
from support.world import TOKEN, World, make_repo, open_world, shipped_seed

from reconciler.applying.runner import Environment, make_plan
from reconciler.cli import exitcodes
from reconciler.demo.data import PEOPLE, DemoData
from reconciler.emulator import EmulatorConfig, MoodleEmulator

NOW = "2026-11-28T02:00:00Z"
NEXT_NIGHT = "2026-11-29T02:00:00Z"
WRITES = ("core_cohort_add_cohort_members", "core_cohort_delete_cohort_members",
          "core_cohort_create_cohorts", "enrol_manual_enrol_users", "core_user_create_users",
          "local_ws_enrolcohort_add_instance", "local_ws_enrolcohort_update_instance")


def explain(world: World, username: str, *args: str, now: str = NOW) -> dict:
    code, out = world.run("explain", username, "-p", "ecampus", "--now", now, "--format",
                          "json", *args)
    assert code == exitcodes.OK, out
    return json.loads(out)


def text(world: World, username: str, *args: str, now: str = NOW) -> str:
    code, out = world.run("explain", username, "-p", "ecampus", "--now", now, *args)
    assert code == exitcodes.OK, out
    return out


def writes(world: World) -> int:
    return sum(world.emu.call_counts.get(f, 0) for f in WRITES)


def test_ia_in_force_but_no_moodle_account_waits_for_the_account(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    member = sorted(world.cohort_members("etp-L1HIS-101"))[0]
    with world.client() as c:
        c.delete_users([int(c.get_users_by_field("username", [member])[0]["id"])])
    before = writes(world)

    doc = explain(world, member)
    [ia] = [i for i in doc["sources"]["apogee"] if i["vet"] == "L1HIS-101"]
    assert ia["in_force"] and ia["eta_iae"] == "E" and ia["platforms"]["ecampus"]["member"]
    [entry] = [e for e in doc["sources"]["directory"]["entries"] if e["counts"]]
    assert entry["usernames"] == [member]
    ecampus = doc["platforms"]["ecampus"]
    assert ecampus["moodle"]["account"] is None
    verdict = ecampus["verdict"]
    assert verdict["changes"] == []
    assert [b["code"] for b in verdict["blockers"]] == ["pending-account"]
    assert verdict["summary"] == "nothing will change yet: pending-account"
    assert writes(world) == before  # explain never writes

    out = text(world, member)
    assert "account: none (no Moodle user with this username)" in out
    assert f"held (pending-account): {member} has no Moodle account" in out


def test_ia_cancelled_last_night_explains_the_removal_then_history_says_when(
    world: World,
) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    [gone] = world.cancel_ia("L1HIS-101", 1)

    doc = explain(world, gone, now=NEXT_NIGHT)
    [ia] = [i for i in doc["sources"]["apogee"] if i["vet"] == "L1HIS-101"]
    assert (ia["eta_iae"], ia["eta_iae_label"], ia["in_force"]) == ("A", "annulée", False)
    assert ia["unmet"] == ["IA en cours (INS_ADM_ETP.ETA_IAE = 'E')"]
    ecampus = doc["platforms"]["ecampus"]
    [change] = ecampus["verdict"]["changes"]
    assert change["line"] == f"remove {gone} from cohort etp-L1HIS-101"
    assert change["reason"]["code"] == "left-sources"
    assert change["courses"][0].startswith("leaves HIST-L1-MOD")
    assert ecampus["verdict"]["blockers"] == []
    course = next(c for c in ecampus["moodle"]["courses"] if c["shortname"] == "HIST-L1-MOD")
    assert course["active"] and not course["roles_read"]  # no call for its roles
    assert course["through"] == [f"cohort sync {course['instances'][0]['id']} of etp-L1HIS-101 "
                                 "as student"]
    assert any(s["course"] == "HIST-L1-MOD" and s["cohort"] == "etp-L1HIS-101"
               for s in ecampus["declarations"]["syncs"])
    assert doc["reads"]["ldap_searches"] == 2 and doc["reads"]["apogee_queries"] == 1
    assert doc["reads"]["web_service_calls"] <= 10

    assert world.run("apply", "-p", "ecampus", "--now", NEXT_NIGHT)[0] == exitcodes.OK
    code, out = world.run("history", gone)
    assert code == exitcodes.OK, out
    assert (f"{dt.date(2026, 11, 29)}T02:00:00+00:00 ecampus remove_members etp-L1HIS-101 "
            "[courses: HIST-L1-MOD]: no inscription administrative in force in L1HIS-101") in out
    assert out.splitlines()[-1].startswith(
        "Last: 2026-11-29T02:00:00+00:00, remove_members etp-L1HIS-101 (left) because no "
        "inscription administrative in force in L1HIS-101")
    code, out = world.run("history", gone, "--course", "HIST-L1-MOD", "--since", "2026-11-29")
    assert "1 recorded change(s)" in out and "remove_members" in out
    code, out = world.run("history", "--cohort", "etp-L1HIS-101", "--format", "json")
    kinds = [(e["kind"], e["time"][:10]) for e in json.loads(out)]
    assert kinds == [("create_cohort", "2026-11-28"), ("add_members", "2026-11-28"),
                     ("create_sync", "2026-11-28"), ("remove_members", "2026-11-29")]

    after = explain(world, gone, now=NEXT_NIGHT)["platforms"]["ecampus"]
    assert after["verdict"]["summary"] == "nothing: already as declared"
    assert [e["kind"] for e in after["history"]["entries"]] == ["add_members", "remove_members"]
    assert after["history"]["last_run"]["outcome"] == "applied"


def test_manual_cohort_synced_with_method_manual_that_expired(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    later = "2027-02-16T10:00:00Z"
    world.emu.set_now(dt.datetime(2027, 2, 16, 10, tzinfo=dt.UTC))  # past its timeend

    doc = explain(world, "e22409003", now=later)
    ecampus = doc["platforms"]["ecampus"]
    [cohort] = ecampus["declarations"]["cohorts"]
    assert (cohort["idnumber"], cohort["listed"]) == ("man-auditeurs-libres-histoire", True)
    assert cohort["file"] == "cohorts/ecampus/cohorts/man-auditeurs-libres-histoire.yaml"
    assert cohort["added_by"]["commit"] == git.Repo(world.repo).head.commit.hexsha[:12]
    [sync] = ecampus["declarations"]["syncs"]
    assert (sync["method"], sync["expires"], sync["expired"]) == ("manual", "2027-02-15", True)
    course = next(c for c in ecampus["moodle"]["courses"] if c["shortname"] == "HIST-L1-MOD")
    assert course["roles_read"] and not course["active"]  # Moodle ended it at timeend
    assert ecampus["verdict"]["summary"] == "nothing: already as declared"
    assert any(n.startswith("expired: HIST-L1-MOD: sync of man-auditeurs-libres-histoire")
               for n in ecampus["verdict"]["notes"])
    enrolled = [e for e in ecampus["history"]["entries"] if e["kind"] == "enrol_manual"]
    assert enrolled and "until 2027-02-15" in enrolled[0]["reason"]["text"]
    out = text(world, "e22409003", now=later)
    assert "(method manual, expired 2027-02-15)" in out
    assert "course HIST-L1-MOD (id 2): no active enrolment" in out


def test_a_removal_blocked_by_the_failsafe_of_the_last_run(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    gone = world.cancel_ia("L1HIS-101", len(world.vet_members("L1HIS-101")))
    code, out = world.run("apply", "-p", "ecampus", "--now", NEXT_NIGHT)
    assert code == exitcodes.FAILSAFE, out
    leaver = next(u for u in gone if u in world.cohort_members("etp-L1HIS-101"))

    ecampus = explain(world, leaver, now=NEXT_NIGHT)["platforms"]["ecampus"]
    [change] = ecampus["verdict"]["changes"]
    assert change["line"] == f"remove {leaver} from cohort etp-L1HIS-101"
    [blocker] = ecampus["verdict"]["blockers"]
    assert blocker["code"] == "failsafe"
    assert "per_cohort_removal_percent [etp-L1HIS-101]: 100 > 50" in blocker["text"]
    assert ecampus["history"]["last_run"]["outcome"] == "failsafe-tripped"
    assert ecampus["verdict"]["summary"].endswith("but it is blocked by a failsafe")
    out = text(world, leaver, now=NEXT_NIGHT)
    assert "held (failsafe): the last apply (2026-11-29T02:00:00+00:00" in out
    assert "last run: 2026-11-29T02:00:00+00:00 failsafe-tripped" in out


def test_two_directory_entries_for_one_student_number(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    student = world.data.students[1].login  # anomaly_entries gives its number a twin account
    doc = explain(world, student)
    entries = doc["sources"]["directory"]["entries"]
    assert sorted(e["usernames"][0] for e in entries) == [student, f"{student}b"]
    assert all(e["counts"] for e in entries)
    [number] = doc["sources"]["directory"]["numbers"]
    assert number["login"] is None and number["uncertain"] == [student, f"{student}b"]
    [ia] = [i for i in doc["sources"]["apogee"] if i["in_force"]]
    assert ia["platforms"]["ecampus"].get("uncertain") is True
    ecampus = doc["platforms"]["ecampus"]
    assert ecampus["verdict"]["changes"] == []
    assert any("neither added nor removed" in n for n in ecampus["verdict"]["notes"])
    assert "claimed by 2 directory accounts" in text(world, student)


def test_an_old_account_outside_the_base_does_not_count_and_says_why(world: World) -> None:
    moved = world.data.students[2].login  # its old account sits in ou=deactivated
    doc = explain(world, f"{moved}old")
    old, current = doc["sources"]["directory"]["entries"]
    assert old["dn"].endswith("ou=deactivated,dc=unicaen,dc=fr") and not old["counts"]
    assert "outside ou=people,dc=unicaen,dc=fr" in old["why"]
    assert current["usernames"] == [moved] and current["counts"]
    assert current["why"].startswith("another entry claiming student number")
    [number] = doc["sources"]["directory"]["numbers"]
    assert number["login"] == moved  # the IAs go to the current account
    assert all(not ia["platforms"]["ecampus"]["member"] for ia in doc["sources"]["apogee"])
    assert any(f"matches {moved}" in ia["platforms"]["ecampus"]["why"]
               for ia in doc["sources"]["apogee"] if ia["in_force"])


def test_history_pushed_to_its_branch_outlives_the_ci_cache(world: World, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git.Repo.init(remote, bare=True)
    repo = git.Repo(world.repo)
    repo.create_remote("origin", str(remote))
    repo.git.push("origin", "HEAD:refs/heads/main")
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    [gone] = world.cancel_ia("L1HIS-101", 1)
    assert world.run("apply", "-p", "ecampus", "--now", NEXT_NIGHT)[0] == exitcodes.OK

    code, out = world.run("history-push")  # never to a remote it was not told about
    assert code == exitcodes.ERROR and "set RECONCILER_HISTORY_TOKEN" in out
    assert (world.repo / ".reconciler" / "history" / "ecampus.jsonl").exists()
    code, out = world.run("history-push", "--remote", "origin")
    assert code == exitcodes.OK, out
    assert out.startswith("ecampus: ") and "entries pushed to reconciler-history" in out
    assert not (world.repo / ".reconciler" / "history" / "ecampus.jsonl").exists()
    assert world.run("history-push", "--remote", "origin")[1].strip() == (
        "history: nothing to push")

    shutil.rmtree(world.repo / ".reconciler")  # the CI cache is gone
    clone = git.Repo.clone_from(remote, tmp_path / "helpdesk", branch="main")
    shutil.copytree(world.repo / "cohorts", Path(clone.working_dir) / "cohorts",
                    dirs_exist_ok=True)
    env = {**world.env}
    code, out = World(Path(clone.working_dir), world.emu, world.apogee, env, world.data).run(
        "history", gone, "--fetch")
    assert code == exitcodes.OK, out
    assert "remove_members etp-L1HIS-101" in out and "2026-11-29T02:00:00+00:00" in out


def test_a_read_only_token_is_enough_even_without_the_users_courses_function(
    world: World,
) -> None:
    reads = ["core_webservice_get_site_info", "core_cohort_get_cohorts",
             "core_cohort_get_cohort_members", "core_user_get_users_by_field",
             "core_course_get_courses_by_field", "core_group_get_course_groups",
             "core_enrol_get_enrolled_users", "core_enrol_get_users_courses",
             "local_ws_enrolcohort_get_instances"]
    for functions in (reads, [f for f in reads if f != "core_enrol_get_users_courses"]):
        with MoodleEmulator(EmulatorConfig(token=TOKEN, functions=functions)) as readonly:
            readonly.seed(shipped_seed(world.data))
            code, out = world.run("explain", "e22409003", "-p", "ecampus", "--now", NOW,
                                  env={"ECAMPUS_URL": readonly.url})
            assert code == exitcodes.OK, out
            assert "+ add e22409003 to cohort man-auditeurs-libres-histoire" in out
            unknown = "other active enrolments: unknown" in out
            assert unknown == ("core_enrol_get_users_courses" not in functions)
            assert set(readonly.call_counts) <= set(functions)


def test_sources_unreadable_now_or_unhealthy_on_the_last_run_hold_general_changes(
    world: World,
) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    member = sorted(world.cohort_members("etp-L1HIS-101"))[0]
    code, out = world.run("explain", member, "-p", "ecampus", "--now", NOW, "--format", "json",
                          env={"APOGEE_URL": "sqlite:////nonexistent/apogee.db"})
    assert code == exitcodes.OK, out
    doc = json.loads(out)
    assert doc["sources"]["errors"] and doc["sources"]["errors"][0].startswith("APOGÉE: ")
    verdict = doc["platforms"]["ecampus"]["verdict"]
    assert verdict["changes"] == []  # general cohorts are left as they are, as at night
    assert [b["code"] for b in verdict["blockers"]] == ["sources-unread"]
    assert verdict["summary"] == "nothing yet: general cohorts not judged (sources not read)"

    with sqlite3.connect(world.apogee) as conn:  # APOGÉE answers nothing for the year
        conn.execute("DELETE FROM ins_adm_etp WHERE cod_anu = '2026'")
    code, _ = world.run("apply", "-p", "ecampus", "--now", NEXT_NIGHT)
    assert code == exitcodes.UNHEALTHY
    verdict = explain(world, member, now=NEXT_NIGHT)["platforms"]["ecampus"]["verdict"]
    [change] = verdict["changes"]
    assert change["reason"]["code"] == "left-sources"
    [blocker] = verdict["blockers"]
    assert blocker["code"] == "sources" and "found the sources unhealthy" in blocker["text"]
    assert "APOGÉE: empty answer (0 rows) for year 2026" in blocker["text"]


def test_a_member_taken_out_of_a_file_names_the_commit_that_did_it(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    path = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    path.write_text(path.read_text().replace("  - e22409002\n", ""), encoding="utf-8")
    repo = git.Repo(world.repo)
    repo.git.add(A=True)
    removal = repo.index.commit("Auditeur parti", author=git.Actor("Ana Roux", "ar@x.fr"))
    repo.index.commit("another change afterwards")  # the removal is not the last commit

    ecampus = explain(world, "e22409002", now=NEXT_NIGHT)["platforms"]["ecampus"]
    [cohort] = ecampus["declarations"]["cohorts"]
    assert not cohort["listed"]
    assert cohort["removed_by"]["commit"] == removal.hexsha[:12]
    assert cohort["removed_by"]["author"] == "Ana Roux"
    assert {c["kind"] for c in ecampus["verdict"]["changes"]} == {
        "remove_members", "end_manual"}

    assert world.run("apply", "-p", "ecampus", "--now", NEXT_NIGHT)[0] == exitcodes.OK
    code, out = world.run("history", "e22409002", "--cohort", "man-auditeurs-libres-histoire")
    assert code == exitcodes.OK, out
    assert (f"no longer listed in cohorts/ecampus/cohorts/man-auditeurs-libres-histoire.yaml:2; "
            f"removed from the declarations in {removal.hexsha[:12]} by Ana Roux") in out


def test_a_removed_manual_sync_shows_the_end_it_owes_then_history_names_the_commit(
    world: World,
) -> None:
    """The course's file no longer declares the method: manual sync: explain reads the
    record of manual enrolments (the course is named by no declaration any more) and shows
    the end owed, and the history of the apply names the commit that removed the sync."""
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    path = world.repo / "cohorts" / "ecampus" / "syncs" / "HIST-L1-MOD.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["syncs"] = [s for s in doc["syncs"] if s["cohort"] != "man-auditeurs-libres-histoire"]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    repo = git.Repo(world.repo)
    repo.git.add(A=True)
    removal = repo.index.commit("no more auditors in HIST-L1-MOD",
                                author=git.Actor("Ana Roux", "ar@x.fr"))

    ecampus = explain(world, "e22409002")["platforms"]["ecampus"]
    [change] = ecampus["verdict"]["changes"]
    assert (change["kind"], change["reason"]["code"]) == ("retire_manual", "undeclared")
    assert change["line"] == (
        "end the manual enrolment of e22409002 in HIST-L1-MOD as student (end date → now): "
        "the method: manual sync of man-auditeurs-libres-histoire is no longer declared")
    course = next(c for c in ecampus["moodle"]["courses"] if c["shortname"] == "HIST-L1-MOD")
    assert course["active"] and course["roles"] == ["student"]

    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    code, out = world.run("history", "e22409002", "--course", "HIST-L1-MOD")
    assert code == exitcodes.OK, out
    assert "retire_manual" in out
    assert f"removed from the declarations in {removal.hexsha[:12]} by Ana Roux" in out
    assert not explain(world, "e22409002")["platforms"]["ecampus"]["verdict"]["changes"]


@pytest.fixture
def grace_world(tmp_path: Path, slapd: Slapd, sources_data: DemoData) -> Iterator[World]:
    """The shipped declarations as they are: Ecampus keeps a leaver 14 days."""
    repo = make_repo(tmp_path, {"platforms": {"ecampus": {"failsafes": {
        "small_cohort_size": 3, "per_cohort_removal_floor": 1,
        "per_cohort_max_removal_percent": 50}}}})
    with open_world(tmp_path, repo, sources_data, slapd.environ(),
                    shipped_seed(sources_data)) as world:
        yield world


def test_a_leaver_in_the_grace_period_is_told_the_day_they_leave(grace_world: World) -> None:
    world = grace_world
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    [gone] = world.cancel_ia("L1HIS-101", 1)
    assert world.run("apply", "-p", "ecampus", "--now", NEXT_NIGHT)[0] == exitcodes.OK
    assert gone in world.cohort_members("etp-L1HIS-101")  # kept: first seen gone tonight

    later = "2026-11-29T14:00:00Z"
    env = Environment(repo=world.repo, environ=world.env,
                      now=dt.datetime(2026, 11, 29, 14, tzinfo=dt.UTC))
    plan = make_plan(env, "ecampus")
    assert not any(gone in getattr(a.details, "usernames", ()) for a in plan.actions)
    verdict = explain(world, gone, now=later)["platforms"]["ecampus"]["verdict"]
    assert verdict["changes"] == []
    [leaving] = verdict["leaving"]
    assert (leaving["cohort"], leaving["on"]) == ("etp-L1HIS-101", "2026-12-13")
    assert leaving["record"] == "saved on 2026-11-29"
    assert verdict["summary"] == "nothing yet: leaving etp-L1HIS-101 on 2026-12-13 (grace period)"


def test_last_years_student_counts_during_the_rollover_overlap(world: World) -> None:
    """Collegium keeps last year's students of an étape until they re-register, from 1 July
    to 15 October: explain reads both years in its one query and says so."""
    year, last = world.data.year, str(int(world.data.year) - 1)
    active = {s.cod_etu for s in world.data.students if s.branch == PEOPLE}
    in_force = ("FROM ins_adm_etp iae JOIN individu ind ON ind.cod_ind = iae.cod_ind"
                " JOIN ins_adm_anu iaa ON iaa.cod_ind = iae.cod_ind AND iaa.cod_anu = iae.cod_anu"
                " WHERE iae.eta_iae = 'E' AND iaa.eta_iaa = 'E' AND iae.cod_anu = ?")
    with sqlite3.connect(world.apogee) as conn:
        now = {str(r[0]) for r in conn.execute(f"SELECT ind.cod_etu {in_force}", (year,))}
        before = [str(r[0]) for r in conn.execute(
            f"SELECT ind.cod_etu {in_force} AND iae.cod_cmp IN ('SAN', 'PHA', 'ODO')"
            " ORDER BY ind.cod_etu", (last,))]
    login = next(f"e{etu}" for etu in before if etu not in now and etu in active)
    env = {"COLLEGIUM_URL": world.emu.url, "COLLEGIUM_TOKEN": TOKEN}
    september = "2026-09-15T08:00:00Z"
    code, out = world.run("explain", login, "-p", "collegium", "--now", september,
                          "--format", "json", env=env)
    assert code == exitcodes.OK, out
    doc = json.loads(out)
    [ia] = [i for i in doc["sources"]["apogee"] if i["year"] == last
            and i["in_force"] and i["platforms"]["collegium"]["member"]]
    assert "counts while the rollover overlap is in force" in ia["platforms"]["collegium"]["why"]
    adds = {c["target"] for c in doc["platforms"]["collegium"]["verdict"]["changes"]
            if c["kind"] == "add_members"}
    assert ia["platforms"]["collegium"]["cohort"] in adds

    code, out = world.run("explain", login, "-p", "collegium", "--now",
                          "2026-11-28T02:00:00Z", "--format", "json", env=env)
    after = json.loads(out)  # the window closed on 15 October: last year's IAs are not read
    assert all(i["year"] == year for i in after["sources"]["apogee"])
    assert not after["platforms"]["collegium"]["verdict"]["changes"]


def test_a_sync_waiting_for_its_course_holds_the_enrolment(world: World) -> None:
    sync = world.repo / "cohorts" / "ecampus" / "syncs" / "HIST-L2-NEW.yaml"
    sync.write_text("course: HIST-L2-NEW\nowners: [a@b.fr]\nsyncs:\n"
                    "  - cohort: man-auditeurs-libres-histoire\n    role: student\n"
                    "    reason: the course is not created yet\n", encoding="utf-8")
    repo = git.Repo(world.repo)
    repo.git.add(A=True)
    repo.index.commit("a course to come")
    # The declared course is missing: the plan is incomplete (exit 7), the rest applied.
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.INCOMPLETE
    doc = explain(world, "e22409001", "--course", "HIST-L2-NEW")
    ecampus = doc["platforms"]["ecampus"]
    course = next(c for c in ecampus["moodle"]["courses"] if c["shortname"] == "HIST-L2-NEW")
    assert course["id"] is None
    held = [b for b in ecampus["verdict"]["blockers"] if b["code"] == "course-missing"]
    assert held and "course HIST-L2-NEW does not exist in Moodle" in held[0]["text"]
    assert "course HIST-L2-NEW: does not exist in Moodle" in text(world, "e22409001")


def test_leaving_one_cohort_while_another_keeps_the_course(world: World) -> None:
    member = f"e{world.vet_members('L1HIS-101')[0][1]}"  # the one cancel_ia cancels
    late = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-retardataires-l1-histoire.yaml"
    late.write_text(late.read_text() + f"  - {member}\n", encoding="utf-8")
    repo = git.Repo(world.repo)
    repo.git.add(A=True)
    repo.index.commit("one more late student")
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    assert world.cancel_ia("L1HIS-101", 1) == [member]
    [change] = explain(world, member, now=NEXT_NIGHT)["platforms"]["ecampus"]["verdict"][
        "changes"]
    assert change["line"] == f"remove {member} from cohort etp-L1HIS-101"
    assert change["courses"] == [
        "stays in HIST-L1-MOD through the sync of man-retardataires-l1-histoire"]
