"""Benchmark: first apply and no-op plan on the real Moodle 4.5 site, beside the emulator.

    python benchmarks/bench_real_moodle.py [--students 2000 10000] [--syncs 200]
                                           [--backends emulator real]

Needs the real site (README, "Testing against a real Moodle"): MOODLE_URL, MOODLE_TOKEN,
REALMOODLE_DIR and REALMOODLE_BUNDLE as ``.ci/run`` exports them (the site is reset before
each world: everything on it is lost). For each ``--students`` value it builds one world —
APOGÉE (sqlite) and the directory (in-process ldap3) for that many students, ``--syncs``
course syncs declared in YAML (a tenth with a group, a few with ``method: manual``), and a
Moodle holding the accounts and courses only — then, on each backend in turn:

1. seeds that Moodle through the web services (the same calls on both backends);
2. times the **first apply** (``reconcile apply``'s code: plan, then apply);
3. times the **no-op plan** that follows (``reconcile plan``'s code).

Calls are counted on the client side by function, so both backends are measured the same
way. The emulator answers without added latency: its figures are the reconciler's own cost.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import wsseed  # noqa: E402
from support.realmoodle import site_from_env  # noqa: E402

from reconciler.applying.runner import Environment, apply, make_plan  # noqa: E402
from reconciler.demo import data as demo_data  # noqa: E402
from reconciler.emulator import EmulatorConfig, MoodleEmulator  # noqa: E402
from reconciler.moodle.client import MoodleClient  # noqa: E402
from reconciler.sources import read_sources  # noqa: E402

NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
EXPIRES = dt.date(2027, 1, 15)
TOKEN = "bench-token"


class CountingSession(requests.Session):
    """A ``requests.Session`` that counts web-service calls by ``wsfunction`` and adds up the
    seconds each took (calls overlap on the client's pool: the sum can exceed wall time)."""

    def __init__(self, counts: collections.Counter[str],
                 seconds: collections.Counter[str]) -> None:
        super().__init__()
        self.counts, self.seconds = counts, seconds

    def post(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:
        function = next((v for k, v in (data or []) if k == "wsfunction"), "?")
        started = time.perf_counter()
        try:
            return super().post(url, data=data, **kwargs)
        finally:
            self.counts[function] += 1
            self.seconds[function] += time.perf_counter() - started


def _by_function(counts: collections.Counter[str], seconds: collections.Counter[str]) -> str:
    return ", ".join(f"{name} {counts[name]} ({seconds[name]:.1f} s)"
                     for name, _ in seconds.most_common())


def write_repo(root: Path, cohorts: list[str], syncs: int) -> list[str]:
    """platforms.yaml and ``syncs`` syncs over ``syncs // 2`` courses; returns the courses."""
    (root / "cohorts" / "ecampus" / "syncs").mkdir(parents=True)
    shutil.copy(REPO / "cohorts" / "platforms.yaml", root / "cohorts" / "platforms.yaml")
    by_course: dict[str, list[dict[str, Any]]] = {}
    for n in range(syncs):
        item: dict[str, Any] = {"cohort": cohorts[n % len(cohorts)],
                                "role": "student" if n % 2 else "teacher",
                                "reason": "benchmark"}
        if n % 10 == 3:
            item["group"] = f"Groupe {n % 7}"
        if n % 50 == 5:
            item.update(method="manual", expires=EXPIRES.isoformat())
        by_course.setdefault(f"B{n // 2:05d}", []).append(item)
    for course, items in by_course.items():
        path = root / "cohorts" / "ecampus" / "syncs" / f"{course}.yaml"
        path.write_text(yaml.safe_dump({"course": course, "syncs": items}, allow_unicode=True),
                        encoding="utf-8")
    return sorted(by_course)


def moodle_seed(snap: Any, courses: list[str]) -> dict[str, Any]:
    """What exists before the first apply: every account, every course. E-mails are made
    unique from the username: Moodle refuses a second account with the same address, and
    the directory has a few (two accounts of one person)."""
    users = [{"username": u, "firstname": p.firstname, "lastname": p.lastname,
              "email": f"{u}@etu.example.org"} for u, p in sorted(snap.people.items())]
    return {"courses": [{"shortname": c, "fullname": f"Cours {c}"} for c in courses],
            "users": users}


def measure(url: str, token: str, root: Path, snap: Any, seed: dict[str, Any],
            max_input_vars: int) -> dict[str, Any]:
    counts: collections.Counter[str] = collections.Counter()
    seconds: collections.Counter[str] = collections.Counter()

    def client(_platform: Any) -> MoodleClient:
        # The nightly job's client (the runner's defaults), counting what it sends.
        return MoodleClient(url, token, session=CountingSession(counts, seconds))

    t = time.perf_counter()
    # Thousands of accounts per request: far longer than a nightly call, never resent.
    with MoodleClient(url, token, max_input_vars=max_input_vars, timeout=900) as c:
        wsseed.seed(c, seed)
    seed_s = time.perf_counter() - t
    env = Environment(repo=root, environ={}, now=NOW, client_factory=client,
                      sources_reader=lambda s, names: snap)
    t = time.perf_counter()
    outcome = apply(env, "ecampus", allow_dirty=True, progress=False)
    first_s, first_calls = time.perf_counter() - t, sum(counts.values())
    first_by = _by_function(counts, seconds)
    if not outcome.result.ok:
        failed = [f"{a.kind} {a.target}: {e}" for a, e in outcome.result.failed[:3]]
        raise SystemExit(f"first apply failed: {failed}")
    counts.clear()
    seconds.clear()
    env = Environment(repo=root, environ={}, now=NOW, client_factory=client,
                      sources_reader=lambda s, names: snap)
    t = time.perf_counter()
    plan = make_plan(env, "ecampus")
    noop_s = time.perf_counter() - t
    if plan.has_changes:
        raise SystemExit("not converged after the first apply: " + plan.summary())
    return {"seed_s": seed_s, "first_s": first_s, "first_calls": first_calls,
            "first_by": first_by, "first_summary": outcome.plan.summary(),
            "noop_s": noop_s, "noop_calls": sum(counts.values()),
            "noop_by": _by_function(counts, seconds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--syncs", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["emulator", "real"],
                        choices=["emulator", "real"])
    args = parser.parse_args()
    site = site_from_env(os.environ)
    if "real" in args.backends and (site is None or not site.can_reset):
        raise SystemExit("the real backend needs MOODLE_URL, MOODLE_TOKEN, REALMOODLE_DIR and "
                         "REALMOODLE_BUNDLE (README, 'Testing against a real Moodle')")
    rows = []
    for students in args.students:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            data = demo_data.generate(seed=1, students=students, vets=max(students // 60, 20))
            apogee = demo_data.write_apogee(data, root / "apogee.db")
            directory = demo_data.mock_directory(data.entries)
            vets = [v for v in data.vets if "TEST" not in v.cod_etp][:50]
            courses = write_repo(root, [f"etp-{v.cod_etp}-{v.cod_vrs_vet}" for v in vets],
                                 args.syncs)
            env0 = Environment(repo=root, environ={}, now=NOW)
            snap = read_sources(env0.settings, {}, apogee_conn=apogee, ldap_conn=directory,
                                platforms=["ecampus"])
            assert snap.healthy, snap.reasons
            seed = moodle_seed(snap, courses)
            for backend in args.backends:
                if backend == "emulator":
                    with MoodleEmulator(EmulatorConfig(token=TOKEN, now=NOW)) as emu:
                        got = measure(emu.url, TOKEN, root, snap, seed, 10000)
                else:
                    assert site is not None
                    site.reset()
                    got = measure(site.url, site.token, root, snap, seed, site.max_input_vars)
                rows.append((len(seed["users"]), backend, got))
                print(f"{len(seed['users'])} accounts, {backend}: seeded in {got['seed_s']:.1f} s;"
                      f" first apply {got['first_calls']} calls {got['first_s']:.1f} s "
                      f"({got['first_summary']}); no-op plan {got['noop_calls']} calls "
                      f"{got['noop_s']:.1f} s", flush=True)
                print(f"   first apply calls: {got['first_by']}", flush=True)
                print(f"   no-op plan calls: {got['noop_by']}", flush=True)
    print()
    print("| accounts | backend | first apply: calls | seconds | no-op plan: calls | seconds |")
    print("|---|---|---|---|---|---|")
    for accounts, backend, got in rows:
        print(f"| {accounts:,} | {backend} | {got['first_calls']} | {got['first_s']:.1f} | "
              f"{got['noop_calls']} | {got['noop_s']:.1f} |")


if __name__ == "__main__":
    main()
