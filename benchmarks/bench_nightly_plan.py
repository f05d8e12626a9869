"""Benchmark: a no-op nightly plan at university scale (target: <= 150 calls, <= 20 s).

    python benchmarks/bench_nightly_plan.py [--students 40000] [--vets 2500] [--syncs 3000]
                                            [--latency-ms 5] [--patterns 0]
                                            [--pattern-courses 20]

Builds a converged Ecampus: APOGÉE (sqlite) and the directory (in-process ldap3) generated
for ``--students`` students over ``--vets`` étape versions, ``--syncs`` course syncs declared
in YAML (a tenth with a group, a few with method: manual), and a Moodle emulator holding
exactly what the reconciler would have made. Then it times ``make_plan`` (Moodle reads and
planning; the sources are read once beforehand and timed apart) with the emulator answering
every call after ``--latency-ms``, and reports the web-service calls by function, the wall
time and the peak memory.

``--patterns N`` adds N course patterns (half by category, with subcategories; half by
shortname), each giving two syncs to ``--pattern-courses`` courses of its own: the calls
should grow by one (the categories, read once in bulk), not with the patterns or courses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

from reconciler.applying.runner import Environment, make_plan
from reconciler.clock import end_of_day_timestamp
from reconciler.demo import data as demo_data
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient
from reconciler.planning.planner import cohort_description, instance_name
from reconciler.planning.state import DesiredCohort, DesiredSync
from reconciler.sources import read_sources

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
EXPIRES = dt.date(2027, 1, 15)


def write_repo(root: Path, cohorts: list[str], syncs: int) -> list[dict]:
    """Platforms file and ``syncs`` declared syncs over ``syncs // 2`` courses."""
    (root / "cohorts" / "ecampus" / "syncs").mkdir(parents=True)
    shutil.copy(REPO / "cohorts" / "platforms.yaml", root / "cohorts" / "platforms.yaml")
    declared = []
    for n in range(syncs):
        course = f"C{n // 2:05d}"
        item = {
            "cohort": cohorts[n % len(cohorts)],
            "role": "student" if n % 2 else "teacher",
            "reason": "benchmark",
        }
        if n % 10 == 3:
            item["group"] = f"Groupe {n % 7}"
        if n % 150 == 5:
            item.update(method="manual", expires=EXPIRES.isoformat())
        declared.append({"course": course, **item})
    by_course: dict[str, list[dict]] = {}
    for d in declared:
        by_course.setdefault(d["course"], []).append({k: v for k, v in d.items() if k != "course"})
    for course, items in by_course.items():
        path = root / "cohorts" / "ecampus" / "syncs" / f"{course}.yaml"
        path.write_text(
            yaml.safe_dump({"course": course, "syncs": items}, allow_unicode=True), encoding="utf-8"
        )
    return declared


def write_patterns(root: Path, cohorts: list[str], patterns: int, courses: int
                   ) -> tuple[list[dict], list[dict], list[dict]]:
    """``patterns`` course patterns (even ones by category, odd ones by shortname), each with
    two syncs for its ``courses`` courses: (the syncs they make, the courses with their
    category idnumber, the categories)."""
    folder = root / "cohorts" / "ecampus" / "patterns"
    folder.mkdir(parents=True)
    made, placed, categories = [], [], []
    for k in range(patterns):
        by_category = k % 2 == 0
        top, sub = f"CAT-PAT-{k:03d}", f"CAT-PAT-{k:03d}-SUB"
        if by_category:
            categories += [{"name": top, "idnumber": top},
                           {"name": sub, "idnumber": sub, "parent": top}]
            selector: dict = {"category": top, "subcategories": True}
        else:
            selector = {"shortname": f"PS{k:03d}-*"}
        entries = [{"cohort": cohorts[k % len(cohorts)], "role": "student", "reason": "benchmark"},
                   {"cohort": cohorts[(k + 1) % len(cohorts)], "role": "teacher",
                    "reason": "benchmark", "group": "Enseignants"}]
        doc = {"owners": ["bench@example.org"], "courses": selector, "syncs": entries}
        (folder / f"p{k:03d}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        for n in range(courses):
            course = f"PS{k:03d}-{n:04d}"
            category = (sub if n % 2 else top) if by_category else None
            placed.append({"shortname": course, "category": category})
            made += [{"course": course, **e} for e in entries]
    return made, placed, categories


def converged_seed(data: demo_data.DemoData, snap, declared: list[dict]) -> dict:
    people = [
        {
            "username": u,
            "firstname": p.firstname,
            "lastname": p.lastname,
            "email": p.email or f"{u}@example.org",
        }
        for u, p in snap.people.items()
    ]
    cohorts = []
    members: dict[str, list[str]] = {}
    for gc in snap.general_cohorts["ecampus"]:
        want = DesiredCohort(
            gc.idnumber, gc.name, "general", frozenset(gc.members), "", description=gc.description
        )
        cohorts.append(
            {
                "idnumber": gc.idnumber,
                "name": gc.name,
                "description": cohort_description(want),
                "members": sorted(gc.members),
            }
        )
        members[gc.idnumber] = sorted(gc.members)
    courses = sorted({d["course"] for d in declared})
    syncs, enrolments = [], []
    roles = {"student": 5, "teacher": 4}
    for d in declared:
        s = DesiredSync(
            d["course"],
            d["cohort"],
            d["role"],
            roles[d["role"]],
            d.get("method", "cohort"),
            "benchmark",
            "",
        )
        if s.method == "manual":
            enrolments += [
                {
                    "course": s.course,
                    "username": u,
                    "roleid": s.roleid,
                    "timeend": end_of_day_timestamp(EXPIRES),
                }
                for u in members[s.cohort]
            ]
        else:
            syncs.append(
                {
                    "course": s.course,
                    "cohort": s.cohort,
                    "roleid": s.roleid,
                    "name": instance_name(s),
                    "group": d.get("group"),
                }
            )
    return {
        "courses": [{"shortname": c, "fullname": f"Cours {c}"} for c in courses],
        "users": people,
        "cohorts": cohorts,
        "cohort_syncs": syncs,
        "enrolments": enrolments,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=40_000)
    parser.add_argument("--vets", type=int, default=2_500)
    parser.add_argument("--syncs", type=int, default=3_000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--patterns", type=int, default=0)
    parser.add_argument("--pattern-courses", type=int, default=20)
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="Trace Python allocations during the plan (slows it down).",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        data = demo_data.generate(seed=1, students=args.students, vets=args.vets)
        apogee = demo_data.write_apogee(data, root / "apogee.db")
        directory = demo_data.mock_directory(data.entries)
        env0 = Environment(repo=root, environ={}, now=NOW)
        vets = [v for v in data.vets if "TEST" not in v.cod_etp][:50]
        cohort_ids = [f"etp-{v.cod_etp}-{v.cod_vrs_vet}" for v in vets]
        declared = write_repo(root, cohort_ids, args.syncs)
        from_patterns, placed, categories = write_patterns(
            root, cohort_ids, args.patterns, args.pattern_courses)
        t = time.perf_counter()
        snap = read_sources(
            env0.settings, {}, apogee_conn=apogee, ldap_conn=directory, platforms=["ecampus"],
            today=env0.today,
        )
        sources_s = time.perf_counter() - t
        assert snap.healthy, snap.reasons
        seed = converged_seed(data, snap, declared + from_patterns)
        where = {c["shortname"]: c["category"] for c in placed}
        seed["categories"] = categories
        for course in seed["courses"]:
            if where.get(course["shortname"]):
                course["category_idnumber"] = where[course["shortname"]]
        emu = MoodleEmulator(EmulatorConfig(token="T", latency_ms=0, now=NOW))
        emu.start()
        emu.seed(seed)
        setup_s = time.perf_counter() - started
        memberships = sum(len(c["members"]) for c in seed["cohorts"])
        manual = len(declared) + len(from_patterns) - len(seed["cohort_syncs"])
        print(
            f"setup {setup_s:.1f} s: {len(seed['users'])} users, {len(seed['cohorts'])} "
            f"general cohorts, {memberships} memberships, {len(seed['cohort_syncs'])} cohort "
            f"syncs + {manual} manual over "
            f"{len(seed['courses'])} courses; sources read in {sources_s:.1f} s; "
            f"{args.patterns} course patterns making {len(from_patterns)} of those syncs"
        )

        emu.config.latency_ms = args.latency_ms
        emu.reset_counters()
        env = Environment(
            repo=root,
            environ={},
            now=NOW,
            client_factory=lambda p: MoodleClient(emu.url, "T"),
            sources_reader=lambda s, names, today: snap,
        )
        if args.trace_memory:
            tracemalloc.start()
        t = time.perf_counter()
        plan = make_plan(env, "ecampus")
        plan_s = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.trace_memory else float("nan")
        tracemalloc.stop()
        emu.stop()

    calls = sum(emu.call_counts.values())
    print(f"plan: {plan.summary()} ({len(plan.warnings)} warnings)")
    print(
        f"web-service calls: {calls}  "
        + ", ".join(f"{k} {v}" for k, v in sorted(emu.call_counts.items(), key=lambda kv: -kv[1]))
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"no-op plan at {args.latency_ms:g} ms latency: {plan_s:.2f} s wall, "
        f"peak traced memory {peak:.0f} MB (process peak RSS {rss:.0f} MB)"
    )
    if plan.has_changes:
        raise SystemExit("the benchmark state was not converged: " + plan.summary())


if __name__ == "__main__":
    main()
