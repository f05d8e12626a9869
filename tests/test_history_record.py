"""What apply records (issue 16): one entry per applied change with the plan's reason, the
courses syncing the cohort, the approver and the rollover; one entry per run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reconciler.history.record import Recorder
from reconciler.history.spool import Spool
from reconciler.planning.actions import Action, DisableSync, Reason, RemoveMembers
from reconciler.planning.plan import FailsafeCheck, Plan

NOW = dt.datetime(2026, 9, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def plan() -> Plan:
    leave = Action.of(
        "etp-L1HIS-101",
        RemoveMembers("etp-L1HIS-101", 7, ("e1", "e2"), (1, 2), 40),
        Reason("left-sources", "no IA in force in L1HIS-101", "APOGÉE L1HIS-101"),
    )
    manual = Action.of(
        "man-a",
        RemoveMembers("man-a", 8, ("e3",), (3,), 4),
        Reason("undeclared", "no longer listed in a.yaml:1", "a.yaml:1"),
    )
    expired = Action.of(
        "C1/man-a/student",
        DisableSync(9, "C1", "man-a", "student", 3),
        Reason("expired", "the sync expired on 2026-08-31 (s.yaml:4)", "s.yaml:4"),
    )
    return Plan("ecampus", "2026", actions=[leave, manual, expired], commit="c0ffee",
                sources={"healthy": True, "reasons": []})


def test_changes_and_run_with_reasons_courses_approver_and_rollover(tmp_path: Path) -> None:
    p = plan()
    recorder = Recorder(Spool(tmp_path), NOW, {"etp-L1HIS-101": ["HIST-L1-MOD", "HIST-L1-TD"]},
                        rollover_from="2025")
    recorder.applied(p, p.actions[:2], failed=1, skipped=0, approved_by="admin at 2026-09-01")
    leave, manual, run = Spool(tmp_path).read("ecampus")
    assert leave["time"] == "2026-08-31T23:30:00+00:00"  # UTC
    assert (leave["kind"], leave["cohort"], leave["usernames"]) == (
        "remove_members", "etp-L1HIS-101", ["e1", "e2"])
    assert leave["courses"] == ["HIST-L1-MOD", "HIST-L1-TD"]
    assert leave["reason"] == {"code": "left-sources", "text": "no IA in force in L1HIS-101",
                               "source": "APOGÉE L1HIS-101"}
    assert leave["rollover"] == "2025 → 2026"
    assert "rollover" not in manual  # a declaration's removal is not the rollover's
    assert leave["approved_by"] == manual["approved_by"] == "admin at 2026-09-01"
    assert (leave["plan"], leave["commit"]) == (p.digest(), "c0ffee")
    assert [leave["seq"], manual["seq"], run["seq"]] == [0, 1, 2]
    assert (run["type"], run["outcome"], run["done"], run["failed"]) == ("run", "partial", 2, 1)
    assert len({leave["id"], manual["id"], run["id"]}) == 3


def test_a_refused_run_and_a_run_with_nothing_to_do(tmp_path: Path) -> None:
    p = plan()
    p.failsafe = [FailsafeCheck("max_syncs_removed", "*", 1, 0, True, "1 sync"),
                  FailsafeCheck("max_memberships_removed", "*", 3, 10, False, "")]
    recorder = Recorder(Spool(tmp_path), NOW)
    recorder.refused(p)
    recorder.applied(Plan("ecampus", "2026"), [], failed=0, skipped=0)
    refused, quiet = Spool(tmp_path).read("ecampus")
    assert refused["outcome"] == "failsafe-tripped" and refused["done"] == 0
    assert refused["failsafe"] == [{"name": "max_syncs_removed", "target": "*", "value": 1,
                                    "limit": 0, "detail": "1 sync"}]
    assert quiet["outcome"] == "no-changes"
    assert recorder.written == [refused, quiet]


def test_a_spool_that_cannot_be_written_never_fails_the_apply(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    recorder = Recorder(Spool(blocker / "history"), NOW)
    recorder.refused(plan())  # logged, not raised: Moodle may already have changed
    assert recorder.written == []


def test_a_large_apply_digests_its_plan_once(tmp_path: Path, monkeypatch) -> None:
    """Every entry names the plan by its digest, which serialises the whole plan: computed
    per entry, recording a first run of thousands of actions took minutes of CPU."""
    actions = [Action.of(f"etp-{n}", RemoveMembers(f"etp-{n}", n, (f"e{n}",), (n,), 40),
                         Reason("left-sources", "no IA in force", f"APOGÉE {n}"))
               for n in range(1, 201)]
    p = Plan("ecampus", "2026", actions=actions, commit="c0ffee")
    expected = p.digest()
    calls = []
    digest = Plan.digest
    monkeypatch.setattr(Plan, "digest", lambda self: calls.append(1) or digest(self))
    Recorder(Spool(tmp_path), NOW).applied(p, actions, failed=0, skipped=0)
    entries = Spool(tmp_path).read("ecampus")
    assert len(entries) == 201
    assert {e["plan"] for e in entries} == {expected}
    assert len({e["id"] for e in entries}) == 201
    assert len(calls) == 1
