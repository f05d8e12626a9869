"""``reconcile new cohort`` and ``reconcile new sync`` (issue 17, item 5): files for people
who do not write YAML daily, valid as written, with their schema hint and comments; then the
plan of the emulated Prelude shows what they declare."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import git
import yaml
from support.cliworld import MEMBERS, cli_world

from reconciler.cli import exitcodes
from reconciler.declarations.layout import schema_hint

TODAY = "2026-11-28"
COHORT = Path("cohorts/prelude/cohorts/man-jury-ifsi.yaml")
COURSE = Path("cohorts/prelude/syncs/PRELUDE-JURY.yaml")


def test_a_new_cohort_and_a_new_sync_end_in_the_plan(tmp_path: Path) -> None:
    with cli_world(tmp_path) as world:
        result = world.run("new", "cohort", "man-jury-ifsi", "-p", "prelude",
                           "--name", "Jury: préparation IFSI", "--owner",
                           "formation-continue@unicaen.fr", "--member", "FC-AMARTIN",
                           "--member", MEMBERS[1], "--today", TODAY)
        assert result.exit_code == 0, result.output
        assert f"wrote {COHORT}" in result.output
        text = (world.repo / COHORT).read_text(encoding="utf-8")
        assert text.splitlines()[0] == schema_hint("cohort")
        assert "review_every: 180d" in text and f"reviewed: {TODAY}" in text
        assert yaml.safe_load(text) == {
            "idnumber": "man-jury-ifsi", "name": "Jury: préparation IFSI",
            "owners": ["formation-continue@unicaen.fr"], "review_every": "180d",
            "reviewed": dt.date(2026, 11, 28),
            "members": ["fc-amartin", MEMBERS[1]]}

        result = world.run("new", "sync", "-p", "prelude", "--course", "PRELUDE-METHODO",
                           "--cohort", "man-jury-ifsi", "--role", "teacher", "--method",
                           "manual", "--expires", "2027-01-10", "--reason",
                           "Le jury consulte les copies du module", "--today", TODAY)
        assert result.exit_code == 0, result.output
        methodo = (world.repo / "cohorts/prelude/syncs/PRELUDE-METHODO.yaml").read_text()
        assert methodo.startswith(schema_hint("syncs"))  # the shipped file, kept as it was
        assert methodo.count("- cohort:") == 2
        assert "  # added by `reconcile new sync` on 2026-11-28" in methodo

        result = world.run("validate", "--today", TODAY)
        assert result.exit_code == 0, result.output
        assert result.output.strip().endswith("0 errors, 0 warnings")
        result = world.run("plan", "-p", "prelude", "--now", f"{TODAY}T02:00:00Z")
        assert result.exit_code == exitcodes.CHANGES, result.output
        assert "+ create cohort 'Jury: préparation IFSI'" in result.output
        assert "+ enrol 2 members of man-jury-ifsi manually as teacher until 2027-01-10" in (
            result.output)


def test_a_new_course_file_needs_an_owner_and_a_valid_cohort(tmp_path: Path) -> None:
    with cli_world(tmp_path) as world:
        args = ["new", "sync", "-p", "prelude", "--course", "PRELUDE-JURY", "--cohort",
                "man-prepa-ifsi", "--reason", "Accès au jury", "--method", "manual",
                "--expires", "2027-01-10", "--today", TODAY]
        result = world.run(*args)
        assert result.exit_code == 1 and "give at least one --owner" in result.output
        result = world.run(*args[:7], "man-nobody", *args[8:], "--owner", "jdupont")
        assert result.exit_code == 1
        assert ("cohorts/prelude/syncs/PRELUDE-JURY.yaml:10:5: unknown-cohort: cohort "
                "'man-nobody'") in result.output
        assert "not written, it would not pass validation (1 error(s) above)" in result.output
        assert not (world.repo / COURSE).exists()
        result = world.run(*args, "--owner", "jdupont")
        assert result.exit_code == 0, result.output
        text = (world.repo / COURSE).read_text(encoding="utf-8")
        assert text.splitlines()[0] == schema_hint("syncs")
        assert yaml.safe_load(text)["syncs"] == [{
            "cohort": "man-prepa-ifsi", "role": "student", "method": "manual",
            "expires": dt.date(2027, 1, 10), "reason": "Accès au jury"}]
        result = world.run(*args)  # the same cohort and role again
        assert result.exit_code == 1
        assert "PRELUDE-JURY.yaml:10: already syncs man-prepa-ifsi as student" in result.output


def test_nothing_is_overwritten_nor_edited_in_an_unusual_shape(tmp_path: Path) -> None:
    with cli_world(tmp_path) as world:
        shipped = world.repo / "cohorts/prelude/cohorts/man-prepa-ifsi.yaml"
        before = shipped.read_text(encoding="utf-8")
        result = world.run("new", "cohort", "man-prepa-ifsi", "-p", "prelude", "--name", "X",
                           "--owner", "a@b.fr")
        assert result.exit_code == 1 and "exists already; edit it instead" in result.output
        assert shipped.read_text(encoding="utf-8") == before
        result = world.run("new", "cohort", "prepa-sans-prefixe", "-p", "prelude", "--name",
                           "X", "--owner", "a@b.fr", "--today", TODAY)
        assert result.exit_code == 1 and "idnumber-prefix" in result.output
        assert not (world.repo / "cohorts/prelude/cohorts/prepa-sans-prefixe.yaml").exists()

        methodo = world.repo / "cohorts/prelude/syncs/PRELUDE-METHODO.yaml"
        odd = methodo.read_text(encoding="utf-8").replace("course: PRELUDE-METHODO\n", "") + (
            "course: PRELUDE-METHODO\n")
        methodo.write_text(odd, encoding="utf-8")
        git.Repo(world.repo).git.commit("-am", "course key last")
        result = world.run("new", "sync", "-p", "prelude", "--course", "PRELUDE-METHODO",
                           "--cohort", "man-prepa-ifsi", "--role", "teacher", "--reason",
                           "Les formateurs", "--method", "manual", "--expires", "2027-01-10")
        assert result.exit_code == 1
        assert "its last key is not a list of syncs; add this entry by hand:" in result.output
        assert "  - cohort: man-prepa-ifsi\n    role: teacher\n" in result.output
        assert methodo.read_text(encoding="utf-8") == odd
