"""A representative handful of the fault matrix on a real Moodle 4.5 with local_ws_enrolcohort
(run when ``MOODLE_URL`` and ``MOODLE_TOKEN`` are set, like the contract tests).

The emulator imitates what a write does when its request fails before reaching Moodle or
when its answer is lost after the commit; here the real site runs the writes, and a proxy in
front of it (``support/faultproxy.py``) strikes one call: answered 500 or dropped *before*
forwarding, or forwarded (Moodle commits) and then answered 500 or dropped. The night is
``support/matrix.py``'s, cut to what needs no sources: a platform without general cohorts
(manual cohorts, a sync with a group, ``method: manual``, a cohort renamed, a member leaving,
a new cohort synced with a new group, a sync retired, a cohort deleted). Each case makes its
own category, courses, users and cohort prefix, and removes its cohorts, instances and users
at the end, so cases never see each other's objects.

The invariants are the matrix's: nothing the converged state still wants is gone after the
faulted run, a non-zero exit says why in one line and nothing escapes as a traceback, and one
clean re-run converges (its next plan has no changes).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import CliRunner
from support.faultproxy import fault_proxy
from support.matrix import Canon, lost

from reconciler.cli import main
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.types import NewCategory, NewCourse, NewUser

REPO = Path(__file__).resolve().parent.parent
URL, TOKEN = os.environ.get("MOODLE_URL"), os.environ.get("MOODLE_TOKEN")
pytestmark = pytest.mark.skipif(not (URL and TOKEN), reason="set MOODLE_URL and MOODLE_TOKEN "
                                "to run the fault matrix's cases on a real Moodle")

# (write function, fault): the writes whose fault behaviour the emulator imitates.
CASES = (
    ("core_cohort_create_cohorts", "lost-http500"),
    ("core_cohort_update_cohorts", "http500"),
    ("core_cohort_add_cohort_members", "http500"),
    ("core_cohort_add_cohort_members", "lost-drop"),
    ("core_group_create_groups", "lost-http500"),
    ("local_ws_enrolcohort_add_instance", "drop"),
    ("local_ws_enrolcohort_add_instance", "lost-drop"),
    ("local_ws_enrolcohort_update_instance", "lost-http500"),
    ("enrol_manual_enrol_users", "lost-http500"),
    ("core_cohort_delete_cohort_members", "lost-drop"),
    ("core_cohort_delete_cohorts", "lost-http500"),
)
PROBLEM_LINES = ("error: ", "  FAILED ", "  SKIPPED ", "incomplete: ")


@dataclass
class RealNight:
    repo: Path
    prefix: str
    courses: dict[str, int]  # shortname -> id
    users: list[str]
    user_ids: list[int]

    def run(self, *args: str, url: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--repo", str(self.repo), *args],
                                    env={"PRELUDE_URL": url, "PRELUDE_TOKEN": TOKEN or ""})
        output = result.output
        if result.exception and not isinstance(result.exception, SystemExit):
            output += f"\nTraceback (escaped the CLI): {result.exception!r}"
        return result.exit_code, output

    def canon(self) -> Canon:
        """The case's objects as the web services show them (enrolments: active or not,
        whatever the method)."""
        with MoodleClient(URL or "", TOKEN or "") as c:
            names = {int(u["id"]): u["username"] for u in c.get_users_by_field("id",
                                                                              self.user_ids)}
            mine = [x for x in c.get_cohorts() if (x.get("idnumber") or "").startswith(
                self.prefix)]
            members = c.get_cohort_members([int(x["id"]) for x in mine]) if mine else {}
            cohorts = {x["idnumber"]: (x["name"], frozenset(
                names.get(u, f"#{u}") for u in members.get(int(x["id"]), []))) for x in mine}
            instances: dict[tuple[str, str, int], tuple[int, str, str]] = {}
            enrolments: dict[tuple[str, str, str], bool] = {}
            groups: Counter[tuple[str, str]] = Counter()
            group_members: set[tuple[str, str, str]] = set()
            for shortname, courseid in self.courses.items():
                for inst in c.cohort_sync_instances(courseid):
                    key = (shortname, inst.cohort_idnumber or f"#{inst.cohortid}", inst.roleid)
                    instances[key] = (inst.status, inst.group_name or "", inst.name or "")
                for user in c.get_enrolled_users(courseid, onlyactive=True,
                                                 userfields=("id", "username")):
                    enrolments[(shortname, user["username"], "*")] = True
                course_groups = c.get_course_groups(courseid)
                groups.update((shortname, g["name"]) for g in course_groups)
                by_id = {int(g["id"]): g["name"] for g in course_groups}
                for gid, uids in c.get_group_members(list(by_id)).items() if by_id else []:
                    group_members |= {(shortname, by_id[gid], names.get(u, f"#{u}"))
                                      for u in uids}
        return Canon(cohorts, instances, enrolments, groups, frozenset(group_members))

    def clean_up(self) -> None:
        with MoodleClient(URL or "", TOKEN or "") as c:
            for courseid in self.courses.values():
                for inst in c.cohort_sync_instances(courseid):
                    c.delete_cohort_sync(inst.id)
            mine = [int(x["id"]) for x in c.get_cohorts()
                    if (x.get("idnumber") or "").startswith(self.prefix)]
            if mine:
                c.delete_cohorts(mine)
            c.delete_users(self.user_ids)


def _cohort(idnumber: str, name: str, members: list[str]) -> dict[str, Any]:
    return {"idnumber": idnumber, "name": name, "owners": ["matrix@unicaen.fr"],
            "members": sorted(members)}


def _sync(cohort: str, role: str = "student", **extra: Any) -> dict[str, Any]:
    return {"cohort": cohort, "role": role, **extra, "reason": "fault matrix, real site"}


def _files(p: str, c: list[str], u: list[str], night: bool) -> dict[str, dict[str, Any]]:
    tuteurs = u[:3] if not night else u[:2]  # one tutor leaves
    auditeurs = u[3:6] if not night else u[3:7]  # one auditor joins (method: manual)
    files = {
        f"cohorts/{p}tuteurs.yaml": _cohort(f"{p}tuteurs", "Tuteurs d'histoire" if night
                                            else "Tuteurs", tuteurs),
        f"cohorts/{p}auditeurs.yaml": _cohort(f"{p}auditeurs", "Auditeurs", auditeurs),
        f"syncs/{c[0]}.yaml": {"course": c[0], "owners": ["a@unicaen.fr"], "syncs": [
            _sync(f"{p}tuteurs", "teacher", group="Tutorat"),
            *([_sync(f"{p}nouveaux", group="Nouveaux")] if night else [])]},
        f"syncs/{c[1]}.yaml": {"course": c[1], "owners": ["a@unicaen.fr"], "syncs": [
            _sync(f"{p}auditeurs", method="manual", expires="2030-06-30")]},
    }
    if night:
        files[f"cohorts/{p}nouveaux.yaml"] = _cohort(f"{p}nouveaux", "Nouveaux", u[5:8])
    else:
        files[f"cohorts/{p}jetable.yaml"] = _cohort(f"{p}jetable", "Jetable", u[6:8])
        files[f"syncs/{c[2]}.yaml"] = {"course": c[2], "owners": ["a@unicaen.fr"],
                                       "syncs": [_sync(f"{p}tuteurs")]}
    return files


def _write_night(repo: Path, files: dict[str, dict[str, Any]]) -> None:
    folder = repo / "cohorts" / "prelude"
    shutil.rmtree(folder, ignore_errors=True)
    for relative, doc in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
    r = git.Repo(repo)
    r.git.add(A=True)
    r.index.commit("declarations")


@pytest.fixture
def real_night(tmp_path: Path) -> Iterator[RealNight]:
    rid = uuid.uuid4().hex[:6]
    prefix = f"fm{rid}-"
    shortnames = [f"FM{rid}-{n}" for n in (1, 2, 3)]
    users = [f"fm{rid}u{n}" for n in range(1, 9)]
    with MoodleClient(URL or "", TOKEN or "") as c:
        cat = c.create_categories([NewCategory(f"Fault matrix {rid}", 0, f"FM{rid}")])[0]["id"]
        created = c.create_courses([NewCourse(f"Cours {s}", s, int(cat)) for s in shortnames])
        made = c.create_users([NewUser(u, u, "Matrix", f"{u}@example.org", auth="manual",
                                       password="Matrix-Pass-1!") for u in users])
    repo = tmp_path / "repo"
    (repo / "cohorts").mkdir(parents=True)
    doc = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))
    doc["platforms"]["prelude"]["manual_cohorts"] = {"idnumber_prefix": prefix}
    doc["platforms"]["prelude"]["sync_policy"] = {"cohort_sync": "allowed",
                                                  "max_temporary_days": 3650}
    (repo / "cohorts" / "platforms.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (repo / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    git.Repo.init(repo)
    night = RealNight(repo, prefix, {s: int(x["id"]) for s, x in zip(shortnames, created,
                                                                       strict=True)},
                      users, [int(u["id"]) for u in made])
    try:
        _write_night(repo, _files(prefix, shortnames, users, night=False))
        code, out = night.run("apply", "-p", "prelude", url=URL or "")
        assert code == 0, out
        _write_night(repo, _files(prefix, shortnames, users, night=True))
        yield night
    finally:
        night.clean_up()


@pytest.mark.parametrize(("function", "fault"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_a_write_fails_on_the_real_site(real_night: RealNight, function: str,
                                        fault: str) -> None:
    before = real_night.canon()
    with fault_proxy(URL or "") as proxy:
        proxy.arm(function, 1, fault)
        code, out = real_night.run("apply", "-p", "prelude", url=proxy.url)
        assert proxy.struck == [(function, fault)], (proxy.calls, out)  # the fault happened
    after = real_night.canon()
    assert "Traceback" not in out and "run with --debug" not in out, out

    code_again, out_again = real_night.run("apply", "-p", "prelude", url=URL or "")
    assert code_again == 0, out_again
    code_plan, plan = real_night.run("plan", "-p", "prelude", url=URL or "")
    assert code_plan == 0 and "Plan: no changes" in plan, plan
    final = real_night.canon()

    assert not lost(before, final, after), (lost(before, final, after), out)
    if code == 0:  # recovered within the run: converged already
        assert after == final, final.differences(after)
    else:
        assert any(line.startswith(PROBLEM_LINES) for line in out.splitlines()), out
