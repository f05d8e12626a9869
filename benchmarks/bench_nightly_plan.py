"""Benchmark: the nightly no-op plan at university scale, and where its time goes.

    python benchmarks/bench_nightly_plan.py [--students 40000] [--vets 2500] [--syncs 3000]
                                            [--latency-ms 5] [--no-map] [--profile FILE]

Builds a converged Ecampus (``world.py``: APOGÉE, the directory, ``--syncs`` course syncs, and
an emulator holding exactly what the reconciler would have made), lets one night of the
reconciler save its user-id map (unless ``--no-map``), then times the next night's
``reconcile plan`` in a fresh child process with the emulator answering each call after
``--latency-ms``. Reports the calls by function, their real-Moodle seconds (``cost_model.py``),
the wall time, the client + planner CPU seconds and the peak RSS of the reconciler's process
(the sources are read beforehand and handed over; the declarations are loaded before the
clock starts). ``--profile FILE`` writes a cProfile of the measured night (the client's
thread pool run inline, so every request's client work is in it) and prints its top 25
functions by own time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import pstats
import tempfile
import time
from pathlib import Path

from cost_model import CostModel
from harness import Priced, in_child, new_emulator, product_night
from world import NIGHT, build_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=40_000)
    parser.add_argument("--vets", type=int, default=2_500)
    parser.add_argument("--syncs", type=int, default=3_000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--no-map", action="store_true", help="plan without the user-id map")
    parser.add_argument("--profile", type=Path, help="write a cProfile (pstats) of the night")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        world = build_world(root, args.students, vets=args.vets, syncs=args.syncs)
        emu = new_emulator(world, converged=True)
        snapshot = root / "snapshot.pkl"
        snapshot.write_bytes(pickle.dumps(world.snapshot))
        people = len(world.snapshot.people)
        memberships = sum(len(c.members) for c in world.snapshot.general_cohorts["ecampus"])
        print(f"setup {time.perf_counter() - started:.1f} s: {people} accounts, "
              f"{memberships} memberships, {args.syncs} syncs")
        (root / "map").mkdir()

        def night(day: int, profile: Path | None = None) -> dict:
            job = {"snapshot": str(snapshot), "root": str(root), "url": emu.url,
                   "mode": "plan", "now": (NIGHT + dt.timedelta(days=day)).isoformat(),
                   "map_dir": str(root / "map"), "environ": {},
                   "profile": str(profile) if profile else None}
            return in_child(product_night, job)

        if not args.no_map:
            night(0)  # the night before: leaves the map in .reconciler/
        emu.take()
        emu.config.latency_ms = args.latency_ms
        run = night(1, args.profile)
        priced = Priced.of(emu.take(), CostModel())
        emu.stop()

    print(f"plan: {run['summary']}")
    print(f"web-service calls: {priced.total_calls}, {priced.total_seconds:.1f} real-Moodle s: "
          f"{priced.breakdown()}")
    if run["user_map"]:
        print("user map: " + ", ".join(f"{k} {v}" for k, v in run["user_map"].items()
                                       if k != "corrected"))
    print(f"no-op plan at {args.latency_ms:g} ms latency: {run['wall_s']:.2f} s wall, "
          f"{run['cpu_s']:.2f} s client + planner CPU, peak RSS {run['rss_mb']:.0f} MB")
    if args.profile:
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
    if run["actions"]:
        raise SystemExit("the benchmark state was not converged: " + run["summary"])


if __name__ == "__main__":
    main()
