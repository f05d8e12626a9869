"""Benchmark: ``reconcile explain`` for one student of a 40,000-student university.

    python benchmarks/bench_explain.py [--students 40000] [--vets 2500] [--syncs 3000]
                                       [--latency-ms 5]

The world of ``bench_nightly_plan.py``: APOGÉE (sqlite) and the directory generated for
``--students`` students over ``--vets`` étape versions, ``--syncs`` declared course syncs
(committed to git, so that explain blames their lines), and a Moodle emulator holding
exactly what the reconciler would have made (every general cohort with its members). The
directory is served by a real slapd when one is installed (else the in-process ldap3 mock).
Then one student's IA is cancelled and ``explain`` runs for that student (with the shipped
platforms.yaml, Ecampus keeps a leaver 14 days) and for a student with nothing to do, the
emulator answering every call after ``--latency-ms``. Reported: web-service calls by
function, LDAP searches, APOGÉE queries and wall time (the declarations' loading, which
every plan pays too, timed apart), next to what the whole nightly plan costs on the same
world.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import git
from bench_nightly_plan import NOW, converged_seed, write_repo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.slapd import slapd_available, start_slapd  # noqa: E402

from reconciler.applying.runner import Environment, make_plan  # noqa: E402
from reconciler.demo import data as demo_data  # noqa: E402
from reconciler.emulator import EmulatorConfig, MoodleEmulator  # noqa: E402
from reconciler.helpdesk import explain  # noqa: E402
from reconciler.moodle.client import MoodleClient  # noqa: E402
from reconciler.sources import read_sources  # noqa: E402

LATER = NOW + dt.timedelta(days=1)


def _cancel_one(apogee: Path, year: str, vet: str) -> str:
    """Cancel the IA of the first student in force in ``vet``; their username."""
    etp, vrs = vet.rsplit("-", 1)
    with sqlite3.connect(apogee) as conn:
        cod_ind, cod_etu = conn.execute(
            "SELECT iae.cod_ind, ind.cod_etu FROM ins_adm_etp iae JOIN individu ind"
            " ON ind.cod_ind = iae.cod_ind JOIN ins_adm_anu iaa ON iaa.cod_ind = iae.cod_ind"
            " AND iaa.cod_anu = iae.cod_anu WHERE iae.cod_anu = ? AND iae.cod_etp = ?"
            " AND iae.cod_vrs_vet = ? AND iae.eta_iae = 'E' AND iaa.eta_iaa = 'E'"
            " AND iae.tem_iae_prm = 'O' ORDER BY iae.cod_ind LIMIT 1",
            (year, etp, vrs)).fetchone()
        conn.execute("UPDATE ins_adm_etp SET eta_iae = 'A', dat_annul_res_iae = ?"
                     " WHERE cod_anu = ? AND cod_ind = ? AND cod_etp = ? AND cod_vrs_vet = ?",
                     (NOW.date().isoformat(), year, cod_ind, etp, vrs))
    return f"e{cod_etu}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=40_000)
    parser.add_argument("--vets", type=int, default=2_500)
    parser.add_argument("--syncs", type=int, default=3_000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true",
                        help="Profile the first explain (cProfile, top 25 by cumulative time).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        data = demo_data.generate(seed=1, students=args.students, vets=args.vets)
        apogee = root / "apogee.db"
        demo_data.write_apogee(data, apogee).close()
        vets = [v for v in data.vets if "TEST" not in v.cod_etp][:50]
        cohort_ids = [f"etp-{v.cod_etp}-{v.cod_vrs_vet}" for v in vets]
        declared = write_repo(root, cohort_ids, args.syncs)
        repo = git.Repo.init(root)
        (root / ".gitignore").write_text("apogee.db\nslapd/\n.reconciler/\n", encoding="utf-8")
        repo.git.add(A=True)
        repo.index.commit("declarations")
        server = None
        if slapd_available():
            server = start_slapd(root / "slapd", demo_data.directory_ldif(data.entries),
                                 size_limit=500)
            environ = {**server.environ(), "APOGEE_URL": f"sqlite:///{apogee}"}
            ldap_conn, where = None, "slapd"
        else:
            environ = {"APOGEE_URL": f"sqlite:///{apogee}"}
            ldap_conn, where = demo_data.mock_directory(data.entries), "the ldap3 mock"
        try:
            env0 = Environment(repo=root, environ=environ, now=NOW)
            snap = read_sources(env0.settings, environ, ldap_conn=ldap_conn,
                                platforms=["ecampus"])
            assert snap.healthy, snap.reasons
            seed = converged_seed(data, snap, declared)
            with MoodleEmulator(EmulatorConfig(token="T", latency_ms=0, now=NOW)) as emu:
                emu.seed(seed)
                memberships = sum(len(c["members"]) for c in seed["cohorts"])
                print(f"setup {time.perf_counter() - started:.1f} s: {len(seed['users'])} "
                      f"users, {len(seed['cohorts'])} general cohorts, {memberships} "
                      f"memberships, {args.syncs} declared syncs over "
                      f"{len(seed['courses'])} courses; directory on {where}")
                leaver = _cancel_one(apogee, data.year, vets[0].key)
                steady = sorted(seed["cohorts"][1]["members"])[0]
                emu.config.latency_ms = args.latency_ms

                def client_factory(platform: object) -> MoodleClient:
                    return MoodleClient(emu.url, "T")

                for who, label in ((leaver, "IA cancelled yesterday"),
                                   (steady, "nothing to do")):
                    emu.reset_counters()
                    env = Environment(repo=root, environ={**environ, "ECAMPUS_TOKEN": "T"},
                                      now=LATER, client_factory=client_factory)
                    t = time.perf_counter()
                    env.declarations()  # timed apart: every plan loads them the same way
                    load = time.perf_counter() - t
                    profiler = cProfile.Profile() if args.profile and who == leaver else None
                    t = time.perf_counter()
                    if profiler is not None:
                        profiler.enable()
                    doc = explain(env, who, ["ecampus"], ldap_conn=ldap_conn)
                    wall = time.perf_counter() - t
                    if profiler is not None:
                        profiler.disable()
                        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
                    calls = sum(emu.call_counts.values())
                    verdict = doc["platforms"]["ecampus"]["verdict"]["summary"]
                    print(f"explain {who} ({label}): {verdict}")
                    print(f"  {doc['reads']['ldap_searches']} LDAP searches, "
                          f"{doc['reads']['apogee_queries']} APOGÉE query, {calls} web-service "
                          f"calls (" + ", ".join(f"{k} {v}" for k, v in sorted(
                              emu.call_counts.items(), key=lambda kv: -kv[1])) + f"), "
                          f"{wall:.2f} s wall at {args.latency_ms:g} ms latency, after "
                          f"{load:.2f} s loading the {args.syncs // 2} declaration files")

                emu.reset_counters()
                env = Environment(repo=root, environ=environ, now=LATER,
                                  client_factory=client_factory,
                                  sources_reader=lambda *_: snap)
                env.declarations()
                t = time.perf_counter()
                plan = make_plan(env, "ecampus")
                wall = time.perf_counter() - t
                print(f"for comparison, the whole nightly plan (sources read and declarations "
                      f"loaded beforehand): {sum(emu.call_counts.values())} calls, {wall:.2f} s "
                      f"wall ({plan.summary()})")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
