"""A whole world for CLI tests: a declarations repo, APOGÉE in sqlite, a directory, a Moodle.

``open_world`` yields a :class:`World` whose ``run`` invokes the ``reconcile`` CLI in process
(so a test may monkeypatch a fault), with the environment the nightly job would have:
``APOGEE_URL`` on a sqlite file, the ``LDAP_*`` variables of a real slapd and ``ECAMPUS_*`` on a
Moodle: a fresh emulator, or a given backend (tests/support/backends.py: the emulator or the
real Moodle 4.5 site), then seeded through the web services. ``make_repo`` writes the repository (the shipped ``cohorts/`` tree or only
its ``platforms.yaml``, with overrides) and commits it.
"""

from __future__ import annotations

import copy
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import yaml
from click.testing import CliRunner
from support.backends import EMULATOR_TOKEN, Backend, emulator_backend

from reconciler.cli import main
from reconciler.demo import data as demo_data
from reconciler.emulator import MoodleEmulator
from reconciler.moodle.client import MoodleClient

REPO = Path(__file__).resolve().parents[2]
TOKEN = EMULATOR_TOKEN
# The shipped ecampus, with failsafes tightened so that the small test cohorts are capped, and
# no grace period: a leaver goes on the run that sees them gone, as the failsafe tests need.
TEST_FAILSAFES = {"platforms": {"ecampus": {
    "failsafes": {"small_cohort_size": 3, "per_cohort_removal_floor": 1,
                  "per_cohort_max_removal_percent": 50},
    "general_cohorts": {"grace_period": None}}}}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into ``base`` (in place); a ``None`` value deletes the key."""
    for key, value in extra.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def write_platforms(repo: Path, overrides: dict[str, Any]) -> None:
    """Rewrite ``cohorts/platforms.yaml`` of ``repo`` with ``overrides`` merged in."""
    path = repo / "cohorts" / "platforms.yaml"
    doc = merge(yaml.safe_load(path.read_text(encoding="utf-8")), copy.deepcopy(overrides))
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def make_repo(tmp: Path, overrides: dict[str, Any] | None = None,
              declarations: bool = True) -> Path:
    """A git repository with the shipped ``cohorts/`` (or only its platforms.yaml), committed."""
    repo = tmp / "repo"
    if declarations:
        shutil.copytree(REPO / "cohorts", repo / "cohorts")
    else:
        (repo / "cohorts").mkdir(parents=True)
        shutil.copy(REPO / "cohorts" / "platforms.yaml", repo / "cohorts" / "platforms.yaml")
    write_platforms(repo, {"sources": {"ldap": {"page_size": 40}}, **(overrides or {})})
    (repo / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    r = git.Repo.init(repo)
    r.git.add(A=True)
    r.index.commit("declarations")
    return repo


def users_of(data: demo_data.DemoData) -> list[dict[str, str]]:
    """Moodle accounts for every student whose directory entry is active."""
    return [
        {"username": s.login, "firstname": s.first, "lastname": s.last,
         "email": f"{s.login}@etu.example.org"}
        for s in data.students if s.branch == demo_data.PEOPLE
    ]


# Accounts the shipped manual cohorts name (cohorts/ecampus/cohorts/*.yaml).
MANUAL_USERS = ["e22401187", "e22403350", "e22409001", "e22409002", "e22409003"]


def shipped_seed(data: demo_data.DemoData) -> dict[str, Any]:
    """A Moodle for the shipped ecampus declarations: the students' and the manual cohorts'
    accounts, the courses they sync, and a hand-made cohort + sync the reconciler must not touch.
    """
    users = users_of(data) + [
        {"username": u, "firstname": u, "lastname": "X", "email": f"{u}@example.org"}
        for u in MANUAL_USERS
    ]
    return {
        "categories": [{"name": "Formations", "idnumber": "CAT-F"}],
        "courses": [
            {"shortname": "HIST-L1-MOD", "fullname": "Histoire moderne",
             "category_idnumber": "CAT-F"},
            {"shortname": "OTHER", "fullname": "Other", "category_idnumber": "CAT-F"},
        ],
        "users": users,
        # Made by hand: one with a managed-looking idnumber, one sync of it; both untouchable.
        "cohorts": [{"idnumber": "man-fait-main", "name": "Fait main",
                     "members": [MANUAL_USERS[0]]}],
        "cohort_syncs": [{"course": "OTHER", "cohort": "man-fait-main", "roleid": 5}],
    }


@dataclass
class World:
    repo: Path
    backend: Backend
    apogee: Path
    env: dict[str, str]
    data: demo_data.DemoData

    @property
    def emu(self) -> MoodleEmulator:
        """The emulator (for scenarios that run on it alone: faults, counters)."""
        assert self.backend.emulator is not None, "an emulator-only scenario"
        return self.backend.emulator

    def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """``reconcile --repo REPO *args``: (exit code, stdout + stderr). Re-raises a crash."""
        result = CliRunner().invoke(
            main, ["--repo", str(self.repo), *args], env={**self.env, **(env or {})}
        )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    def client(self) -> MoodleClient:
        return self.backend.client()

    def state(self) -> dict[str, Any]:
        """The whole Moodle state keyed by names (support/wsseed.py ``read_state``)."""
        return self.backend.state()

    def commit(self, message: str) -> None:
        """Commit every change of the declarations repository."""
        repo = git.Repo(self.repo)
        repo.git.add(A=True)
        repo.index.commit(message)

    def cohort_members(self, idnumber: str) -> set[str]:
        with self.client() as c:
            cohort = next(x for x in c.get_cohorts() if x["idnumber"] == idnumber)
            ids = c.get_cohort_members([int(cohort["id"])]).get(int(cohort["id"]), [])
            return {u["username"] for u in c.get_users_by_field("id", ids)} if ids else set()

    def cohorts(self) -> dict[str, set[str]]:
        """Every cohort of the site by idnumber, with its members' usernames."""
        with self.client() as c:
            idnumbers = [x["idnumber"] for x in c.get_cohorts()]
        return {idnumber: self.cohort_members(idnumber) for idnumber in idnumbers}

    def enrolled(self, shortname: str, active: bool = True) -> set[str]:
        with self.client() as c:
            course = c.get_courses_by_field("shortname", shortname)[0]
            users = c.get_enrolled_users(
                int(course["id"]), onlyactive=active, userfields=("id", "username")
            )
            return {u["username"] for u in users}

    def vet_members(self, vet: str) -> list[tuple[int, str]]:
        etp, vrs = vet.split("-")
        with sqlite3.connect(self.apogee) as conn:
            return conn.execute(
                "SELECT iae.cod_ind, ind.cod_etu FROM ins_adm_etp iae JOIN individu ind"
                " ON ind.cod_ind = iae.cod_ind JOIN ins_adm_anu iaa ON iaa.cod_ind = iae.cod_ind"
                " AND iaa.cod_anu = iae.cod_anu WHERE iae.cod_anu = ? AND iae.cod_etp = ?"
                " AND iae.cod_vrs_vet = ? AND iae.eta_iae = 'E' AND iaa.eta_iaa = 'E'"
                " ORDER BY iae.cod_ind",
                (self.data.year, etp, vrs),
            ).fetchall()

    def cancel_ia(self, vet: str, count: int) -> list[str]:
        """Cancel ``count`` IA of ``vet``; returns the Moodle usernames concerned."""
        etp, vrs = vet.split("-")
        rows = self.vet_members(vet)[:count]
        with sqlite3.connect(self.apogee) as conn:
            conn.executemany(
                "UPDATE ins_adm_etp SET eta_iae = 'A' WHERE cod_anu = ? AND cod_ind = ?"
                " AND cod_etp = ? AND cod_vrs_vet = ?",
                [(self.data.year, r[0], etp, vrs) for r in rows],
            )
        return [f"e{r[1]}" for r in rows]


@contextmanager
def open_world(tmp: Path, repo: Path, data: demo_data.DemoData, ldap_env: dict[str, str],
               seed: dict[str, Any] | None = None,
               backend: Backend | None = None) -> Iterator[World]:
    """APOGÉE written from ``data`` under ``tmp``, a Moodle seeded with ``seed`` (default: the
    accounts of ``data``), and the environment pointing at them and at ``ldap_env``.

    Without ``backend``: a fresh emulator, seeded directly (fast). With one (the emulator or
    the real site, clean): seeded through its web services, the same calls on both, then its
    call counters (emulator) cleared so that a test counts only what the scenario calls."""
    apogee = tmp / "apogee.db"
    demo_data.write_apogee(data, apogee).close()
    seed = seed if seed is not None else {"users": users_of(data)}

    def env_for(moodle: Backend) -> dict[str, str]:
        return {"ECAMPUS_URL": moodle.url, "ECAMPUS_TOKEN": moodle.token,
                "APOGEE_URL": f"sqlite:///{apogee}", **ldap_env}

    if backend is not None:
        backend.seed(seed)
        if backend.emulator is not None:
            backend.emulator.reset_counters()
        yield World(repo, backend, apogee, env_for(backend), data)
        return
    with emulator_backend() as fresh:
        assert fresh.emulator is not None
        fresh.emulator.seed(seed)
        yield World(repo, fresh, apogee, env_for(fresh), data)
