"""The applier alone, behind its narrow interface (issue 11, step 4): a small fake Moodle
that records every write and fails the calls a test chooses."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.applying.applier import MoodleWrites, Progress, apply_plan
from reconciler.applying.journal import Journal
from reconciler.moodle.errors import MoodleError
from reconciler.moodle.types import ManualEnrolment, NewCohort, NewGroup, NewUser
from reconciler.planning.actions import (
    KINDS,
    Action,
    AddMembers,
    CreateCohort,
    CreateGroup,
    CreateSync,
    Details,
    DisableSync,
    EnrolManual,
    Reason,
    RemoveMembers,
)
from reconciler.planning.plan import Plan

Refuse = Callable[[str, Any], bool]


def act(target: str, details: Details) -> Action:
    """An action with the first reason its kind allows (the applier never reads it)."""
    return Action.of(target, details, Reason(KINDS[details.KIND].reasons[0], "test"))


class FakeMoodle:
    """Records (function, payload) of every write; ``refuse(function, payload)`` true makes
    that call raise a MoodleError, as Moodle refusing a whole request does."""

    def __init__(self, refuse: Refuse = lambda f, p: False) -> None:
        self.refuse = refuse
        self.calls: list[tuple[str, Any]] = []
        self.next_id = 100

    def _call(self, function: str, payload: Any) -> None:
        self.calls.append((function, payload))
        if self.refuse(function, payload):
            raise MoodleError("invalidparameter", "refused by the fake", function)

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def create_users(self, users: Sequence[NewUser]) -> list[dict[str, Any]]:
        self._call("core_user_create_users", [u.username for u in users])
        return [{"id": self._id(), "username": u.username} for u in users]

    def create_cohorts(self, cohorts: Sequence[NewCohort]) -> list[dict[str, Any]]:
        self._call("core_cohort_create_cohorts", [c.idnumber for c in cohorts])
        return [{"id": self._id(), "idnumber": c.idnumber} for c in cohorts]

    def update_cohorts(self, cohorts: Sequence[Mapping[str, Any]]) -> None:
        self._call("core_cohort_update_cohorts", [c["id"] for c in cohorts])

    def delete_cohorts(self, ids: Iterable[int]) -> None:
        self._call("core_cohort_delete_cohorts", list(ids))

    def add_cohort_members(self, members: Iterable[tuple[int, int]]) -> Any:
        self._call("core_cohort_add_cohort_members", list(members))

    def delete_cohort_members(self, members: Iterable[tuple[int, int]]) -> None:
        self._call("core_cohort_delete_cohort_members", list(members))

    def create_groups(self, groups: Sequence[NewGroup]) -> list[dict[str, Any]]:
        self._call("core_group_create_groups", [g.name for g in groups])
        return [{"id": self._id()} for _ in groups]

    def manual_enrol(self, enrolments: Sequence[ManualEnrolment]) -> list[str]:
        self._call("enrol_manual_enrol_users", [(e.userid, e.suspend) for e in enrolments])
        return []

    def add_cohort_sync(
        self, courseid: int, cohortid: int, roleid: int, *, groupid: int = 0, name: str = ""
    ) -> int:
        self._call("local_ws_enrolcohort_add_instance", (courseid, cohortid, roleid, groupid))
        return self._id()

    def update_cohort_sync(
        self,
        instance_id: int,
        *,
        name: str | None = None,
        groupid: int | None = None,
        status: int | None = None,
        courseid: int | None = None,
    ) -> Any:
        self._call("local_ws_enrolcohort_update_instance", (instance_id, status))

    def delete_cohort_sync(self, instance_id: int, *, courseid: int | None = None) -> Any:
        self._call("local_ws_enrolcohort_delete_instance", instance_id)

    def functions(self) -> list[str]:
        return [f for f, _ in self.calls]


def _fake_is_a_moodle_writes() -> MoodleWrites:
    return FakeMoodle()  # a type checker holds the fake to the applier's Protocol


def members(cohort: str, cohortid: int | None, names: list[str], ids: list[int]) -> Action:
    return act(
        cohort, AddMembers(cohort, cohortid, tuple(names), tuple(ids), size_before=0)
    )


def new_cohort(idnumber: str) -> Action:
    return act(idnumber, CreateCohort(idnumber, idnumber, "d", True, None, "manual"))


def run(actions: list[Action], fake: FakeMoodle, tmp_path: Path) -> tuple[Any, list[Progress]]:
    seen: list[Progress] = []
    journal = Journal(tmp_path / "journal.jsonl", "ecampus", "abc123")
    result = apply_plan(Plan("ecampus", "2026", actions=actions), fake, journal, seen.append)
    return result, seen


def journal_lines(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]


def test_adds_run_before_removes_in_one_batch_per_kind(tmp_path: Path) -> None:
    fake = FakeMoodle()
    plan = [
        act("C1/man-a/student", DisableSync(20, "C1", "man-a", "student", 3)),
        act("man-b", RemoveMembers("man-b", 8, ("u9",), (9,), 5)),
        members("man-a", 7, ["u1"], [1]),
        members("man-b", 8, ["u2", "u3"], [2, 3]),
    ]
    result, seen = run(plan, fake, tmp_path)
    assert result.ok and len(result.done) == 4
    assert fake.functions() == [
        "core_cohort_add_cohort_members",  # both adds in one call
        "core_cohort_delete_cohort_members",
        "local_ws_enrolcohort_update_instance",
    ]
    assert fake.calls[0][1] == [(7, 1), (8, 2), (8, 3)]
    assert [p.line() for p in seen][-1] == "[4/4] disable_sync C1/man-a/student: ok"


def test_a_refused_member_batch_is_retried_one_by_one_and_only_the_bad_one_fails(
    tmp_path: Path,
) -> None:
    fake = FakeMoodle(
        refuse=lambda f, p: f == "core_cohort_add_cohort_members" and (8, 2) in p
    )
    result, seen = run(
        [members("man-a", 7, ["u1"], [1]), members("man-b", 8, ["u2"], [2])], fake, tmp_path
    )
    assert fake.functions() == ["core_cohort_add_cohort_members"] * 3  # batch, then singly
    assert [a.target for a in result.done] == ["man-a"]
    assert [(a.target, "refused by the fake" in why) for a, why in result.failed] == [
        ("man-b", True)
    ]
    assert [(e["target"], e["result"]) for e in journal_lines(tmp_path)] == [
        ("man-a", "ok"),
        ("man-b", "failed"),
    ]
    assert seen[-1].line().startswith("[2/2] add_members man-b: FAILED: ")


def test_a_refused_manual_enrolment_batch_is_not_resent_one_by_one(tmp_path: Path) -> None:
    """Each enrol call re-sends Moodle's welcome mail: no blind retry of the others."""
    fake = FakeMoodle(refuse=lambda f, p: f == "enrol_manual_enrol_users")

    def enrol(cohort: str, uid: int) -> Action:
        return act(
            f"C1/{cohort}/student",
            EnrolManual("C1", 10, cohort, "student", 5, 1790000000, ("u",), (uid,), "2026-09-21"),
        )

    result, _ = run([enrol("man-a", 1), enrol("man-b", 2)], fake, tmp_path)
    assert fake.functions() == ["enrol_manual_enrol_users"]
    assert len(result.failed) == 2 and not result.done


def test_what_needs_a_cohort_or_group_that_failed_is_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    fake = FakeMoodle(
        refuse=lambda f, p: (f == "core_cohort_create_cohorts" and "man-new" in p)
        or f == "core_group_create_groups"
    )
    plan = [
        new_cohort("man-new"),
        new_cohort("man-other"),
        members("man-new", None, ["u1"], [1]),
        members("man-other", None, ["u2"], [2]),
        act("C1/Tutorat", CreateGroup("C1", 10, "Tutorat")),
        act(
            "C1/man-other/student",
            CreateSync("C1", 10, "man-other", None, "student", 5, "Tutorat", None, "n", "r"),
        ),
    ]
    result, _ = run(plan, fake, tmp_path)
    assert sorted(a.target for a in result.done) == ["man-other", "man-other"]
    assert {(a.kind, a.target) for a, _ in result.failed} == {
        ("create_cohort", "man-new"),
        ("create_group", "C1/Tutorat"),
    }
    assert {(a.target, why) for a, why in result.skipped} == {
        ("man-new", "cohort man-new was not created"),
        ("C1/man-other/student", "group 'Tutorat' was not created"),
    }
    # The surviving cohort's members went in with the id Moodle gave it.
    # batch refused, then man-new refused alone, then man-other created alone: id 101
    assert fake.functions()[:3] == ["core_cohort_create_cohorts"] * 3
    add = next(p for f, p in fake.calls if f == "core_cohort_add_cohort_members")
    assert add == [(101, 2)]
    assert "local_ws_enrolcohort_add_instance" not in fake.functions()
    skipped = [e for e in journal_lines(tmp_path) if e["result"] == "skipped"]
    assert {e["reason"] for e in skipped} == {why for _, why in result.skipped}


def test_without_a_callback_the_applier_prints_nothing(
    tmp_path: Path, capsys: Any
) -> None:
    journal = Journal(None, "ecampus", None)
    result = apply_plan(
        Plan("ecampus", "2026", actions=[members("man-a", 7, ["u1"], [1])]), FakeMoodle(), journal
    )
    assert result.ok and capsys.readouterr() == ("", "")
    assert [e["result"] for e in journal.entries] == ["ok"]


def test_a_revoked_token_stops_the_run_instead_of_failing_every_action(tmp_path: Path) -> None:
    """After ``invalidtoken`` every later call would fail the same way (fault matrix: token
    revoked mid-run): the rest is skipped as not attempted, for the next run."""
    from reconciler.moodle.errors import InvalidToken

    class Revoked(FakeMoodle):
        def _call(self, function: str, payload: Any) -> None:
            self.calls.append((function, payload))
            if function != "core_cohort_add_cohort_members":
                raise InvalidToken("invalidtoken", "Invalid token - token not found", function)

    fake = Revoked()
    plan = [
        members("man-a", 7, ["u1"], [1]),
        act("man-b", RemoveMembers("man-b", 8, ("u9",), (9,), 5)),
        act("man-c", RemoveMembers("man-c", 9, ("u8",), (8,), 5)),
        act("C1/man-a/student", DisableSync(20, "C1", "man-a", "student", 10)),
        act("C2/man-a/student", DisableSync(21, "C2", "man-a", "student", 11)),
    ]
    result, _ = run(plan, fake, tmp_path)
    assert fake.functions() == ["core_cohort_add_cohort_members",
                                "core_cohort_delete_cohort_members"]  # not one call more
    assert [a.target for a in result.done] == ["man-a"]
    assert len(result.failed) == 2  # the batch of both removals, refused whole
    assert result.stopped and "invalidtoken" in result.stopped
    assert [a.target for a in result.not_attempted] == ["C1/man-a/student", "C2/man-a/student"]
