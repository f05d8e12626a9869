"""``reconcile validate`` on the general cohorts' windows (issue 17, items 2 and 3): the grace
period (platform and per sync) and the rollover overlap, each problem at its file and line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

PLATFORMS = """\
academic_year: "2026"
platforms:
  ecampus:
    url: https://ecampus.example.org
    general_cohorts:
      enabled: true
      idnumber_template: "etp-{{cod_etp}}-{{cod_vrs_vet}}"
{general}
"""

SYNCS = """\
course: HIST-L1
syncs:
  - cohort: etp-L1HIS-101
    role: student
    reason: L1 histoire
    grace_days: {first}
  - cohort: etp-L1HIS-101
    role: editingteacher
    reason: tutors of L1 histoire
{second}
"""


def validate(tmp_path: Path, general: str, files: dict[str, str] | None = None) -> list[dict]:
    """``reconcile validate --format json`` on a tree whose ecampus general_cohorts gets
    the indented YAML ``general``."""
    cohorts = tmp_path / "cohorts"
    cohorts.mkdir(parents=True, exist_ok=True)
    block = textwrap.indent(textwrap.dedent(general).strip("\n"), " " * 6) if general else ""
    (cohorts / "platforms.yaml").write_text(PLATFORMS.format(general=block), encoding="utf-8")
    for name, text in (files or {}).items():
        path = cohorts / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--repo", str(tmp_path), "validate", "--today", "2026-11-28", "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return json.loads(result.output)


def brief(diags: list[dict]) -> list[tuple[str, int, str, str]]:
    return [(d["file"], d["line"], d["severity"], d["rule"]) for d in diags]


def test_windows_that_hold_are_clean(tmp_path: Path) -> None:
    general = """\
    grace_period: {days: 14, max_days: 30, max_gap_days: 2}
    rollover_overlap: {from: "07-01", until: "10-15"}
    """
    syncs = SYNCS.format(first=30, second="    grace_days: 30")
    assert validate(tmp_path, general, {"ecampus/syncs/HIST-L1.yaml": syncs}) == []


def test_platform_grace_longer_than_its_maximum_names_the_line(tmp_path: Path) -> None:
    diags = validate(tmp_path, "grace_period:\n  days: 40\n  max_days: 30\n")
    assert brief(diags) == [("cohorts/platforms.yaml", 8, "error", "grace-too-long")]
    assert "grace_period.days 40 is longer than grace_period.max_days 30" in diags[0]["message"]


@pytest.mark.parametrize(("window", "why"), [
    ('{from: "02-30", until: "10-15"}', "'02-30' is not a day of the year written MM-DD"),
    ('{from: "02-29", until: "10-15"}', "'02-29' is not a day of the year written MM-DD"),
    ('{from: "10-15", until: "07-01"}', "runs backwards: from 10-15 until 07-01"),
])
def test_overlap_window_that_cannot_be_is_an_error(tmp_path: Path, window: str, why: str) -> None:
    diags = validate(tmp_path, f"rollover_overlap: {window}\n")
    assert brief(diags) == [("cohorts/platforms.yaml", 8, "error", "overlap-window")]
    assert why in diags[0]["message"]


@pytest.mark.parametrize("general", [
    'rollover_overlap: {from: "7-1", until: "10-15"}\n',
    'rollover_overlap: {from: "07-01"}\n',
    "grace_period: {days: -1}\n",
    "grace_period: {days: 3, weeks: 2}\n",
    "grace_period: {days: 3, max_gap_days: 0}\n",
])
def test_malformed_windows_are_schema_errors(tmp_path: Path, general: str) -> None:
    diags = validate(tmp_path, general)
    assert diags and {d["rule"] for d in diags} == {"schema"}
    assert all(d["file"] == "cohorts/platforms.yaml" and d["line"] == 8 for d in diags)


def test_sync_grace_over_the_platform_maximum_is_an_error_at_its_sync(tmp_path: Path) -> None:
    syncs = SYNCS.format(first=31, second="")
    diags = validate(tmp_path, "grace_period: {days: 14, max_days: 30}\n",
                     {"ecampus/syncs/HIST-L1.yaml": syncs})
    assert brief(diags) == [("cohorts/ecampus/syncs/HIST-L1.yaml", 3, "error", "grace-too-long")]
    assert "grace_days 31 is longer than ecampus's grace_period.max_days 30" in diags[0]["message"]


def test_without_a_maximum_the_platform_grace_is_the_ceiling(tmp_path: Path) -> None:
    syncs = SYNCS.format(first=15, second="")
    diags = validate(tmp_path, "grace_period: {days: 14}\n", {"ecampus/syncs/HIST-L1.yaml": syncs})
    assert brief(diags) == [("cohorts/ecampus/syncs/HIST-L1.yaml", 3, "error", "grace-too-long")]
    diags = validate(tmp_path, "", {"ecampus/syncs/HIST-L1.yaml": syncs})  # no grace at all
    assert [d["rule"] for d in diags] == ["grace-too-long"]
    assert "grace_period.max_days 0" in diags[0]["message"]


def test_grace_days_on_a_manual_cohort_is_a_warning(tmp_path: Path) -> None:
    files = {
        "ecampus/cohorts/man-tuteurs.yaml": "idnumber: man-tuteurs\nname: T\nowners: [a]\n"
                                            "members: [alice]\n",
        "ecampus/syncs/HIST-L1.yaml": "course: HIST-L1\nsyncs:\n  - cohort: man-tuteurs\n"
                                      "    role: student\n    reason: tutors\n"
                                      "    grace_days: 7\n",
    }
    diags = validate(tmp_path, "grace_period: {days: 14}\n", files)
    assert brief(diags) == [("cohorts/ecampus/syncs/HIST-L1.yaml", 3, "warning",
                             "grace-not-general")]


def test_a_shorter_grace_than_the_cohort_keeps_is_a_warning_naming_the_longest(
    tmp_path: Path,
) -> None:
    # The second sync has no grace_days: it asks for the platform's 14 days, more than 7.
    diags = validate(tmp_path, "grace_period: {days: 14, max_days: 30}\n",
                     {"ecampus/syncs/HIST-L1.yaml": SYNCS.format(first=7, second="")})
    assert brief(diags) == [("cohorts/ecampus/syncs/HIST-L1.yaml", 3, "warning", "grace-shared")]
    assert ("grace_days 7 does not shorten the grace of etp-L1HIS-101: a cohort keeps its "
            "leavers for the longest grace its syncs ask for, 14 days "
            "(cohorts/ecampus/syncs/HIST-L1.yaml:7)") in diags[0]["message"]
    # Asking for more than the others is what the cohort then keeps: nothing to say.
    assert validate(tmp_path, "grace_period: {days: 14, max_days: 30}\n",
                    {"ecampus/syncs/HIST-L1.yaml": SYNCS.format(first=30, second="")}) == []
