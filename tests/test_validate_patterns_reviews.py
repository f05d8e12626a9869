"""``reconcile validate`` on the declarations of issue 17 (items 1, 4, 5): course patterns,
periodic reviews of manual cohorts, owners GitLab can read, schema hints."""

from __future__ import annotations

import git
import pytest
from test_validate import PLATFORMS, diagnostics, make_repo, only, run

PATTERN = """\
owners: [someone@example.org]
courses:
  shortname: "FOAD2-*"
syncs:
  - cohort: etp-PHA2A-101
    role: student
    reason: every FOAD2 course
"""


def test_a_pattern_is_checked_like_a_course_file(tmp_path) -> None:
    repo = make_repo(tmp_path, {
        "ecampus/patterns/foad2.yaml": PATTERN + (
            "  - cohort: man-nope\n    role: student\n    reason: not declared\n"
            "  - cohort: etp-PHA2A-101\n    role: dean\n    reason: no such role\n"
            "  - cohort: etp-PHA2A-101\n    role: student\n    expires: 2027-12-01\n"
            "    reason: too long and twice\n"),
    })
    found = {(d["rule"], d["line"]) for d in diagnostics(repo)}
    assert found == {("unknown-cohort", 8), ("unknown-role", 11), ("sync-too-long", 14),
                     ("duplicate-sync", 14)}
    [dup] = only(diagnostics(repo), "duplicate-sync")
    assert "FOAD2-* (pattern foad2)" in dup["message"]


@pytest.mark.parametrize(("courses", "message", "line"), [
    ("  exclude: [X]\n", "courses: give 'shortname' or 'category'", 3),
    ("  shortname: A*\n  subcategories: true\n",
     "courses: 'subcategories' needs 'category' as well", 3),
    ("  category: CAT\n  color: red\n", "unknown key 'color' in courses", 4),
])
def test_a_pattern_must_say_which_courses(tmp_path, courses: str, message: str,
                                          line: int) -> None:
    text = "owners: [a@b.fr]\ncourses:\n" + courses + (
        "syncs:\n  - cohort: man-x\n    role: student\n    reason: why\n")
    repo = make_repo(tmp_path, {"ecampus/patterns/p.yaml": text})
    [diag] = only(diagnostics(repo), "schema")
    assert message in diag["message"] and diag["line"] == line, diag


@pytest.mark.parametrize("glob", ["*", "**", "?*", "[A-Z]*", "[!x]*?"])
def test_a_pattern_matching_every_course_is_refused(tmp_path, glob: str) -> None:
    repo = make_repo(tmp_path, {"ecampus/patterns/all.yaml": PATTERN.replace("FOAD2-*", glob)})
    [diag] = only(diagnostics(repo), "pattern-too-broad")
    assert diag["severity"] == "error" and diag["line"] == 2


def test_a_literal_part_or_a_category_is_enough(tmp_path) -> None:
    repo = make_repo(tmp_path, {
        "ecampus/patterns/a.yaml": PATTERN.replace("FOAD2-*", "*-L1-*"),
        "ecampus/patterns/b.yaml": PATTERN.replace('shortname: "FOAD2-*"',
                                                   'shortname: "*"\n  category: CAT-X'),
    })
    assert diagnostics(repo) == []


def test_a_course_file_may_leave_a_pattern_out(tmp_path) -> None:
    repo = make_repo(tmp_path, {
        "ecampus/patterns/foad2.yaml": PATTERN,
        "ecampus/syncs/FOAD2-A.yaml": "course: FOAD2-A\nexclude_patterns: [foad2]\n",
        "ecampus/syncs/HIST-1.yaml": "course: HIST-1\nexclude_patterns: [foad2, nope]\n",
        "ecampus/syncs/EMPTY.yaml": "course: EMPTY\nowners: [a@b.fr]\n",
        "ecampus/syncs/FOAD2-B.yaml": "course: FOAD2-C\nexclude_patterns: [foad2]\n",
    })
    diags = diagnostics(repo)
    assert [(d["file"], d["line"], d["rule"], d["severity"]) for d in diags] == [
        ("cohorts/ecampus/syncs/EMPTY.yaml", 1, "schema", "error"),
        ("cohorts/ecampus/syncs/FOAD2-B.yaml", 1, "file-name", "error"),
        ("cohorts/ecampus/syncs/HIST-1.yaml", 2, "exclude-pattern-no-effect", "warning"),
        ("cohorts/ecampus/syncs/HIST-1.yaml", 2, "unknown-pattern", "error"),
    ]
    assert "give 'syncs' or 'exclude_patterns'" in diags[0]["message"]
    assert "no course pattern 'nope' on ecampus (known: foad2)" in diags[3]["message"]


COHORT = """\
idnumber: man-tuteurs
name: Tuteurs
owners: [tutorat@example.org, jdupont]
review_every: {every}
reviewed: {reviewed}
members: [alice]
"""
PLATFORMS_REVIEW = PLATFORMS.replace(
    "    sync_policy:\n      cohort_sync: allowed\n",
    "    manual_cohorts:\n      review_grace_days: 10\n"
    "    sync_policy:\n      cohort_sync: allowed\n", 1)


@pytest.mark.parametrize(("today", "rule"), [
    ("2026-11-27", None),  # due tomorrow
    ("2026-11-28", "review-due"),  # due today: a warning
    ("2026-12-08", "review-due"),  # the last day of the platform's grace
    ("2026-12-09", "review-overdue"),  # then an error
])
def test_a_due_review_warns_then_fails(tmp_path, today: str, rule: str | None) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-tuteurs.yaml": COHORT.format(
        every="30d", reviewed="2026-10-29")}, platforms=PLATFORMS_REVIEW)
    code, out = run(repo, "--today", today)
    if rule is None:
        assert code == 0 and out.strip().endswith("0 errors, 0 warnings"), out
        return
    line = out.splitlines()[0]
    assert line.startswith(f"cohorts/ecampus/cohorts/man-tuteurs.yaml:5:1: {rule}: "), out
    assert ("review of the members of man-tuteurs due since 2026-11-28 (every 30 days, last "
            "reviewed 2026-10-29; owners: tutorat@example.org, jdupont)") in line
    assert f"set reviewed: {today} in a merge request" in line
    assert code == (1 if rule == "review-overdue" else 0)


def test_weeks_and_the_default_grace(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-tuteurs.yaml": COHORT.format(
        every="26w", reviewed="2026-03-01")})
    code, out = run(repo, "--today", "2026-08-30")  # due 2026-08-30 (182 days)
    assert code == 0
    assert "review-due" in out and "an error after 2026-09-29" in out, out  # 30 days


@pytest.mark.parametrize(("extra", "rule", "message"), [
    ("expires: 2027-01-01\n", "review-with-expires", "review_every is for cohorts without"),
    ("", "reviewed-future", "reviewed 2026-12-01 is in the future"),
])
def test_review_dates_that_make_no_sense(tmp_path, extra: str, rule: str, message: str) -> None:
    text = COHORT.format(every="180d", reviewed="2026-12-01") + extra
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-tuteurs.yaml": text})
    if rule == "review-with-expires":
        text = text.replace("reviewed: 2026-12-01", "reviewed: 2026-11-01")
        repo = make_repo(tmp_path / "b", {"ecampus/cohorts/man-tuteurs.yaml": text})
    [diag] = only(diagnostics(repo), rule)
    assert diag["severity"] == "error" and message in diag["message"] and diag["line"] == 5


@pytest.mark.parametrize(("drop", "kept"), [("review_every", "reviewed"),
                                              ("reviewed", "review_every")])
def test_review_every_and_reviewed_go_together(tmp_path, drop: str, kept: str) -> None:
    text = "".join(line + "\n" for line in COHORT.format(
        every="180d", reviewed="2026-11-01").splitlines() if not line.startswith(drop + ":"))
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-tuteurs.yaml": text})
    [diag] = only(diagnostics(repo), "schema")
    assert diag["message"] == f"top level: '{kept}' needs '{drop}' as well", diag


@pytest.mark.parametrize("every", ["180", "0d", "6m", "12345d"])
def test_review_every_is_days_or_weeks(tmp_path, every: str) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-tuteurs.yaml": COHORT.format(
        every=every, reviewed="2026-11-01")})
    [diag] = only(diagnostics(repo), "schema")
    assert diag["line"] == 4 and "review_every" in diag["message"]


def test_owners_gitlab_cannot_read_are_warned_about(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-tuteurs.yaml": (
        "idnumber: man-tuteurs\nname: T\nowners:\n  - Marc Duval\n  - '@dsi/moodle'\n"
        "  - marc.duval@unicaen.fr\n  - '@'\nmembers: [alice]\n")})
    diags = only(diagnostics(repo), "owner-format")
    assert [(d["line"], d["severity"]) for d in diags] == [(3, "warning"), (3, "warning")]
    assert {d["message"].split(" is neither")[0] for d in diags} == {"owner '@'",
                                                                       "owner 'Marc Duval'"}


def test_a_changed_file_without_its_schema_hint_is_warned_about(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-old.yaml": COHORT.format(
        every="180d", reviewed="2026-11-01").replace("man-tuteurs", "man-old")})
    r = git.Repo.init(repo)
    r.git.add(A=True)
    r.index.commit("old files, no hints")
    (repo / "cohorts" / "ecampus" / "cohorts" / "man-new.yaml").write_text(
        COHORT.format(every="180d", reviewed="2026-11-01").replace("man-tuteurs", "man-new"))
    hinted = repo / "cohorts" / "ecampus" / "cohorts" / "man-hinted.yaml"
    hinted.write_text("# yaml-language-server: $schema=../../../schemas/manual-cohort.schema"
                      ".json\n" + COHORT.format(every="180d", reviewed="2026-11-01").replace(
                          "man-tuteurs", "man-hinted"))
    assert diagnostics(repo) == []  # a plain run never nags
    diags = only(diagnostics(repo, "--changed-since", "HEAD"), "schema-hint")
    assert [(d["file"], d["line"], d["severity"]) for d in diags] == [
        ("cohorts/ecampus/cohorts/man-new.yaml", 1, "warning")]
    assert ("the first line should be `# yaml-language-server: "
            "$schema=../../../schemas/manual-cohort.schema.json`") in diags[0]["message"]
    hinted.write_text(hinted.read_text().replace("manual-cohort", "course-syncs"))
    diags = only(diagnostics(repo, "--changed-since", "HEAD"), "schema-hint")
    assert "names '../../../schemas/course-syncs.schema.json'" in diags[0]["message"]
