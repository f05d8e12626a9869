"""A merge request that adds a course pattern (issue 17, item 1): its note counts the pattern's
actions in every course it matches as the merge request's own, and says which courses the
pattern matches today (`reconcile ci plan` on a git history, the emulator, the fake GitLab)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import fake_gitlab
from support.mr_world import USERS, GitWorld, cohort_file, moodle_seed
from test_ci_jobs import BASE, FAILSAFES, READONLY_TOKEN, TOKEN, MergeRequestWorld, _section

from reconciler.cli import exitcodes
from reconciler.emulator import EmulatorConfig, MoodleEmulator

PATTERN = "cohorts/prelude/patterns/prelude-tous.yaml"
TEXT = """\
# yaml-language-server: $schema=../../../schemas/course-pattern.schema.json
owners: [prepa@unicaen.fr]
courses:
  shortname: "PRELUDE-*"
  exclude: ["PRELUDE-ANGLAIS"]
syncs:
  - cohort: man-base
    role: student
    method: manual
    expires: 2027-01-10
    reason: Tous les modules Prelude, le temps de la remise à niveau.
"""


@pytest.fixture
def mr(tmp_path: Path) -> Iterator[MergeRequestWorld]:
    """test_ci_jobs' merge-request world: the prelude platform, its git remote, the fake
    GitLab."""
    gitlab = fake_gitlab.start()
    with MoodleEmulator(EmulatorConfig(token=TOKEN, readonly_token=READONLY_TOKEN)) as emu:
        emu.seed(moodle_seed())
        yield MergeRequestWorld(
            GitWorld(tmp_path, {"prelude": {"failsafes": FAILSAFES}}), emu, gitlab)
    fake_gitlab.stop(gitlab)


def test_a_pattern_added_by_a_merge_request_is_its_own(mr: MergeRequestWorld) -> None:
    g = mr.git
    g.write(BASE, cohort_file("man-base", USERS[:2]))
    g.commit("man-base")
    g.push()
    mr.apply_main()
    mr.emu.seed({"courses": [{"shortname": "PRELUDE-SVT", "fullname": "SVT"}]})
    g.checkout("feature", new=True)
    g.write(PATTERN, TEXT)
    g.commit("every Prelude module but English")

    code, out, err = mr.ci_plan()
    assert code == exitcodes.OK, out + err
    note = mr.note()
    assert note.splitlines()[1] == (
        "### 📝 `prelude`: this merge request: 4 to add, 0 to change, 0 to remove")
    mine = _section(note, "#### What this merge request changes")
    assert "**PRELUDE-METHODO**" in mine and "**PRELUDE-SVT**" in mine
    assert "PRELUDE-ANGLAIS" not in mine.split("Course patterns it changes")[0]
    assert ("- prelude-tous (PRELUDE-* except PRELUDE-ANGLAIS; "
            "cohorts/prelude/patterns/prelude-tous.yaml:3): 2 courses: PRELUDE-METHODO, "
            "PRELUDE-SVT") in note
    assert "  - gaining its syncs: PRELUDE-METHODO, PRELUDE-SVT" in note
    assert "  - left out: PRELUDE-ANGLAIS (the pattern's exclude)" in note
    assert "<details>" not in note  # nothing else in the plan
