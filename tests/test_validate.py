"""``reconcile validate`` through the CLI: every rule and every kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.paramtext import clean_text

REPO = Path(__file__).resolve().parent.parent
TODAY = "2026-11-28"

PLATFORMS = """\
academic_year: "2026"
platforms:
  ecampus:
    url: https://ecampus.example.org
    general_cohorts:
      enabled: true
      idnumber_template: "etp-{cod_etp}-{cod_vrs_vet}"
    sync_policy:
      cohort_sync: allowed
      max_temporary_days: 120
  prelude:
    url: https://prelude.example.org
    general_cohorts:
      enabled: false
    sync_policy:
      cohort_sync: discouraged
      max_temporary_days: 60
  strict:
    url: https://strict.example.org
    sync_policy:
      cohort_sync: forbidden
"""

GOOD_COHORT = """\
idnumber: man-tuteurs
name: Tuteurs
owners: [someone@example.org]
members:
  - alice
  - bob
"""


def make_repo(tmp_path: Path, files: dict[str, str | bytes], platforms: str = PLATFORMS) -> Path:
    (tmp_path / "cohorts").mkdir(parents=True)
    (tmp_path / "cohorts" / "platforms.yaml").write_text(platforms, encoding="utf-8")
    for name, content in files.items():
        path = tmp_path / "cohorts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return tmp_path


def run(repo: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--repo", str(repo), "validate", "--today", TODAY, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def diagnostics(repo: Path, *args: str) -> list[dict]:
    _, out = run(repo, "--format", "json", *args)
    return json.loads(out)


def only(diags: list[dict], rule: str) -> list[dict]:
    return [d for d in diags if d["rule"] == rule]


# -- the shipped tree -----------------------------------------------------------------


def test_shipped_declarations_are_clean() -> None:
    code, out = run(REPO)
    assert code == 0, out
    assert out.strip().splitlines()[-1].endswith("0 errors, 0 warnings")


def test_console_script_runs_on_shipped_tree() -> None:
    exe = Path(sys.executable).with_name("reconcile")
    proc = subprocess.run(
        [str(exe), "--repo", str(REPO), "validate"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checked: 0 errors" in proc.stdout


# -- output format ----------------------------------------------------------------------


def test_text_format_is_file_line_column_rule_sorted_with_summary(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-b.yaml": "idnumber: man-b\nname: B\nowners: [x]\nmembers: [Bob]\n",
            "ecampus/cohorts/man-a.yaml": "idnumber: man-a\nname: A\nowners: [x]\nmembers:\n  - ok\n  - Alice\n",
        },
    )
    code, out = run(repo)
    lines = out.strip().splitlines()
    assert code == 1
    assert lines[:-1] == [
        "cohorts/ecampus/cohorts/man-a.yaml:6:1: malformed-username: malformed username 'Alice': "
        "Moodle usernames are lower case",
        "cohorts/ecampus/cohorts/man-b.yaml:4:1: malformed-username: malformed username 'Bob': "
        "Moodle usernames are lower case",
    ]
    assert lines[-1] == "3 files checked: 2 errors, 0 warnings"


def test_json_format_lists_every_field(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {"ecampus/cohorts/man-a.yaml": "idnumber: man-a\nname: A\nowners: [x]\nmembers: [A]\n"},
    )
    diags = diagnostics(repo)
    assert diags == [
        {
            "file": "cohorts/ecampus/cohorts/man-a.yaml",
            "line": 4,
            "column": 1,
            "severity": "error",
            "rule": "malformed-username",
            "message": "malformed username 'A': Moodle usernames are lower case",
        }
    ]


def test_every_error_in_one_run(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": "idnumber: man-a\nname: A\nowners: [x]\nmembers: [A]\nbogus: 1\n",
            "ecampus/cohorts/man-b.yaml": "idnumber: man-b\nname: B\n",
            "ecampus/syncs/C1.yaml": "course: C1\nsyncs:\n  - {cohort: man-zzz, role: student, reason: because}\n",
        },
    )
    rules = sorted(d["rule"] for d in diagnostics(repo))
    assert rules == ["schema", "schema", "schema", "unknown-cohort"]


def test_paths_limit_the_report_but_rules_see_the_whole_set(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "ecampus/syncs/C1.yaml": "course: C1\nsyncs:\n  - {cohort: man-a, role: bogus, reason: because}\n",
        },
    )
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        diags = diagnostics(repo, "cohorts/ecampus/cohorts")
        assert diags == []
        diags = diagnostics(repo, "cohorts/ecampus/syncs/C1.yaml")
        assert [d["rule"] for d in diags] == ["unknown-role"]
    finally:
        os.chdir(cwd)


# -- lint rules, each at its exact line -------------------------------------------------


def test_duplicate_idnumber_across_files(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": "name: A\nidnumber: man-a\nowners: [x]\nmembers: []\n",
            "ecampus/cohorts/man-b.yaml": "name: B\nowners: [x]\nidnumber: man-a\nmembers: []\n",
        },
    )
    dup = only(diagnostics(repo), "duplicate-idnumber")
    assert [(d["file"], d["line"]) for d in dup] == [("cohorts/ecampus/cohorts/man-b.yaml", 3)]
    assert "cohorts/ecampus/cohorts/man-a.yaml:2" in dup[0]["message"]


def test_file_name_must_equal_idnumber_and_course(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-x.yaml": "name: A\n\nidnumber: man-a\nowners: [x]\nmembers: []\n",
            "ecampus/syncs/other.yaml": "course: C1\nsyncs:\n  - {cohort: man-a, role: student, reason: because}\n",
        },
    )
    found = {(d["file"], d["line"]) for d in only(diagnostics(repo), "file-name")}
    assert found == {
        ("cohorts/ecampus/cohorts/man-x.yaml", 3),
        ("cohorts/ecampus/syncs/other.yaml", 1),
    }


def test_manual_idnumber_needs_managed_prefix(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/tuteurs.yaml": "idnumber: tuteurs\nname: A\nowners: [x]\nmembers: []\n",
        },
    )
    assert [(d["line"], d["rule"]) for d in only(diagnostics(repo), "idnumber-prefix")] == [
        (1, "idnumber-prefix")
    ]


def test_unknown_cohort_and_general_cohorts(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/syncs/C1.yaml": """\
            course: C1
            syncs:
              - cohort: etp-L1HIS-101
                role: student
                reason: general cohorts exist on ecampus
              - cohort: man-nobody
                role: student
                reason: not declared
            """,
            "prelude/syncs/C2.yaml": """\
            course: C2
            syncs:
              - cohort: etp-L1HIS-101
                role: student
                method: manual
                expires: 2026-12-20
                reason: no general cohorts on prelude
            """,
        },
    )
    diags = diagnostics(repo)
    assert [(d["file"], d["line"]) for d in only(diags, "unknown-cohort")] == [
        ("cohorts/ecampus/syncs/C1.yaml", 6)
    ]
    assert [(d["file"], d["line"]) for d in only(diags, "general-cohort-unavailable")] == [
        ("cohorts/prelude/syncs/C2.yaml", 3)
    ]


def test_unknown_role(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "ecampus/syncs/C1.yaml": "course: C1\nsyncs:\n  - cohort: man-a\n    role: tutor\n    reason: why not\n",
        },
    )
    diags = only(diagnostics(repo), "unknown-role")
    assert [(d["line"], d["severity"]) for d in diags] == [(3, "error")]
    assert "editingteacher" in diags[0]["message"]


def test_unknown_platform_folder(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path, {"moodle2/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a")}
    )
    diags = diagnostics(repo)
    assert [(d["file"], d["rule"]) for d in diags] == [
        ("cohorts/moodle2/cohorts/man-a.yaml", "unknown-platform")
    ]


def test_expired_entry_is_a_warning_unless_strict(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "ecampus/syncs/C1.yaml": """\
            course: C1
            syncs:
              - cohort: man-a
                role: student
                reason: late enrolments
                expires: 2026-11-27
              - cohort: man-a
                role: teacher
                reason: last day is today, still in force
                expires: 2026-11-28
            """,
        },
    )
    code, out = run(repo)
    assert code == 0
    assert (
        "cohorts/ecampus/syncs/C1.yaml:3:5: expired: warning: expired on 2026-11-27, the next apply "
        "removes it; delete the entry"
    ) in out
    assert out.count("expired:") == 1
    code, _ = run(repo, "--strict")
    assert code == 1


def test_temporary_sync_longer_than_platform_limit(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "ecampus/syncs/C1.yaml": """\
            course: C1
            syncs:
              - cohort: man-a
                role: student
                reason: within the limit
                expires: 2027-03-28
              - cohort: man-a
                role: teacher
                reason: too long
                expires: 2027-03-29
            """,
        },
    )
    diags = only(diagnostics(repo), "sync-too-long")
    assert [(d["line"], d["severity"]) for d in diags] == [(7, "error")]
    assert "121 days" in diags[0]["message"] and "at most 120" in diags[0]["message"]


def test_cohort_sync_forbidden_and_discouraged(tmp_path: Path) -> None:
    sync = "course: C1\nsyncs:\n  - cohort: man-a\n    role: student\n    reason: policy check\n"
    repo = make_repo(
        tmp_path,
        {
            "prelude/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "prelude/syncs/C1.yaml": sync,
            "strict/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "strict/syncs/C1.yaml": sync,
        },
    )
    diags = diagnostics(repo)
    assert [
        (d["file"], d["line"], d["severity"]) for d in only(diags, "cohort-sync-discouraged")
    ] == [("cohorts/prelude/syncs/C1.yaml", 3, "warning")]
    assert "method: manual" in only(diags, "cohort-sync-discouraged")[0]["message"]
    assert [
        (d["file"], d["line"], d["severity"]) for d in only(diags, "cohort-sync-forbidden")
    ] == [("cohorts/strict/syncs/C1.yaml", 3, "error")]


def test_manual_method_needs_an_end_date(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "strict/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "strict/syncs/C1.yaml": "course: C1\nsyncs:\n  - cohort: man-a\n    role: student\n"
            "    method: manual\n    reason: no end date\n",
        },
    )
    assert [d["line"] for d in only(diagnostics(repo), "manual-needs-expires")] == [3]


def test_duplicate_members(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": "idnumber: man-a\nname: A\nowners: [x]\nmembers:\n  - alice\n  - bob\n  - alice\n",
        },
    )
    diags = only(diagnostics(repo), "duplicate-member")
    assert [(d["line"], d["message"]) for d in diags] == [
        (7, "member 'alice' is listed twice (first on line 5)")
    ]


def test_same_course_cohort_role_twice(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a"),
            "ecampus/syncs/C1.yaml": """\
            course: C1
            syncs:
              - cohort: man-a
                role: student
                reason: first
              - cohort: man-a
                role: teacher
                reason: another role is fine
              - cohort: man-a
                role: student
                group: G1
                reason: same triple again
            """,
        },
    )
    diags = only(diagnostics(repo), "duplicate-sync")
    assert [d["line"] for d in diags] == [9]
    assert "C1.yaml:3" in diags[0]["message"]


def test_malformed_usernames(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": "idnumber: man-a\nname: A\nowners: [x]\nmembers:\n"
            "  - jean.dupont\n  - Jean\n  - jean dupont\n  - e2024@x.fr\n  - 'a/b'\n",
        },
    )
    diags = only(diagnostics(repo), "malformed-username")
    assert [d["line"] for d in diags] == [6, 7, 9]


# -- schema errors at the right line ----------------------------------------------------


def test_names_moodle_cannot_return_are_refused_at_their_line(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-droit.yaml": "idnumber: man-droit\nname: L1 <Droit>\n"
            "owners: [x]\nmembers: [alice]\n",
            "ecampus/cohorts/man-ok.yaml": "idnumber: man-ok\nname: 'Bac+2 < Bac+3 & co'\n"
            "owners: [x]\nmembers: [alice]\n",
            "ecampus/syncs/C1.yaml": "course: C1\nsyncs:\n  - cohort: man-droit\n"
            "    role: student\n    group: TD <1>\n    reason: tutorat\n",
        },
    )
    code, out = run(repo)
    assert code == 1
    lines = [line for line in out.splitlines() if "markup-in-name" in line]
    assert lines == [
        "cohorts/ecampus/cohorts/man-droit.yaml:2:7: markup-in-name: cohort name 'L1 <Droit>': "
        "Moodle's PARAM_TEXT takes part of it for HTML markup and would turn it into 'L1 '; "
        "once synced into a course it would make local_ws_enrolcohort fail for the whole "
        "platform. Write it without '<' (for example 'L1 \u2039Droit\u203a')",
        "cohorts/ecampus/syncs/C1.yaml:5:12: markup-in-name: group name 'TD <1>': Moodle's "
        "PARAM_TEXT takes part of it for HTML markup and would turn it into 'TD '; Moodle "
        "refuses such a group name. Write it without '<' (for example 'TD \u20391\u203a')",
    ]


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet="ab <>!/-'\"", min_size=1, max_size=12).filter(lambda t: t.strip()))
def test_markup_rule_refuses_exactly_what_moodle_would_change(name: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        doc = {"idnumber": "man-x", "name": name, "owners": ["x"], "members": ["alice"]}
        repo = make_repo(Path(tmp), {"ecampus/cohorts/man-x.yaml": json.dumps(doc)})
        flagged = bool(only(diagnostics(repo), "markup-in-name"))
    assert flagged == (clean_text(name) != name)


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/syncs/C1.yaml": "course: C1\nsyncs:\n  - cohort: etp-A-1\n    role: student\n"
            "    reason: typo below\n    expire: 2026-12-01\n",
        },
    )
    diags = diagnostics(repo)
    assert [(d["line"], d["column"], d["rule"]) for d in diags] == [(6, 5, "schema")]
    assert "unknown key 'expire'" in diags[0]["message"]


def test_missing_required_key(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path, {"ecampus/cohorts/man-a.yaml": "idnumber: man-a\nname: A\nmembers: []\n"}
    )
    diags = diagnostics(repo)
    assert [(d["line"], d["rule"]) for d in diags] == [(1, "schema")]
    assert "missing required key 'owners'" in diags[0]["message"]


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "'next monday'", "31/12/2026"])
def test_bad_dates_are_schema_errors_at_their_line(tmp_path: Path, value: str) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": f"idnumber: man-a\nname: A\nowners: [x]\nexpires: {value}\nmembers: []\n",
        },
    )
    diags = diagnostics(repo)
    assert [(d["line"], d["rule"]) for d in diags] == [(4, "schema")]


def test_bad_platforms_file_reports_and_stops(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {"ecampus/cohorts/man-a.yaml": GOOD_COHORT.replace("man-tuteurs", "man-a")},
        platforms=PLATFORMS.replace("max_temporary_days: 60", "max_temporary_days: sixty"),
    )
    diags = diagnostics(repo)
    assert [(d["file"], d["line"], d["rule"]) for d in diags] == [
        ("cohorts/platforms.yaml", 17, "schema")
    ]


def test_unknown_template_field(tmp_path: Path) -> None:
    # {vet} is a documented field now (the builder always provided it); {version} is not.
    repo = make_repo(tmp_path, {}, platforms=PLATFORMS.replace('{cod_vrs_vet}"', '{version}"'))
    diags = diagnostics(repo)
    assert [(d["line"], d["rule"]) for d in diags] == [(7, "bad-template")]


# -- bad input: one clear line, never a traceback ---------------------------------------


def bad_input(
    tmp_path: Path, content: str | bytes, name: str = "ecampus/cohorts/man-a.yaml"
) -> dict:
    repo = make_repo(tmp_path, {name: content})
    code, out = run(repo)
    assert code == 1
    assert "Traceback" not in out
    diags = diagnostics(repo)
    assert len(diags) == 1, diags
    return diags[0]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    d = bad_input(tmp_path, "idnumber: man-a\nname: [unclosed\nowners: [x]\n")
    assert (d["rule"], d["line"]) == ("yaml-syntax", 3)


def test_duplicate_key_in_a_mapping(tmp_path: Path) -> None:
    d = bad_input(tmp_path, "idnumber: man-a\nname: A\nowners: [x]\nmembers: [a]\nname: B\n")
    assert (d["rule"], d["line"], d["column"]) == ("duplicate-key", 5, 1)
    assert "first on line 2" in d["message"]


def test_duplicate_key_nested(tmp_path: Path) -> None:
    d = bad_input(
        tmp_path,
        "course: C1\nsyncs:\n  - cohort: man-a\n    role: student\n    role: teacher\n"
        "    reason: x\n",
        name="ecampus/syncs/C1.yaml",
    )
    assert (d["rule"], d["line"], d["column"]) == ("duplicate-key", 5, 5)


def test_tab_indentation(tmp_path: Path) -> None:
    d = bad_input(tmp_path, "idnumber: man-a\nname: A\nowners: [x]\nmembers:\n\t- alice\n")
    assert (d["rule"], d["line"]) == ("yaml-tab", 5)


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    d = bad_input(tmp_path, content)
    assert (d["rule"], d["line"]) == ("empty-file", 1)


def test_a_list_instead_of_a_mapping(tmp_path: Path) -> None:
    d = bad_input(tmp_path, "# members\n- alice\n- bob\n")
    assert (d["rule"], d["line"]) == ("not-a-mapping", 2)


def test_non_utf8_file(tmp_path: Path) -> None:
    d = bad_input(tmp_path, "idnumber: man-a\nname: Délégués\n".encode("latin-1"))
    assert (d["rule"], d["line"], d["column"]) == ("encoding", 2, 8)


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        bomb.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    started = time.perf_counter()
    d = bad_input(tmp_path, "\n".join(bomb) + "\n")
    assert time.perf_counter() - started < 5
    assert (d["rule"], d["line"]) == ("yaml-alias", 1)  # where the anchor &a is


def test_ten_megabyte_file_is_refused(tmp_path: Path) -> None:
    big = "idnumber: man-a\nname: A\nowners: [x]\nmembers:\n" + "  - someone\n" * 900_000
    assert len(big) > 10_000_000
    d = bad_input(tmp_path, big)
    assert d["rule"] == "file-too-large"


def test_symlink_outside_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(GOOD_COHORT.replace("man-tuteurs", "man-a"), encoding="utf-8")
    repo = make_repo(tmp_path / "repo", {})
    link = repo / "cohorts" / "ecampus" / "cohorts" / "man-a.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    diags = diagnostics(repo)
    assert [(d["file"], d["rule"]) for d in diags] == [
        ("cohorts/ecampus/cohorts/man-a.yaml", "symlink-outside")
    ]


def test_misplaced_file(tmp_path: Path) -> None:
    d = bad_input(tmp_path, GOOD_COHORT, name="ecampus/man-tuteurs.yml")
    assert d["rule"] == "unknown-file"


def test_no_cohorts_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--repo", str(tmp_path), "validate"])
    assert result.exit_code == 1
    assert "no cohorts/ folder" in result.output


def test_validation_changes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": "idnumber: man-a\nname: [\n"})
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    run(repo)
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert before == after


def test_shipped_tree_copy_with_an_error_fails(tmp_path: Path) -> None:
    shutil.copytree(REPO / "cohorts", tmp_path / "cohorts")
    target = tmp_path / "cohorts" / "collegium" / "syncs" / "FOAD2-PHARMA.yaml"
    target.write_text(
        target.read_text(encoding="utf-8").replace("role: teacher", "role: tuteur"),
        encoding="utf-8",
    )
    diags = diagnostics(tmp_path)
    assert [(d["file"], d["rule"]) for d in diags] == [
        ("cohorts/collegium/syncs/FOAD2-PHARMA.yaml", "unknown-role")
    ]


def test_adopt_lets_an_existing_cohort_keep_an_idnumber_outside_the_prefix(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/TUT-7.yaml": "idnumber: TUT-7\nname: A\nowners: []\nadopt: true\nmembers: []\n",
            "ecampus/cohorts/tuteurs.yaml": "idnumber: tuteurs\nname: A\nowners: [x]\nadopt: false\nmembers: []\n",
            "ecampus/cohorts/etp-X-1.yaml": "idnumber: etp-X-1\nname: A\nowners: [x]\nadopt: true\nmembers: []\n",
        },
    )
    found = [(d["file"], d["rule"]) for d in diagnostics(repo)]
    assert found == [
        ("cohorts/ecampus/cohorts/etp-X-1.yaml", "idnumber-prefix"),  # the general pattern
        ("cohorts/ecampus/cohorts/tuteurs.yaml", "idnumber-prefix"),
    ]


def test_a_copied_cohort_file_is_told_to_change_its_idnumber(tmp_path: Path) -> None:
    """Copying man-a.yaml to man-b.yaml and forgetting its idnumber: the fix is in the copy
    (renaming it back would overwrite the original)."""
    from click.testing import CliRunner

    from reconciler.cli import main

    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parent.parent / "cohorts", repo / "cohorts")
    original = next((repo / "cohorts" / "collegium" / "cohorts").glob("man-*.yaml"))
    copy = original.with_name("man-jury-pass.yaml")
    shutil.copy(original, copy)
    result = CliRunner().invoke(main, ["--repo", str(repo), "validate"])
    assert result.exit_code == 1, result.output
    line = next(x for x in result.output.splitlines() if "file-name" in x)
    assert line.startswith("cohorts/collegium/cohorts/man-jury-pass.yaml:"), line
    assert f"change its idnumber to 'man-jury-pass'; else rename the file to {original.name}" \
        in line
