"""The ``method: manual`` phase of the pure planner: what is owed comes from Moodle's active
enrolments and the manual-enrolment ledger, every run (issue 9 item 6, issue 10 finding 3)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from reconciler.clock import end_of_day_timestamp
from reconciler.planning.ledger import Ledger, LedgerEntry
from reconciler.planning.plan import Plan
from reconciler.planning.planner import cohort_description, compute_plan
from reconciler.planning.state import (
    ActualCohort,
    ActualState,
    DesiredCohort,
    DesiredState,
    DesiredSync,
)
from reconciler.settings import Failsafes, PlatformSettings

TODAY = dt.date(2026, 11, 28)
EXPIRES = dt.date(2027, 2, 15)
PLATFORM = PlatformSettings(name="ecampus", url="https://ecampus.example.org")
STUDENT, TEACHER, EDITING = 5, 4, 3
COURSE = 10
USERS = {f"u{i}": 100 + i for i in range(6)}


def cohort(members: list[str], idnumber: str = "man-x") -> DesiredCohort:
    return DesiredCohort(idnumber, "X", "manual", frozenset(members), f"{idnumber}.yaml:1")


def manual(cohort_: str = "man-x", course: str = "C1", role: str = "student",
           **kw: object) -> DesiredSync:
    kw.setdefault("expires", EXPIRES)
    return DesiredSync(course=course, cohort=cohort_, role=role,
                       roleid={"student": STUDENT, "teacher": TEACHER}[role], method="manual",
                       reason="test", source="C1.yaml:3", **kw)  # type: ignore[arg-type]


def actual(enrolled: dict[int, frozenset[int]], members: list[int] | None = None,
           **kw: object) -> ActualState:
    want = cohort([])
    have = ActualCohort(7, "man-x", "X", cohort_description(want), True,
                        frozenset(members if members is not None else []))
    return ActualState(users=dict(USERS), usernames={v: k for k, v in USERS.items()},
                       courses={"C1": COURSE}, cohorts={"man-x": have},
                       enrolled={COURSE: enrolled}, **kw)  # type: ignore[arg-type]


def entry(user: str, cohort_: str = "man-x", role: str = "student", state: str = "enrolled",
          courseid: int = COURSE, course: str = "C1") -> LedgerEntry:
    return LedgerEntry(courseid, course, cohort_, role, {"student": STUDENT, "teacher": TEACHER}[role],
                       USERS[user], user, end_of_day_timestamp(EXPIRES), state)  # type: ignore[arg-type]


def ledger(*entries: LedgerEntry, **kw: object) -> Ledger:
    return Ledger.of("ecampus", "https://ecampus.example.org", entries, **kw)


def plan_of(desired: DesiredState, moodle: ActualState, book: Ledger | None = None,
            platform: PlatformSettings = PLATFORM, today: dt.date = TODAY) -> Plan:
    return compute_plan(desired, moodle, platform, today, "2026", ledger=book or ledger())


def only(plan: Plan, kind: str) -> list:
    return [a for a in plan.actions if a.kind == kind]


def codes(plan: Plan) -> list[str]:
    return [w.code for w in plan.warnings]


def test_members_not_active_with_the_role_are_enrolled_until_the_last_day() -> None:
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0", "u1", "u2"])},
                           syncs=[manual()])
    # u0 active as student already; u1 inactive (absent from onlyactive); u2 absent
    plan = plan_of(desired, actual({100: frozenset({STUDENT})}, [100, 101, 102]))
    [enrol] = only(plan, "enrol_manual")
    assert enrol.details.usernames == ("u1", "u2")
    assert enrol.details.timeend == int(dt.datetime(
        2027, 2, 15, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp())
    assert enrol.target == "C1/man-x/student"


def test_a_member_enrolled_otherwise_without_the_role_is_left_alone_with_a_warning() -> None:
    """One manual enrolment per user and course in Moodle: enrolling u1 (a teacher of the
    course, by someone else) would rewrite its end date and status."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0", "u1"])}, syncs=[manual()])
    moodle = actual({101: frozenset({EDITING})}, [100, 101])
    plan = plan_of(desired, moodle)
    [enrol] = only(plan, "enrol_manual")
    assert enrol.details.usernames == ("u0",)
    assert "manual-enrolled-otherwise" in codes(plan)
    assert "u1" in next(w.message for w in plan.warnings if w.code == "manual-enrolled-otherwise")

    # The same user, when the ledger says the course's manual enrolment is the reconciler's
    # (another sync of it enrolled them as teacher): the role is added.
    plan = plan_of(desired, moodle, ledger(entry("u1", "man-y", "teacher")))
    [enrol] = only(plan, "enrol_manual")
    assert enrol.details.usernames == ("u0", "u1")


def test_a_recorded_member_who_left_the_cohort_is_ended_whatever_this_run_removed() -> None:
    """The run that removed u1 from the cohort was cut before the end call: the cohort no
    longer has u1 (nothing "removed in this run"), Moodle still has u1 active; the ledger
    says the sync enrolled u1, so the next plan ends it."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, syncs=[manual()])
    moodle = actual({100: frozenset({STUDENT}), 101: frozenset({STUDENT})}, [100])
    plan = plan_of(desired, moodle, ledger(entry("u0"), entry("u1")))
    assert [(a.kind, a.target) for a in plan.actions] == [("end_manual", "C1/man-x/student")]
    end = plan.actions[0].details
    assert (end.usernames, end.userids, end.roleid) == (("u1",), (101,), STUDENT)
    assert plan.counts() == {"add": 0, "change": 0, "remove": 1}
    assert plan.actions[0].line() == (
        "-", "end the manual enrolment of 1 former member of man-x as student "
        "(end date → now): u1")
    reason = plan.actions[0].reason
    assert (reason.code, reason.text, reason.source) == (
        "left-cohort", "no longer members of man-x, which the course follows with method: "
        "manual (C1.yaml:3)", "C1.yaml:3")


def test_nothing_is_ended_that_the_ledger_does_not_name() -> None:
    """A lost ledger (or an enrolment someone else made) never causes a removal."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, syncs=[manual()])
    moodle = actual({100: frozenset({STUDENT}), 101: frozenset({STUDENT})}, [100])
    plan = plan_of(desired, moodle, ledger(found=False))
    assert plan.actions == []
    assert codes(plan) == ["manual-ledger-missing"]
    assert "1 member(s) of method: manual syncs already active" in plan.warnings[0].message
    assert "2027-02-15" in plan.warnings[0].message


def test_a_missing_ledger_is_not_worth_a_warning_where_nobody_holds_the_role_yet() -> None:
    """A first run into courses where no one holds the sync's role: nothing an earlier run
    could have made, so nothing to warn about (only a teacher, with another role)."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, syncs=[manual()])
    plan = plan_of(desired, actual({105: frozenset({TEACHER})}, [100]), ledger(found=False))
    assert [a.kind for a in plan.actions] == ["enrol_manual"]
    assert codes(plan) == []


def test_inactive_or_already_ended_entries_plan_nothing() -> None:
    desired = DesiredState("ecampus", cohorts={"man-x": cohort([])}, syncs=[manual()])
    moodle = actual({102: frozenset({STUDENT})}, [])
    book = ledger(entry("u1"),  # not active any more (its end date passed, or ended by hand)
                  entry("u2", state="ended"))  # active through another enrolment, ended already
    assert plan_of(desired, moodle, book).actions == []


def test_a_removed_manual_sync_ends_what_it_made_as_its_own_kind_under_the_failsafes() -> None:
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0", "u1", "u2"])})
    moodle = actual({100: frozenset({STUDENT}), 101: frozenset({STUDENT}),
                     102: frozenset({STUDENT})}, [100, 101, 102])
    book = ledger(entry("u0"), entry("u1"))  # u2: enrolled by someone else
    plan = plan_of(desired, moodle, book)
    [retire] = plan.actions
    assert retire.kind == "retire_manual" and retire.target == "C1/man-x/student"
    assert retire.details.usernames == ("u0", "u1")
    assert retire.line() == ("-", "end the manual sync of man-x as student: its 2 manual "
                             "enrolments end (end date → now): u0, u1")
    assert (retire.reason.code, retire.reason.source) == ("undeclared", "")
    assert retire.reason.text == ("no declaration of C1 syncs man-x as student with method: "
                                  "manual any more")
    weight = retire.details.weight()
    assert (weight.syncs_removed, weight.memberships_removed) == (1, 2)
    checks = {c.name: c for c in plan.failsafe}
    assert checks["max_syncs_removed"].value == 1
    assert checks["max_memberships_removed"].value == 2

    strict = dataclasses.replace(PLATFORM, failsafes=Failsafes(max_memberships_removed=1))
    assert plan_of(desired, moodle, book, strict).failsafe_tripped


def test_an_expired_sync_or_an_expired_cohort_retires_what_is_still_active() -> None:
    """Shortened dates: Moodle's timeend (the old last day) has not come yet."""
    expired = manual(expires=dt.date(2026, 11, 20))
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, expired_syncs=[expired])
    moodle = actual({100: frozenset({STUDENT})}, [100])
    [retire] = plan_of(desired, moodle, ledger(entry("u0"))).actions
    assert retire.kind == "retire_manual"
    assert (retire.reason.code, retire.reason.text, retire.reason.source) == (
        "expired", "the sync expired on 2026-11-20 (C1.yaml:3)", "C1.yaml:3")
    # the cohort expired (desired has neither it nor the sync, both in the expired lists)
    desired = DesiredState("ecampus", expired_syncs=[manual()], expired_cohorts=["man-x"])
    plan = plan_of(desired, moodle, ledger(entry("u0")))
    assert [a.kind for a in plan.sorted_actions()] == ["retire_manual", "delete_cohort"]
    retire = plan.sorted_actions()[0]
    assert (retire.reason.code, retire.reason.text) == (
        "expired", "its cohort man-x has expired (C1.yaml:3)")


def test_a_user_another_manual_sync_of_the_course_still_wants_keeps_the_enrolment() -> None:
    desired = DesiredState(
        "ecampus",
        cohorts={"man-x": cohort([]), "man-y": cohort(["u1"], "man-y")},
        syncs=[manual(), manual("man-y", role="teacher")],
    )
    moodle = actual({101: frozenset({STUDENT, TEACHER})}, [])
    plan = plan_of(desired, moodle, ledger(entry("u1"), entry("u1", "man-y", "teacher")))
    assert only(plan, "end_manual") == [] and only(plan, "enrol_manual") == []
    assert "manual-role-kept" in codes(plan)  # the student role stays: said once a night

    # The cohort renamed man-x -> man-z, same course and role: man-z finds u1 active as a
    # student (nothing to enrol), man-x's entry is not ended, and nothing lingers to say.
    desired = DesiredState("ecampus", cohorts={"man-z": cohort(["u1"], "man-z")},
                           syncs=[manual("man-z")])
    moodle = actual({101: frozenset({STUDENT})}, [])
    moodle.cohorts["man-z"] = dataclasses.replace(moodle.cohorts["man-x"], id=8,
                                                  idnumber="man-z", members=frozenset({101}))
    plan = plan_of(desired, moodle, ledger(entry("u1")))
    assert [a.kind for a in plan.actions] == ["delete_cohort"] and codes(plan) == []


def test_a_user_holding_a_role_nobody_recorded_is_not_ended() -> None:
    """u1 was enrolled by the sync, then a teacher gave u1 another role in the course: ending
    the enrolment (one per user and course) would take that away too."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort([])}, syncs=[manual()])
    moodle = actual({101: frozenset({STUDENT, EDITING})}, [])
    plan = plan_of(desired, moodle, ledger(entry("u1")))
    assert plan.actions == [] and codes(plan) == ["manual-end-kept"]
    assert "other role(s) in the course (editingteacher)" in plan.warnings[0].message


def test_the_same_role_through_another_enrolment_does_not_keep_the_manual_one() -> None:
    """u1 is also a member of a cohort synced into the course as student: roles show the
    student role (twice in Moodle); ending the manual enrolment leaves the other one."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort([])}, syncs=[manual()])
    plan = plan_of(desired, actual({101: frozenset({STUDENT})}, []), ledger(entry("u1")))
    assert [a.kind for a in plan.actions] == ["end_manual"]


def test_a_sync_that_cannot_be_checked_ends_nothing_in_its_course() -> None:
    """The course was renamed in Moodle (the declaration still says C1): its members
    cannot be checked, so nothing of C1 is ended, and the cohort, when missing, neither."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort([])}, syncs=[manual()])
    renamed = dataclasses.replace(actual({101: frozenset({STUDENT})}, []),
                                  courses={"C1-2026": COURSE})
    plan = plan_of(desired, renamed, ledger(entry("u1")))
    assert plan.actions == [] and "course-missing" in codes(plan)

    no_cohort = dataclasses.replace(actual({101: frozenset({STUDENT})}), cohorts={})
    plan = plan_of(DesiredState("ecampus", syncs=[manual()]), no_cohort, ledger(entry("u1")))
    assert plan.actions == [] and "cohort-missing" in codes(plan)


def test_a_course_moodle_no_longer_has_plans_nothing() -> None:
    moodle = dataclasses.replace(actual({}), missing_courses=frozenset({COURSE}), enrolled={})
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": cohort([])}), moodle,
                   ledger(entry("u1")))
    assert plan.actions == []


def test_members_the_sources_cannot_vouch_for_or_moodle_did_not_identify_are_kept() -> None:
    """Uncertain members of a general cohort are never removed, nor ended; a member whose
    look-up came back short (no id tonight) is matched by username."""
    general = DesiredCohort("etp-A-1", "A", "general", frozenset(["u0"]), "APOGÉE",
                            uncertain=frozenset(["u1"]))
    desired = DesiredState("ecampus", cohorts={"etp-A-1": general},
                           syncs=[manual("etp-A-1")])
    moodle = actual({100: frozenset({STUDENT}), 101: frozenset({STUDENT})})
    moodle.cohorts = {"etp-A-1": dataclasses.replace(moodle.cohorts["man-x"], idnumber="etp-A-1")}
    del moodle.users["u0"]  # looked up, not found tonight
    book = ledger(entry("u0", "etp-A-1"), entry("u1", "etp-A-1"))
    assert only(plan_of(desired, moodle, book), "end_manual") == []


def test_one_end_per_user_and_course_even_when_two_retired_syncs_recorded_it() -> None:
    desired = DesiredState("ecampus")
    moodle = actual({101: frozenset({STUDENT, TEACHER})})
    plan = plan_of(desired, moodle, ledger(entry("u1"), entry("u1", "man-y", "teacher")))
    [retire] = only(plan, "retire_manual")
    assert retire.details.userids == (101,) and retire.details.cohort == "man-x"


def test_a_restarted_ledger_is_said_incomplete_until_the_enrolments_before_it_ended() -> None:
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, syncs=[manual()])
    moodle = actual({100: frozenset({STUDENT})}, [100])
    book = ledger(started="2026-11-27T02:00:00+00:00",
                  unrecorded_until=end_of_day_timestamp(EXPIRES))
    plan = plan_of(desired, moodle, book)
    assert codes(plan) == ["manual-ledger-incomplete"]
    assert "restarted on 2026-11-27" in plan.warnings[0].message
    assert codes(plan_of(desired, moodle, book, today=dt.date(2027, 2, 16))) == []


# -- course patterns (their syncs expanded by planning.patterns before the planner) ---------


def _pattern_entry(courses: list[str], unresolved: str | None = None) -> dict:
    """What ``expand_patterns`` reports for a pattern syncing man-x as student."""
    return {"name": "licences", "rule": "shortname L*", "source": "patterns/licences.yaml:1",
            "owners": [], "syncs": [{"cohort": "man-x", "role": "student"}],
            "courses": courses, "excluded": [], "overridden": [], "unresolved": unresolved}


def test_a_manual_sync_of_a_course_pattern_enrols_for_the_pattern_and_ends_when_it_stops_matching(
) -> None:
    by_pattern = manual(pattern="licences")
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, syncs=[by_pattern],
                           patterns_expanded=True, pattern_report=[_pattern_entry(["C1"])])
    [enrol] = plan_of(desired, actual({}, [100])).actions
    assert (enrol.kind, enrol.reason.code) == ("enrol_manual", "pattern")
    assert "C1 matches pattern licences" in enrol.reason.text

    # C1 no longer matches: no sync declares man-x there any more; what it made ends.
    gone = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, patterns_expanded=True,
                        pattern_report=[_pattern_entry([])])
    [retire] = plan_of(gone, actual({100: frozenset({STUDENT})}, [100]),
                       ledger(entry("u0"))).actions
    assert (retire.kind, retire.reason.code) == ("retire_manual", "pattern-unmatched")
    assert retire.reason.source == "patterns/licences.yaml:1"
    assert "C1 does not match pattern licences (shortname L*)" in retire.reason.text


def test_an_unresolved_course_pattern_holds_the_manual_enrolments_of_its_cohorts_and_roles(
) -> None:
    """Its courses cannot be told (categories unreadable): nothing it may have made ends."""
    desired = DesiredState("ecampus", cohorts={"man-x": cohort(["u0"])}, patterns_expanded=True,
                           held_syncs=frozenset({("man-x", "student")}),
                           pattern_report=[_pattern_entry([], unresolved="categories unread")])
    plan = plan_of(desired, actual({100: frozenset({STUDENT})}, [100]), ledger(entry("u0")))
    assert plan.actions == []
