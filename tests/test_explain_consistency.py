"""``explain`` decides nothing itself: for every person, the changes its verdict lists are
exactly the nightly plan's changes that name them (issue 16: the planner's own code on the
states restricted to the person, never a second implementation of the rules)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import git
from support.world import TOKEN, World

from reconciler.applying.runner import Environment, make_plan
from reconciler.cli import exitcodes
from reconciler.helpdesk import explain

NOW = "2026-11-28T02:00:00Z"
LATER = dt.datetime(2026, 12, 5, 2, tzinfo=dt.UTC)


def full_plan_changes(plan: Any, username: str) -> set[tuple[str, str]]:
    return {
        (a.kind, a.target)
        for a in plan.actions
        if username in (getattr(a.details, "usernames", None) or ())
        or (a.kind == "create_user" and a.target == username)
    }


def test_the_verdict_is_the_nightly_plan_restricted_to_each_person(world: World) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    # A night of changes: two IAs cancelled, a member taken out of a manual cohort synced
    # with method: manual, a late student added to another, an account deleted in Moodle.
    cancelled = world.cancel_ia("L1HIS-101", 2)
    auditeurs = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    auditeurs.write_text(auditeurs.read_text().replace("  - e22409002\n", ""), encoding="utf-8")
    late = sorted(world.cohort_members("etp-L1HIS-102"))[0]
    retard = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-retardataires-l1-histoire.yaml"
    retard.write_text(retard.read_text() + f"  - {late}\n", encoding="utf-8")
    repo = git.Repo(world.repo)
    repo.git.commit("-am", "a night of changes")
    gone = sorted(world.cohort_members("etp-L1HIS-102"))[-1]
    with world.client() as c:
        c.delete_users([int(c.get_users_by_field("username", [gone])[0]["id"])])

    env = Environment(repo=world.repo, environ=world.env, now=LATER)
    plan = make_plan(env, "ecampus")
    assert plan.has_changes
    people = {*cancelled, "e22409002", late, gone, "e22409001", "e22401187",
              world.data.students[1].login, *sorted(world.cohort_members("etp-L1HIS-101"))[:6]}
    seen_changes = 0
    for username in sorted(people):
        doc = explain(Environment(repo=world.repo, environ=world.env, now=LATER), username,
                      ["ecampus"])
        verdict = doc["platforms"]["ecampus"]["verdict"]
        mine = {(c["kind"], c["target"]) for c in verdict["changes"]
                if c["kind"] not in ("create_group", "create_sync", "update_sync",
                                     "disable_sync", "delete_sync", "delete_cohort")}
        assert mine == full_plan_changes(plan, username), username
        reasons = {(a.kind, a.target): a.reason.to_json() for a in plan.actions}
        for change in verdict["changes"]:
            if (change["kind"], change["target"]) in reasons:
                assert change["reason"] == reasons[(change["kind"], change["target"])]
        seen_changes += len(mine)
        assert (username in plan.pending_users) == any(
            b["code"] == "pending-account" for b in verdict["blockers"]), username
    assert seen_changes >= 5  # the night's changes were all explained, not only "nothing"


def test_during_the_rollover_overlap_too(world: World) -> None:
    """Collegium in September: last year's students count until they re-register."""
    env = {**world.env, "COLLEGIUM_URL": world.emu.url, "COLLEGIUM_TOKEN": TOKEN}
    september = dt.datetime(2026, 9, 15, 8, tzinfo=dt.UTC)
    plan = make_plan(Environment(repo=world.repo, environ=env, now=september), "collegium")
    assert plan.general.get("overlap", {}).get("in_force") is True
    named = sorted({u for a in plan.actions for u in getattr(a.details, "usernames", ())})
    assert len(named) > 10
    for username in named[:: max(1, len(named) // 12)]:
        doc = explain(Environment(repo=world.repo, environ=env, now=september), username,
                      ["collegium"])
        verdict = doc["platforms"]["collegium"]["verdict"]
        mine = {(c["kind"], c["target"]) for c in verdict["changes"]
                if c["kind"] in ("add_members", "remove_members", "create_user")}
        assert mine == full_plan_changes(plan, username), username
