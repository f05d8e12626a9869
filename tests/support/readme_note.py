"""The example note of the README ("Working with merge requests"), made by a real run.

A branch adds a cohort and its sync with an expiry date while its target gained another
cohort: ``reconcile ci plan`` against an emulator posts the note to the fake GitLab. The
test ``test_readme_shows_a_real_note`` checks that the README shows exactly this note; run
``python tests/support/readme_note.py`` from the repository root to print it again.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support import fake_gitlab  # noqa: E402
from support.mr_world import GitWorld, cohort_file, moodle_seed, syncs_file  # noqa: E402

from reconciler.cli import main  # noqa: E402
from reconciler.emulator import EmulatorConfig, MoodleEmulator  # noqa: E402
from reconciler.gitlab.notes import marker  # noqa: E402

TOKEN = "readme-token"
READONLY_TOKEN = "readme-readonly-token"
NOW = "2026-11-28T02:00:00Z"
START = "<!-- example note: made by tests/support/readme_note.py -->"
END = "<!-- end of the example note -->"


def example_note(tmp: Path) -> str:
    """The note's Markdown (without its marker line)."""
    gitlab = fake_gitlab.start()
    try:
        with MoodleEmulator(EmulatorConfig(token=TOKEN, readonly_token=READONLY_TOKEN)) as emu:
            emu.seed(moodle_seed())
            g = GitWorld(tmp)
            env = {"PRELUDE_URL": emu.url, "PRELUDE_TOKEN": TOKEN,
                   "PRELUDE_READONLY_TOKEN": READONLY_TOKEN}

            def apply_main() -> None:
                g.checkout("main")
                result = CliRunner().invoke(
                    main, ["--repo", str(g.work), "apply", "-p", "prelude", "--now", NOW], env=env
                )
                assert result.exit_code == 0, result.output

            g.write(
                "cohorts/prelude/cohorts/man-prepa-ifsi.yaml",
                cohort_file(
                    "man-prepa-ifsi", ["e26001", "e26002", "e26003"], name="Préparation IFSI"
                ),
            )
            g.commit("Préparation IFSI")
            g.push()
            apply_main()
            g.checkout("remise-a-niveau", new=True)
            g.write(
                "cohorts/prelude/cohorts/man-remise-a-niveau.yaml",
                cohort_file(
                    "man-remise-a-niveau",
                    ["e26004", "e26005"],
                    name="Remise à niveau en méthodologie",
                ),
            )
            g.write(
                "cohorts/prelude/syncs/PRELUDE-METHODO.yaml",
                syncs_file(
                    "PRELUDE-METHODO",
                    [
                        {
                            "cohort": "man-remise-a-niveau",
                            "role": "student",
                            "method": "manual",
                            "expires": "2027-01-15",
                            "reason": "Remise à niveau avant les écrits de janvier.",
                        }
                    ],
                ),
            )
            g.commit("Remise à niveau")
            g.checkout("main")
            g.write(
                "cohorts/prelude/cohorts/man-tutorat.yaml",
                cohort_file("man-tutorat", ["e26006"], name="Tutorat"),
            )
            g.commit("Tutorat")
            g.push()
            apply_main()
            g.checkout("remise-a-niveau")
            ci = {
                **env,
                "CI_PIPELINE_SOURCE": "merge_request_event",
                "CI_MERGE_REQUEST_IID": fake_gitlab.MERGE_REQUEST,
                "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
                "CI_COMMIT_SHA": g.repo.head.commit.hexsha,
                "CI_JOB_URL": "https://gitlab.example.org/moodle/cohorts/-/jobs/4242",
                "CI_API_V4_URL": gitlab.api,
                "CI_PROJECT_ID": fake_gitlab.PROJECT,
                "GITLAB_NOTE_TOKEN": fake_gitlab.TOKEN,
            }
            result = CliRunner().invoke(
                main, ["--repo", str(g.work), "ci", "plan", "-p", "prelude", "--now", NOW], env=ci
            )
            assert result.exit_code == 0, result.output
        [note] = [n["body"] for n in gitlab.notes if marker("prelude") in n["body"]]
        return note.split("\n", 1)[1]
    finally:
        fake_gitlab.stop(gitlab)


def as_readme_block(note: str) -> str:
    """The note as the README shows it: quoted, between its two markers."""
    quoted = "\n".join(f"> {line}".rstrip() for line in note.splitlines())
    return f"{START}\n{quoted}\n{END}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(as_readme_block(example_note(Path(tmp))))
