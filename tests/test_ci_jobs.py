"""The CI jobs' commands (`reconcile ci validate|plan|apply`) on a real git history, a Moodle
emulator and the fake GitLab: exit codes, the note, the fork point, typos (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import fake_gitlab
from support.mr_world import USERS, GitWorld, cohort_file, moodle_seed, syncs_file

from reconciler.cli import exitcodes, main
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.gitlab.notes import marker
from reconciler.moodle.client import MoodleClient

TOKEN = "ci-token"
NOW = "2026-11-28T02:00:00Z"
BASE = "cohorts/prelude/cohorts/man-base.yaml"
MR = "cohorts/prelude/cohorts/man-mr.yaml"
OTHER = "cohorts/prelude/cohorts/man-other.yaml"
SYNCS = "cohorts/prelude/syncs/PRELUDE-METHODO.yaml"


@dataclass
class World:
    git: GitWorld
    emu: MoodleEmulator
    gitlab: fake_gitlab.FakeGitLab

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PRELUDE_URL": self.emu.url,
            "PRELUDE_TOKEN": TOKEN,
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
def world(tmp_path: Path) -> Iterator[World]:
    gitlab = fake_gitlab.start()
    with MoodleEmulator(EmulatorConfig(token=TOKEN)) as emu:
        emu.seed(moodle_seed())
        yield World(GitWorld(tmp_path), emu, gitlab)
    fake_gitlab.stop(gitlab)


def _section(note: str, title: str) -> str:
    """The note's lines from the heading ``title`` to the next heading or <details>."""
    body = note.split(title, 1)[1]
    for end in ("\n#### ", "\n<details>"):
        body = body.split(end, 1)[0]
    return body


def test_a_branch_behind_its_target_is_focused_on_its_fork_point(world: World) -> None:
    """The issue's scenario: main declares man-base (applied); the branch adds man-mr; then
    man-other lands on main and is applied. The branch's plan must not show man-other's
    deletion as the merge request's, and must say that main moved."""
    g = world.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.commit("man-base")
    g.push()
    world.apply_main()
    g.checkout("feature", new=True)
    g.write(MR, cohort_file("man-mr", USERS[2:4]))
    g.commit("man-mr")
    g.checkout("main")
    g.write(OTHER, cohort_file("man-other", USERS[4:5]))
    g.commit("man-other")
    g.push()
    world.apply_main()
    g.checkout("feature")

    code, out, err = world.ci_plan()
    assert code == exitcodes.OK, out + err
    note = world.note()
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
    code, out, _ = world.run(
        "plan", "-p", "prelude", "--now", NOW, "--changed-since", "main", env=world.env()
    )
    assert code == exitcodes.CHANGES
    focused = out.split("\nCohorts:", 1)[1]
    assert "man-mr" in focused and "man-other" not in focused
    assert "warning: main changed cohorts/ since this branch forked" in out

    # GitLab's merged-results pipeline: HEAD is the merge of the branch into main.
    merged, target = g.merge_result("feature")
    code, out, err = world.ci_plan(
        CI_MERGE_REQUEST_EVENT_TYPE="merged_result",
        CI_MERGE_REQUEST_TARGET_BRANCH_SHA=target,
        CI_COMMIT_SHA=merged,
    )
    assert code == exitcodes.OK, out + err
    note = world.note()
    assert f"planned on the merged result with main at {target[:8]}" in note
    assert "man-other" not in note and "rebase" not in note  # nothing to delete, nothing moved
    assert "**man-mr**" in _section(note, "#### What this merge request changes")


def test_note_is_the_saved_plan_with_its_digest_and_expiry_dates(world: World) -> None:
    g = world.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.commit("man-base")
    g.push()
    world.apply_main()
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
    with MoodleClient(world.emu.url, TOKEN) as client:
        cohort = next(c for c in client.get_cohorts() if c["idnumber"] == "man-base")
        [user] = client.get_users_by_field("username", [USERS[8]])
        client.add_cohort_members([(int(cohort["id"]), int(user["id"]))])
    code, out, err = world.ci_plan()
    assert code == exitcodes.OK, out + err
    note, saved = world.note(), world.saved()
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
    assert "<summary>The rest of the plan: 0 to add, 0 to change, 1 to remove" in rest
    assert f"**man-base**\n  - `-` remove 1 of 3 members: {USERS[8]}" in rest
    assert "created note" in out
