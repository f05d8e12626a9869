"""Bulk seeding at scale, and the ``reconcile emulator serve`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from support.replay_ws import ws

from reconciler.emulator import EmulatorConfig, MoodleEmulator


def _site(users: int, cohorts: int) -> dict[str, object]:
    return {
        "categories": [{"name": "Faculty", "idnumber": "CAT-F", "parent": 0}],
        "courses": [{"shortname": f"C{i}", "fullname": f"Course {i}",
                     "category_idnumber": "CAT-F"} for i in range(50)],
        "users": [{"username": f"s{i:05d}", "firstname": "First", "lastname": f"Last{i % 97}",
                   "email": f"s{i}@example.org", "auth": "ldap", "suspended": i % 500 == 0}
                  for i in range(users)],
        "cohorts": [{"idnumber": f"K{i}", "name": f"Cohort {i}",
                     "members": [f"s{(i * 20 + j) % users:05d}" for j in range(20)]}
                    for i in range(cohorts)],
        "cohort_syncs": [{"course": f"C{i % 50}", "cohort": f"K{i}", "roleid": 5}
                         for i in range(0, cohorts, 2)],
        "enrolments": [{"course": "C0", "username": "s00001", "roleid": 5, "timeend": 0}],
    }


def test_seed_at_scale_is_fast_and_consistent() -> None:
    emu = MoodleEmulator(EmulatorConfig(token="T"))
    started = time.perf_counter()
    emu.seed(_site(2000, 100))
    assert time.perf_counter() - started < 5
    state = emu.state
    assert len(state.users) == 2002 and len(state.cohorts) == 100
    assert sum(len(m) for m in state.cohort_members.values()) == 2000
    # 50 syncs of 20 members each, all enrolled at seed time.
    cohort_ues = [ue for ue in state.user_enrolments.values()
                  if state.enrols[ue.enrolid].enrol == "cohort"]
    assert len(cohort_ues) == 1000
    with emu:
        got = ws(emu.url, "core_cohort_get_cohort_members",
                 {"cohortids": sorted(state.cohorts)})
        assert [len(c["userids"]) for c in got] == [20] * 100
        users = ws(emu.url, "core_user_get_users_by_field",
                   {"field": "username", "values": [f"s{i:05d}" for i in range(2000)]})
        assert len(users) == 2000 and users[0]["auth"] == "ldap" and users[0]["suspended"]


def test_serve_cli(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(_site(10, 2)), encoding="utf-8")
    command = [sys.executable, "-c", "from reconciler.cli import main; main()",
               "emulator", "serve", "--host", "127.0.0.1", "--port", "0", "--token", "CLI",
               "--seed", str(seed), "--now", "2026-11-28T00:00:00Z"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = requests.post(url + "/webservice/rest/server.php", timeout=10, data={
            "wstoken": "CLI", "wsfunction": "core_webservice_get_site_info",
            "moodlewsrestformat": "json"})
        info = response.json()
        assert info["siteurl"] == url and info["release"].startswith("4.5.5")
        assert ws(url, "core_cohort_get_cohorts", token="CLI")[0]["idnumber"] == "K0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
