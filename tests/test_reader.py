"""The reader against the Moodle emulator: what it reads, and what it does not need to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient
from reconciler.planning import reader
from reconciler.planning.reader import read_actual
from reconciler.planning.state import DesiredPattern, DesiredState, DesiredSync
from reconciler.settings import GeneralCohortSettings, PlatformSettings

TOKEN = "reader-token"
PLATFORM = PlatformSettings(name="ecampus", url="https://ecampus.example.org",
                            general_cohorts=GeneralCohortSettings(enabled=True))


@pytest.fixture
def emu() -> Iterator[MoodleEmulator]:
    with MoodleEmulator(EmulatorConfig(token=TOKEN)) as emu:
        emu.seed({
            "courses": [{"shortname": f"C{n}", "fullname": f"Course {n}"} for n in range(1, 60)],
            "users": [{"username": "alice", "firstname": "A", "lastname": "L"}],
            "cohorts": [{"idnumber": "man-x", "name": "X", "members": ["alice"]}],
            "cohort_syncs": [{"course": "C1", "cohort": "man-x", "roleid": 5,
                              "name": "reconciler: man-x (student)"}],
        })
        yield emu


def sync(course: str) -> DesiredSync:
    return DesiredSync(course, "man-x", "student", 5, "cohort", "test", "")


def read(emu: MoodleEmulator, courses: list[str]) -> dict[str, int]:
    emu.reset_counters()
    with MoodleClient(emu.url, TOKEN) as client:
        desired = DesiredState("ecampus", syncs=[sync(c) for c in courses])
        return read_actual(client, PLATFORM, desired).courses


def test_courses_shown_by_their_instances_cost_no_call(emu: MoodleEmulator) -> None:
    courses = read(emu, ["C1"])
    assert "C1" in courses
    assert emu.call_counts["core_course_get_courses_by_field"] == 0


def test_a_declared_course_without_instance_is_asked_by_shortname(emu: MoodleEmulator) -> None:
    courses = read(emu, ["C1", "C2", "NOPE"])
    assert set(courses) == {"C1", "C2"}  # NOPE does not exist: the planner warns
    assert emu.call_counts["core_course_get_courses_by_field"] == 2


def test_many_declared_courses_without_instance_are_read_in_one_call(
    emu: MoodleEmulator,
) -> None:
    names = [f"C{n}" for n in range(2, 3 + reader.COURSES_ONE_BY_ONE)]
    courses = read(emu, names)
    assert set(names) <= set(courses)
    assert emu.call_counts["core_course_get_courses_by_field"] == 1


def read_with_patterns(emu: MoodleEmulator, *patterns: DesiredPattern):
    """read_actual on a platform declaring ``patterns`` (and C1's sync)."""
    emu.reset_counters()
    with MoodleClient(emu.url, TOKEN) as client:
        desired = DesiredState("ecampus", syncs=[sync("C1")], patterns=list(patterns))
        return read_actual(client, PLATFORM, desired)


def pattern(**courses: str) -> DesiredPattern:
    return DesiredPattern("p", "rule", "cohorts/ecampus/patterns/p.yaml:3", ("o@x.fr",),
                          (sync("label"),), **courses)


def test_a_course_pattern_has_every_course_read_in_one_call(emu: MoodleEmulator) -> None:
    """A pattern matches courses no instance or file names yet (C2 to C59 here): the reader
    reads every course in one call, then each matching course counts as declared."""
    actual = read_with_patterns(emu, pattern(shortname="C5*"))
    assert set(actual.courses) == {f"C{n}" for n in range(1, 60)}
    assert actual.all_courses_read and set(actual.course_categories) == set(actual.courses)
    assert emu.call_counts["core_course_get_courses_by_field"] == 1
    assert emu.call_counts["core_course_get_categories"] == 0
    assert actual.categories is None  # no pattern names a category


def test_a_category_pattern_has_the_categories_read_in_one_call_more(
    emu: MoodleEmulator,
) -> None:
    emu.seed({"categories": [{"name": "FOAD", "idnumber": "CAT-FOAD"}],
              "courses": [{"shortname": "F1", "fullname": "F", "category_idnumber": "CAT-FOAD"}]})
    actual = read_with_patterns(emu, pattern(category="CAT-FOAD"))
    assert emu.call_counts["core_course_get_courses_by_field"] == 1
    assert emu.call_counts["core_course_get_categories"] == 1
    assert actual.categories is not None
    foad = next(c for c in actual.categories.values() if c.idnumber == "CAT-FOAD")
    assert actual.course_categories["F1"] == foad.id and foad.path == (foad.id,)


def test_a_category_path_that_is_not_ids_is_one_error_naming_the_function() -> None:
    """The answer's shape is checked by the client; a path such as ``/2/x`` passes as text,
    and would place courses in no category or the wrong one: an error, never a guess."""
    from reconciler.moodle.errors import UnexpectedAnswer
    from reconciler.moodle.types import Capabilities

    class Categories:
        def get_categories(self) -> list[dict]:
            return [{"id": 2, "name": "A", "idnumber": "CAT-A", "path": "/2"},
                    {"id": 3, "name": "B", "idnumber": "CAT-B", "path": "/2/x"}]

    caps = Capabilities(functions=frozenset({"core_course_get_categories"}))
    with pytest.raises(UnexpectedAnswer, match=r"core_course_get_categories: answer\[1\]\.path"):
        reader.read_categories(Categories(), caps)  # type: ignore[arg-type]
