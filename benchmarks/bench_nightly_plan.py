"""Benchmark: the nightly no-op plan at university scale, and where its time goes.

    python benchmarks/bench_nightly_plan.py [--students 40000] [--vets 2500] [--syncs 3000]
                                            [--latency-ms 5] [--no-map] [--profile FILE]
                                            [--patterns 0] [--pattern-courses 20]

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

``--patterns N`` adds N course patterns (half by category, with subcategories; half by
shortname), each giving two syncs to ``--pattern-courses`` courses of its own, converged too:
a platform with course patterns reads every course in one call and the categories in one
more, so the calls should grow by two, not with the patterns or their courses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from cost_model import CostModel
from harness import Priced, in_child, new_emulator, product_night
from world import NIGHT, PLATFORM, build_world, moodle_seed


def write_patterns(root: Path, cohorts: list[str], patterns: int, courses: int
                   ) -> tuple[list[dict[str, Any]], dict[str, str | None], list[dict[str, Any]]]:
    """Write ``patterns`` course patterns under ``root/cohorts/<platform>/patterns/`` (even
    ones by category with its subcategories, odd ones by shortname), each with two syncs for
    its ``courses`` courses. Returns the syncs they make (as ``world.declared`` lists them),
    each pattern course's category idnumber (None: the default category) and the categories
    to create (``{"name", "idnumber", "parent"?}``)."""
    folder = root / "cohorts" / PLATFORM / "patterns"
    folder.mkdir(parents=True, exist_ok=True)
    made: list[dict[str, Any]] = []
    placed: dict[str, str | None] = {}
    categories: list[dict[str, Any]] = []
    for k in range(patterns):
        by_category = k % 2 == 0
        top, sub = f"CAT-PAT-{k:03d}", f"CAT-PAT-{k:03d}-SUB"
        if by_category:
            categories += [{"name": top, "idnumber": top},
                           {"name": sub, "idnumber": sub, "parent": top}]
            selector: dict[str, Any] = {"category": top, "subcategories": True}
        else:
            selector = {"shortname": f"PS{k:03d}-*"}
        entries = [{"cohort": cohorts[k % len(cohorts)], "role": "student", "reason": "benchmark"},
                   {"cohort": cohorts[(k + 1) % len(cohorts)], "role": "teacher",
                    "reason": "benchmark", "group": "Enseignants"}]
        doc = {"owners": ["bench@example.org"], "courses": selector, "syncs": entries}
        (folder / f"p{k:03d}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        for n in range(courses):
            course = f"PS{k:03d}-{n:04d}"
            placed[course] = (sub if n % 2 else top) if by_category else None
            made += [{"course": course, **e} for e in entries]
    return made, placed, categories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=40_000)
    parser.add_argument("--vets", type=int, default=2_500)
    parser.add_argument("--syncs", type=int, default=3_000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--no-map", action="store_true", help="plan without the user-id map")
    parser.add_argument("--profile", type=Path, help="write a cProfile (pstats) of the night")
    parser.add_argument("--patterns", type=int, default=0, help="course patterns to add")
    parser.add_argument("--pattern-courses", type=int, default=20,
                        help="courses each course pattern matches")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        world = build_world(root, args.students, vets=args.vets, syncs=args.syncs)
        cohorts = sorted({d["cohort"] for d in world.declared})
        made, placed, categories = write_patterns(root, cohorts, args.patterns,
                                                  args.pattern_courses)
        world.declared += made  # converged: their instances and courses are in Moodle too
        site = moodle_seed(world, converged=True)
        site["categories"] = categories
        for course in site["courses"]:
            if placed.get(course["shortname"]):
                course["category_idnumber"] = placed[course["shortname"]]
        emu = new_emulator(world, converged=True, site=site)
        snapshot = root / "snapshot.pkl"
        snapshot.write_bytes(pickle.dumps(world.snapshot))
        people = len(world.snapshot.people)
        memberships = sum(len(c.members) for c in world.snapshot.general_cohorts["ecampus"])
        print(f"setup {time.perf_counter() - started:.1f} s: {people} accounts, "
              f"{memberships} memberships, {args.syncs} syncs"
              + (f", {args.patterns} course patterns making {len(made)} more syncs over "
                 f"{len(placed)} more courses" if args.patterns else ""))
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
