"""Benchmark: ``reconcile import`` and ``reconcile audit`` on a hand-made platform at
university scale (target: the same order of web-service calls as a no-op nightly plan).

    python benchmarks/bench_import_audit.py [--cohorts 2500] [--instances 3000]
                                            [--courses 1500] [--users 40000]
                                            [--members 50] [--latency-ms 5]

Seeds a Moodle emulator with ``reconciler.demo.handmade``'s platform (cohorts made in the
UI, most with the managed prefix, a fifth outside it, a tenth the older script's general
cohorts; cohort-sync instances added by hand, a ninth disabled, a fifth into a group; one
editing teacher per course), then times, with the emulator answering every call after
``--latency-ms``:

* ``import --adopt-outside-prefix`` into an empty repository (files written to a temporary
  folder), then the plan that follows it (it must only adopt);
* ``audit`` on a first night, then on a night ``max_temporary_days`` + 10 days later, when
  every enabled undeclared sync is over the limit and the editing teachers of their courses
  are read (one ``core_enrol_get_enrolled_users`` per course).

It reports the calls by function and the wall time of each step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import git
import yaml

from reconciler.adoption.importer import ImportOptions
from reconciler.adoption.run import run_audit, run_import
from reconciler.applying.runner import Environment, make_plan
from reconciler.demo.handmade import handmade_platform
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient

REPO = Path(__file__).resolve().parent.parent
NIGHT_1 = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)


def write_repo(root: Path) -> None:
    """platforms.yaml only, Ecampus without general cohorts (no sources to read here)."""
    (root / "cohorts").mkdir(parents=True)
    doc = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))
    doc["platforms"]["ecampus"]["general_cohorts"] = {"enabled": False}
    (root / "cohorts" / "platforms.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    (root / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    repo = git.Repo.init(root)
    repo.git.add(A=True)
    repo.index.commit("platforms")


def calls(emu: MoodleEmulator) -> str:
    counts = Counter(emu.call_counts)
    listed = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    return f"{sum(counts.values())} calls ({listed})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cohorts", type=int, default=2_500)
    parser.add_argument("--instances", type=int, default=3_000)
    parser.add_argument("--courses", type=int, default=1_500)
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        write_repo(root)
        t = time.perf_counter()
        seed = handmade_platform(cohorts=args.cohorts, instances=args.instances,
                                 courses=args.courses, users=args.users,
                                 members=args.members)
        emu = MoodleEmulator(EmulatorConfig(token="T", latency_ms=0, now=NIGHT_1))
        emu.start()
        emu.seed(seed)
        memberships = sum(len(c["members"]) for c in seed["cohorts"])
        print(
            f"setup {time.perf_counter() - t:.1f} s: {len(seed['users'])} users, "
            f"{len(seed['cohorts'])} cohorts, {memberships} memberships, "
            f"{len(seed['cohort_syncs'])} cohort-sync instances over {len(seed['courses'])} "
            f"courses; latency {args.latency_ms:g} ms"
        )
        emu.config.latency_ms = args.latency_ms

        def env(now: dt.datetime) -> Environment:
            return Environment(repo=root, environ={}, now=now,
                               client_factory=lambda p: MoodleClient(emu.url, "T"))

        def step(label: str, work):
            emu.reset_counters()
            started = time.perf_counter()
            out = work()
            print(f"{label}: {time.perf_counter() - started:.2f} s, {calls(emu)}")
            return out

        out_dir = Path(tmp) / "imported"
        result = step("import", lambda: run_import(
            env(NIGHT_1), "ecampus", ImportOptions(adopt_outside_prefix=True), out_dir))
        print(f"  {len(result.written)} files written, {len(result.findings)} findings "
              f"({dict(result.counts())})")
        shutil.copytree(out_dir / "ecampus", root / "cohorts" / "ecampus")
        repo = git.Repo(root)
        repo.git.add(A=True)
        repo.index.commit("import")
        plan = step("plan after import", lambda: make_plan(env(NIGHT_1), "ecampus"))
        kinds = Counter(a.kind for a in plan.actions)
        print(f"  {plan.summary()} {dict(kinds)}")
        if set(kinds) - {"update_cohort", "update_sync"}:
            raise SystemExit("the plan after the import does more than adopt")

        repo.git.rm("-r", "-q", "cohorts/ecampus")  # audit the platform as it was
        repo.index.commit("back to nothing declared")
        report = step("audit, night 1", lambda: run_audit(env(NIGHT_1), "ecampus"))
        print(f"  {len(report.syncs)} instances, {len(report.cohorts)} cohorts, "
              f"{len(report.over_limit)} over the limit")
        later = NIGHT_1 + dt.timedelta(days=130)
        report = step("audit, night 2 (+130 days)", lambda: run_audit(env(later), "ecampus"))
        print(f"  {len(report.syncs)} instances, {len(report.over_limit)} over the limit, "
              f"{len({s.courseid for s in report.over_limit})} courses' teachers read")
        emu.stop()


if __name__ == "__main__":
    main()
