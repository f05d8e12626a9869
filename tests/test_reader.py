"""The reader against the Moodle emulator: what it reads, and what it does not need to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient
from reconciler.planning import reader
from reconciler.planning.reader import read_actual
from reconciler.planning.state import DesiredState, DesiredSync
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
