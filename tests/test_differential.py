"""Differential test: one scenario, step by step, on the emulator and on the real Moodle 4.5
site; after every step the exit code, the plan's summary and the whole Moodle state read back
through the web services (cohorts with members, instances, enrolments with roles and status,
groups with members; keyed by names since ids differ between sites) must be the same.

It fails on any difference and prints it (deepdiff), so that the emulator every other test
relies on keeps answering as the real site does. Skipped without a real site, required in CI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepdiff import DeepDiff
from support.backends import Backend, clean_site_backend, emulator_backend
from support.world import TEST_FAILSAFES, World, make_repo, open_world, shipped_seed

from reconciler.demo import data as demo_data

NOW = "2026-11-28T02:00:00Z"

LATE = "2027-02-01T10:00:00Z"
Step = tuple[str, Callable[[World], None], tuple[str, ...]]


def _sync_file(world: World, course: str) -> Path:
    return world.repo / "cohorts" / "ecampus" / "syncs" / f"{course}.yaml"


def add_group_sync(world: World) -> None:
    _sync_file(world, "OTHER").write_text(
        "course: OTHER\nsyncs:\n  - cohort: etp-L2HIS-101\n    role: student\n"
        "    group: TD histoire\n    reason: L2 students in their TD group\n", encoding="utf-8")
    world.commit("a sync with a group")


def change_role(world: World) -> None:
    path = _sync_file(world, "HIST-L1-MOD")
    path.write_text(path.read_text().replace(
        "  - cohort: etp-L1HIS-101\n    role: student", "  - cohort: etp-L1HIS-101\n    role: teacher"),
        encoding="utf-8")
    world.commit("role change")


def rename_manual(world: World) -> None:
    path = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    path.write_text(path.read_text().replace("Auditeurs libres histoire moderne",
                                             "Auditeurs libres d'histoire moderne"),
                    encoding="utf-8")
    world.commit("rename")


def drop_manual_cohort(world: World) -> None:
    (world.repo / "cohorts" / "ecampus" / "cohorts" / "man-retardataires-l1-histoire.yaml"
     ).unlink()
    path = _sync_file(world, "HIST-L1-MOD")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["syncs"] = [s for s in doc["syncs"] if s["cohort"] != "man-retardataires-l1-histoire"]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    world.commit("drop the late registrations")


def removals_delete(world: World) -> None:
    path = world.repo / "cohorts" / "platforms.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["platforms"]["ecampus"].setdefault("sync_policy", {})["on_removal"] = "delete"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    world.commit("removals delete")


def nothing(world: World) -> None:
    pass


def cancel_one_ia(world: World) -> None:
    world.cancel_ia("L1HIS-101", 1)


STEPS: list[Step] = [
    ("first plan", nothing, ("plan",)),
    ("first apply", nothing, ("apply",)),
    ("nothing to do", nothing, ("plan",)),
    ("a night: one IA cancelled", cancel_one_ia, ("apply",)),
    ("a sync with a group", add_group_sync, ("apply",)),
    ("a role change", change_role, ("apply",)),
    ("a manual cohort renamed", rename_manual, ("apply",)),
    ("expired sync", nothing, ("apply", "--now", LATE)),
    ("a manual cohort and its sync dropped", drop_manual_cohort, ("apply", "--now", LATE)),
    ("removals switched to delete", removals_delete, ("apply", "--now", LATE)),
    ("converged", nothing, ("plan", "--now", LATE)),
]


def run(tmp: Path, slapd: Any, data: demo_data.DemoData, backend: Backend
        ) -> list[dict[str, Any]]:
    """The scenario on ``backend`` (seeded through its web services): each step's exit code,
    summary line and the state it leaves."""
    tmp.mkdir()
    with open_world(tmp, make_repo(tmp, TEST_FAILSAFES), data, slapd.environ(),
                    shipped_seed(data), backend=backend) as world:
        return _steps(world)


def _steps(world: World) -> list[dict[str, Any]]:
    out = []
    for name, change, (command, *extra) in STEPS:
        change(world)
        now = [] if "--now" in extra else ["--now", NOW]
        code, text = world.run(command, "-p", "ecampus", *now, *extra)
        out.append({"step": name, "exit": code, "summary": text.splitlines()[0] if text else "",
                    "state": world.state()})
    return out


@pytest.mark.real
def test_emulator_and_real_moodle_end_every_step_in_the_same_state(
    tmp_path: Path, slapd: Any, sources_data: demo_data.DemoData, pristine_moodle: Any
) -> None:
    results: dict[str, list[dict[str, Any]]] = {}
    real: Backend = clean_site_backend(pristine_moodle)
    results["real"] = run(tmp_path / "real", slapd, sources_data, real)
    with emulator_backend() as emu:
        results["emulator"] = run(tmp_path / "emulator", slapd, sources_data, emu)
    differences = []
    for mine, theirs in zip(results["emulator"], results["real"], strict=True):
        diff = DeepDiff(theirs, mine, ignore_order=False, verbose_level=2)
        if diff:
            differences.append(f"step {mine['step']!r} (real -> emulator):\n{diff.pretty()}")
    assert not differences, "\n\n".join(differences)
    # The scenario did what it says (a differential test of a no-op would prove nothing).
    last = results["real"][-1]
    assert [r["exit"] for r in results["real"]] == [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert last["summary"].startswith("Plan: no changes")
    assert "man-retardataires-l1-histoire" not in last["state"]["cohorts"]
