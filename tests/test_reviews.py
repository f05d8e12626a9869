"""Periodic review of manual cohorts (issue 17, item 4), through the CLI on the emulator: a
due review in the plan (text, Markdown, JSON) and in the ``expiring`` report, with its
owners; it never changes Moodle; moving ``reviewed`` in a commit ends it."""

from __future__ import annotations

import json
from pathlib import Path

import git
from support.cliworld import cli_world

from reconciler.cli import exitcodes

COHORT = """\
# yaml-language-server: $schema=../../../schemas/manual-cohort.schema.json
idnumber: man-jury-ifsi
name: Jury de la préparation IFSI
owners:
  - formation-continue@unicaen.fr
  - jdupont
review_every: 90d
reviewed: {reviewed}
members:
  - fc-amartin
  - fc-bnguyen
"""
PATH = Path("cohorts/prelude/cohorts/man-jury-ifsi.yaml")


def _commit(repo: Path, reviewed: str, message: str) -> None:
    (repo / PATH).write_text(COHORT.format(reviewed=reviewed), encoding="utf-8")
    r = git.Repo(repo)
    r.index.add([str(PATH)])
    r.index.commit(message)


def test_a_due_review_is_in_the_plan_and_the_expiring_report(tmp_path: Path) -> None:
    with cli_world(tmp_path) as world:
        _commit(world.repo, "2026-08-20", "a jury cohort, reviewed every 90 days")
        result = world.run("apply", "-p", "prelude", "--now", "2026-11-01T02:00:00Z")
        assert result.exit_code == exitcodes.OK, result.output

        # Due on 2026-11-18; on the 28th it is ten days late.
        result = world.run("plan", "-p", "prelude", "--now", "2026-11-28T02:00:00Z")
        assert result.exit_code == exitcodes.OK, result.output  # a review changes nothing
        lines = result.output.splitlines()
        assert lines[0] == "Plan: no changes; 1 review due."
        assert ("  ! review-due: cohort man-jury-ifsi: review of the members due since "
                "2026-11-18 (10 days overdue); owners formation-continue@unicaen.fr, jdupont "
                "check them and move reviewed: in a merge request") in lines
        result = world.run("plan", "-p", "prelude", "--now", "2026-11-28T02:00:00Z",
                           "--format", "json")
        [review] = json.loads(result.output)["reviews"]
        assert review == {
            "cohort": "man-jury-ifsi", "name": "Jury de la préparation IFSI",
            "due": "2026-11-18", "days_left": -10, "review_every": 90,
            "reviewed": "2026-08-20", "owners": ["formation-continue@unicaen.fr", "jdupont"],
            "source": "cohorts/prelude/cohorts/man-jury-ifsi.yaml:8",
        }
        result = world.run("plan", "-p", "prelude", "--now", "2026-11-28T02:00:00Z",
                           "--format", "markdown")
        assert "`review-due` cohort man-jury-ifsi: review of the members due since" in (
            result.output)

        # Within the expiry window before it falls due: listed, not yet counted as due.
        result = world.run("plan", "-p", "prelude", "--now", "2026-11-10T02:00:00Z")
        assert result.output.splitlines()[0] == "Plan: no changes."
        assert "due on 2026-11-18 (8 days left)" in result.output

        result = world.run("expiring", "--within", "14d", "--today", "2026-11-28",
                           "--format", "json")
        assert result.exit_code == 0, result.output
        [item] = [i for i in json.loads(result.output) if i["kind"] == "review"]
        assert item["what"] == ("review of the members of cohort man-jury-ifsi (Jury de la "
                                "préparation IFSI)")
        assert (item["expires"], item["days_left"]) == ("2026-11-18", -10)
        assert item["owners"] == ["formation-continue@unicaen.fr", "jdupont"]
        assert item["location"] == "cohorts/prelude/cohorts/man-jury-ifsi.yaml:8"
        assert item["author"] and item["commit"]  # who last moved reviewed
        result = world.run("expiring", "--within", "14d", "--today", "2026-11-28")
        assert ("prelude: review of the members of cohort man-jury-ifsi (Jury de la "
                "préparation IFSI) due since 2026-11-18; owners formation-continue@unicaen.fr, "
                "jdupont") in result.output

        # The owners check the members and move reviewed: the review is no longer due.
        _commit(world.repo, "2026-11-27", "man-jury-ifsi reviewed")
        result = world.run("plan", "-p", "prelude", "--now", "2026-11-28T02:00:00Z")
        assert result.output.splitlines()[0] == "Plan: no changes.", result.output
        assert "review" not in result.output
        result = world.run("expiring", "--within", "14d", "--today", "2026-11-28",
                           "--format", "json")
        assert not [i for i in json.loads(result.output) if i["kind"] == "review"]
