"""Benchmark: general cohorts for 40,000 students and 2,500 VETs.

Generates the fictional university at scale, writes the sqlite APOGÉE copy, loads the
directory into a throw-away slapd (server size limit far below the entry count, so the read
must page), then times ``read_sources`` end to end: the §1.5 query, the paged LDAP read and
the cohort computation for every platform. Target: under 60 s and under 500 MB.

    /work/venv/bin/python benchmarks/bench_general_cohorts.py [--students N] [--vets N]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.slapd import slapd_available, start_slapd  # noqa: E402

from reconciler.demo import data as dd  # noqa: E402
from reconciler.settings import settings_from_document  # noqa: E402
from reconciler.sources import read_sources  # noqa: E402

TARGET_SECONDS = 60.0
TARGET_MB = 500.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40_000)
    parser.add_argument("--vets", type=int, default=2_500)
    parser.add_argument("--size-limit", type=int, default=500,
                        help="slapd server size limit (default 500)")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date(2026, 11, 28),
                        help="read as on this day (default 2026-11-28; 2026-07-15 falls in "
                             "the rollover overlap of the shipped platforms.yaml, which reads "
                             "last year's IAs too)")
    args = parser.parse_args()
    if not slapd_available():
        print("skipped: /usr/sbin/slapd is not installed")
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-gc-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        data = dd.generate(seed=2026, students=args.students, vets=args.vets)
        dd.write_apogee(data, tmp / "apogee.db").close()
        ldif = dd.directory_ldif(data.entries)
        t1 = time.perf_counter()
        server = start_slapd(tmp / "slapd", ldif, size_limit=args.size_limit)
        t2 = time.perf_counter()
        print(f"setup: generated {len(data.students)} students, {len(data.vets)} VETs, "
              f"{len(data.iae)} IA rows, {len(data.entries)} directory entries in "
              f"{t1 - t0:.1f} s; slapadd + slapd start {t2 - t1:.1f} s "
              f"(size limit {args.size_limit})")
        del data, ldif
        try:
            doc = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text("utf-8"))
            doc = copy.deepcopy(doc)
            settings = settings_from_document(doc, root=tmp)
            env = {**server.environ(), "APOGEE_URL": f"sqlite:///{tmp / 'apogee.db'}"}

            start = time.perf_counter()
            snap = read_sources(settings, env, today=args.today)
            wall = time.perf_counter() - start

            tracemalloc.start()
            traced = read_sources(settings, env, today=args.today)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            server.stop()

    assert snap.healthy, snap.reasons
    assert traced.digest == snap.digest
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    st = snap.stats
    print(f"APOGÉE: {st['apogee']['rows']} IA rows in {st['apogee']['seconds']:.2f} s")
    if "previous_year" in st["apogee"]:
        last = st["apogee"]["previous_year"]
        print(f"APOGÉE, {last['academic_year']} (rollover overlap on "
              f"{', '.join(st['overlap'])}): {last['rows']} IA rows in {last['seconds']:.2f} s")
    print(f"LDAP: {st['ldap']['entries']} entries in {st['ldap']['pages']} pages, "
          f"{st['ldap']['seconds']:.2f} s")
    for name, p in st["platforms"].items():
        print(f"{name}: {p['cohorts']} cohorts, {p['members']} members, "
              f"{p['memberships']} memberships, {p['ia_without_account']['count']} IA without "
              "account" + (f"; overlap: +{p['overlap']['members']} members from last year"
                           if "overlap" in p else ""))
    print(f"wall time read_sources: {wall:.2f} s (target < {TARGET_SECONDS:.0f} s)")
    print(f"peak traced Python memory in read_sources: {peak / 2**20:.1f} MB")
    print(f"process peak RSS (ru_maxrss, includes data generation): {rss_mb:.1f} MB "
          f"(target < {TARGET_MB:.0f} MB)")
    ok = wall < TARGET_SECONDS and rss_mb < TARGET_MB
    print("OK" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
