"""The leavers' grace period as a pure function (issue 17, item 2): desired + Moodle + the
saved record -> the members kept, the record to save, what the plan says; then the planner."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.planning.grace import Leaver, LeaversRecord, apply_grace
from reconciler.planning.plan import Plan
from reconciler.planning.planner import cohort_description, compute_plan
from reconciler.planning.render import render_markdown, render_text
from reconciler.planning.state import (
    ActualCohort,
    ActualState,
    DesiredCohort,
    DesiredState,
    DesiredSync,
)
from reconciler.settings import (
    Failsafes,
    GeneralCohortSettings,
    GracePeriod,
    PlatformSettings,
)

DAY = dt.date(2026, 11, 28)
COHORT = "etp-L1HIS-101"
USERS = {f"e{n}": 100 + n for n in range(6)}


def platform(days: int = 14, max_days: int | None = 30, gap: int = 1) -> PlatformSettings:
    return PlatformSettings(
        name="ecampus", url="https://ecampus.example.org",
        general_cohorts=GeneralCohortSettings(
            enabled=True, grace=GracePeriod(days=days, max_days=max_days, max_gap_days=gap)),
        failsafes=Failsafes(small_cohort_size=0, per_cohort_removal_floor=0,
                            per_cohort_max_removal_percent=100))


def desired(members: set[str], *syncs: DesiredSync, year: str = "2026",
            overlap: bool | None = None, idnumber: str = COHORT) -> DesiredState:
    state = DesiredState(platform="ecampus", syncs=list(syncs))
    if members is not None:
        state.cohorts[idnumber] = DesiredCohort(idnumber, "L1 Histoire", "general",
                                                frozenset(members), "APOGÉE")
    if overlap is not None:
        state.general_report["overlap"] = {"in_force": overlap}
    return state


def actual(members: set[str], owned: bool = True, idnumber: str = COHORT,
           description: str | None = None) -> ActualState:
    want = DesiredCohort(idnumber, "L1 Histoire", "general", frozenset(), "APOGÉE")
    cohort = ActualCohort(1, idnumber, "L1 Histoire",
                          description if description is not None else
                          (cohort_description(want) if owned else "by hand"),
                          True, frozenset(USERS[m] for m in members))
    return ActualState(cohorts={idnumber: cohort}, users=dict(USERS),
                       usernames={v: k for k, v in USERS.items()})


def sync(grace_days: int | None, course: str = "C1") -> DesiredSync:
    return DesiredSync(course, COHORT, "student", 5, "cohort", "r", "f.yaml:3",
                       grace_days=grace_days)


def record(leavers: dict[str, dt.date], on: dt.date = DAY - dt.timedelta(days=1),
           year: str = "2026", overlap: bool = False, **extra: dict[str, Leaver]) -> LeaversRecord:
    cohorts = {COHORT: {n: Leaver(d) for n, d in leavers.items()}, **extra}
    return LeaversRecord("ecampus", on, year, overlap, cohorts)


def plan(want: DesiredState, have: ActualState, settings_: PlatformSettings,
         today: dt.date = DAY, saved: LeaversRecord | None = None,
         problem: str | None = None) -> tuple[Plan, LeaversRecord | None]:
    outcome = apply_grace(want, have, settings_, "2026", today, saved, problem)
    return compute_plan(outcome.desired, have, settings_, today, "2026"), outcome.record


def removed(p: Plan) -> set[str]:
    return {u for a in p.actions if a.kind == "remove_members" for u in a.details.usernames}


def test_a_leaver_stays_until_the_day_of_its_grace_end() -> None:
    want, have = desired({"e0", "e1"}), actual({"e0", "e1", "e2"})
    first, saved = plan(want, have, platform(), saved=None)
    assert removed(first) == set() and not first.actions
    assert first.general["grace"]["leaving"] == {COHORT: {"e2": "2026-12-12"}}
    assert saved is not None and saved.cohorts == {COHORT: {"e2": Leaver(DAY)}}
    assert "Grace period for leavers: 14 days (at most 30); 1 member leaving" in render_text(first)
    assert f"{COHORT}: leaving on 2026-12-12: e2" in render_text(first)
    assert f"  - {COHORT}: leaving on 2026-12-12: e2" in render_markdown(first)

    day13 = DAY + dt.timedelta(days=13)
    later, again = plan(want, have, platform(), day13, dataclasses.replace(saved, observed_on=day13 - dt.timedelta(days=1)))
    assert removed(later) == set() and again.cohorts == saved.cohorts

    day14 = DAY + dt.timedelta(days=14)
    last, kept = plan(want, have, platform(), day14, dataclasses.replace(saved, observed_on=day13))
    assert removed(last) == {"e2"}
    assert last.general["grace"]["leaving"] == {}
    # The removal happens, and is counted by the failsafes, on that day.
    [memberships] = [c for c in last.failsafe if c.name == "max_memberships_removed"]
    assert memberships.value == 1
    assert kept.cohorts == saved.cohorts  # kept until Moodle no longer has them


def test_no_grace_is_todays_behaviour_and_records_nothing() -> None:
    p, saved = plan(desired({"e0"}), actual({"e0", "e1"}), platform(days=0, max_days=None))
    assert removed(p) == {"e1"} and saved is None and p.general == {}


@pytest.mark.parametrize(("saved", "problem", "why"), [
    (None, None, "none saved yet (a first run, or the CI cache was lost)"),
    (record({"e2": DAY - dt.timedelta(days=20)}, on=DAY - dt.timedelta(days=2)), None,
     "last saved on 2026-11-26, 2 days ago (more than max_gap_days 1)"),
    (record({"e2": DAY - dt.timedelta(days=20)}, on=DAY + dt.timedelta(days=1)), None,
     "saved on 2026-11-29, after today"),
    (dataclasses.replace(record({"e2": DAY - dt.timedelta(days=20)}), platform="collegium"),
     None, "it is collegium's"),
    (None, "x.json: Expecting value", "unreadable (x.json: Expecting value)"),
])
def test_a_record_that_cannot_vouch_restarts_the_grace_never_shortens_it(
    saved: LeaversRecord | None, problem: str | None, why: str,
) -> None:
    p, new = plan(desired({"e0"}), actual({"e0", "e2"}), platform(), saved=saved, problem=problem)
    assert removed(p) == set()
    assert p.general["grace"]["leaving"] == {COHORT: {"e2": "2026-12-12"}}
    assert new.cohorts == {COHORT: {"e2": Leaver(DAY)}} and new.observed_on == DAY
    [warning] = [w for w in p.warnings if w.code == "grace-restarted"]
    assert why in warning.message and "never shorter" in warning.message


def test_a_trusted_record_keeps_its_dates_and_a_wider_gap_may_be_allowed() -> None:
    saved = record({"e2": DAY - dt.timedelta(days=20)}, on=DAY - dt.timedelta(days=2))
    p, _ = plan(desired({"e0"}), actual({"e0", "e2"}), platform(gap=2), saved=saved)
    assert removed(p) == {"e2"} and not [w for w in p.warnings if w.code == "grace-restarted"]


def test_someone_who_comes_back_leaves_the_record() -> None:
    saved = record({"e1": DAY - dt.timedelta(days=3), "e2": DAY - dt.timedelta(days=3)})
    p, new = plan(desired({"e0", "e1"}), actual({"e0", "e1", "e2"}), platform(), saved=saved)
    assert new.cohorts == {COHORT: {"e2": Leaver(DAY - dt.timedelta(days=3))}}
    assert p.general["grace"]["leaving"] == {COHORT: {"e2": "2026-12-09"}}


def test_the_cohort_keeps_the_longest_grace_its_syncs_ask_for_within_the_maximum() -> None:
    want, have = desired({"e0"}, sync(None), sync(30, "C2")), actual({"e0", "e1"})
    p, _ = plan(want, have, platform())
    assert p.general["grace"]["leaving"] == {COHORT: {"e1": "2026-12-28"}}
    assert p.general["grace"]["cohort_days"] == {COHORT: 30}
    assert f"{COHORT} (grace 30 days): leaving on 2026-12-28: e1" in render_text(p)
    p, _ = plan(desired({"e0"}, sync(99)), have, platform())  # lint refuses; capped anyway
    assert p.general["grace"]["leaving"] == {COHORT: {"e1": "2026-12-28"}}
    p, saved = plan(desired({"e0"}, sync(0)), have, platform())  # every course asks for none
    assert removed(p) == {"e1"} and saved.cohorts == {}


@pytest.mark.parametrize(("before", "now", "what"), [
    (dict(year="2025"), dict(year="2026", overlap=None), "the academic year changed (2025 → 2026)"),
    (dict(overlap=True), dict(overlap=False), "the rollover overlap window ended"),
])
def test_leaving_with_a_period_change_gets_no_grace(before: dict, now: dict, what: str) -> None:
    """A rollover without window, or the end of the window, removes at once (through the
    failsafes); who was already in grace keeps it."""
    saved = record({"e1": DAY - dt.timedelta(days=2)}, **before)
    want = desired({"e0"}, overlap=now.get("overlap"))
    have = actual({"e0", "e1", "e2", "e3"})
    p, new = plan(want, have, platform(), saved=saved)
    assert removed(p) == {"e2", "e3"}
    assert p.general["grace"]["leaving"] == {COHORT: {"e1": "2026-12-10"}}
    [warning] = [w for w in p.warnings if w.code == "grace-not-applied"]
    assert warning.message.startswith(f"{what}: 2 member(s) who left with it get no grace")
    assert new.cohorts[COHORT]["e2"] == Leaver(DAY, grace=False)
    # Stopped by a failsafe today, the same removal stands tomorrow.
    tomorrow = DAY + dt.timedelta(days=1)
    p, _ = plan(want, have, platform(), tomorrow, new)
    assert removed(p) == {"e2", "e3"} and not [w for w in p.warnings
                                              if w.code == "grace-not-applied"]
    # Without a record to prove the period changed, they get the grace (longer, not shorter).
    p, _ = plan(want, have, platform(), saved=None)
    assert removed(p) == set()


def test_a_cohort_the_sources_dropped_is_held_for_its_leavers_then_retired() -> None:
    described = "Étape L1HIS\n" + cohort_description(
        DesiredCohort(COHORT, "x", "general", frozenset(), "s"))
    have = actual({"e1", "e2"}, description=described)
    want = desired(None)  # the étape has no IA in force any more
    p, saved = plan(want, have, platform())
    assert p.actions == [] and p.general["grace"]["leaving"] == {
        COHORT: {"e1": "2026-12-12", "e2": "2026-12-12"}}
    later = DAY + dt.timedelta(days=14)
    p, _ = plan(want, have, platform(), later, dataclasses.replace(saved, observed_on=later))
    assert [a.kind for a in p.actions] == ["delete_cohort"]


def test_what_grace_never_touches() -> None:
    # Cohorts the reconciler does not own, unhealthy sources, members Moodle did not name.
    p, saved = plan(desired({"e0"}), actual({"e0", "e1"}, owned=False), platform())
    assert saved.cohorts == {} and p.general["grace"]["leaving"] == {}
    frozen = desired({"e0"})
    frozen.general_frozen = True
    outcome = apply_grace(frozen, actual({"e0", "e1"}), platform(), "2026", DAY, None)
    assert outcome.record is None and outcome.desired is frozen
    have = actual({"e0", "e1"})
    have.usernames.pop(USERS["e1"])
    p, saved = plan(desired({"e0"}), have, platform())
    assert saved.cohorts == {} and removed(p) == set()


def test_record_round_trip_and_refusals() -> None:
    saved = record({"e1": DAY}, extra={"e2": Leaver(DAY, grace=False)})
    saved = LeaversRecord("ecampus", DAY, "2026", True,
                          {COHORT: {"e1": Leaver(DAY), "e2": Leaver(DAY, grace=False)}})
    assert LeaversRecord.from_json(saved.to_json()) == saved
    for broken in ({}, {**saved.to_json(), "format_version": 2},
                   {**saved.to_json(), "overlap": "yes"},
                   {**saved.to_json(), "cohorts": {COHORT: {"e1": {"since": "someday"}}}},
                   {**saved.to_json(), "cohorts": [1]}, [], "x"):
        with pytest.raises(ValueError):
            LeaversRecord.from_json(broken)


# -- the safety property ------------------------------------------------------------------

NAMES = sorted(USERS)[:4]
FATES = st.sampled_from(["kept", "kept", "kept", "lost", "older", "corrupt"])


@settings(max_examples=300, deadline=None)
@given(days=st.integers(1, 5),
       timeline=st.lists(st.tuples(st.booleans(), st.frozensets(st.sampled_from(NAMES)), FATES),
                         min_size=1, max_size=25),
       older=st.integers(1, 5))
def test_nobody_is_removed_before_being_gone_for_the_whole_grace(days, timeline, older) -> None:
    """Day after day, members come and go, runs are skipped, and the record is kept, lost,
    rolled back to an older save or broken: whoever is removed on day d was gone (not
    vouched for by the sources) on every day from d - days to d."""
    settings_ = platform(days=days, max_days=days, gap=1)
    present_on: list[frozenset[str]] = []
    in_moodle = set(NAMES)
    saves: list[LeaversRecord] = []
    for index, (runs, present, fate) in enumerate(timeline):
        present_on.append(present)
        today = DAY + dt.timedelta(days=index)
        if not runs and index:
            continue
        saved, problem = (saves[-1] if saves else None), None
        if fate == "lost":
            saved = None
        elif fate == "older" and saves:
            saved = saves[max(0, len(saves) - 1 - older)]
        elif fate == "corrupt":
            saved, problem = None, "broken"
        p, new = plan(desired(set(present)), actual(in_moodle), settings_, today, saved, problem)
        for name in removed(p):
            since = index - days
            assert since >= 0, (name, index)
            assert all(name not in present_on[t] for t in range(since, index + 1)), (name, index)
        in_moodle = (in_moodle - removed(p)) | {
            u for a in p.actions if a.kind == "add_members" for u in a.details.usernames}
        if new is not None:
            saves.append(new)
