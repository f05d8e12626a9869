"""Course patterns (issue 17, item 1), end to end through the CLI: the shipped FOAD2 pattern
of Collegium Santé on an emulated Moodle (APOGÉE in sqlite, the real slapd), a course that
appears, a course whose own file leaves the pattern out, a pattern that shrinks past the
failsafes, a category pattern, and a token that cannot read category idnumbers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
from support.world import World, make_repo, open_world, users_of, write_platforms

from reconciler.cli import exitcodes
from reconciler.emulator.dispatcher import allowed_functions

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC).isoformat()
TUTORS = ["e20170412", "e20171588", "e20172203", "e20180077"]
PATTERN = Path("cohorts/collegium/patterns/foad2-dfgsp2.yaml")


def collegium_seed(data) -> dict:
    """Collegium Santé: a FOAD2 category with a pharmacy subcategory, three FOAD2 spaces
    (one archived) and an anatomy course outside them."""
    return {
        "categories": [
            {"name": "Santé", "idnumber": "CAT-SANTE"},
            {"name": "FOAD2", "idnumber": "CAT-FOAD2", "parent": "CAT-SANTE"},
            {"name": "FOAD2 pharmacie", "idnumber": "CAT-FOAD2-PHA", "parent": "CAT-FOAD2"},
        ],
        "courses": [
            {"shortname": "FOAD2-PHARMA", "fullname": "FOAD2 Pharmacie",
             "category_idnumber": "CAT-FOAD2"},
            {"shortname": "FOAD2-PHARMA-BIO", "fullname": "FOAD2 Biologie",
             "category_idnumber": "CAT-FOAD2-PHA"},
            {"shortname": "FOAD2-2025-ARCHIVE", "fullname": "FOAD2 2025",
             "category_idnumber": "CAT-FOAD2"},
            {"shortname": "MED2-ANAT", "fullname": "Anatomie", "category_idnumber": "CAT-SANTE"},
        ],
        "users": users_of(data) + [
            {"username": u, "firstname": u, "lastname": "T", "email": f"{u}@x.fr"}
            for u in TUTORS
        ],
    }


class Collegium:
    """The world, with the ``reconcile`` commands pointed at Collegium Santé."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.env = {"COLLEGIUM_URL": world.emu.url, "COLLEGIUM_TOKEN": world.env["ECAMPUS_TOKEN"]}

    def run(self, *args: str) -> tuple[int, str]:
        return self.world.run(*args, env=self.env)

    def plan(self) -> tuple[int, str]:
        return self.run("plan", "-p", "collegium", "--now", NOW)

    def plan_json(self) -> dict:
        code, out = self.run("plan", "-p", "collegium", "--now", NOW, "--format", "json")
        assert code in (exitcodes.OK, exitcodes.CHANGES), out
        return json.loads(out)

    def apply(self, expected: int = exitcodes.OK) -> None:
        code, out = self.run("apply", "-p", "collegium", "--now", NOW)
        assert code == expected, out

    def commit(self, path: Path, text: str | None, message: str) -> None:
        full = self.world.repo / path
        repo = git.Repo(self.world.repo)
        if text is None:
            repo.index.remove([str(path)], working_tree=True)
        else:
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(text, encoding="utf-8")
            repo.index.add([str(path)])
        repo.index.commit(message)

    def students(self) -> set[str]:
        """The members of etp-PHA2A-101 (what the pattern syncs)."""
        return self.world.cohort_members("etp-PHA2A-101")


@pytest.fixture
def collegium(tmp_path, slapd, sources_data) -> Iterator[Collegium]:
    repo = make_repo(tmp_path)
    with open_world(tmp_path, repo, sources_data, slapd.environ(),
                    collegium_seed(sources_data)) as world:
        yield Collegium(world)


def test_the_shipped_pattern_gives_every_foad2_space_its_promotion(collegium: Collegium) -> None:
    code, out = collegium.plan()
    assert code == exitcodes.CHANGES, out
    assert ("foad2-dfgsp2 (FOAD2-* except FOAD2-*-ARCHIVE; "
            "cohorts/collegium/patterns/foad2-dfgsp2.yaml:7): 2 courses: FOAD2-PHARMA, "
            "FOAD2-PHARMA-BIO") in out
    assert "gaining its syncs: FOAD2-PHARMA, FOAD2-PHARMA-BIO" in out
    assert "left out: FOAD2-2025-ARCHIVE (the pattern's exclude)" in out
    # Each sync the pattern makes says so: reason "pattern", from the pattern's file.
    reasons = {a["target"]: a["reason"] for a in collegium.plan_json()["actions"]}
    assert reasons["FOAD2-PHARMA-BIO/etp-PHA2A-101/student"] == {
        "code": "pattern",
        "text": "FOAD2-PHARMA-BIO matches pattern foad2-dfgsp2 "
                f"({PATTERN}:11)",
        "source": f"{PATTERN}:11"}
    collegium.apply()
    world = collegium.world
    students = collegium.students()
    assert students
    assert world.enrolled("FOAD2-PHARMA") == students | set(TUTORS)  # the file's own tutors
    assert world.enrolled("FOAD2-PHARMA-BIO") == students
    assert world.enrolled("FOAD2-2025-ARCHIVE") == set()
    assert world.enrolled("MED2-ANAT") == set()
    code, out = collegium.plan()
    assert code == exitcodes.OK and out.startswith("Plan: no changes"), out

    # A FOAD2 space opened during the year gets the promotion on the next run.
    world.emu.seed({"courses": [{"shortname": "FOAD2-PHARMA-CHIM", "fullname": "Chimie",
                                 "category_idnumber": "CAT-FOAD2-PHA"}]})
    code, out = collegium.plan()
    assert code == exitcodes.CHANGES, out
    assert "gaining its syncs: FOAD2-PHARMA-CHIM" in out
    assert "+ cohort sync of etp-PHA2A-101 as student" in out
    collegium.apply()
    assert world.enrolled("FOAD2-PHARMA-CHIM") == students


def test_a_course_that_leaves_the_pattern_loses_its_sync_the_usual_way(
    collegium: Collegium,
) -> None:
    collegium.apply()
    world = collegium.world
    # The course's own file has the last word: it leaves the pattern out.
    collegium.commit(Path("cohorts/collegium/syncs/FOAD2-PHARMA-BIO.yaml"), (
        "# yaml-language-server: $schema=../../../schemas/course-syncs.schema.json\n"
        "course: FOAD2-PHARMA-BIO\nowners: [claire.lefevre@unicaen.fr]\n"
        "exclude_patterns: [foad2-dfgsp2]\n"), "FOAD2-PHARMA-BIO enrols by hand")
    code, out = collegium.run("validate")
    assert code == 0, out
    code, out = collegium.plan()
    assert code == exitcodes.CHANGES, out
    assert ("left out: FOAD2-2025-ARCHIVE (the pattern's exclude), FOAD2-PHARMA-BIO "
            "(cohorts/collegium/syncs/FOAD2-PHARMA-BIO.yaml:4)") in out
    assert "no longer matching, their syncs retired: FOAD2-PHARMA-BIO" in out
    assert "- disable cohort sync of etp-PHA2A-101 as student" in out
    disable = next(a for a in collegium.plan_json()["actions"] if a["kind"] == "disable_sync")
    assert disable["reason"] == {
        "code": "pattern-unmatched",
        "text": "FOAD2-PHARMA-BIO is left out of pattern foad2-dfgsp2 "
                "(cohorts/collegium/syncs/FOAD2-PHARMA-BIO.yaml:4), which syncs "
                "etp-PHA2A-101 as student, and no course file declares it there",
        "source": f"{PATTERN}:7"}
    collegium.apply()
    assert world.enrolled("FOAD2-PHARMA-BIO") == set()  # disabled: suspended, not unenrolled
    assert world.enrolled("FOAD2-PHARMA-BIO", active=False) == collegium.students()
    assert world.enrolled("FOAD2-PHARMA") >= collegium.students()


def test_a_pattern_that_shrinks_past_the_failsafes_is_stopped(collegium: Collegium) -> None:
    write_platforms(collegium.world.repo,
                    {"platforms": {"collegium": {"failsafes": {"max_syncs_removed": 1}}}})
    git.Repo(collegium.world.repo).git.commit("-am", "at most one sync removed a run")
    collegium.world.emu.seed({"courses": [{"shortname": "FOAD2-PHARMA-CHIM",
                                           "fullname": "Chimie"}]})
    collegium.apply()
    text = (collegium.world.repo / PATTERN).read_text(encoding="utf-8")
    collegium.commit(PATTERN, text.replace('shortname: "FOAD2-*"', 'shortname: "FOAD2-PHARMA"'),
                     "a typo narrows the pattern to one course")
    code, out = collegium.plan()
    assert code == exitcodes.FAILSAFE, out
    assert "no longer matching, their syncs retired: FOAD2-PHARMA-BIO, FOAD2-PHARMA-CHIM" in out
    code, out = collegium.run("apply", "-p", "collegium", "--now", NOW)
    assert code == exitcodes.FAILSAFE, out
    assert collegium.world.enrolled("FOAD2-PHARMA-CHIM") == collegium.students()


CATEGORY_PATTERN = """\
# yaml-language-server: $schema=../../../schemas/course-pattern.schema.json
owners: [doyen-sante@unicaen.fr]
courses:
  category: CAT-FOAD2
  subcategories: {subs}
syncs:
  - cohort: man-tuteurs-l2-pharma
    role: teacher
    reason: Les tuteurs suivent tous les espaces FOAD2.
"""


def test_a_category_pattern_takes_the_courses_of_the_category(collegium: Collegium) -> None:
    path = Path("cohorts/collegium/patterns/foad2-tuteurs.yaml")
    collegium.commit(path, CATEGORY_PATTERN.format(subs="false"), "tutors in CAT-FOAD2")
    collegium.world.emu.reset_counters()
    plan = collegium.plan_json()
    assert collegium.world.emu.call_counts["core_course_get_categories"] == 1  # in bulk
    tutors = next(p for p in plan["patterns"] if p["name"] == "foad2-tuteurs")
    assert tutors["courses"] == ["FOAD2-2025-ARCHIVE", "FOAD2-PHARMA"]
    assert tutors["rule"] == "in category CAT-FOAD2"
    # FOAD2-PHARMA's own file syncs the tutors already, in its Tutorat group: it wins there.
    assert tutors["overridden"] == [{
        "course": "FOAD2-PHARMA", "cohort": "man-tuteurs-l2-pharma", "role": "teacher",
        "by": "cohorts/collegium/syncs/FOAD2-PHARMA.yaml:7"}]
    assert tutors["gaining"] == ["FOAD2-2025-ARCHIVE"]

    collegium.commit(path, CATEGORY_PATTERN.format(subs="true"), "and its subcategories")
    plan = collegium.plan_json()
    tutors = next(p for p in plan["patterns"] if p["name"] == "foad2-tuteurs")
    assert tutors["courses"] == ["FOAD2-2025-ARCHIVE", "FOAD2-PHARMA", "FOAD2-PHARMA-BIO"]
    collegium.apply()
    assert collegium.world.enrolled("FOAD2-PHARMA-BIO") >= set(TUTORS)
    assert collegium.world.enrolled("MED2-ANAT") == set()


def test_categories_that_cannot_be_read_never_remove_a_sync(collegium: Collegium) -> None:
    path = Path("cohorts/collegium/patterns/foad2-tuteurs.yaml")
    collegium.commit(path, CATEGORY_PATTERN.format(subs="true"), "tutors in CAT-FOAD2")
    collegium.apply()
    world = collegium.world
    before = world.enrolled("FOAD2-PHARMA-BIO")
    assert set(TUTORS) <= before
    # A token whose user may not manage categories: Moodle leaves the idnumbers out.
    world.emu.set_config(category_manager=False)
    code, out = collegium.plan()
    # Nothing to do, nothing removed; but what the pattern declares cannot be checked, so
    # the plan is incomplete (exit 7), never a silent success.
    assert code == exitcodes.INCOMPLETE, out
    assert "Plan: no changes." in out
    assert ("! pattern-unresolved: pattern foad2-tuteurs (in category CAT-FOAD2 and its "
            "subcategories): Moodle gives this token no category idnumbers") in out
    assert "not matched: Moodle gives this token no category idnumbers" in out
    assert "incomplete: 1 thing the declarations ask cannot be done (pattern-unresolved ×1)" in out
    collegium.apply(exitcodes.INCOMPLETE)
    assert world.enrolled("FOAD2-PHARMA-BIO") == before
    # The category renamed in Moodle (or a typo): held as well, never a mass removal.
    world.emu.set_config(category_manager=True)
    collegium.commit(path, CATEGORY_PATTERN.format(subs="true").replace("CAT-FOAD2",
                                                                         "CAT-FOAD-2"), "typo")
    code, out = collegium.plan()
    assert code == exitcodes.INCOMPLETE, out
    assert "Plan: no changes." in out
    assert "Moodle has no course category with idnumber 'CAT-FOAD-2'" in out
    # A token's service without core_course_get_categories: the same.
    collegium.commit(path, CATEGORY_PATTERN.format(subs="true"), "typo fixed")
    service = [f for f in allowed_functions(world.emu.config)
               if f != "core_course_get_categories"]
    world.emu.set_config(functions=service)
    world.emu.reset_counters()
    code, out = collegium.plan()
    assert code == exitcodes.INCOMPLETE, out
    assert "Plan: no changes." in out
    assert "the token's web service lacks core_course_get_categories" in out
    assert world.emu.call_counts["core_course_get_categories"] == 0
    assert world.enrolled("FOAD2-PHARMA-BIO") == before


def test_explain_patterns_reads_moodle_without_writing(collegium: Collegium) -> None:
    collegium.world.emu.reset_counters()
    code, out = collegium.run("validate", "--explain-patterns")
    assert code == 0, out
    assert "Course patterns on collegium (read from Moodle today: 4 courses):" in out
    assert ("foad2-dfgsp2 (FOAD2-* except FOAD2-*-ARCHIVE; "
            "cohorts/collegium/patterns/foad2-dfgsp2.yaml:7): 2 courses: FOAD2-PHARMA, "
            "FOAD2-PHARMA-BIO") in out
    assert "left out: FOAD2-2025-ARCHIVE (the pattern's exclude)" in out
    calls = collegium.world.emu.call_counts
    assert set(calls) == {"core_webservice_get_site_info", "core_course_get_courses_by_field"}
    assert collegium.world.emu.write_calls() == {}


def test_explain_sees_what_a_pattern_will_do_for_a_person(collegium: Collegium) -> None:
    """``reconcile explain`` plans like the nightly: a course pattern of the person's cohort
    is matched against every course (one call), and the categories read (one more) when a
    pattern of theirs names one, so a FOAD2 space opened today is in the verdict."""
    collegium.apply()
    world = collegium.world
    world.emu.seed({"courses": [{"shortname": "FOAD2-PHARMA-CHIM", "fullname": "Chimie",
                                 "category_idnumber": "CAT-FOAD2-PHA"}]})

    def explain(username: str) -> dict:
        code, out = collegium.run("explain", username, "-p", "collegium", "--now", NOW,
                                  "--format", "json")
        assert code == exitcodes.OK, out
        return json.loads(out)["platforms"]["collegium"]

    student = explain(sorted(collegium.students())[0])
    [change] = student["verdict"]["changes"]
    assert change["line"] == "FOAD2-PHARMA-CHIM: cohort sync of etp-PHA2A-101 as student"
    assert change["reason"]["code"] == "pattern"
    assert student["moodle"]["calls"]["core_course_get_courses_by_field"] == 1
    assert "core_course_get_categories" not in student["moodle"]["calls"]
    assert [s["source"] for s in student["declarations"]["syncs"]] == [f"{PATTERN}:11"]

    path = Path("cohorts/collegium/patterns/foad2-tuteurs.yaml")
    collegium.commit(path, CATEGORY_PATTERN.format(subs="true"), "tutors in CAT-FOAD2")
    tutor = explain(TUTORS[0])
    assert {c["target"] for c in tutor["verdict"]["changes"]} == {
        f"{course}/man-tuteurs-l2-pharma/teacher"
        for course in ("FOAD2-2025-ARCHIVE", "FOAD2-PHARMA-BIO", "FOAD2-PHARMA-CHIM")}
    assert tutor["moodle"]["calls"]["core_course_get_categories"] == 1
