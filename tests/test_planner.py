"""The planner as a pure function: desired + actual -> plan, with its safety rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from reconciler.errors import PlanFileError
from reconciler.planning.plan import Plan
from reconciler.planning.planner import cohort_description, compute_plan, instance_name
from reconciler.planning.render import render_json, render_markdown, render_text
from reconciler.planning.state import (
    COHORT_MARKER,
    ActualCohort,
    ActualInstance,
    ActualState,
    DesiredCohort,
    DesiredState,
    DesiredSync,
)
from reconciler.settings import Failsafes, GeneralCohortSettings, PlatformSettings, SyncPolicy

TODAY = dt.date(2026, 11, 28)
PLATFORM = PlatformSettings(
    name="ecampus",
    url="https://ecampus.example.org",
    general_cohorts=GeneralCohortSettings(enabled=True),
)


def users(n: int, start: int = 0) -> dict[str, int]:
    return {f"u{i:03d}": 100 + i for i in range(start, start + n)}


def general(idnumber: str, members: list[str]) -> DesiredCohort:
    return DesiredCohort(
        idnumber=idnumber,
        name=f"VET {idnumber}",
        kind="general",
        members=frozenset(members),
        source="APOGÉE",
    )


def actual_cohort(
    id_: int, want: DesiredCohort, member_ids: list[int], owned: bool = True
) -> ActualCohort:
    description = cohort_description(want) if owned else "made by hand"
    return ActualCohort(
        id=id_,
        idnumber=want.idnumber,
        name=want.name,
        description=description,
        visible=True,
        members=frozenset(member_ids),
    )


def sync(cohort: str, role: str = "student", course: str = "C1", **kw: object) -> DesiredSync:
    roleid = {"student": 5, "teacher": 4}[role]
    return DesiredSync(
        course=course,
        cohort=cohort,
        role=role,
        roleid=roleid,
        method=kw.pop("method", "cohort"),
        reason="test",
        source="f.yaml:1",
        **kw,
    )  # type: ignore[arg-type]


def actual_with(users_: dict[str, int], **kw: object) -> ActualState:
    return ActualState(users=dict(users_), usernames={v: k for k, v in users_.items()}, **kw)  # type: ignore[arg-type]


def plan_of(
    desired: DesiredState, actual: ActualState, platform: PlatformSettings = PLATFORM
) -> Plan:
    return compute_plan(desired, actual, platform, TODAY, "2026")


def kinds(plan: Plan) -> list[tuple[str, str]]:
    return [(a.kind, a.target) for a in plan.sorted_actions()]


def test_first_run_creates_cohorts_members_and_syncs_adds_first() -> None:
    u = users(3)
    want = general("etp-L1HIS-101", [*u, "nobody"])
    desired = DesiredState("ecampus", cohorts={want.idnumber: want}, syncs=[sync(want.idnumber)])
    actual = actual_with(u, courses={"C1": 10})
    plan = plan_of(desired, actual)
    assert kinds(plan) == [
        ("create_cohort", "etp-L1HIS-101"),
        ("add_members", "etp-L1HIS-101"),
        ("create_sync", "C1/etp-L1HIS-101/student"),
    ]
    add = plan.sorted_actions()[1]
    assert add.details.usernames == ("u000", "u001", "u002")
    assert plan.pending_users == ["nobody"]
    created = plan.sorted_actions()[2].details
    assert created.name == "reconciler: etp-L1HIS-101 (student)" and created.cohortid is None
    assert plan.summary() == "Plan: 5 to add, 0 to change, 0 to remove; 1 pending user."


def test_converged_state_plans_nothing() -> None:
    u = users(3)
    want = general("etp-A-1", list(u))
    s = sync(want.idnumber)
    desired = DesiredState("ecampus", cohorts={want.idnumber: want}, syncs=[s])
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={want.idnumber: actual_cohort(7, want, list(u.values()))},
        instances=[ActualInstance(20, 10, 7, 5, 0, instance_name(s), 0, "C1", want.idnumber)],
    )
    plan = plan_of(desired, actual)
    assert plan.actions == [] and not plan.failsafe_tripped
    assert plan.summary() == "Plan: no changes."


def test_dropout_is_removed_and_new_student_added() -> None:
    u = users(30)
    want = general("etp-A-1", [n for n in u if n != "u005"])
    actual = actual_with(
        u, cohorts={want.idnumber: actual_cohort(7, want, [u[n] for n in u if n != "u029"])}
    )
    plan = plan_of(DesiredState("ecampus", cohorts={want.idnumber: want}), actual)
    by_kind = {a.kind: a for a in plan.actions}
    assert by_kind["add_members"].details.usernames == ("u029",)
    assert by_kind["remove_members"].details.usernames == ("u005",)
    assert by_kind["remove_members"].details.userids == (105,)
    assert not plan.failsafe_tripped


def test_per_cohort_removal_cap_trips_but_small_cohorts_and_floor_are_exempt() -> None:
    u = users(100)
    big = general("etp-BIG-1", list(u)[:60])  # removes 40 of 100
    small = general("etp-SMALL-1", [])  # empties a 5-member cohort: exempt from the percentage
    actual = actual_with(
        u,
        cohorts={
            big.idnumber: actual_cohort(1, big, list(u.values())),
            small.idnumber: actual_cohort(2, small, list(u.values())[:5]),
        },
    )
    plan = plan_of(
        DesiredState("ecampus", cohorts={big.idnumber: big, small.idnumber: small}), actual
    )
    tripped = [(c.name, c.target) for c in plan.failsafe if c.tripped]
    assert tripped == [("per_cohort_removal_percent", "etp-BIG-1")]
    check = next(c for c in plan.failsafe if c.target == "etp-BIG-1")
    assert (check.value, check.limit, check.detail) == (40.0, 20.0, "40 of 100 members removed")


def test_global_caps_trip() -> None:
    u = users(50)
    platform = dataclasses.replace(
        PLATFORM,
        failsafes=Failsafes(
            max_memberships_removed=10,
            max_cohorts_deleted_or_emptied=0,
            per_cohort_max_removal_percent=100,
        ),
    )
    want = general("etp-A-1", [])
    actual = actual_with(u, cohorts={want.idnumber: actual_cohort(1, want, list(u.values()))})
    plan = plan_of(DesiredState("ecampus", cohorts={want.idnumber: want}), actual, platform)
    assert {c.name for c in plan.failsafe if c.tripped} == {
        "max_memberships_removed",
        "max_cohorts_deleted_or_emptied",
    }


def test_unhealthy_sources_leave_general_cohorts_alone() -> None:
    u = users(10)
    gone = general("etp-A-1", list(u))
    manual = DesiredCohort("man-x", "X", "manual", frozenset(["u001"]), "x.yaml:1")
    actual = actual_with(u, cohorts={gone.idnumber: actual_cohort(1, gone, list(u.values()))})
    desired = DesiredState(
        "ecampus",
        cohorts={"man-x": manual},
        general_frozen=True,
        frozen_reasons=["LDAP: connection refused"],
    )
    plan = plan_of(desired, actual)
    assert kinds(plan) == [("create_cohort", "man-x"), ("add_members", "man-x")]
    assert any(
        w.code == "sources-unhealthy" and "connection refused" in w.message for w in plan.warnings
    )


def test_unmanaged_lookalike_cohort_is_untouched_unless_adopted() -> None:
    u = users(5)
    want = DesiredCohort("man-x", "X", "manual", frozenset(u), "x.yaml:1")
    actual = actual_with(u, cohorts={"man-x": actual_cohort(3, want, [], owned=False)})
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": want}), actual)
    assert plan.actions == []
    assert [w.code for w in plan.warnings] == ["unmanaged-lookalike"]
    assert plan.unmanaged[0]["idnumber"] == "man-x"

    adopted = dataclasses.replace(want, adopt=True)
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": adopted}), actual)
    assert kinds(plan) == [("update_cohort", "man-x"), ("add_members", "man-x")]
    update = plan.actions[0].details
    assert update.adopt is True and COHORT_MARKER in update.description


def test_undeclared_managed_cohort_is_deleted_but_not_if_a_foreign_sync_uses_it() -> None:
    u = users(2)
    old = DesiredCohort("man-old", "Old", "manual", frozenset(u), "x.yaml:1")
    have = actual_cohort(4, old, list(u.values()))
    plan = plan_of(DesiredState("ecampus"), actual_with(u, cohorts={"man-old": have}))
    assert kinds(plan) == [("delete_cohort", "man-old")]

    foreign = ActualInstance(30, 10, 4, 5, 0, "set up by a teacher", 0, "C1", "man-old")
    plan = plan_of(
        DesiredState("ecampus"), actual_with(u, cohorts={"man-old": have}, instances=[foreign])
    )
    assert plan.actions == []
    assert [w.code for w in plan.warnings] == ["cohort-kept"]


def test_expired_or_undeclared_sync_is_disabled_not_deleted_by_default() -> None:
    u = users(2)
    want = DesiredCohort("man-x", "X", "manual", frozenset(u), "x.yaml:1")
    s = sync("man-x", expires=dt.date(2026, 11, 27))
    mine = ActualInstance(20, 10, 7, 5, 0, instance_name(s), 0, "C1", "man-x")
    foreign = ActualInstance(21, 10, 7, 4, 0, "", 0, "C1", "man-x")
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={"man-x": actual_cohort(7, want, list(u.values()))},
        instances=[mine, foreign],
    )
    desired = DesiredState("ecampus", cohorts={"man-x": want}, expired_syncs=[s])
    plan = plan_of(desired, actual)
    assert kinds(plan) == [("disable_sync", "C1/man-x/student")]
    assert plan.actions[0].details.instance == 20
    assert any(w.code == "expired" for w in plan.warnings)

    deleting = dataclasses.replace(PLATFORM, sync_policy=SyncPolicy(on_removal="delete"))
    assert kinds(plan_of(desired, actual, deleting)) == [("delete_sync", "C1/man-x/student")]


def test_disabled_owned_instance_is_re_enabled_and_group_created() -> None:
    u = users(1)
    want = DesiredCohort("man-x", "X", "manual", frozenset(u), "x.yaml:1")
    s = sync("man-x", group="Tutorat")
    inst = ActualInstance(20, 10, 7, 5, 0, instance_name(s), 1, "C1", "man-x")
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={"man-x": actual_cohort(7, want, list(u.values()))},
        instances=[inst],
    )
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": want}, syncs=[s]), actual)
    assert kinds(plan) == [("create_group", "C1/Tutorat"), ("update_sync", "C1/man-x/student")]
    assert plan.actions[1].details.changes == {"status": (1, 0), "group": (0, "Tutorat")}


def test_foreign_instance_for_a_declared_sync_is_reported_not_duplicated() -> None:
    u = users(1)
    want = DesiredCohort("man-x", "X", "manual", frozenset(u), "x.yaml:1")
    s = sync("man-x")
    foreign = ActualInstance(21, 10, 7, 5, 0, "", 0, "C1", "man-x")
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={"man-x": actual_cohort(7, want, list(u.values()))},
        instances=[foreign],
    )
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": want}, syncs=[s]), actual)
    assert plan.actions == [] and plan.unmanaged[0]["kind"] == "cohort_sync"
    adopted = dataclasses.replace(s, adopt=True)
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": want}, syncs=[adopted]), actual)
    assert kinds(plan) == [("update_sync", "C1/man-x/student")]
    assert plan.actions[0].details.changes["name"] == ("", instance_name(adopted))


def test_manual_method_sends_only_missing_enrolments_and_suspends_leavers() -> None:
    u = users(4)
    want = DesiredCohort("man-x", "X", "manual", frozenset(["u000", "u001", "u002"]), "x.yaml:1")
    s = sync("man-x", method="manual", expires=dt.date(2027, 2, 15))
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={"man-x": actual_cohort(7, want, [100, 101, 103])},
        enrolled={10: {100: frozenset({5}), 101: frozenset({4}), 103: frozenset({5})}},
    )
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": want}, syncs=[s]), actual)
    enrol = next(a for a in plan.actions if a.kind == "enrol_manual")
    assert enrol.details.usernames == ("u001", "u002")  # u000 already enrolled as student
    assert enrol.details.timeend == int(
        dt.datetime(2027, 2, 15, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp()
    )
    suspend = next(a for a in plan.actions if a.kind == "suspend_manual")
    assert suspend.details.usernames == ("u003",)


def test_expiring_soon_is_warned_and_counted() -> None:
    u = users(1)
    want = DesiredCohort("man-x", "X", "manual", frozenset(u), "x.yaml:1")
    s = sync("man-x", expires=TODAY + dt.timedelta(days=10), owners=("a@x",))
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={"man-x": actual_cohort(7, want, list(u.values()))},
        instances=[ActualInstance(20, 10, 7, 5, 0, instance_name(s), 0, "C1", "man-x")],
    )
    plan = plan_of(DesiredState("ecampus", cohorts={"man-x": want}, syncs=[s]), actual)
    assert plan.actions == []
    assert plan.expiring[0]["days_left"] == 10 and plan.expiring[0]["owners"] == ["a@x"]
    assert plan.summary() == "Plan: no changes; 1 sync expires within 14 days."


def test_plan_digest_round_trip_and_tamper_detection() -> None:
    u = users(3)
    want = general("etp-A-1", list(u))
    plan = plan_of(DesiredState("ecampus", cohorts={want.idnumber: want}), actual_with(u))
    data = plan.to_json()
    again = Plan.from_json(data)
    assert again.digest() == plan.digest() == data["digest"]
    data["actions"][1]["details"]["usernames"].append("intruder")
    with pytest.raises(PlanFileError, match="digest"):
        Plan.from_json(data)


def test_renderers_abbreviate_in_text_and_markdown_but_json_is_complete() -> None:
    u = users(12)
    want = general("etp-A-1", list(u))
    plan = plan_of(DesiredState("ecampus", cohorts={want.idnumber: want}), actual_with(u))
    text = render_text(plan)
    assert text.splitlines()[0] == "Plan: 13 to add, 0 to change, 0 to remove."
    assert "u000, u001, u002, u003, u004 … and 7 more" in text
    md = render_markdown(plan)
    assert "<details>" in md and "… and 7 more" in md
    import json

    assert len(json.loads(render_json(plan))["actions"][1]["details"]["usernames"]) == 12


def test_uncertain_logins_are_neither_added_nor_removed() -> None:
    u = users(4)
    want = dataclasses.replace(general("etp-A-1", ["u000"]), uncertain=frozenset({"u001", "u002"}))
    actual = actual_with(u, cohorts={want.idnumber: actual_cohort(1, want, [100, 101, 103])})
    plan = plan_of(DesiredState("ecampus", cohorts={want.idnumber: want}), actual)
    assert [(a.kind, a.details.usernames) for a in plan.actions] == [
        ("remove_members", ("u003",))
    ]


def test_vanished_etape_still_synced_is_emptied_not_deleted_and_deletion_counts_per_cohort() -> (
    None
):
    u = users(30)
    gone = general("etp-GONE-1", list(u))
    s = sync("etp-GONE-1")
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={gone.idnumber: actual_cohort(1, gone, list(u.values()))},
        instances=[ActualInstance(20, 10, 1, 5, 0, instance_name(s), 0, "C1", gone.idnumber)],
    )
    plan = plan_of(DesiredState("ecampus", syncs=[s]), actual)
    assert kinds(plan) == [("remove_members", "etp-GONE-1")]
    assert any(w.code == "etape-empty" for w in plan.warnings)
    assert plan.failsafe_tripped  # 30 of 30 members

    unused = actual_with(u, cohorts={gone.idnumber: actual_cohort(1, gone, list(u.values()))})
    plan = plan_of(DesiredState("ecampus"), unused)
    assert kinds(plan) == [("delete_cohort", "etp-GONE-1")]
    assert [c.detail for c in plan.failsafe if c.tripped and c.target == "etp-GONE-1"] == [
        "cohort deleted with its 30 members"
    ]


def test_saved_plan_matches_its_json_schema() -> None:
    import json
    from pathlib import Path

    from jsonschema import Draft202012Validator

    schema = json.loads(
        (Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json").read_text()
    )
    Draft202012Validator.check_schema(schema)
    u = users(40)
    want = general("etp-A-1", list(u)[:10])
    s = sync("etp-A-1", group="G", expires=TODAY + dt.timedelta(days=3))
    actual = actual_with(
        u, courses={"C1": 10}, cohorts={want.idnumber: actual_cohort(1, want, list(u.values()))}
    )
    plan = plan_of(
        DesiredState("ecampus", cohorts={want.idnumber: want}, syncs=[s], general_frozen=False),
        actual,
    )
    assert plan.failsafe_tripped and plan.expiring
    errors = list(Draft202012Validator(schema).iter_errors(json.loads(render_json(plan))))
    assert errors == []


def test_missing_accounts_are_created_when_the_platform_allows_it() -> None:
    from reconciler.planning.state import NewAccount
    from reconciler.settings import AccountSettings

    u = users(1)
    want = general("etp-A-1", ["u000", "newbie", "ghost"])
    desired = DesiredState(
        "ecampus",
        cohorts={want.idnumber: want},
        accounts={"newbie": NewAccount("newbie", "New", "Bie", "n@x.fr")},
    )
    creating = dataclasses.replace(PLATFORM, accounts=AccountSettings(create=True, auth="cas"))
    plan = plan_of(desired, actual_with(u), creating)
    assert kinds(plan)[:2] == [("create_user", "newbie"), ("create_cohort", "etp-A-1")]
    assert plan.actions[0].details.auth == "cas"
    add = next(a for a in plan.actions if a.kind == "add_members")
    assert add.details.usernames == ("newbie", "u000") and add.details.userids == (None, 100)
    assert plan.pending_users == ["ghost"]  # not in the directory: cannot be created
    assert plan_of(desired, actual_with(u)).pending_users == ["ghost", "newbie"]


def test_members_moodle_did_not_identify_are_never_removed() -> None:
    u = users(3)
    want = general("etp-A-1", ["u000"])
    actual = actual_with(u, cohorts={want.idnumber: actual_cohort(1, want, [100, 101, 999])})
    plan = plan_of(DesiredState("ecampus", cohorts={want.idnumber: want}), actual)
    assert [(a.kind, a.details.userids) for a in plan.actions] == [("remove_members", (101,))]
    assert [w.code for w in plan.warnings] == ["unidentified-members"]


def test_desired_state_shares_the_directory_people_and_creates_from_them() -> None:
    """No per-person copy is made (issue 14: 0.4 s at 100,000 students): the planner reads
    the directory's Person only for the account it creates."""
    from reconciler.declarations.loader import DeclarationSet
    from reconciler.planning.desired import build_desired
    from reconciler.settings import AccountSettings, Settings
    from reconciler.sources import GeneralCohort, Person, SourceSnapshot

    people = {
        f"e{n}": Person(f"e{n}", f"First{n}", f"Last{n}", f"e{n}@etu.example.org", str(n))
        for n in range(50)
    }
    gc = GeneralCohort("etp-A-1", "VET A", "", "system", frozenset(["e1", "e2"]), "A", "1")
    snapshot = SourceSnapshot("2026", True, general_cohorts={"ecampus": [gc]}, people=people)
    settings = Settings(platforms={"ecampus": PLATFORM}, academic_year="2026")
    desired = build_desired(DeclarationSet(Path("."), settings=settings), settings, "ecampus", TODAY,
                            snapshot)
    assert all(desired.accounts[u] is p for u, p in people.items())
    creating = dataclasses.replace(PLATFORM, accounts=AccountSettings(create=True, auth="cas"))
    plan = plan_of(desired, actual_with({"e1": 7}), creating)
    create = next(a for a in plan.actions if a.kind == "create_user")
    assert create.details.to_json() == {"username": "e2", "firstname": "First2",
                                        "lastname": "Last2", "email": "e2@etu.example.org",
                                        "auth": "cas"}


def test_moodle_fingerprint_is_unchanged_by_how_it_is_computed() -> None:
    """Saved plans stay valid across versions: the fingerprint of a fixed state is the value
    the reconciler has always computed for it (instances once went through asdict)."""
    a = ActualState()
    a.cohorts["etp-X-1"] = ActualCohort(7, "etp-X-1", "X", "d", True, frozenset({3, 1}))
    a.users, a.usernames = {"alice": 1, "bob": 3}, {1: "alice", 3: "bob"}
    a.courses, a.groups = {"C1": 10}, {10: {"G": 4}}
    a.instances = [
        ActualInstance(20, 10, 7, 5, 4, "reconciler: etp-X-1 (student)", 0, "C1", "etp-X-1", "G"),
        ActualInstance(21, 10, 7, 4, 0, "other", 1),
    ]
    a.enrolled = {10: {1: frozenset({5})}}
    assert a.fingerprint() == "8fc42d878a4a1cb440bd4ad05cc00b028291c0daea7a4ab8b5e3b8aa63cf0c19"
    a.instances[1] = dataclasses.replace(a.instances[1], status=0)
    assert a.fingerprint() != "8fc42d878a4a1cb440bd4ad05cc00b028291c0daea7a4ab8b5e3b8aa63cf0c19"


def test_adopt_outside_the_prefix_takes_over_but_never_creates() -> None:
    """A declaration with adopt: true outside the managed prefix (``reconcile import
    --adopt-outside-prefix``) adopts the existing cohort as it is; when Moodle has none, the
    planner warns and creates nothing (the prefix alone decides what the reconciler may make)."""
    u = users(2)
    want = DesiredCohort(
        idnumber="TUT-7", name="Tuteurs", kind="manual", members=frozenset(u), source="f:1",
        adopt=True,
    )
    have = ActualCohort(7, "TUT-7", "Tuteurs", "made by hand", True, frozenset(u.values()))
    desired = DesiredState(platform="ecampus", cohorts={"TUT-7": want})
    plan = plan_of(desired, actual_with(u, cohorts={"TUT-7": have}))
    assert kinds(plan) == [("update_cohort", "TUT-7")]
    assert plan.actions[0].details.adopt is True
    assert set(plan.actions[0].details.changes) == {"description"}

    plan = plan_of(desired, actual_with(u))
    assert kinds(plan) == []
    assert [w.code for w in plan.warnings] == ["adopt-missing"]


def test_without_the_plugin_no_managed_cohort_is_deleted_and_expired_syncs_are_incomplete() -> (
    None
):
    # Without local_ws_enrolcohort no instance can be read: "no sync uses this cohort" is
    # unknown, not true, and deleting the cohort would delete its instances and unenrol.
    u = users(2)
    old = DesiredCohort("man-old", "Old", "manual", frozenset(u), "x.yaml:1")
    gone = general("etp-GONE-1", list(u))
    s = sync("man-old", expires=dt.date(2026, 11, 27))
    actual = actual_with(
        u,
        courses={"C1": 10},
        cohorts={
            "man-old": actual_cohort(4, old, list(u.values())),
            gone.idnumber: actual_cohort(5, gone, list(u.values())),
        },
        plugin_available=False,
    )
    plan = plan_of(DesiredState("ecampus", expired_syncs=[s]), actual)
    assert ("delete_cohort", "man-old") not in kinds(plan)
    # The vanished étape loses its members (through the failsafes) but its cohort stays.
    assert kinds(plan) == [("remove_members", "etp-GONE-1")]
    incomplete = [(w.code, w.target) for w in plan.incomplete]
    assert ("plugin-missing", "man-old") in incomplete
    assert ("plugin-missing", "f.yaml:1") in incomplete  # the expired sync cannot be disabled

    with_plugin = dataclasses.replace(actual, plugin_available=True)
    plan = plan_of(DesiredState("ecampus", expired_syncs=[s]), with_plugin)
    assert ("delete_cohort", "man-old") in kinds(plan) and not plan.incomplete


def test_every_warning_code_the_planner_emits_is_in_the_table() -> None:
    import re
    from pathlib import Path

    import reconciler.planning as planning
    from reconciler.planning.warnings import WARNING_KINDS

    emitted = set()
    for path in Path(planning.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        emitted |= set(re.findall(
            r'(?:\.warn\(|Warning\(|notices\.append\(\()\s*"([a-z-]+)"', text))
    assert emitted == set(WARNING_KINDS)  # none missing from the table, none dead in it
    with pytest.raises(ValueError, match=r"not in planning\.warnings"):
        from reconciler.planning.findings import Findings

        Findings().warn("made-up-code", "x")


def test_a_course_moodle_cannot_read_lets_its_syncs_wait_and_deletes_no_cohort() -> None:
    """Issue 10: get_instances failed for C2 (a name holding markup there). Its sync waits,
    C1's is planned, and no managed cohort is deleted while an unseen instance might use it."""
    u = users(2)
    want = general("etp-A", list(u))
    gone = general("etp-OLD", [])
    actual = actual_with(
        u,
        cohorts={"etp-A": actual_cohort(1, want, list(u.values())),
                 "etp-OLD": actual_cohort(2, gone, [])},
        courses={"C1": 11, "C2": 12},
        unreadable_courses={12: "[invalidresponse] Invalid response value detected"},
    )
    desired = DesiredState(platform="ecampus", cohorts={"etp-A": want},
                           syncs=[sync("etp-A", course="C1"), sync("etp-A", course="C2")])
    plan = plan_of(desired, actual)
    assert kinds(plan) == [("create_sync", "C1/etp-A/student")]
    codes = {w.code: w for w in plan.warnings}
    assert "course C2 (id 12)" in codes["course-unreadable"].message
    assert "C2: the cohort sync of etp-A (student) waits" in codes["sync-waits"].message
    assert "etp-OLD" in codes["cohort-kept"].message
    # Once C2 can be read, the unused cohort goes.
    actual.unreadable_courses.clear()
    assert ("delete_cohort", "etp-OLD") in kinds(plan_of(desired, actual))


def test_a_name_made_safe_is_warned_when_the_plan_writes_it() -> None:
    want = dataclasses.replace(general("etp-A", []), name="Bac \u20392 ans")
    desired = DesiredState(platform="ecampus", cohorts={"etp-A": want},
                           unsafe_names={("cohort", "etp-A", "Bac \u20392 ans"): "Bac <2 ans"})
    plan = plan_of(desired, actual_with({}))
    [create] = [a for a in plan.actions if a.kind == "create_cohort"]
    assert create.details.name == "Bac \u20392 ans"
    [warning] = [w for w in plan.warnings if w.code == "name-made-safe"]
    assert "'Bac <2 ans'" in warning.message and "'Bac \u20392 ans'" in warning.message
    # Already so named in Moodle: nothing written, nothing to say.
    actual = actual_with({}, cohorts={"etp-A": actual_cohort(1, want, [])})
    assert not [w for w in plan_of(desired, actual).warnings if w.code == "name-made-safe"]
