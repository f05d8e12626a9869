"""The CI jobs' commands (`reconcile ci validate|plan|apply`) on a real git history, a Moodle
emulator and the fake GitLab: exit codes, the note, the fork point, typos (issue 13)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from support import fake_gitlab, readme_note
from support.mr_world import USERS, GitWorld, cohort_file, moodle_seed, syncs_file

from reconciler.cli import exitcodes, main
from reconciler.demo import data as demo_data
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.gitlab.notes import marker
from reconciler.moodle.client import MoodleClient

TOKEN = "ci-token"
READONLY_TOKEN = "ci-readonly-token"
NOW = "2026-11-28T02:00:00Z"
BASE = "cohorts/prelude/cohorts/man-base.yaml"
MR = "cohorts/prelude/cohorts/man-mr.yaml"
OTHER = "cohorts/prelude/cohorts/man-other.yaml"
SYNCS = "cohorts/prelude/syncs/PRELUDE-METHODO.yaml"
# Small test cohorts: make the per-cohort removal cap apply to them.
FAILSAFES = {"small_cohort_size": 3, "per_cohort_removal_floor": 1}


@dataclass
class MergeRequestWorld:
    git: GitWorld
    emu: MoodleEmulator
    gitlab: fake_gitlab.FakeGitLab

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PRELUDE_URL": self.emu.url,
            "PRELUDE_TOKEN": TOKEN,
            "PRELUDE_READONLY_TOKEN": READONLY_TOKEN,
            "CI_API_V4_URL": self.gitlab.api,
            "CI_PROJECT_ID": fake_gitlab.PROJECT,
            "CI_JOB_URL": "https://gitlab.example.org/group/cohorts/-/jobs/42",
            "GITLAB_NOTE_TOKEN": fake_gitlab.TOKEN,
            **extra,
        }

    def mr_env(self, **extra: str) -> dict[str, str]:
        return self.env(
            **{
                "CI_PIPELINE_SOURCE": "merge_request_event",
                "CI_MERGE_REQUEST_IID": fake_gitlab.MERGE_REQUEST,
                "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
                "CI_COMMIT_SHA": self.git.repo.head.commit.hexsha,
                **extra,
            }
        )

    def run(self, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, ["--repo", str(self.git.work), *args], env=env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    def ci_plan(self, **extra: str) -> tuple[int, str, str]:
        return self.run("ci", "plan", "-p", "prelude", "--now", NOW, env=self.mr_env(**extra))

    def apply_main(self) -> None:
        branch = self.git.repo.active_branch.name
        self.git.checkout("main")
        code, out, err = self.run("apply", "-p", "prelude", "--now", NOW, env=self.env())
        assert code == exitcodes.OK, out + err
        self.git.checkout(branch)

    def note(self) -> str:
        notes = [n for n in self.gitlab.notes if marker("prelude") in n["body"]]
        assert len(notes) == 1, notes
        return notes[0]["body"]

    def saved(self) -> dict:
        return json.loads((self.git.work / "plans" / "prelude.json").read_text(encoding="utf-8"))


@pytest.fixture
def mr(tmp_path: Path) -> Iterator[MergeRequestWorld]:
    gitlab = fake_gitlab.start()
    with MoodleEmulator(EmulatorConfig(token=TOKEN, readonly_token=READONLY_TOKEN)) as emu:
        emu.seed(moodle_seed())
        yield MergeRequestWorld(
            GitWorld(tmp_path, {"prelude": {"failsafes": FAILSAFES}}), emu, gitlab
        )
    fake_gitlab.stop(gitlab)


def _section(note: str, title: str) -> str:
    """The note's lines from the heading ``title`` to the next heading or <details>."""
    body = note.split(title, 1)[1]
    for end in ("\n#### ", "\n<details>"):
        body = body.split(end, 1)[0]
    return body


def test_a_branch_behind_its_target_is_focused_on_its_fork_point(mr: MergeRequestWorld) -> None:
    """The issue's scenario: main declares man-base (applied); the branch adds man-mr; then
    man-other lands on main and is applied. The branch's plan must not show man-other's
    deletion as the merge request's, and must say that main moved."""
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.commit("man-base")
    g.push()
    mr.apply_main()
    g.checkout("feature", new=True)
    g.write(MR, cohort_file("man-mr", USERS[2:4]))
    g.commit("man-mr")
    g.checkout("main")
    g.write(OTHER, cohort_file("man-other", USERS[4:5]))
    g.commit("man-other")
    g.push()
    mr.apply_main()
    g.checkout("feature")

    code, out, err = mr.ci_plan()
    assert code == exitcodes.OK, out + err
    note = mr.note()
    assert note.startswith(marker("prelude"))
    heading = note.splitlines()[1]
    assert heading == "### 📝 `prelude`: this merge request: 3 to add, 0 to change, 0 to remove"
    mine = _section(note, "#### What this merge request changes")
    assert "**man-mr**" in mine and "man-other" not in mine and "man-base" not in mine
    rest = note.split("<details>", 1)[1]
    assert "**man-other**" in rest and "`-` delete cohort (1 members)" in rest
    assert (
        "main changed cohorts/ since this branch forked (prelude/cohorts/man-other.yaml); this "
        "plan does not include those changes: rebase to see the merged result." in note
    )
    fork = g.repo.merge_base("main", "feature")[0].hexsha
    assert f"forked from main at {fork[:8]}" in note

    # `reconcile plan --changed-since main` focuses on the fork point too.
    code, out, _ = mr.run(
        "plan", "-p", "prelude", "--now", NOW, "--changed-since", "main", env=mr.env()
    )
    assert code == exitcodes.CHANGES
    focused = out.split("\nCohorts:", 1)[1]
    assert "man-mr" in focused and "man-other" not in focused
    assert "warning: main changed cohorts/ since this branch forked" in out

    # GitLab's merged-results pipeline: HEAD is the merge of the branch into main.
    merged, target = g.merge_result("feature")
    code, out, err = mr.ci_plan(
        CI_MERGE_REQUEST_EVENT_TYPE="merged_result",
        CI_MERGE_REQUEST_TARGET_BRANCH_SHA=target,
        CI_COMMIT_SHA=merged,
    )
    assert code == exitcodes.OK, out + err
    note = mr.note()
    assert f"planned on the merged result with main at {target[:8]}" in note
    assert "man-other" not in note and "rebase" not in note  # nothing to delete, nothing moved
    assert "**man-mr**" in _section(note, "#### What this merge request changes")


def test_note_is_the_saved_plan_with_its_digest_and_expiry_dates(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.commit("man-base")
    g.push()
    mr.apply_main()
    g.checkout("feature", new=True)
    g.write(MR, cohort_file("man-mr", USERS[2:4]))
    g.write(
        SYNCS,
        syncs_file(
            "PRELUDE-METHODO",
            [
                {
                    "cohort": "man-mr",
                    "role": "student",
                    "method": "manual",
                    "expires": "2026-12-20",
                    "reason": "Remise à niveau avant les partiels.",
                }
            ],
        ),
    )
    g.commit("man-mr and its sync")
    # Drift the merge request has nothing to do with: a member added to man-base by hand.
    with MoodleClient(mr.emu.url, TOKEN) as client:
        cohort = next(c for c in client.get_cohorts() if c["idnumber"] == "man-base")
        [user] = client.get_users_by_field("username", [USERS[8]])
        client.add_cohort_members([(int(cohort["id"]), int(user["id"]))])
    code, out, err = mr.ci_plan()
    assert code == exitcodes.OK, out + err
    note, saved = mr.note(), mr.saved()
    md = (g.work / "plans" / "prelude.md").read_text(encoding="utf-8")
    assert note == f"{marker('prelude')}\n{md.rstrip()}"  # the artifact is the note
    assert f"- **Digest** of the saved plan: `{saved['digest']}`" in note
    assert "- **Failsafes**: all within limits" in note
    assert "- **Sources**: not used (no general cohorts on this platform)" in note
    assert note.count("to add") == 1 + ("<details>" in note)  # one summary, the rest apart
    mine = _section(note, "#### What this merge request changes")
    assert "manually as student until 2026-12-20" in mine
    assert (
        "- **PRELUDE-METHODO**: man-mr as student (manual), until 2026-12-20 (last day in force)"
        in note
    )
    assert "`plans/prelude.json`" in note and "/-/jobs/42/artifacts/browse/plans" in note
    rest = note.split("<details>", 1)[1]
    assert (
        "<summary>The rest of the plan: 0 to add, 0 to change, 1 to remove (from the sources, from drift in Moodle)</summary>"
        in rest
    )
    assert f"**man-base**\n  - `-` remove 1 of 3 members: {USERS[8]}" in rest
    assert "created note" in out


# -- typos: what a merge request names must exist ---------------------------------------------


def _manual_sync(cohort: str, expires: str = "2026-12-20") -> dict:
    return {
        "cohort": cohort,
        "role": "student",
        "method": "manual",
        "expires": expires,
        "reason": "Remise à niveau avant les partiels.",
    }


def test_a_sync_naming_a_course_moodle_lacks_fails_the_merge_request(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    # Already on main: a sync waiting for a course to be opened stays a warning.
    g.write(
        "cohorts/prelude/syncs/PRELUDE-FUTUR.yaml",
        syncs_file("PRELUDE-FUTUR", [_manual_sync("man-base")]),
    )
    g.commit("man-base")
    g.push()
    g.checkout("feature", new=True)
    g.write(
        "cohorts/prelude/syncs/PRELUDE-METHODOS.yaml",
        syncs_file("PRELUDE-METHODOS", [_manual_sync("man-base")]),
    )
    g.write(
        "cohorts/prelude/syncs/PRELUDE-ANGLAIS.yaml",
        syncs_file("PRELUDE-ANGLAIS", [_manual_sync("man-base")]),
    )
    g.commit("typo")
    mr.gitlab.notes.append({"id": 99, "body": f"{marker('prelude')}\nthe previous push's plan"})

    code, out, err = mr.ci_plan()
    assert code == exitcodes.ERROR, out + err
    sha = g.repo.head.commit.hexsha[:8]
    line = (
        "cohorts/prelude/syncs/PRELUDE-METHODOS.yaml:5: course 'PRELUDE-METHODOS' does not "
        "exist in Moodle (prelude) (did you mean PRELUDE-METHODO?)"
    )
    assert f"error: plan failed at {sha}: {line}" in err
    note = mr.note()
    assert note.splitlines()[1] == f"### ❌ `prelude`: plan failed at {sha}: {line}"
    assert "the previous push's plan" not in note
    assert "PRELUDE-FUTUR" not in note  # main's waiting sync is not the merge request's
    assert mr.saved()["warnings"]  # the plan itself is still saved, with its warnings
    # Outside a merge request the same waiting sync is a warning (nothing is focused) and the
    # plan is incomplete: exit 7, an allowed failure in the plan jobs (issue 9, item 7).
    code, out, err = mr.run("ci", "plan", "-p", "prelude", "--now", NOW, env=mr.env())
    assert code == exitcodes.INCOMPLETE, out + err
    assert "course-missing: course PRELUDE-METHODOS does not exist in Moodle" in out
    assert "incomplete: 2 things the declarations ask cannot be done (course-missing ×2)" in err


def test_a_general_cohort_the_sources_do_not_produce_fails_the_merge_request(
    tmp_path: Path, slapd: Any, sources_data: demo_data.DemoData, gitlab: fake_gitlab.FakeGitLab
) -> None:
    apogee = tmp_path / "apogee.db"
    demo_data.write_apogee(sources_data, apogee).close()
    g = GitWorld(tmp_path)
    foad = "cohorts/collegium/syncs/FOAD2-PHARMA.yaml"
    sync = {"role": "student", "reason": "Les inscrits administratifs suivent la FOAD."}
    g.write(foad, syncs_file("FOAD2-PHARMA", [{"cohort": "etp-PHA2A-101", **sync}]))
    g.commit("FOAD2")
    g.push()
    g.checkout("feature", new=True)
    g.write(
        foad,
        syncs_file(
            "FOAD2-PHARMA",
            [{"cohort": "etp-PHA2A-101", **sync}, {"cohort": "etp-PHA3-101", **sync}],
        ),
    )
    g.commit("PHA3")
    with MoodleEmulator(EmulatorConfig(token=TOKEN, readonly_token=READONLY_TOKEN)) as emu:
        emu.seed({"courses": [{"shortname": "FOAD2-PHARMA", "fullname": "FOAD 2"}]})
        w = MergeRequestWorld(g, emu, gitlab)
        env = w.mr_env(
            COLLEGIUM_URL=emu.url,
            COLLEGIUM_READONLY_TOKEN=READONLY_TOKEN,
            APOGEE_URL=f"sqlite:///{apogee}",
            **slapd.environ(),
        )
        code, out, err = w.run("ci", "plan", "-p", "collegium", "--now", NOW, env=env)
    assert code == exitcodes.ERROR, out + err
    assert (
        "cohorts/collegium/syncs/FOAD2-PHARMA.yaml:8: cohort 'etp-PHA3-101' is neither a "
        "manual cohort declared for collegium nor a general cohort the sources produce (did "
        "you mean etp-PHA3A-101, etp-PHA2A-101 or etp-PASS1-101?)"
    ) in err
    [note] = [n["body"] for n in gitlab.notes if marker("collegium") in n["body"]]
    assert "plan failed at" in note and "etp-PHA3A-101" in note
    assert "etp-PHA2A-101'" not in err  # the sync main already had is not questioned


def test_a_course_shortname_with_slashes_can_be_declared(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.write(
        "cohorts/prelude/syncs/PRELUDE_S1_METHODO.yaml",
        syncs_file("PRELUDE/S1/METHODO", [_manual_sync("man-base")]),
    )
    g.commit("a course with slashes")
    g.push()
    code, out, _ = mr.run("validate", "--today", "2026-11-28", env=mr.env())
    assert code == 0, out
    mr.emu.seed(moodle_seed(("PRELUDE/S1/METHODO",)))
    code, out, err = mr.run("apply", "-p", "prelude", "--now", NOW, env=mr.env())
    assert code == exitcodes.OK, out + err
    with MoodleClient(mr.emu.url, TOKEN) as client:
        [course] = client.get_courses_by_field("shortname", "PRELUDE/S1/METHODO")
        enrolled = client.get_enrolled_users(int(course["id"]), userfields=("id", "username"))
    assert {u["username"] for u in enrolled} == set(USERS[:2])

    g.remove("cohorts/prelude/syncs/PRELUDE_S1_METHODO.yaml")
    g.write(
        "cohorts/prelude/syncs/PRELUDE-S1.yaml",
        syncs_file("PRELUDE/S1/METHODO", [_manual_sync("man-base")]),
    )
    g.write(
        "cohorts/prelude/syncs/PRELUDE/S1/ANGLAIS.yaml",
        syncs_file("PRELUDE/S1/ANGLAIS", [_manual_sync("man-base")]),
    )
    code, out, _ = mr.run("validate", "--today", "2026-11-28", env=mr.env())
    assert code == 1
    assert (
        "cohorts/prelude/syncs/PRELUDE-S1.yaml:1:1: file-name: file name 'PRELUDE-S1' must be "
        "the course 'PRELUDE/S1/METHODO', each / \\ : * ? \" < > | as _ (rename the file to "
        "PRELUDE_S1_METHODO.yaml)"
    ) in out
    assert (
        "cohorts/prelude/syncs/PRELUDE/S1/ANGLAIS.yaml:1:1: unknown-file: sync files go "
        "directly in cohorts/prelude/syncs/: for a course shortname with '/', name the file "
        "PRELUDE_S1_ANGLAIS.yaml ('/' written '_') and keep the real shortname in its course: key"
    ) in out


# -- validation as GitLab reports ---------------------------------------------------------------


def test_validation_reports_are_the_verdict_of_the_merge_request(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2], expires="2026-11-01"))  # expired, older
    g.commit("man-base")
    g.push()
    g.checkout("feature", new=True)
    g.write(MR, cohort_file("man-mr", USERS[2:3], expires="2026-11-20"))  # expired, added now
    g.commit("man-mr")
    code, out, _ = mr.run("ci", "validate", "--today", "2026-11-28", env=mr.mr_env())
    assert code == 1
    assert "cohorts/prelude/cohorts/man-mr.yaml:1:1: expired-new:" in out
    quality = json.loads((g.work / "gl-code-quality-report.json").read_text(encoding="utf-8"))
    assert [(i["check_name"], i["severity"], i["location"]) for i in quality] == [
        ("expired", "minor", {"path": BASE, "lines": {"begin": 1}}),
        ("expired-new", "major", {"path": MR, "lines": {"begin": 1}}),
        # A file the merge request adds without its schema hint (issue 17): a warning.
        ("schema-hint", "minor", {"path": MR, "lines": {"begin": 1}}),
    ]
    assert len({i["fingerprint"] for i in quality}) == 3
    report = ElementTree.parse(g.work / "validate-junit.xml").getroot()
    suite = report.find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == [MR]
    # On the default branch (no merge request) the same file is only expired: a warning.
    code, out, _ = mr.run("ci", "validate", "--today", "2026-11-28", env=mr.env())
    assert code == 0, out
    quality = json.loads((g.work / "gl-code-quality-report.json").read_text(encoding="utf-8"))
    assert {i["severity"] for i in quality} == {"minor"}


# -- apply: the log and the approval ------------------------------------------------------------


def test_ci_apply_lists_each_applied_action_in_a_log(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.commit("man-base")
    g.push()
    code, out, err = mr.run("ci", "apply", "-p", "prelude", "--now", NOW, env=mr.env())
    assert code == exitcodes.OK, out + err
    assert "[1/2] create_cohort man-base: ok" in err and "[2/2] add_members man-base: ok" in err
    assert "Applied 2 of 2 actions; 0 failed, 0 skipped." in out


def test_one_variable_approves_the_reviewed_plan_of_each_platform(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:6]))
    g.commit("man-base")
    g.push()
    assert mr.run("ci", "apply", "-p", "prelude", "--now", NOW, env=mr.env())[0] == 0
    g.write(BASE, cohort_file("man-base", USERS[:1]))  # 5 of 6 members removed
    g.commit("empty man-base")
    code, out, err = mr.run("ci", "plan", "-p", "prelude", "--now", NOW, env=mr.env())
    assert code == exitcodes.FAILSAFE, out + err
    digest = mr.saved()["digest"]
    assert f"RECONCILER_APPROVED_DIGEST={digest}" in err
    code, out, err = mr.run("ci", "apply", "-p", "prelude", "--now", NOW, env=mr.env())
    assert code == exitcodes.FAILSAFE and "nothing" not in out
    approved = mr.env(RECONCILER_APPROVED_DIGEST=f"sha256:{'0' * 64}, {digest}")
    code, out, err = mr.run("ci", "apply", "-p", "prelude", "--now", NOW, env=approved)
    assert code == exitcodes.OK, out + err
    assert "approved by RECONCILER_APPROVED_DIGEST" in out


# -- the README shows a real note ---------------------------------------------------------------


def test_readme_shows_a_real_note(tmp_path: Path) -> None:
    """The example in "Working with merge requests" is what `reconcile ci plan` posts for its
    scenario (tests/support/readme_note.py prints it again after a change)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    note = readme_note.example_note(tmp_path)
    shown = readme.split(readme_note.START, 1)[1].split(readme_note.END, 1)[0]
    # Commit hashes and the digest follow what other changes edit; the rest must be equal.
    assert _without_commits(f"{readme_note.START}{shown}{readme_note.END}") == _without_commits(
        readme_note.as_readme_block(note)
    )
    for section in ("#### What this merge request changes", "**Warnings**", "<details>"):
        assert section in note


def test_a_note_that_cannot_be_posted_fails_the_job(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.commit("man-base")
    g.push()
    g.checkout("feature", new=True)
    g.write(MR, cohort_file("man-mr", USERS[2:4]))
    g.commit("man-mr")
    mr.gitlab.status = 503
    code, out, err = mr.ci_plan()
    assert code == exitcodes.ERROR, out + err
    assert "error: the plan note was not posted: GitLab answered 503" in err
    assert mr.saved()["digest"]  # the plan itself is saved for the artifacts
    code, out, err = mr.ci_plan(GITLAB_NOTE_TOKEN="")
    assert code == exitcodes.ERROR and "GITLAB_NOTE_TOKEN not set" in err


def _without_commits(text: str) -> str:
    """The note without what any unrelated change moves: commit hashes, and the plan's digest
    (a hash over the whole plan document, so of every field any action kind gains)."""
    text = re.sub(r"Plan of `[0-9a-f]{12}`", "Plan of `<commit>`", text)
    text = re.sub(r"sha256:[0-9a-f]{64}", "sha256:<digest>", text)
    return re.sub(r" at [0-9a-f]{8};", " at <fork>;", text)


# -- which token a job presents ------------------------------------------------------------------


def test_a_merge_request_plan_never_presents_the_write_token(mr: MergeRequestWorld) -> None:
    """GitLab's project variables outrank a job's own, so a merge-request job may see the
    protected write token: ``ci plan`` picks the read-only one itself."""
    mr.git.checkout("feature", new=True)
    mr.git.write(MR, cohort_file("man-mr", USERS[2:4]))
    mr.git.commit("man-mr")
    # A write token Moodle would refuse: the plan goes through only if it is never sent.
    code, out, err = mr.ci_plan(PRELUDE_TOKEN="not-a-token")
    assert code == exitcodes.CHANGES or code == exitcodes.OK, out + err
    assert "man-mr" in mr.note()
    # Without the read-only token the job fails in one line, even with the write token there.
    code, out, err = mr.ci_plan(PRELUDE_READONLY_TOKEN="")
    assert code == exitcodes.ERROR, out + err
    assert "no read-only web-service token for prelude: set the environment variable " \
        "PRELUDE_READONLY_TOKEN" in err
    assert "Traceback" not in err


def test_plan_prefers_the_read_only_token_and_apply_uses_the_write_token(
    mr: MergeRequestWorld,
) -> None:
    env = mr.env(PRELUDE_TOKEN="not-a-token")
    code, out, err = mr.run("plan", "-p", "prelude", "--now", NOW, env=env)
    assert code in (exitcodes.OK, exitcodes.CHANGES), out + err
    code, out, err = mr.run("apply", "-p", "prelude", "--now", NOW, env=env)
    assert code == exitcodes.ERROR, out + err
    assert "invalidtoken" in err or "token" in err.lower()
    # Without a read-only token, plan falls back to the write token.
    code, out, err = mr.run("plan", "-p", "prelude", "--now", NOW,
                            env=mr.env(PRELUDE_READONLY_TOKEN=""))
    assert code in (exitcodes.OK, exitcodes.CHANGES), out + err
