"""``reconcile sources`` end to end: sqlite APOGÉE + the test slapd, through the CLI."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.slapd import Slapd, free_port

from reconciler.cli import main
from reconciler.demo import data as dd

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "cohorts").mkdir()
    shutil.copy(REPO / "cohorts" / "platforms.yaml", tmp_path / "cohorts" / "platforms.yaml")
    return tmp_path


@pytest.fixture
def env(slapd: Slapd, tmp_path: Path, sources_data: dd.DemoData) -> dict[str, str]:
    db = tmp_path / "apogee.db"
    dd.write_apogee(sources_data, db).close()
    return {**slapd.environ(), "APOGEE_URL": f"sqlite:///{db}"}


def run(repo: Path, env: dict[str, str], *args: str):
    return CliRunner().invoke(main, ["--repo", str(repo), "sources", *args], env=env)


def test_healthy_summary_then_record(repo: Path, env: dict[str, str]) -> None:
    result = run(repo, env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Sources for academic year 2026: HEALTHY" in out
    assert "APOGÉE's open year: 2026" in out
    assert "directory entries without student id: 1 (e.g. uid=x99000001" in out
    assert "directory entries duplicate student id: 1" in out
    assert "Platform ecampus:" in out and "Platform collegium:" in out
    assert "Platform prelude: general cohorts disabled" in out
    assert "no last good run recorded" in out
    state = repo / ".reconciler" / "source-health.json"
    assert not state.exists()
    result = run(repo, env, "--record")
    assert result.exit_code == 0 and "Recorded the last good run" in result.output
    assert json.loads(state.read_text())["academic_year"] == "2026"


def test_half_the_rows_exits_4_with_the_reason_and_no_cohorts(repo: Path, env) -> None:
    assert run(repo, env, "--record").exit_code == 0
    db = sqlite3.connect(env["APOGEE_URL"].removeprefix("sqlite:///"))
    db.execute("DELETE FROM ins_adm_etp WHERE cod_ind % 2 = 1")
    db.commit()
    result = run(repo, env)
    assert result.exit_code == 4
    assert "UNHEALTHY: every general cohort stays as it is" in result.output
    assert "APOGÉE IA rows:" in result.output and "Platform " not in result.output
    doc = json.loads(run(repo, env, "--format", "json").output)
    assert doc["healthy"] is False and doc["general_cohorts"] is None and doc["digest"] == ""
    result = run(repo, env, "--record")
    assert result.exit_code == 4 and "Recorded" not in result.output


def test_json_and_one_platform(repo: Path, env) -> None:
    result = run(repo, env, "--platform", "collegium", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert list(doc["general_cohorts"]) == ["collegium"]
    pharma = {c["idnumber"]: c for c in doc["general_cohorts"]["collegium"]}["etp-PHA2A-101"]
    assert pharma["cod_cmp"] == "PHA" and pharma["members"] > 0 and pharma["uncertain"] == 2
    bad = run(repo, env, "--platform", "moodle42")
    assert bad.exit_code == 1 and "unknown platform 'moodle42'" in bad.output  # a usage error: 1, never 2 (changes pending)


def test_directory_down_exits_4(repo: Path, env) -> None:
    result = run(repo, {**env, "LDAP_URL": f"ldap://127.0.0.1:{free_port()}/"})
    assert result.exit_code == 4
    assert "LDAP: not read (cannot connect or bind" in result.output
