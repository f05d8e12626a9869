"""Record the real-Moodle timings the cost model cannot get from the first recording.

``data/real-moodle-timings.jsonl`` cannot tell apart what a call costs per item sent and
per row answered for ``get_cohort_members`` (it timed 1 or 3 cohorts of 500–1,000 members)
nor ``get_users_by_field`` (every username it sent existed), and never timed the other
reads and writes the reconciler makes. This script times them on a real Moodle 4.5 with
``local_ws_enrolcohort`` (a throwaway site: it creates users, cohorts, courses, groups and
cohort syncs under a unique prefix), one request at a time on one keep-alive session:

* ``get_cohort_members`` of 1, 10 and 100 cohorts of 16 members, and of one of 1,600;
* ``get_users_by_field`` of 1, 100 and 1,000 usernames that match no one, and of existing
  ones, by username and by id;
* ``get_cohorts``, ``get_courses_by_field`` and ``local_ws_enrolcohort_get_instances`` of
  the whole site at two sizes, ``search_cohorts``, ``get_course_groups``;
* ``create_cohorts``, ``create_groups``, ``local_ws_enrolcohort_add_instance`` and
  ``update_instance``.

A ``get_site_info`` is timed between every two measured calls: each record keeps its
session's median round trip (``round_trip_s``), with which the cost model rescales the
record to the first recording's round trip (the site may run on a busier machine).

    python benchmarks/record_real_timings.py --url URL --token TOKEN \\
        [--out benchmarks/data/real-moodle-timings-2.jsonl] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from cost_model import count_items, count_rows

from reconciler.moodle.client import MoodleClient
from reconciler.moodle.encoding import encode
from reconciler.moodle.types import NewCohort, NewCourse, NewUser

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "real-moodle-timings-2.jsonl"


class Recorder:
    """Times single calls, with a round trip between them; keeps the records."""

    def __init__(self, client: MoodleClient, repeat: int) -> None:
        self.client, self.repeat = client, repeat
        self.records: list[dict[str, Any]] = []
        self.round_trips: list[float] = []

    def _timed(self, function: str, params: dict[str, Any]) -> tuple[float, Any]:
        started = time.perf_counter()
        answer = self.client.call(function, params)
        return time.perf_counter() - started, answer

    def measure(self, label: str, function: str, params: dict[str, Any],
                repeat: int | None = None) -> Any:
        answer = None
        for _ in range(repeat or self.repeat):
            self.round_trips.append(self._timed("core_webservice_get_site_info", {})[0])
            seconds, answer = self._timed(function, params)
            pairs = encode(params)
            self.records.append({
                "label": label, "wsfunction": function, "seconds": round(seconds, 4),
                "items": count_items(pairs), "rows": count_rows(answer),
            })
        return answer

    def write(self, path: Path) -> None:
        round_trip = statistics.median(self.round_trips)
        with path.open("w", encoding="utf-8") as out:
            out.write(json.dumps({"label": "get_site_info (round trip between calls)",
                                  "wsfunction": "core_webservice_get_site_info",
                                  "seconds": round(round_trip, 4), "items": 0, "rows": 0,
                                  "round_trip_s": round(round_trip, 4)}) + "\n")
            for record in self.records:
                out.write(json.dumps({**record, "round_trip_s": round(round_trip, 4)}) + "\n")


def setup(client: MoodleClient, prefix: str) -> dict[str, Any]:
    """1,600 users, 100 cohorts of 16 and one of 1,600, 300 courses (first 100 with a
    cohort sync and a group): returns their ids."""
    names = [f"{prefix}u{i:05d}" for i in range(1600)]
    for k in range(0, len(names), 100):
        client.create_users([
            NewUser(username=n, firstname="Timing", lastname=n, email=f"{n}@timing.example",
                    auth="manual", password="Timing-Pass-1!") for n in names[k:k + 100]])
    ids = [int(u["id"]) for u in client.get_users_by_field("username", names)]
    cohorts = client.create_cohorts([
        NewCohort(name=f"{prefix} c{j:03d}", idnumber=f"{prefix}-c{j:03d}",
                  category_type="system", category_value="") for j in range(101)])
    small = [int(c["id"]) for c in cohorts[:100]]
    big = int(cohorts[100]["id"])
    client.add_cohort_members([(small[j], ids[j * 16 + m]) for j in range(100)
                               for m in range(16)])
    client.add_cohort_members([(big, u) for u in ids])
    return {"users": ids, "names": names, "small": small, "big": big}


def more_cohorts(client: MoodleClient, prefix: str, start: int, count: int) -> None:
    client.create_cohorts([
        NewCohort(name=f"{prefix} d{j:04d}", idnumber=f"{prefix}-d{j:04d}",
                  category_type="system", category_value="") for j in range(start, start + count)])


def courses(client: MoodleClient, prefix: str, start: int, count: int) -> list[int]:
    made = client.create_courses([
        NewCourse(fullname=f"Timing {prefix} {j}", shortname=f"{prefix}-k{j:04d}", categoryid=1)
        for j in range(start, start + count)])
    return [int(c["id"]) for c in made]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    prefix = f"rt{int(time.time()) % 100000}"
    client = MoodleClient(args.url, args.token, max_input_vars=10_000, concurrency=1)
    rec = Recorder(client, args.repeat)
    for _ in range(3):  # warm Moodle's caches
        client.site_info()
    site = setup(client, prefix)
    small, users, names = site["small"], site["users"], site["names"]

    for n in (1, 10, 100):
        rec.measure(f"get_cohort_members {n} cohorts x16 members",
                    "core_cohort_get_cohort_members", {"cohortids": small[:n]})
    rec.measure("get_cohort_members 1 cohort x1600 members", "core_cohort_get_cohort_members",
                {"cohortids": [site["big"]]})
    for n in (1, 100, 1000):
        rec.measure(f"get_users_by_field username x{n}, none exists",
                    "core_user_get_users_by_field",
                    {"field": "username", "values": [f"{prefix}absent{i:05d}" for i in range(n)]})
    for n in (1, 100, 1000):
        rec.measure(f"get_users_by_field username x{n}, all exist",
                    "core_user_get_users_by_field",
                    {"field": "username", "values": names[:n]}, repeat=min(args.repeat, 3))
    rec.measure("get_users_by_field id x1000, all exist", "core_user_get_users_by_field",
                {"field": "id", "values": users[:1000]}, repeat=min(args.repeat, 3))
    rec.measure("search_cohorts exact idnumber", "core_cohort_search_cohorts",
                {"query": f"{prefix}-c007", "context": {"contextid": 1}, "includes": "self",
                 "limitfrom": 0, "limitnum": 0})
    rec.measure("get_cohorts, whole site", "core_cohort_get_cohorts", {})
    more_cohorts(client, prefix, 0, 1000)
    rec.measure("get_cohorts, whole site after 1000 more", "core_cohort_get_cohorts", {})
    for n in (1, 100):
        for r in range(args.repeat):
            rec.measure(f"create_cohorts x{n}", "core_cohort_create_cohorts", {"cohorts": [
                {"categorytype": {"type": "system", "value": ""},
                 "name": f"{prefix} e{n}-{r}-{j}", "idnumber": f"{prefix}-e{n}-{r}-{j}"}
                for j in range(n)]}, repeat=1)

    course_ids = courses(client, prefix, 0, 100)
    rec.measure("get_courses_by_field, whole site", "core_course_get_courses_by_field", {})
    for j, (courseid, cohortid) in enumerate(zip(course_ids, small, strict=True)):
        label = "add_instance x1 (cohort of 16 members, enrols each)"
        rec.measure(label, "local_ws_enrolcohort_add_instance", {"instance": {
            "courseid": courseid, "cohortid": cohortid, "roleid": 5,
            "name": f"timing {j}"}}, repeat=1)
    rec.measure("get_instances, whole site", "local_ws_enrolcohort_get_instances",
                {"course": {"id": -1}})
    course_ids += courses(client, prefix, 100, 200)
    rec.measure("get_courses_by_field, whole site after 200 more",
                "core_course_get_courses_by_field", {})
    instances = client.cohort_sync_instances(-1)
    for inst in instances[: args.repeat]:
        rec.measure("update_instance x1 (name)", "local_ws_enrolcohort_update_instance",
                    {"instance": {"id": inst.id, "name": f"timing renamed {inst.id}"}}, repeat=1)
    for n in (1, 10):
        for r in range(args.repeat):
            rec.measure(f"create_groups x{n}", "core_group_create_groups", {"groups": [
                {"courseid": course_ids[r], "name": f"G{n}-{r}-{j}", "description": ""}
                for j in range(n)]}, repeat=1)
    rec.measure("get_course_groups (11 groups)", "core_group_get_course_groups",
                {"courseid": course_ids[0]})
    rec.measure("get_enrolled_users 16 users userfields=id,roles",
                "core_enrol_get_enrolled_users", {"courseid": course_ids[0], "options": [
                    {"name": "onlyactive", "value": 1},
                    {"name": "userfields", "value": "id,roles"}]})
    rec.write(args.out)
    print(f"{len(rec.records)} calls recorded in {args.out}; round trip "
          f"{statistics.median(rec.round_trips) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
