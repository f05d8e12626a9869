"""Benchmark: read every member of every cohort of a large site through the Moodle client.

Seeds the project's emulator with 2,000 cohorts / 60,000 memberships (by default), adds a
per-request latency of 5 ms, then reads all cohorts and all their members the way the
reconciler does (one ``get_cohorts`` call, then bulk ``get_cohort_members``). Prints the
web-service calls per function (from the emulator's own counters), the wall time and the
peak Python memory (tracemalloc; emulator and client share the process, so it counts both).

    /work/venv/bin/python benchmarks/bench_moodle_read.py [--cohorts 2000] [--per-cohort 30]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from typing import Any

from reconciler.moodle.client import MoodleClient


def build_seed(cohorts: int, per_cohort: int, users: int) -> dict[str, Any]:
    people = [{"username": f"u{i:06d}", "firstname": f"First{i}", "lastname": f"Last{i}",
               "email": f"u{i:06d}@bench.example"} for i in range(users)]
    groups = []
    for c in range(cohorts):
        # Spread memberships evenly over the users: user i is in several cohorts.
        members = [people[(c * per_cohort + k) % users]["username"] for k in range(per_cohort)]
        groups.append({"idnumber": f"BENCH-{c:05d}", "name": f"Bench cohort {c}",
                       "members": members})
    return {"users": people, "cohorts": groups}


def counts(emu: Any) -> dict[str, int]:
    return dict(emu.call_counts)


def read_all(url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]],
                                                        dict[int, list[int]], int]:
    """What the reconciler's reader does: every cohort, then all their members in bulk."""
    with MoodleClient(url, "BENCH", max_input_vars=args.max_input_vars,
                      concurrency=args.concurrency) as client:
        cohorts = client.get_cohorts()
        members = client.get_cohort_members([c["id"] for c in cohorts])
        return cohorts, members, client.transport.http_requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=2000)
    parser.add_argument("--per-cohort", type=int, default=30)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-input-vars", type=int, default=1000)
    args = parser.parse_args(argv)

    from reconciler.emulator import EmulatorConfig, MoodleEmulator

    seed = build_seed(args.cohorts, args.per_cohort, args.users)
    expected = args.cohorts * args.per_cohort
    with MoodleEmulator(EmulatorConfig(token="BENCH", latency_ms=args.latency_ms)) as emu:
        t0 = time.perf_counter()
        emu.seed(seed)
        seeded = time.perf_counter() - t0
        del seed
        # Pass 1 is timed without tracemalloc (which slows allocation-heavy code a lot);
        # pass 2 repeats the same read to measure the peak memory.
        before = counts(emu)
        t0 = time.perf_counter()
        cohorts, members, http_requests = read_all(emu.url, args)
        wall = time.perf_counter() - t0
        after = counts(emu)
        tracemalloc.start()
        read_all(emu.url, args)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    calls = {fn: after.get(fn, 0) - before.get(fn, 0) for fn in after}
    calls = {fn: n for fn, n in calls.items() if n}
    total = sum(len(v) for v in members.values())
    print(f"seeded {args.cohorts} cohorts / {expected} memberships in {seeded:.1f}s")
    print(f"read {len(cohorts)} cohorts, {len(members)} member lists, {total} memberships")
    print(f"web-service calls: {sum(calls.values())} {calls} (client HTTP requests: "
          f"{http_requests})")
    print(f"wall time: {wall:.3f}s at {args.latency_ms:g} ms latency, concurrency "
          f"{args.concurrency}, max_input_vars {args.max_input_vars}")
    print(f"peak traced memory (client + emulator, same process): {peak / 1e6:.1f} MB")
    ok = len(cohorts) == args.cohorts and total == expected
    if not ok:
        print("MISMATCH: the read does not match the seed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
