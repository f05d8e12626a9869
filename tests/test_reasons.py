"""Every action of a plan says why (issue 16): the reason codes the planner gives, each with
where it comes from, and the saved plan keeps them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from test_planner import PLATFORM, actual_cohort, actual_with, general, plan_of, sync, users

from reconciler.errors import PlanFileError
from reconciler.planning.actions import Action
from reconciler.planning.plan import parse_plan
from reconciler.planning.render import render_json
from reconciler.planning.state import (
    ActualInstance,
    DesiredCohort,
    DesiredState,
    NewAccount,
)
from reconciler.settings import AccountSettings


def manual(idnumber: str, members: list[str]) -> DesiredCohort:
    return DesiredCohort(
        idnumber, idnumber, "manual", frozenset(members), f"cohorts/ecampus/cohorts/{idnumber}.yaml:1"
    )


def why(actions: list[Action]) -> dict[tuple[str, str], tuple[str, str, str]]:
    return {(a.kind, a.target): (a.reason.code, a.reason.text, a.reason.source) for a in actions}


def test_general_and_manual_members_join_and_leave_for_their_own_reasons() -> None:
    u = users(4)
    gen = dataclasses.replace(general("etp-L1HIS-101", ["u000", "u001"]), source="APOGÉE L1HIS-101")
    man = manual("man-tuteurs", ["u002"])
    desired = DesiredState("ecampus", cohorts={gen.idnumber: gen, man.idnumber: man})
    actual = actual_with(
        u,
        cohorts={
            gen.idnumber: actual_cohort(1, gen, [100, 103]),  # u003 left APOGÉE
            man.idnumber: actual_cohort(2, man, [103]),  # u003 no longer listed
        },
    )
    reasons = why(plan_of(desired, actual).actions)
    assert reasons[("add_members", "etp-L1HIS-101")] == (
        "in-sources",
        "inscription administrative in force in L1HIS-101 with a directory account",
        "APOGÉE L1HIS-101",
    )
    assert reasons[("remove_members", "etp-L1HIS-101")][0] == "left-sources"
    assert "no inscription administrative in force in L1HIS-101" in reasons[
        ("remove_members", "etp-L1HIS-101")
    ][1]
    assert reasons[("add_members", "man-tuteurs")] == (
        "declared",
        "listed in cohorts/ecampus/cohorts/man-tuteurs.yaml:1",
        "cohorts/ecampus/cohorts/man-tuteurs.yaml:1",
    )
    assert reasons[("remove_members", "man-tuteurs")][:2] == (
        "undeclared",
        "no longer listed in cohorts/ecampus/cohorts/man-tuteurs.yaml:1",
    )


def test_an_expired_sync_says_its_date_and_a_removed_one_says_it_is_no_longer_declared() -> None:
    u = users(1)
    man = manual("man-a", ["u000"])
    gone = sync("man-a", course="C1", expires=dt.date(2026, 11, 27))
    desired = DesiredState("ecampus", cohorts={man.idnumber: man}, expired_syncs=[gone])
    instances = [
        ActualInstance(7, 10, 2, 5, 0, "reconciler: man-a (student)", 0, "C1", "man-a"),
        ActualInstance(8, 11, 2, 5, 0, "reconciler: man-a (student)", 0, "C2", "man-a"),
    ]
    actual = actual_with(
        u,
        cohorts={"man-a": actual_cohort(2, man, [100])},
        courses={"C1": 10, "C2": 11},
        instances=instances,
    )
    reasons = why(plan_of(desired, actual).actions)
    assert reasons[("disable_sync", "C1/man-a/student")] == (
        "expired",
        "the sync expired on 2026-11-27 (f.yaml:1)",
        "f.yaml:1",
    )
    assert reasons[("disable_sync", "C2/man-a/student")][0] == "undeclared"


def test_an_emptied_etape_a_deleted_cohort_and_an_expired_one() -> None:
    gen = general("etp-OLD-1", [])
    expired = manual("man-fini", [])
    undeclared = manual("man-oublie", [])
    desired = DesiredState("ecampus", syncs=[sync("etp-OLD-1")], expired_cohorts=["man-fini"])
    actual = actual_with(
        users(1),
        cohorts={
            gen.idnumber: actual_cohort(1, gen, [100]),
            expired.idnumber: actual_cohort(2, expired, []),
            undeclared.idnumber: actual_cohort(3, undeclared, []),
        },
        courses={"C1": 10},
    )
    reasons = why(plan_of(desired, actual).actions)
    assert reasons[("remove_members", "etp-OLD-1")][0] == "etape-empty"
    assert reasons[("delete_cohort", "man-fini")][0] == "expired"
    assert reasons[("delete_cohort", "man-oublie")][0] == "undeclared"


def test_accounts_manual_enrolments_and_leavers_of_a_manual_sync() -> None:
    u = users(2)
    man = manual("man-a", ["u000", "newbie"])
    desired = DesiredState(
        "ecampus",
        cohorts={man.idnumber: man},
        syncs=[sync("man-a", method="manual", expires=dt.date(2027, 1, 31))],
        accounts={"newbie": NewAccount("newbie", "N", "B", "n@b.fr")},
    )
    actual = actual_with(
        u,
        cohorts={"man-a": actual_cohort(2, man, [100, 101])},
        courses={"C1": 10},
        enrolled={10: {101: frozenset({5})}},
    )
    platform = dataclasses.replace(PLATFORM, accounts=AccountSettings(create=True))
    reasons = why(plan_of(desired, actual, platform).actions)
    assert reasons[("create_user", "newbie")][0] == "account-needed"
    assert "wanted in cohort man-a" in reasons[("create_user", "newbie")][1]
    assert reasons[("enrol_manual", "C1/man-a/student")][0] == "declared"
    assert "until 2027-01-31" in reasons[("enrol_manual", "C1/man-a/student")][1]
    assert reasons[("suspend_manual", "C1/man-a/student")][0] == "left-cohort"


def test_drift_and_reasons_survive_the_saved_plan() -> None:
    u = users(1)
    man = manual("man-a", ["u000"])
    renamed = dataclasses.replace(actual_cohort(2, man, [100]), name="Old name")
    desired = DesiredState("ecampus", cohorts={man.idnumber: man})
    plan = plan_of(desired, actual_with(u, cohorts={"man-a": renamed}))
    [update] = plan.actions
    assert update.reason.code == "drift" and "name" in update.reason.text
    saved = parse_plan(render_json(plan), "plan.json")
    assert [a.reason for a in saved.actions] == [a.reason for a in plan.actions]
    doc = json.loads(render_json(plan))
    doc["actions"][0]["reason"]["code"] = "because"
    with pytest.raises(PlanFileError, match="actions/0/reason/code"):
        parse_plan(json.dumps(doc), "plan.json")
    del doc["actions"][0]["reason"]
    with pytest.raises(PlanFileError, match="'reason' is a required property"):
        parse_plan(json.dumps(doc), "plan.json")
