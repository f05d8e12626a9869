"""Benchmark: the reconciler against a naive per-item nightly script, side by side.

    python benchmarks/bench_vs_naive.py [--students 5000,40000,100000] [--vets 2500]
                                        [--syncs 3000] [--churn 0.01] [--no-naive]

For every size, one generated university (``world.py``, seed 1) and two emulators seeded
alike, one for each peer. The nights, in order:

* **first run**: Moodle has the accounts and the courses, no cohort (production creates
  accounts through LDAP). The reconciler plans and applies everything (cohorts, members,
  cohort syncs, manual enrolments); the naive script (``naive_sync.py``) creates the
  cohorts and adds their members one by one (it manages no sync);
* **no-op**: the next night, nothing changed. The reconciler runs with the user-id map the
  first run left in ``.reconciler/``, then again without it (**map lost**: same state,
  same plan expected);
* **churn**: the night after, 1 % of the IAs in force changed (half cancelled, half a new
  étape). The reconciler plans without the map (its plan is approved by digest when a
  failsafe trips, as a person would, and the map-lost cost is that plan's reads plus the
  writes of the applied one) and applies with the map; the plans must be identical.

Each reconciler night is ``reconcile apply --platform ecampus`` in a fresh child process
(sources read beforehand and handed over; declarations loaded before the clock starts),
so that its CPU seconds (user + system) and peak RSS are the reconciler's own: client,
planner and applier, not the emulator's. The emulator counts every call exactly: function,
items sent, rows answered; ``cost_model.py`` prices each call in real-Moodle seconds
(base + per item + per row, fitted on timings of a real Moodle 4.5; ``python
benchmarks/cost_model.py`` prints the table). The emulator answers without latency: wall
times here say nothing about Moodle.

Targets checked at 40,000 and 100,000 students (issue "A no-op night at real-Moodle
speed"): no-op ≤ 70 calls, ≤ 30 real-Moodle seconds and ≥ 45× less than naive at 40k,
≤ 75 s at 100k; churn ≤ no-op + the cost of its changes; map lost = the full-resolve cost
and the same plan; client + planner CPU ≤ 2 s and peak RSS ≤ 300 MB at 40k, ≤ 400 MB at
100k.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cost_model import CostModel
from harness import Call, Priced, in_child, naive_night, new_emulator, product_night
from world import NIGHT, PLATFORM, build_world, churn, desired_general_cohorts

from reconciler.planning.reader import LIST_INSTANCES


def changes_of(calls: list[Call], model: CostModel) -> Priced:
    """What a night spends because something changed: the calls after the reader's last
    stage (cohort-sync instances, then groups and manual enrolments): the look-ups afresh
    of the users the writes concern, the capability check before writing, and the writes."""
    read_stages = {LIST_INSTANCES, "core_group_get_course_groups", "core_enrol_get_enrolled_users",
                   "core_course_get_courses_by_field"}
    last = max((n for n, c in enumerate(calls) if c.function in read_stages), default=-1)
    return Priced.of(calls[last + 1:], model)


# -- one size ---------------------------------------------------------------------------------

@dataclass
class Night:
    name: str
    product: Priced
    naive: Priced | None = None
    # The reconciler's calls after its reading: the re-check of the users its writes
    # concern, the write-permission check, the writes (see changes_of).
    changes: Priced | None = None
    run: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def bench_size(students: int, args: argparse.Namespace, model: CostModel, tmp: Path
               ) -> list[Night]:
    root = tmp / f"u{students}"
    root.mkdir()
    started = time.perf_counter()
    world = build_world(root, students, vets=args.vets, syncs=args.syncs)
    memberships = sum(len(m) for _, _, m in desired_general_cohorts(world))
    print(f"\n## {students:,} students: {len(world.snapshot.people):,} accounts, "
          f"{len(world.snapshot.general_cohorts[PLATFORM]):,} general cohorts, "
          f"{memberships:,} memberships, {args.syncs:,} syncs "
          f"(world built in {time.perf_counter() - started:.0f} s)", flush=True)
    snapshot = root / "snapshot.pkl"
    snapshot.write_bytes(pickle.dumps(world.snapshot))
    maps = {name: root / name for name in ("map", "lost-noop", "lost-churn")}
    for folder in maps.values():
        folder.mkdir()
    nights: list[Night] = []

    emu_p = new_emulator(world, converged=False)

    def product(mode: str, day: int, map_dir: Path, environ: dict[str, str] | None = None
                ) -> tuple[dict[str, Any], Priced]:
        emu_p.take()
        job = {"snapshot": str(snapshot), "root": str(root), "url": emu_p.url, "mode": mode,
               "now": (NIGHT + dt.timedelta(days=day)).isoformat(), "map_dir": str(map_dir),
               "environ": environ or {}}
        run = in_child(product_night, job)
        calls = emu_p.take()
        run["changes"] = changes_of(calls, model)
        return run, Priced.of(calls, model)

    run, priced = product("apply", 0, maps["map"])
    syncs = priced.calls["local_ws_enrolcohort_add_instance"]
    nights.append(Night("first run", priced, run=run,
                        note=f"incl. {syncs:,} cohort syncs created "
                        f"({priced.seconds['local_ws_enrolcohort_add_instance']:,.0f} s), "
                        "which the naive script does not manage"))
    run, priced = product("apply", 1, maps["map"])
    nights.append(Night("no-op", priced, run=run))
    lost, priced = product("apply", 1, maps["lost-noop"])
    same = lost["digest"] == run["digest"]
    nights.append(Night("no-op, map lost", priced, run=lost,
                        note="same plan" if same else "PLAN DIFFERS"))

    emu_n = None
    if not args.no_naive:
        emu_n = new_emulator(world, converged=False)
        cohorts = root / "desired.pkl"
        cohorts.write_bytes(pickle.dumps(desired_general_cohorts(world)))
        for night in ("first run", "no-op"):
            emu_n.take()
            in_child(naive_night, {"url": emu_n.url, "cohorts": str(cohorts)})
            next(n for n in nights if n.name == night).naive = Priced.of(emu_n.take(), model)
        nights[2].naive = nights[1].naive

    changed = churn(world, fraction=args.churn)
    snapshot.write_bytes(pickle.dumps(world.snapshot))
    lost, lost_priced = product("plan", 2, maps["lost-churn"])
    approve = {"RECONCILER_APPROVED_DIGEST": lost["digest"]} if lost["tripped"] else {}
    run, priced = product("apply", 2, maps["map"], approve)
    same = lost["digest"] == run["digest"]
    note = f"{len(changed.cancelled)} IAs cancelled, {len(changed.added)} added"
    if approve:
        note += "; failsafe approved by digest"
    nights.append(Night("churn", priced, run=run, note=note, changes=run["changes"]))
    nights.append(Night("churn, map lost", lost_priced + priced.only(reads=False), run=lost,
                        note="same plan" if same else "PLAN DIFFERS"))
    emu_p.stop()
    if emu_n is not None:
        cohorts = root / "desired.pkl"
        cohorts.write_bytes(pickle.dumps(desired_general_cohorts(world)))
        emu_n.take()
        in_child(naive_night, {"url": emu_n.url, "cohorts": str(cohorts)})
        churned = Priced.of(emu_n.take(), model)
        nights[3].naive = nights[4].naive = churned
        emu_n.stop()
    world.directory.unbind()
    world.apogee.close()
    return nights


# -- report -----------------------------------------------------------------------------------

def ratio(a: float, b: float) -> str:
    return f"{b / a:,.1f}×" if a and b else "–"


def table(results: dict[int, list[Night]]) -> str:
    lines = [
        "| students | night | calls | naive calls | × fewer | real-Moodle s | naive s | × less "
        "| CPU s | peak RSS MB | plan |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for students, nights in results.items():
        for n in nights:
            naive_calls = n.naive.total_calls if n.naive else 0
            naive_s = n.naive.total_seconds if n.naive else 0.0
            lines.append(
                f"| {students:,} | {n.name} | {n.product.total_calls:,} | "
                f"{naive_calls:,} | {ratio(n.product.total_calls, naive_calls)} | "
                f"{n.product.total_seconds:,.1f} | {naive_s:,.0f} | "
                f"{ratio(n.product.total_seconds, naive_s)} | {n.run['cpu_s']:.2f} | "
                f"{n.run['rss_mb']:.0f} | {n.run['summary']}"
                + (f" ({n.note})" if n.note else "") + " |"
            )
    return "\n".join(lines)


def check_targets(results: dict[int, list[Night]]) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []
    for students, limit_s, rss in ((40_000, 30.0, 300.0), (100_000, 75.0, 400.0)):
        nights = {n.name: n for n in results.get(students, [])}
        if not nights:
            continue
        noop, churned, lost = nights["no-op"], nights["churn"], nights["no-op, map lost"]
        tag = f"{students // 1000}k"
        if students == 40_000:
            checks.append((f"{tag} no-op ≤ 70 calls", noop.product.total_calls <= 70,
                           f"{noop.product.total_calls}"))
            if noop.naive:
                times = noop.naive.total_seconds / noop.product.total_seconds
                checks.append((f"{tag} no-op ≥ 45× less real-Moodle time than naive",
                               times >= 45, f"{times:.1f}×"))
            checks.append((f"{tag} client + planner CPU ≤ 2 s (no-op, map present)",
                           noop.run["cpu_s"] <= 2.0,
                           f"{noop.run['cpu_s']:.2f} s (map lost: {lost.run['cpu_s']:.2f} s; "
                           f"churn: {churned.run['cpu_s']:.2f} s)"))
        checks.append((f"{tag} no-op ≤ {limit_s:g} real-Moodle s",
                       noop.product.total_seconds <= limit_s,
                       f"{noop.product.total_seconds:.1f} s ({noop.product.breakdown()})"))
        peak = max(n.run["rss_mb"] for n in nights.values())
        checks.append((f"{tag} peak RSS ≤ {rss:g} MB (every night)", peak <= rss,
                       f"{peak:.0f} MB"))
        changes = churned.changes or Priced()
        writes = changes.only(reads=False).total_seconds
        rest = churned.product.total_seconds - changes.total_seconds
        # The reading part may differ from the no-op's by the slice of a map grown or shrunk
        # by the churn itself (a few entries): 1 % of the no-op is allowed for it.
        checks.append((
            f"{tag} churn ≤ no-op + the cost of its changes",
            rest <= noop.product.total_seconds * 1.01,
            f"{churned.product.total_seconds:.1f} s = reading {rest:.1f} (no-op "
            f"{noop.product.total_seconds:.1f}) + changes {changes.total_seconds:.1f} (writes "
            f"{writes:.1f}, users they concern looked up afresh and the write check "
            f"{changes.total_seconds - writes:.1f})"))
        checks.append((f"{tag} map lost: same plan (no-op and churn)",
                       nights["no-op, map lost"].note == "same plan"
                       and nights["churn, map lost"].note == "same plan",
                       f"{lost.product.total_seconds:.1f} s, {lost.product.total_calls} calls"))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", default="5000,40000,100000",
                        help="comma-separated sizes (default: %(default)s)")
    parser.add_argument("--vets", type=int, default=2_500)
    parser.add_argument("--syncs", type=int, default=3_000)
    parser.add_argument("--churn", type=float, default=0.01, help="share of IAs that change")
    parser.add_argument("--no-naive", action="store_true", help="run the reconciler only")
    parser.add_argument("--verbose", action="store_true", help="calls by function")
    args = parser.parse_args()
    model = CostModel()
    results: dict[int, list[Night]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for students in (int(s) for s in args.students.split(",")):
            results[students] = bench_size(students, args, model, Path(tmp))
            for night in results[students]:
                if args.verbose:
                    print(f"{night.name}: reconciler {night.product.breakdown()}")
                    if night.naive:
                        print(f"{night.name}: naive {night.naive.breakdown()}")
                if night.run.get("user_map"):
                    m = night.run["user_map"]
                    print(f"{night.name}: user map {json.dumps(m, ensure_ascii=False)[:300]}")
    print("\n" + table(results))
    checks = check_targets(results)
    if checks:
        print("\n| target | met | figure |\n|---|---|---|")
        for name, met, figure in checks:
            print(f"| {name} | {'yes' if met else '**no**'} | {figure} |")


if __name__ == "__main__":
    main()
