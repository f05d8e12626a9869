"""A course pattern by category on a real Moodle 4.5 (issue 17, item 1), through the CLI:
what the emulator stands for here, checked against the real thing. Runs when MOODLE_URL,
MOODLE_TOKEN and MOODLE_READONLY_TOKEN are set (README of the real-site bundle); skipped
otherwise. Every run makes its own categories, courses, users and cohort, under a managed
prefix of its own, so that runs never touch each other's objects."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import git
import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import exitcodes, main
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.types import NewCategory, NewCourse, NewUser

NOW = "2026-11-28T02:00:00Z"


@pytest.fixture
def site() -> tuple[str, str, str]:
    url, token = os.environ.get("MOODLE_URL"), os.environ.get("MOODLE_TOKEN")
    readonly = os.environ.get("MOODLE_READONLY_TOKEN")
    if not (url and token and readonly):
        pytest.skip("set MOODLE_URL, MOODLE_TOKEN and MOODLE_READONLY_TOKEN for a real Moodle")
    return url, token, readonly


def _repo(tmp_path: Path, run: str, subcategories: bool) -> Path:
    repo = tmp_path / "repo"
    (repo / "cohorts" / "prelude" / "cohorts").mkdir(parents=True)
    (repo / "cohorts" / "prelude" / "patterns").mkdir(parents=True)
    platforms = {
        "academic_year": "2026",
        "platforms": {"prelude": {
            "url": "https://prelude.example.org",
            "general_cohorts": {"enabled": False},
            "manual_cohorts": {"idnumber_prefix": f"{run}-"},
            "sync_policy": {"cohort_sync": "allowed"},
            # Other runs' instances on this shared site are the reconciler's too (by name).
            "failsafes": {"max_syncs_removed": 100000, "max_cohorts_deleted_or_emptied": 1000},
        }},
    }
    (repo / "cohorts" / "platforms.yaml").write_text(yaml.safe_dump(platforms))
    (repo / "cohorts" / "prelude" / "cohorts" / f"{run}-tuteurs.yaml").write_text(yaml.safe_dump({
        "idnumber": f"{run}-tuteurs", "name": f"Tuteurs {run}", "owners": ["a@b.fr"],
        "review_every": "180d", "reviewed": "2026-11-01", "members": [f"{run}u0", f"{run}u1"]}))
    _pattern(repo, run, subcategories)
    r = git.Repo.init(repo)
    r.git.add(A=True)
    r.index.commit("declarations")
    return repo


def _pattern(repo: Path, run: str, subcategories: bool) -> None:
    (repo / "cohorts" / "prelude" / "patterns" / "tuteurs.yaml").write_text(yaml.safe_dump({
        "owners": ["a@b.fr"],
        "courses": {"category": f"T-{run}", "subcategories": subcategories},
        "syncs": [{"cohort": f"{run}-tuteurs", "role": "teacher", "reason": "les tuteurs"}]}))


def test_a_category_pattern_on_a_real_moodle(tmp_path: Path, site) -> None:
    url, token, readonly = site
    run = f"pt{int(time.time()) % 100000}{uuid.uuid4().hex[:4]}"
    with MoodleClient(url, token) as c:
        top = c.create_categories([NewCategory(f"Top {run}", 0, f"T-{run}")])[0]["id"]
        sub = c.create_categories([NewCategory(f"Sub {run}", top, f"S-{run}")])[0]["id"]
        other = c.create_categories([NewCategory(f"Other {run}", 0, f"O-{run}")])[0]["id"]
        courses = {x["shortname"]: x["id"] for x in c.create_courses([
            NewCourse(f"A {run}", f"A-{run}", top), NewCourse(f"B {run}", f"B-{run}", sub),
            NewCourse(f"C {run}", f"C-{run}", other)])}
        users = c.create_users([NewUser(f"{run}u{i}", "P", "N", f"{run}u{i}@example.org",
                                        auth="manual", password="Passw0rd!x") for i in range(2)])
    repo = _repo(tmp_path, run, subcategories=True)

    def reconcile(*args: str, tok: str = token) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--repo", str(repo), *args],
                                    env={"PRELUDE_URL": url, "PRELUDE_TOKEN": tok})
        return result.exit_code, result.output

    def instances() -> dict[str, int]:
        with MoodleClient(url, token) as c:
            return {i.course_shortname: i.status for i in c.cohort_sync_instances(-1)
                    if i.cohort_idnumber == f"{run}-tuteurs"}

    try:
        code, out = reconcile("validate", "--explain-patterns", "-p", "prelude", tok=readonly)
        assert code == 0, out
        assert f"tuteurs (in category T-{run} and its subcategories; " in out
        assert f"2 courses: A-{run}, B-{run}" in out
        code, out = reconcile("apply", "-p", "prelude", "--now", NOW)
        assert code == exitcodes.OK, out
        assert instances() == {f"A-{run}": 0, f"B-{run}": 0}

        _pattern(repo, run, subcategories=False)  # B's subcategory no longer counts
        git.Repo(repo).git.commit("-am", "only the top category")
        code, out = reconcile("plan", "-p", "prelude", "--now", NOW)
        assert f"no longer matching, their syncs retired: B-{run}" in out, out
        code, out = reconcile("apply", "-p", "prelude", "--now", NOW)
        assert code == exitcodes.OK, out
        assert instances() == {f"A-{run}": 0, f"B-{run}": 1}  # disabled, not deleted
    finally:
        with MoodleClient(url, token) as c:
            c.delete_users([u["id"] for u in users])
    assert courses  # made on the site; courses cannot be deleted through the service
