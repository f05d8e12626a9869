"""Benchmark: ``method: manual`` syncs and their ledger at scale.

    python benchmarks/bench_manual_ledger.py [--syncs 200] [--members 50] [--latency-ms 5]

Builds an Ecampus with ``--syncs`` manual cohorts of ``--members`` members each, each synced
with ``method: manual`` into its own course, and a Moodle emulator answering every call
after ``--latency-ms``. Then, through ``apply`` as the nightly job runs it (the global
removal caps raised: removing every sync at once is the point), it times four runs and
reports for each the web-service calls, the wall time and the ledger's size:

1. the first apply (every member enrolled, each recorded before its call);
2. a no-op plan (what the ledger costs a converged night: reading it, one enrolment read
   per course, as before);
3. one member leaving every cohort (one ``end_manual`` per sync, the ledger saved after each);
4. every sync removed (one ``retire_manual`` per sync).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import yaml

from reconciler.applying.runner import Environment, apply, make_plan
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
EXPIRES = "2027-02-15"


def write_repo(root: Path, syncs: int, members: int) -> None:
    platforms = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))
    platforms["platforms"] = {"ecampus": platforms["platforms"]["ecampus"]}
    platforms["platforms"]["ecampus"]["general_cohorts"] = {"enabled": False}
    # Removing every sync at once is the point of the last run, not a failsafe test.
    platforms["platforms"]["ecampus"]["failsafes"].update(
        max_memberships_removed=10**6, max_syncs_removed=10**6)
    (root / "cohorts" / "ecampus" / "cohorts").mkdir(parents=True)
    (root / "cohorts" / "ecampus" / "syncs").mkdir(parents=True)
    (root / "cohorts" / "platforms.yaml").write_text(yaml.safe_dump(platforms), encoding="utf-8")
    for n in range(syncs):
        (root / "cohorts" / "ecampus" / "cohorts" / f"man-bench-{n:04d}.yaml").write_text(
            yaml.safe_dump({"idnumber": f"man-bench-{n:04d}", "name": f"Bench {n}",
                            "owners": ["bench@example.org"],
                            "members": [f"u{n:04d}x{m:03d}" for m in range(members)]}),
            encoding="utf-8")
        (root / "cohorts" / "ecampus" / "syncs" / f"B{n:04d}.yaml").write_text(
            yaml.safe_dump({"course": f"B{n:04d}", "owners": ["bench@example.org"], "syncs": [
                {"cohort": f"man-bench-{n:04d}", "role": "student", "method": "manual",
                 "expires": EXPIRES, "reason": "benchmark"}]}),
            encoding="utf-8")
    (root / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    repo = git.Repo.init(root)
    repo.git.add(A=True)
    repo.index.commit("declarations")


def commit(root: Path, message: str) -> None:
    repo = git.Repo(root)
    repo.git.add(A=True)
    repo.index.commit(message)


def timed(emu: MoodleEmulator, label: str, run: Callable[[], Any], ledger: Path) -> Any:
    emu.reset_counters()
    started = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - started
    calls = dict(sorted(emu.call_counts.items()))
    size = ledger.stat().st_size if ledger.exists() else 0
    entries = 0
    if ledger.exists():
        [section] = json.loads(ledger.read_text(encoding="utf-8"))["sites"].values()
        entries = len(section["entries"])
    print(f"{label}: {seconds:.1f} s, {sum(calls.values())} calls {calls}; "
          f"ledger {entries} entries, {size / 1024:.0f} KiB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syncs", type=int, default=200)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-manual-"))
    try:
        write_repo(root, args.syncs, args.members)
        with MoodleEmulator(EmulatorConfig(token="T", latency_ms=0)) as emu:
            emu.seed({
                "categories": [{"name": "Bench", "idnumber": "CAT-B"}],
                "courses": [{"shortname": f"B{n:04d}", "fullname": f"Bench {n}",
                             "category_idnumber": "CAT-B"} for n in range(args.syncs)],
                "users": [{"username": f"u{n:04d}x{m:03d}", "firstname": "F", "lastname": "L",
                           "email": f"u{n:04d}x{m:03d}@example.org"}
                          for n in range(args.syncs) for m in range(args.members)],
            })
            emu.config.latency_ms = args.latency_ms

            def env() -> Environment:
                return Environment(repo=root, environ={}, now=NOW,
                                   client_factory=lambda p: MoodleClient(emu.url, "T"))

            def apply_nightly() -> Any:
                return apply(env(), "ecampus")

            ledger = root / ".reconciler" / "manual-enrolments-ecampus.json"
            timed(emu, "first apply", apply_nightly, ledger)
            plan = timed(emu, "no-op plan", lambda: make_plan(env(), "ecampus"), ledger)
            assert not plan.actions, plan.summary()
            for n in range(args.syncs):
                path = root / "cohorts" / "ecampus" / "cohorts" / f"man-bench-{n:04d}.yaml"
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
                doc["members"] = doc["members"][1:]
                path.write_text(yaml.safe_dump(doc), encoding="utf-8")
            commit(root, "one member leaves every cohort")
            outcome = timed(emu, "a member leaves each cohort", apply_nightly, ledger)
            assert outcome.result.ok and len(outcome.plan.actions) == 2 * args.syncs
            for path in (root / "cohorts" / "ecampus" / "syncs").iterdir():
                path.unlink()
            commit(root, "every manual sync removed")
            outcome = timed(emu, "every sync removed", apply_nightly, ledger)
            assert outcome.result.ok and len(outcome.plan.actions) == args.syncs
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
