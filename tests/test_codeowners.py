"""``reconcile codeowners`` (issue 17, item 5): GitLab's CODEOWNERS follows the owners of the
declarations, and never drifts: the first test is the check the pipeline's validate job runs,
here on this repository itself."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.gitlab.codeowners import escape_path

REPO = Path(__file__).resolve().parent.parent


def run(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--repo", str(repo), "codeowners", *args])


def test_the_repository_codeowners_matches_its_declarations() -> None:
    result = run(REPO, "--check")
    assert result.exit_code == 0, result.output
    text = (REPO / "CODEOWNERS").read_text(encoding="utf-8")
    assert "/cohorts/collegium/patterns/foad2-dfgsp2.yaml claire.lefevre@unicaen.fr" in text
    assert "\n* @dsi/moodle\n" in text


def _copy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "cohorts", repo / "cohorts")
    return repo


def test_generated_then_checked_then_drifting(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    result = run(repo, "--check")
    assert result.exit_code == 1
    assert "error: " in result.output and "CODEOWNERS is missing" in result.output
    assert not (repo / "CODEOWNERS").exists()

    result = run(repo)
    assert result.exit_code == 0, result.output
    lines = (repo / "CODEOWNERS").read_text(encoding="utf-8").splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "* @dsi/moodle"  # first: GitLab takes the last matching line
    assert rules[1:] == sorted(rules[1:])
    assert "/cohorts/platforms.yaml @dsi/moodle" in rules
    assert "/cohorts/ecampus/syncs/HIST-L1-MOD.yaml marc.duval@unicaen.fr" in rules
    assert run(repo, "--check").exit_code == 0

    # Someone changes a course's owners without regenerating: the check names the line.
    path = repo / "cohorts" / "ecampus" / "syncs" / "HIST-L1-MOD.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  - marc.duval@unicaen.fr\n", "  - marc.duval@unicaen.fr\n  - jdupont\n"))
    result = run(repo, "--check")
    assert result.exit_code == 1
    assert "-/cohorts/ecampus/syncs/HIST-L1-MOD.yaml marc.duval@unicaen.fr" in result.output
    assert "+/cohorts/ecampus/syncs/HIST-L1-MOD.yaml marc.duval@unicaen.fr @jdupont" in (
        result.output)
    assert ("CODEOWNERS does not match the owners of the declarations (2 line(s) differ): run "
            "`reconcile codeowners` and commit it") in result.output
    assert run(repo).exit_code == 0 and run(repo, "--check").exit_code == 0


def test_owners_gitlab_cannot_name_are_left_out(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    path = repo / "cohorts" / "prelude" / "cohorts" / "man-prepa-ifsi.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  - formation-continue@unicaen.fr\n", "  - Formation Continue\n  - '@fc/ifsi'\n"))
    broken = repo / "cohorts" / "prelude" / "syncs" / "PRELUDE-METHODO.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace(
        "  - formation-continue@unicaen.fr\n", "  - Formation Continue\n"))
    assert run(repo).exit_code == 0
    text = (repo / "CODEOWNERS").read_text(encoding="utf-8")
    assert "/cohorts/prelude/cohorts/man-prepa-ifsi.yaml @fc/ifsi\n" in text
    assert "PRELUDE-METHODO" not in text  # falls back to the default owners (*)


def test_declarations_with_errors_write_nothing(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    (repo / "cohorts" / "ecampus" / "cohorts" / "man-broken.yaml").write_text(
        "idnumber: man-broken\nname: [\n")
    result = run(repo)
    assert result.exit_code == 1
    assert "the declarations have errors" in result.output
    assert not (repo / "CODEOWNERS").exists()


def test_paths_are_escaped_as_gitlab_reads_them() -> None:
    assert escape_path("cohorts/x/syncs/A B.yaml") == "/cohorts/x/syncs/A\\ B.yaml"
    assert escape_path("cohorts/x/syncs/#1*[a]?.yaml") == "/cohorts/x/syncs/\\#1\\*\\[a\\]\\?.yaml"
    assert escape_path("cohorts/x/syncs/PHARMA_L2.yaml") == "/cohorts/x/syncs/PHARMA_L2.yaml"
