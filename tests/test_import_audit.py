"""``reconcile import`` and ``reconcile audit`` end to end, through the CLI, on a Moodle
emulator seeded with a platform people made by hand (``reconciler.demo.handmade``: a few
hundred cohorts and cohort-sync instances, UI names, some disabled, some with groups, one
cohort in a category context, cohorts outside the managed prefix, the older script's
general cohorts), plus the awkward cases added below.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import CliRunner
from support.backends import KINDS, emulator_backend, site_backend
from support.slapd import Slapd
from support.world import TOKEN, World, make_repo, open_world

from reconciler.cli import exitcodes, main
from reconciler.demo import data as demo_data
from reconciler.demo.handmade import CATEGORY_COHORT, handmade_platform
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.functions import is_read
from reconciler.moodle.types import NewCategory, NewCohort, NewCourse, NewGroup, NewUser
from reconciler.planning.state import COHORT_MARKER

NOW = "2026-11-28T02:00:00Z"
NIGHT_2 = "2027-04-07T02:00:00Z"  # 130 days later: past Ecampus's max_temporary_days (120)
ODD_LOGIN = "jean+dupont"  # extendedusernamechars: Moodle takes it, the declarations cannot
GONE = "parti"  # deleted long ago; an old site kept the cohort membership


def platform_seed() -> dict[str, Any]:
    """The hand-made platform plus one of each awkward case import must report."""
    seed = handmade_platform(cohorts=120, instances=200, courses=80, users=300)

    def user(name: str) -> dict[str, str]:
        return {"username": name, "firstname": name, "lastname": "X", "email": f"{name}@ex.org"}

    seed["users"] += [user(ODD_LOGIN), user(GONE)]
    seed["cohorts"] += [
        # the older nightly script's general cohort, synced by hand in a course
        {"idnumber": "etp-L1HIS-101", "name": "L1 histoire (ancien script)",
         "members": ["u00001", "u00002"]},
        {"idnumber": "man-odd-login", "name": "Identifiant étendu",
         "members": [ODD_LOGIN, "u00003"]},
        {"idnumber": "man-ancien", "name": "Ancienne cohorte", "members": [GONE, "u00004"]},
    ]
    seed["cohort_syncs"] += [
        {"course": "UE-0000", "cohort": "etp-L1HIS-101", "roleid": 5, "name": "L1 histoire"},
        # the API allows the same course, cohort and role twice; the UI does not
        {"course": "UE-0001", "cohort": "man-ui-0000", "roleid": 5, "name": "Doublon A"},
        {"course": "UE-0001", "cohort": "man-ui-0000", "roleid": 5, "name": "Doublon B"},
        {"course": "UE-0002", "cohort": "man-odd-login", "roleid": 5, "name": "Étendu"},
    ]
    return seed


def forget_user(emu: MoodleEmulator, username: str) -> None:
    """Delete an account the way an old site did: its cohort memberships stay behind."""
    emu.state.users[emu.state.user_by_username[username]].deleted = 1


class Expected:
    """What import should do with the seed, worked out from the seed alone."""

    def __init__(self, seed: dict[str, Any], outside_prefix: bool) -> None:
        unfit = {CATEGORY_COHORT, "man-odd-login", "man-ancien", ""}
        self.general = {c["idnumber"] for c in seed["cohorts"] if c["idnumber"].startswith("etp-")}
        self.cohorts = {
            c["idnumber"] for c in seed["cohorts"]
            if c["idnumber"] not in unfit | self.general
            and (outside_prefix or c["idnumber"].startswith("man-"))
        }
        keys = [(s["course"], s["cohort"], s["roleid"]) for s in seed["cohort_syncs"]]
        role = {5: "student", 4: "teacher"}
        self.syncs = {
            (s["course"], s["cohort"], role[s["roleid"]])
            for s, key in zip(seed["cohort_syncs"], keys, strict=True)
            if not s.get("status") and keys.count(key) == 1
            and s["cohort"] in self.cohorts | self.general
        }
        self.disabled = {
            (s["course"], s["cohort"], role[s["roleid"]])
            for s in seed["cohort_syncs"] if s.get("status")
        }


@pytest.fixture
def handmade(tmp_path: Path, slapd: Slapd, sources_data: demo_data.DemoData) -> Iterator[World]:
    """Ecampus with general cohorts (one étape, L1HIS-101, so that the sources compute only
    the one the old script made), an empty repository, the hand-made Moodle."""
    repo = make_repo(
        tmp_path,
        {"platforms": {"ecampus": {"general_cohorts": {"etapes": {"include": ["L1HIS-101"]}}}}},
        declarations=False,
    )
    with open_world(tmp_path, repo, sources_data, slapd.environ(), platform_seed()) as world:
        forget_user(world.emu, GONE)
        yield world


def commit(world: World, message: str) -> None:
    r = git.Repo(world.repo)
    r.git.add(A=True)
    r.index.commit(message)


def moodle_state(world: World) -> dict[str, Any]:
    """Memberships, active enrolments and instance statuses: what adoption must not move."""
    with world.client() as c:
        courses = {x["shortname"]: int(x["id"]) for x in c.get_courses_by_field() if x["id"] != 1}
        enrolled = {
            name: sorted(u["id"] for u in c.get_enrolled_users(cid, onlyactive=True,
                                                              userfields=("id",)))
            for name, cid in courses.items()
        }
        cohorts = c.get_cohorts()
        members = c.get_cohort_members([int(x["id"]) for x in cohorts])
        instances = sorted((i.id, i.status, i.groupid) for i in c.cohort_sync_instances(-1))
    return {"enrolled": enrolled, "members": {k: sorted(v) for k, v in members.items()},
            "instances": instances}


def import_json(world: World, *args: str) -> dict[str, Any]:
    code, out = world.run("import", "-p", "ecampus", "--now", NOW, "--format", "json", *args)
    assert code == exitcodes.OK, out
    return json.loads(out)


def test_import_then_the_plan_only_adopts_and_apply_converges(handmade: World) -> None:
    world = handmade
    expected = Expected(platform_seed(), outside_prefix=True)
    before = moodle_state(world)
    world.emu.reset_counters()

    result = import_json(world, "--adopt-outside-prefix")
    assert all(is_read(f) for f in world.emu.call_counts), world.emu.call_counts
    written = {Path(p) for p in result["written"]}
    assert {p.stem for p in written if p.parent.name == "cohorts"} == expected.cohorts
    assert expected.cohorts >= {"TUT-0006", "man-ui-0009"}  # outside the prefix; hidden

    code, out = world.run("validate")
    assert code == 0 and out.strip().endswith("0 errors, 0 warnings"), out
    commit(world, "import ecampus")

    # The general cohort an older script made (etp-L1HIS-101) is left alone: the plan is
    # incomplete (exit 7) until its description carries the marker.
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, "--format", "json")
    assert code == exitcodes.INCOMPLETE, out
    plan = json.loads(out)
    adopted_cohorts, adopted_syncs = set(), set()
    for action in plan["actions"]:
        d = action["details"]
        if action["kind"] == "update_cohort":
            assert d["adopt"] is True and set(d["changes"]) == {"description"}, action
            adopted_cohorts.add(action["target"])
        else:
            assert action["kind"] == "update_sync" and set(d["changes"]) == {"name"}, action
            assert d["name"] == f"reconciler: {d['cohort']} ({d['role']})"
            adopted_syncs.add((d["course"], d["cohort"], d["role"]))
    assert adopted_cohorts == expected.cohorts
    assert adopted_syncs == expected.syncs
    assert [(w["code"], w["target"]) for w in plan["incomplete"]] == [
        ("general-lookalike", "etp-L1HIS-101")]
    assert plan["incomplete"] == plan["warnings"]

    code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE and " 0 failed, 0 skipped" in out, out
    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.INCOMPLETE and out.startswith("Plan: no changes."), out
    assert moodle_state(world) == before  # adoption moved no member, enrolment or status


def test_import_reports_what_it_cannot_declare_instead_of_guessing(handmade: World) -> None:
    world = handmade
    seed = platform_seed()
    expected = Expected(seed, outside_prefix=False)
    result = import_json(world)
    findings: dict[str, set[str]] = {}
    for f in result["findings"]:
        findings.setdefault(f["kind"], set()).add(f["target"])

    assert findings["outside-prefix"] == {c["idnumber"] for c in seed["cohorts"]
                                          if c["idnumber"].startswith("TUT-")}
    assert findings["general-cohort"] == expected.general
    assert findings["category-context"] == {CATEGORY_COHORT}
    assert findings["member-without-username"] == {"man-ancien"}
    assert findings["undeclarable-username"] == {"man-odd-login"}
    assert len(findings["no-idnumber"]) == 1
    assert len(findings["disabled-instance"]) == len(expected.disabled)
    assert {t.split(":")[0] for t in findings["duplicate-instance"]} == {"UE-0001"}
    assert len(findings["duplicate-instance"]) == 2
    cohorts_dir = world.repo / "cohorts" / "ecampus" / "cohorts"
    assert {p.stem for p in cohorts_dir.iterdir()} == expected.cohorts

    declared = set()
    for path in (world.repo / "cohorts" / "ecampus" / "syncs").iterdir():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["course"] == path.stem and doc["owners"] == []
        for s in doc["syncs"]:
            assert s["adopt"] is True
            declared.add((doc["course"], s["cohort"], s["role"]))
    assert declared == expected.syncs
    # a disabled instance is listed in its course's file, as a comment only
    files = {course for course, _, _ in declared}
    commented = [(course, cohort) for course, cohort, _ in sorted(expected.disabled)
                 if course in files]
    assert commented
    for course, cohort in commented:
        text = (world.repo / "cohorts" / "ecampus" / "syncs" / f"{course}.yaml").read_text()
        assert re.search(rf"^#   instance \d+: sync .* of {cohort} as", text, re.M), text
    code, out = world.run("validate")
    assert code == 0 and out.strip().endswith("0 errors, 0 warnings"), out


def test_existing_files_are_kept_unless_forced(handmade: World) -> None:
    world = handmade
    first = import_json(world, "--courses", "UE-000*")
    course = Path(next(p for p in first["written"] if "/syncs/" in p)).stem
    cohorts = sorted(Path(p).stem for p in first["written"] if "/cohorts/" in p)
    commit(world, "import")
    with world.client() as c:  # someone adds a sync by hand in an imported course
        courseid = int(c.get_courses_by_field("shortname", course)[0]["id"])
        taken = {i.cohort_idnumber for i in c.cohort_sync_instances(courseid) if i.roleid == 4}
        cohort = next(x for x in c.get_cohorts() if x["idnumber"] in set(cohorts) - taken)
        c.add_cohort_sync(courseid, int(cohort["id"]), 4, name="Ajout tardif")
    path = world.repo / "cohorts" / "ecampus" / "syncs" / f"{course}.yaml"
    old = path.read_text(encoding="utf-8")

    second = import_json(world, "--courses", "UE-000*")
    assert second["written"] == []
    assert second["already_declared"] == len(cohorts)
    assert [f["target"] for f in second["findings"] if f["kind"] == "file-exists"] == [
        f"ecampus/syncs/{course}.yaml"
    ]
    assert path.read_text(encoding="utf-8") == old

    forced = import_json(world, "--courses", course, "--force")
    assert forced["written"] == [f"ecampus/syncs/{course}.yaml"]
    before = yaml.safe_load(old)["syncs"]
    after = yaml.safe_load(path.read_text(encoding="utf-8"))["syncs"]
    assert after[: len(before)] == before  # the declared entries, as declared
    assert after[len(before):] == [
        {"cohort": cohort["idnumber"], "role": "teacher", "adopt": True,
         "reason": after[-1]["reason"]}
    ]
    assert '"Ajout tardif"' in after[-1]["reason"]
    code, out = world.run("validate")
    assert code == 0 and out.strip().endswith("0 errors, 0 warnings"), out


READ_ONLY = [  # the read-only service of the CI's real Moodle
    "core_webservice_get_site_info", "core_cohort_get_cohorts", "core_cohort_search_cohorts",
    "core_cohort_get_cohort_members", "core_user_get_users_by_field", "core_user_get_users",
    "core_course_get_courses_by_field", "core_course_get_courses", "core_course_get_categories",
    "core_enrol_get_course_enrolment_methods", "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses", "core_group_get_course_groups", "core_group_get_groups",
    "core_group_get_group_members", "local_ws_enrolcohort_get_instances",
]


def _bare_world(tmp_path: Path, functions: list[str] | None,
                overrides: dict[str, Any] | None = None) -> tuple[Path, MoodleEmulator]:
    repo = make_repo(tmp_path, {"platforms": {"ecampus": {
        "general_cohorts": {"enabled": False}, **(overrides or {})}}}, declarations=False)
    emu = MoodleEmulator(EmulatorConfig(token=TOKEN, functions=functions))
    return repo, emu


def _run(repo: Path, emu: MoodleEmulator, *args: str) -> tuple[int, str]:
    """``reconcile --repo REPO *args`` against ``emu`` alone (no sources needed)."""
    result = CliRunner().invoke(
        main, ["--repo", str(repo), *args], env={"ECAMPUS_URL": emu.url, "ECAMPUS_TOKEN": TOKEN}
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_import_needs_only_a_read_only_token_and_one_pass_of_bulk_reads(tmp_path: Path) -> None:
    repo, emu = _bare_world(tmp_path, READ_ONLY)
    with emu:
        emu.seed(handmade_platform())
        code, out = _run(repo, emu, "import", "-p", "ecampus", "--adopt-outside-prefix")
        assert code == exitcodes.OK, out
        assert set(emu.call_counts) <= set(READ_ONLY)
        # the plan's reads (site info, cohorts, members, users, courses, instances) + 1 search
        assert sum(emu.call_counts.values()) <= 10, emu.call_counts
        assert emu.call_counts["core_cohort_search_cohorts"] == 1


def test_without_the_search_function_contexts_are_unknown_and_nothing_is_guessed(
    tmp_path: Path,
) -> None:
    repo, emu = _bare_world(tmp_path, [f for f in READ_ONLY if "search" not in f])
    with emu:
        emu.seed(handmade_platform(cohorts=20, instances=20, courses=5))
        code, out = _run(repo, emu, "import", "-p", "ecampus", "--format", "json")
    assert code == exitcodes.OK, out
    result = json.loads(out)
    assert [p for p in result["written"] if "/cohorts/" in p] == []
    kinds = {f["kind"] for f in result["findings"]}
    assert "context-unknown" in kinds


def test_import_refuses_while_the_declarations_have_errors(tmp_path: Path) -> None:
    repo, emu = _bare_world(tmp_path, None)
    bad = repo / "cohorts" / "ecampus" / "cohorts" / "man-x.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("idnumber: [broken\n", encoding="utf-8")
    with emu:
        code, out = _run(repo, emu, "import", "-p", "ecampus")
        assert code == exitcodes.ERROR
        assert out.strip() == (
            "error: the declarations have errors (run `reconcile validate`); nothing read"
        )
        assert sum(emu.call_counts.values()) == 0


def test_a_cohort_adopted_outside_the_prefix_is_let_go_never_deleted(tmp_path: Path) -> None:
    """Deleting the file of a cohort adopted as it is releases it: the next plan leaves it
    (and its members) alone although it now carries the reconciler's marker."""
    repo, emu = _bare_world(tmp_path, None)
    with emu:
        emu.seed(handmade_platform(cohorts=8, instances=0, courses=1, users=40))
        code, out = _run(repo, emu, "import", "-p", "ecampus", "--adopt-outside-prefix",
                         "--cohorts", "TUT-*", "--now", NOW)
        assert code == exitcodes.OK and "ecampus/cohorts/TUT-0006.yaml" in out, out
        r = git.Repo(repo)
        r.git.add(A=True)
        r.index.commit("adopt TUT-0006 and TUT-0007")
        assert _run(repo, emu, "apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
        with MoodleClient(emu.url, TOKEN) as c:
            before = {x["idnumber"]: x for x in c.get_cohorts()}
            members = c.get_cohort_members([int(before["TUT-0006"]["id"])])
        assert COHORT_MARKER in before["TUT-0006"]["description"]

        (repo / "cohorts" / "ecampus" / "cohorts" / "TUT-0006.yaml").unlink()
        r.git.add(A=True)
        r.index.commit("let TUT-0006 go")
        code, out = _run(repo, emu, "plan", "-p", "ecampus", "--now", NOW)
        assert code == exitcodes.OK and out.startswith("Plan: no changes."), out
        assert _run(repo, emu, "apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
        with MoodleClient(emu.url, TOKEN) as c:
            after = {x["idnumber"]: x for x in c.get_cohorts()}
            assert c.get_cohort_members([int(after["TUT-0006"]["id"])]) == members
        assert after["TUT-0006"] == before["TUT-0006"]


# -- audit ---------------------------------------------------------------------------------


def _audit(repo: Path, emu: MoodleEmulator, now: str, *args: str) -> tuple[int, dict[str, Any]]:
    code, out = _run(repo, emu, "audit", "-p", "ecampus", "--now", now, "--format", "json", *args)
    assert code in (exitcodes.OK, exitcodes.OVER_LIMIT), out
    return code, json.loads(out)


def test_audit_lists_exactly_the_undeclared_objects_with_their_ages_over_two_nights(
    tmp_path: Path,
) -> None:
    repo, emu = _bare_world(tmp_path, None)
    with emu:
        emu.seed(handmade_platform(cohorts=40, instances=60, courses=12))
        with MoodleClient(emu.url, TOKEN) as c:
            every = {i.id: i for i in c.cohort_sync_instances(-1)}
            cohorts = {int(x["id"]): x["idnumber"] for x in c.get_cohorts()}

        emu.reset_counters()
        code, night1 = _audit(repo, emu, NOW, "--fail-over-limit")
        assert code == exitcodes.OK
        assert all(is_read(f) for f in emu.call_counts), emu.call_counts  # never a write
        assert {s["id"] for s in night1["instances"]} == set(every)
        assert {c["id"] for c in night1["cohorts"]} == set(cohorts)
        assert all(s["age"] == {"first_seen": "2026-11-28", "present_before": True, "days": 0}
                   for s in night1["instances"])
        assert night1["over_limit"] == [] and night1["tracking_since"] == "2026-11-28"
        assert all(s["users"] == 0 for s in night1["instances"] if not s["enabled"])

        # Between the nights: some of it is imported and merged (declared from now on), and
        # someone adds a sync by hand.
        code, out = _run(repo, emu, "import", "-p", "ecampus", "--courses", "UE-000[0-4]")
        assert code == exitcodes.OK, out
        git.Repo(repo).git.add(A=True)
        git.Repo(repo).index.commit("import")
        declared = set()
        for path in (repo / "cohorts" / "ecampus" / "syncs").iterdir():
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            declared |= {(doc["course"], s["cohort"], s["role"]) for s in doc["syncs"]}
        imported_cohorts = {p.stem for p in (repo / "cohorts" / "ecampus" / "cohorts").iterdir()}
        with MoodleClient(emu.url, TOKEN) as c:
            course = c.get_courses_by_field("shortname", "UE-0011")[0]
            cohort = next(x for x in c.get_cohorts() if x["idnumber"] == "TUT-0006")
            late = c.add_cohort_sync(int(course["id"]), int(cohort["id"]), 5, name="Ajout")

        code, night2 = _audit(repo, emu, NIGHT_2, "--fail-over-limit")
        assert code == exitcodes.OVER_LIMIT
        role = {5: "student", 4: "teacher"}
        still = {i for i, inst in every.items()
                 if (inst.course_shortname, inst.cohort_idnumber, role[inst.roleid]) not in declared}
        assert {s["id"] for s in night2["instances"]} == still | {late}
        by_id = {s["id"]: s for s in night2["instances"]}
        assert by_id[late]["age"] == {"first_seen": "2027-04-07", "present_before": False,
                                      "days": 0}
        assert not by_id[late]["over_limit"]
        old_enabled = {i for i in still if every[i].status == 0}
        assert set(night2["over_limit"]) == old_enabled
        for i in old_enabled:
            s = by_id[i]
            assert s["age"] == {"first_seen": "2026-11-28", "present_before": True, "days": 130}
            number = int(s["course"].split("-")[1])
            assert s["teachers"] == [{"fullname": f"Enseignant N{number}",
                                      "email": f"prof{number:04d}@example.org"}]
        assert {c["idnumber"] for c in night2["cohorts"] if not c["declared"]} == (
            set(cohorts.values()) - imported_cohorts
        )
        state = json.loads((repo / ".reconciler" / "audit-ecampus.json").read_text())
        assert {int(i) for i in state["instances"]} == still | {late}

        code, out = _run(repo, emu, "audit", "-p", "ecampus", "--now", NIGHT_2,
                         "--format", "markdown", "--out", str(tmp_path / "audit.md"),
                         "--json-out", str(tmp_path / "audit.json"))
        assert code == exitcodes.OK
        assert out.index("#### Over the limit") < out.index("#### By course") < out.index(
            "#### By cohort")
        assert (tmp_path / "audit.md").read_text(encoding="utf-8") == out
        assert "present before 2026-11-28 (≥ 130 days)" in out
        again = json.loads((tmp_path / "audit.json").read_text(encoding="utf-8"))
        assert again["over_limit"] == night2["over_limit"]


def test_audit_where_cohort_sync_is_forbidden_puts_every_enabled_sync_over_the_limit(
    tmp_path: Path,
) -> None:
    repo, emu = _bare_world(tmp_path, None, {"sync_policy": {"cohort_sync": "forbidden"}})
    with emu:
        emu.seed(handmade_platform(cohorts=10, instances=12, courses=4))
        code, report = _audit(repo, emu, NOW, "--fail-over-limit")
    assert code == exitcodes.OVER_LIMIT
    enabled = {s["id"] for s in report["instances"] if s["enabled"]}
    assert enabled and set(report["over_limit"]) == enabled


@pytest.mark.parametrize(
    ("memory", "why"),
    [
        ('{"format_version": 1, "platform": "ecampus", "started": "nope"', "unreadable"),
        ('{"format_version": 1, "platform": "ecampus", "site": "https://elsewhere.example",'
         ' "started": "2026-01-01", "instances": {"1": "2026-01-01"}, "cohorts": {}}',
         "kept for another site (https://elsewhere.example)"),
        ('{"format_version": 1, "platform": "prelude", "started": "2026-01-01"}',
         "not this platform's audit memory"),
    ],
)
def test_an_unusable_audit_memory_restarts_the_count(tmp_path: Path, memory: str,
                                                      why: str) -> None:
    repo, emu = _bare_world(tmp_path, None)
    state = repo / ".reconciler" / "audit-ecampus.json"
    state.parent.mkdir()
    state.write_text(memory, "utf-8")
    with emu:
        emu.seed(handmade_platform(cohorts=5, instances=5, courses=2))
        code, out = _run(repo, emu, "audit", "-p", "ecampus", "--now", NOW)
        saved = json.loads(state.read_text())
        assert (saved["started"], saved["site"]) == ("2026-11-28", emu.url)
    assert code == exitcodes.OK, out
    assert f"note: {state}: {why}" in out and "ages start again today" in out
    assert "present before 2026-11-28 (≥ 0 days)" in out


def test_the_nightly_pipeline_publishes_the_audit_beside_expiring() -> None:
    ci = yaml.safe_load((Path(__file__).resolve().parent.parent / ".gitlab-ci.yml").read_text())
    audit = ci["audit"]
    assert audit["stage"] == ci["expiring"]["stage"] == "notify"
    assert [r["if"] for r in audit["rules"]] == ['$CI_PIPELINE_SOURCE == "schedule"']
    assert "needs" not in audit  # after the night's apply, whatever it gave
    # `audit` prefers <PLATFORM>_READONLY_TOKEN in code; no YAML mapping a project variable
    # would outrank.
    assert not any("TOKEN" in k for k in (audit.get("variables") or {}))
    assert "reconcile audit" in audit["script"][0] and "--fail-over-limit" in audit["script"][0]
    assert audit["allow_failure"] == {"exit_codes": [exitcodes.OVER_LIMIT]}
    assert "audit-$PLATFORM.md" in audit["artifacts"]["paths"]
    # No race with the nightly job: the audit's state cache is not the platform's state cache.
    state = [c["key"] for c in ci[".state"]["cache"] if ".reconciler/" in c["paths"]]
    assert state and all(c["key"] not in state for c in audit["cache"])


# -- the same reads on a real Moodle ----------------------------------------------------------


@pytest.fixture(params=[pytest.param(kind, marks=getattr(pytest.mark, kind)) for kind in KINDS])
def site(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """(url, write token, read-only token) of each backend: the emulator (with the real
    site's read-only service), or the real Moodle 4.5 site (tests/support/realmoodle.py:
    skipped without one, required in CI; reset once per module, for what others left)."""
    if request.param == "real":
        real = site_backend(request.getfixturevalue("pristine_moodle"))
        yield real.url, real.token, real.readonly_token
        return
    with emulator_backend() as emu:
        yield emu.url, emu.token, emu.readonly_token


def test_import_reads_contexts_groups_and_statuses_as_the_site_gives_them(
    tmp_path: Path, site: tuple[str, str, str]
) -> None:
    """Made through the web services as a person would in the UI (a run id keeps a shared
    real site's leftovers out): a system cohort, one outside the prefix with a hidden flag
    and a Windows-style description, one in a category, a sync into a group, an unnamed
    one, a disabled one. Import, with the read-only token, declares exactly what it can."""
    url, token, readonly = site
    run = f"ia{uuid.uuid4().hex[:6]}"
    with MoodleClient(url, token) as c:
        [cat] = c.create_categories([NewCategory(f"UFR {run}", idnumber=f"UFR-{run}")])
        courses = c.create_courses([NewCourse(f"Cours {i} {run}", f"C{i}-{run}", int(cat["id"]))
                                    for i in range(2)])
        users = c.create_users([NewUser(f"{run}u{i}", "P", f"N{i}", f"{run}u{i}@example.org",
                                        password="Passw0rd!x") for i in range(4)])
        uid = [int(u["id"]) for u in users]
        made = c.create_cohorts([
            NewCohort(f"Tuteurs {run}", f"man-a-{run}"),
            NewCohort(f"Hors préfixe {run}", f"TUT-{run}",
                      description="<p>Ligne 1</p>\r\n<p>Ligne 2</p>", visible=False),
            NewCohort(f"Catégorie {run}", f"man-cat-{run}", category_type="id",
                      category_value=int(cat["id"])),
        ])
        cid = [int(x["id"]) for x in made]
        c.add_cohort_members([(cid[0], uid[0]), (cid[0], uid[1]), (cid[1], uid[2]),
                              (cid[2], uid[3])])
        course = [int(x["id"]) for x in courses]
        [group] = c.create_groups([NewGroup(course[0], f"Groupe {run}")])
        c.add_cohort_sync(course[0], cid[0], 5, groupid=int(group["id"]), name="Faite main")
        c.add_cohort_sync(course[0], cid[1], 4)
        c.add_cohort_sync(course[1], cid[2], 5, name="Catégorie")
        c.add_cohort_sync(course[1], cid[0], 5, name="Désactivée", status=1)
        try:
            repo = make_repo(tmp_path, {"platforms": {"ecampus": {
                "general_cohorts": {"enabled": False}}}}, declarations=False)
            result = CliRunner().invoke(main, [
                "--repo", str(repo), "import", "-p", "ecampus", "--adopt-outside-prefix",
                "--cohorts", f"*{run}", "--courses", f"*{run}", "--format", "json",
            ], env={"ECAMPUS_URL": url, "ECAMPUS_TOKEN": readonly})
            assert result.exit_code == exitcodes.OK, result.output
            report = json.loads(result.output)
        finally:
            c.delete_users(uid)
            c.delete_cohorts(cid)
    assert sorted(report["written"]) == [
        f"ecampus/cohorts/TUT-{run}.yaml", f"ecampus/cohorts/man-a-{run}.yaml",
        f"ecampus/syncs/C0-{run}.yaml",
    ]
    kinds = {(f["kind"], f["target"].split(":")[0]) for f in report["findings"]}
    assert kinds == {("category-context", f"man-cat-{run}"), ("disabled-instance", f"C1-{run}"),
                     ("cohort-not-imported", f"C1-{run}")}
    tut = yaml.safe_load((repo / "cohorts" / "ecampus" / "cohorts" / f"TUT-{run}.yaml")
                         .read_text(encoding="utf-8"))
    assert tut["description"] == "<p>Ligne 1</p>\r\n<p>Ligne 2</p>" and tut["visible"] is False
    assert tut["members"] == [f"{run}u2"]
    syncs = yaml.safe_load((repo / "cohorts" / "ecampus" / "syncs" / f"C0-{run}.yaml")
                           .read_text(encoding="utf-8"))["syncs"]
    assert [(s["cohort"], s["role"], s.get("group")) for s in syncs] == [
        (f"man-a-{run}", "student", f"Groupe {run}"), (f"TUT-{run}", "teacher", None)]
