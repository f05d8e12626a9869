"""Benchmark: validate a tree of 5,000 declaration files (target: under 10 s on one core).

    python benchmarks/bench_validate.py [--files 5000] [--members 30]

Generates a temporary repository (half manual cohorts, half course sync files spread over
the three platforms), then times ``validate_tree`` (YAML, schema and every lint rule) and
reports wall time, CPU time and peak memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import tempfile
import time
from pathlib import Path

from reconciler.declarations.validate import validate_tree

REPO = Path(__file__).resolve().parent.parent


def generate(root: Path, files: int, members: int) -> None:
    cohorts = root / "cohorts"
    cohorts.mkdir(parents=True)
    shutil.copy(REPO / "cohorts" / "platforms.yaml", cohorts / "platforms.yaml")
    platforms = ["ecampus", "collegium", "prelude"]
    for i in range(files // 2):
        platform = platforms[i % 3]
        idnumber = f"man-bench-{i:05d}"
        folder = cohorts / platform / "cohorts"
        folder.mkdir(parents=True, exist_ok=True)
        body = [
            f"idnumber: {idnumber}",
            f"name: Cohorte de test {i}",
            "owners:",
            "  - owner@example.org",
            "members:",
        ]
        body += [f"  - e{(i * members + m):08d}" for m in range(members)]
        (folder / f"{idnumber}.yaml").write_text("\n".join(body) + "\n", encoding="utf-8")
    for i in range(files - files // 2):
        platform = platforms[i % 3]
        course = f"COURSE-{i:05d}"
        folder = cohorts / platform / "syncs"
        folder.mkdir(parents=True, exist_ok=True)
        method = "manual" if platform == "prelude" else "cohort"
        body = [
            f"course: {course}",
            "syncs:",
            f"  - cohort: man-bench-{i:05d}",
            "    role: student",
            f"    method: {method}",
            "    expires: 2027-01-15",
            "    reason: benchmark sync",
            f"  - cohort: man-bench-{i:05d}",
            "    role: teacher",
            "    method: manual",
            "    expires: 2027-01-10",
            "    reason: benchmark sync",
        ]
        (folder / f"{course}.yaml").write_text("\n".join(body) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--members", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.files, args.members)
        wall = time.perf_counter()
        cpu = time.process_time()
        report = validate_tree(root, dt.date(2026, 11, 28))
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"files checked: {report.files_checked}  errors: {report.errors}  "
        f"warnings: {report.warnings}"
    )
    print(f"wall {wall:.2f} s  cpu {cpu:.2f} s  peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
