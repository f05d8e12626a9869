"""The fault matrix's world (tests/test_fault_matrix.py): a realistic platform converged
once, then a night of changes to apply under one fault at a time.

* **The university**: 400 students over 22 VETs (21 general cohorts on ``ecampus``; the
  test étape is excluded), APOGÉE in sqlite, a real slapd of its own, a Moodle emulator.
* **The declarations**: general cohorts synced to courses (one with a group), manual cohorts
  (one synced as teachers with a group, one with ``method: manual``, one whose sync expires,
  one no sync uses), accounts created from the directory, and a hand-made cohort + sync
  the reconciler must never touch.
* **The night** (``T1``, committed, APOGÉE changed): IA cancelled and moved two weeks
  earlier, whose leavers' grace period (14 days) ends tonight, a new étape
  whose students have no Moodle account yet, a new manual cohort synced with a new group, a
  renamed cohort, a sync moved to another group, a ``method: manual`` member leaving and one
  joining, an expired sync, a manual cohort deleted. Applied without fault, it calls every
  write function the default policy uses (the reference run).

``MatrixWorld.restore()`` puts back the state of the night before (Moodle, APOGÉE,
``.reconciler/``) in a few milliseconds, so every case starts from the same point. ``canon``
reads the emulator's tables into plain values (names, not ids) to compare states.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import CliRunner
from support.slapd import Slapd, start_slapd
from support.world import merge

from reconciler.applying import runner
from reconciler.cli import main
from reconciler.demo import data as demo_data
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.emulator.model import ENROL_INSTANCE_ENABLED, ENROL_USER_ACTIVE
from reconciler.emulator.state import State
from reconciler.moodle.client import MoodleClient

REPO = Path(__file__).resolve().parents[2]
TOKEN = "matrix-token"
T0 = "2026-11-28T02:00:00Z"  # the night everything converged
T_SEEN = "2027-01-15T02:00:00Z"  # IA cancelled and moved: leavers enter their grace period
T1 = "2027-02-02T02:00:00Z"  # the faulted night: graces over, man-retardataires' sync expired
SEED, STUDENTS, VETS = 11, 400, 22
CLIENT_TIMEOUT_S = 1.0  # the client's read timeout in process; the emulator hangs longer
CLIENT_MAX_INPUT_VARS = 30  # small batches, so that a batched write takes several calls
AUDITEURS = [f"auditeur{i}" for i in range(1, 7)]
STUDENT_ROLE, TEACHER_ROLE = 5, 4

PLATFORMS: dict[str, Any] = {
    "sources": {
        "ldap": {"page_size": 50, "timeout_seconds": 2},
        "apogee": {"timeout_seconds": 10},
    },
    "platforms": {"ecampus": {
        "accounts": {"create": True, "auth": "ldap"},
        # The world skips the nights between T_SEEN and T1: its leavers record must vouch
        # for them (in production, one run a night).
        "general_cohorts": {"grace_period": {"days": 14, "max_days": 30, "max_gap_days": 31}},
        "sync_policy": {"max_temporary_days": 365},
        "failsafes": {"per_cohort_max_removal_percent": 60, "small_cohort_size": 10,
                      "per_cohort_removal_floor": 3},
    }},
}


def client_factory(platform: Any, environ: Any, use: str = "write") -> MoodleClient:
    """The client of every run of the matrix, in process or in a child: a short timeout
    (the emulator's hanging answers outlast it) and small batches."""
    return MoodleClient(environ["ECAMPUS_URL"], environ["ECAMPUS_TOKEN"],
                        timeout=CLIENT_TIMEOUT_S, backoff=0.05,
                        max_input_vars=CLIENT_MAX_INPUT_VARS)


# -- canonical Moodle state ------------------------------------------------------------------


@dataclass(frozen=True)
class Canon:
    """What a platform holds, by names: cohorts (name and members), cohort-sync instances,
    enrolments (by course, user and method), groups and their members."""

    cohorts: dict[str, tuple[str, frozenset[str]]]  # idnumber -> (name, members)
    instances: dict[tuple[str, str, int], tuple[int, str, str]]  # -> (status, group, name)
    enrolments: dict[tuple[str, str, str], bool]  # (course, user, method) -> active
    groups: Counter[tuple[str, str]]  # (course, group name) -> how many such groups
    group_members: frozenset[tuple[str, str, str]]  # (course, group, username)

    def memberships(self) -> set[tuple[str, str]]:
        return {(c, u) for c, (_, members) in self.cohorts.items() for u in members}

    def enabled(self) -> set[tuple[str, str, int]]:
        return {k for k, (status, _, _) in self.instances.items()
                if status == ENROL_INSTANCE_ENABLED}

    def active(self) -> set[tuple[str, str, str]]:
        return {k for k, on in self.enrolments.items() if on}

    def differences(self, other: Canon, limit: int = 8) -> list[str]:
        """Lines saying how ``other`` differs from this state (empty: the same)."""
        out: list[str] = []
        for name in ("cohorts", "instances", "enrolments", "groups"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for key in sorted(set(mine) | set(theirs), key=repr):
                if mine.get(key) != theirs.get(key):
                    out.append(f"{name} {key}: {_short(mine.get(key))} -> "
                               f"{_short(theirs.get(key))}")
        gone = sorted(self.group_members - other.group_members)
        new = sorted(other.group_members - self.group_members)
        out += [f"group member gone {g}" for g in gone] + [f"group member new {g}" for g in new]
        return out[:limit] + ([f"… and {len(out) - limit} more"] if len(out) > limit else [])


def _short(value: Any) -> str:
    if isinstance(value, tuple) and value and isinstance(value[-1], frozenset):
        return f"({value[0]!r}, {len(value[-1])} members)"
    return repr(value)


def canon(state: State) -> Canon:
    """The emulator's tables as a ``Canon`` (deleted users and the site course left out)."""
    users = {u.id: u.username for u in state.users.values() if not u.deleted}
    courses = {c.id: c.shortname for c in state.courses.values() if c.id != 1}
    cohorts = {
        c.idnumber: (c.name, frozenset(users[u] for u in state.cohort_members.get(c.id, {})
                                        if u in users))
        for c in state.cohorts.values()
    }
    groups = {g.id: g for g in state.groups.values()}
    instances: dict[tuple[str, str, int], tuple[int, str, str]] = {}
    method: dict[int, str] = {}
    for e in state.enrols.values():
        if e.courseid not in courses:
            continue
        if e.enrol == "cohort":
            cohort = state.cohorts.get(e.customint1 or 0)
            idnumber = cohort.idnumber if cohort else f"#{e.customint1}"
            group = groups[e.customint2].name if e.customint2 in groups else ""
            instances[(courses[e.courseid], idnumber, e.roleid)] = (e.status, group, e.name or "")
            method[e.id] = f"cohort:{idnumber}"
        else:
            method[e.id] = e.enrol
    enrolments: dict[tuple[str, str, str], bool] = {}
    for (enrolid, userid), ue in state.user_enrolments.items():
        e = state.enrols[enrolid]
        if e.courseid in courses and userid in users:
            active = e.status == ENROL_INSTANCE_ENABLED and ue.status == ENROL_USER_ACTIVE
            enrolments[(courses[e.courseid], users[userid], method[enrolid])] = active
    members = frozenset(
        (courses[groups[gid].courseid], groups[gid].name, users[uid])
        for gid, people in state.group_members.items() if gid in groups
        for uid in people if uid in users and groups[gid].courseid in courses
    )
    counted = Counter((courses[g.courseid], g.name) for g in groups.values()
                      if g.courseid in courses)
    return Canon(cohorts, instances, enrolments, counted, members)


def lost(before: Canon, final: Canon, after: Canon) -> list[str]:
    """What the desired state still wants (in ``before`` and in the converged ``final``) that
    ``after`` no longer has, or has disabled: the fault matrix's main invariant."""
    out = []
    for cohort in sorted(set(before.cohorts) & set(final.cohorts) - set(after.cohorts)):
        out.append(f"cohort {cohort} deleted")
    out += [f"membership {m} removed" for m in
            sorted(before.memberships() & final.memberships() - after.memberships())]
    out += [f"instance {i} disabled or deleted" for i in
            sorted(before.enabled() & final.enabled() - after.enabled(), key=repr)]
    out += [f"enrolment {e} ended" for e in
            sorted(before.active() & final.active() - after.active())]
    out += [f"group member {g} removed" for g in
            sorted(before.group_members & final.group_members - after.group_members)]
    return out


# -- the world -------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    output: str


@dataclass
class MatrixWorld:
    repo: Path
    emu: MoodleEmulator
    apogee: Path
    env: dict[str, str]
    data: demo_data.DemoData
    snapshot_dir: Path
    moodle_before: State | None = None
    reference: Canon | None = None  # the state a clean night converges to
    before: Canon | None = None  # the state of the night before
    write_calls: list[str] = field(default_factory=list)  # the clean night's writes, in order

    # -- running -------------------------------------------------------------------------

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """``reconcile --repo REPO *args`` in process; never raises (a crash is output)."""
        result = CliRunner().invoke(main, ["--repo", str(self.repo), *args],
                                    env={**self.env, **(env or {})})
        output = result.output
        if result.exception and not isinstance(result.exception, SystemExit):
            output += f"\nTraceback (escaped the CLI): {result.exception!r}"
        return Run(result.exit_code, output)

    def apply(self, env: dict[str, str] | None = None) -> Run:
        return self.run("apply", "-p", "ecampus", "--now", T1, env=env)

    def plan(self) -> Run:
        return self.run("plan", "-p", "ecampus", "--now", T1)

    def apply_killed_after_write(self, n: int) -> Run:
        """``reconcile apply`` in a child process, SIGKILLed right after the ``n``-th write
        commits in Moodle, before its answer reaches it."""
        child: dict[str, subprocess.Popen[str]] = {}
        self.emu.after_committed_write(n, lambda: os.kill(child["p"].pid, signal.SIGKILL))
        command = [sys.executable, str(Path(__file__).with_name("matrix_child.py")),
                   "--repo", str(self.repo), "apply", "-p", "ecampus", "--now", T1]
        env = {**os.environ, **self.env}
        child["p"] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
        output, _ = child["p"].communicate(timeout=120)
        return Run(child["p"].returncode, output)

    # -- state -----------------------------------------------------------------------------

    def canon(self) -> Canon:
        with self.emu._lock:  # the tables, not HTTP: fast and exact
            return canon(self.emu.state)

    def save(self) -> None:
        """Remember the night before: Moodle, APOGÉE and ``.reconciler/``."""
        self.moodle_before = self.emu.snapshot()
        shutil.copy(self.apogee, self.snapshot_dir / "apogee.db")
        state = self.repo / ".reconciler"
        shutil.rmtree(self.snapshot_dir / "reconciler", ignore_errors=True)
        shutil.copytree(state, self.snapshot_dir / "reconciler")
        self.before = self.canon()

    def restore(self) -> None:
        """Back to the night before, with no fault armed and the site's defaults."""
        assert self.moodle_before is not None
        self.emu.restore(self.moodle_before)
        self.emu.set_config(token=TOKEN, plugin=True, max_input_vars=10000)
        shutil.copy(self.snapshot_dir / "apogee.db", self.apogee)
        shutil.rmtree(self.repo / ".reconciler", ignore_errors=True)
        shutil.copytree(self.snapshot_dir / "reconciler", self.repo / ".reconciler")

    def sql(self, *statements: str) -> None:
        with sqlite3.connect(self.apogee) as conn:
            for statement in statements:
                conn.execute(statement)


def _entries(data: demo_data.DemoData) -> list[dict[str, Any]]:
    return [*data.entries, *demo_data.anomaly_entries(data)]


def _newcomers(data: demo_data.DemoData, conn: sqlite3.Connection, n: int) -> list[Any]:
    """Students with a directory account and no IA in force this year: the new étape's
    students (none has a Moodle account yet)."""
    in_force = {row[0] for row in conn.execute(
        "SELECT cod_ind FROM ins_adm_etp WHERE cod_anu = ? AND eta_iae = 'E'", (data.year,))}
    return [s for s in data.students if s.branch == demo_data.PEOPLE
            and s.cod_ind not in in_force][:n]


def _members(conn: sqlite3.Connection, year: str, vet: str) -> list[tuple[int, str]]:
    etp, vrs = vet.rsplit("-", 1)
    return conn.execute(
        "SELECT iae.cod_ind, ind.cod_etu FROM ins_adm_etp iae JOIN individu ind"
        " ON ind.cod_ind = iae.cod_ind JOIN ins_adm_anu iaa ON iaa.cod_ind = iae.cod_ind"
        " AND iaa.cod_anu = iae.cod_anu WHERE iae.cod_anu = ? AND iae.cod_etp = ?"
        " AND iae.cod_vrs_vet = ? AND iae.eta_iae = 'E' AND iaa.eta_iaa = 'E'"
        " AND iae.tem_iae_prm = 'O' ORDER BY iae.cod_ind", (year, etp, vrs)).fetchall()


def _write(repo: Path, relative: str, doc: dict[str, Any] | None) -> None:
    path = repo / "cohorts" / relative
    if doc is None:
        path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _sync(cohort: str, role: str = "student", **extra: Any) -> dict[str, Any]:
    return {"cohort": cohort, "role": role, **extra, "reason": "fault matrix"}


def _cohort(idnumber: str, name: str, members: list[str]) -> dict[str, Any]:
    return {"idnumber": idnumber, "name": name, "owners": ["matrix@unicaen.fr"],
            "members": sorted(members)}


def _declarations(logins: list[str]) -> dict[str, dict[str, Any] | None]:
    """The files of the night before (T0), by path under cohorts/."""
    tuteurs, retard, jetable = logins[:6], logins[6:9], logins[9:11]
    return {
        "ecampus/cohorts/man-tuteurs-histoire.yaml":
            _cohort("man-tuteurs-histoire", "Tuteurs histoire", tuteurs),
        "ecampus/cohorts/man-auditeurs.yaml":
            _cohort("man-auditeurs", "Auditeurs libres", AUDITEURS[:5]),
        "ecampus/cohorts/man-retardataires.yaml":
            _cohort("man-retardataires", "Inscriptions tardives", retard),
        "ecampus/cohorts/man-jetable.yaml": _cohort("man-jetable", "Jetable", jetable),
        "ecampus/syncs/C-01.yaml": {"course": "C-01", "owners": ["a@unicaen.fr"], "syncs": [
            _sync("etp-L1HIS-101"), _sync("man-tuteurs-histoire", "teacher", group="Tutorat")]},
        "ecampus/syncs/C-02.yaml": {"course": "C-02", "owners": ["a@unicaen.fr"], "syncs": [
            _sync("etp-L1HIS-102"), _sync("etp-L2HIS-101", group="L2")]},
        "ecampus/syncs/C-03.yaml": {"course": "C-03", "owners": ["a@unicaen.fr"], "syncs": [
            _sync("man-auditeurs", method="manual", expires="2027-06-30")]},
        "ecampus/syncs/C-04.yaml": {"course": "C-04", "owners": ["a@unicaen.fr"], "syncs": [
            _sync("man-retardataires", expires="2027-01-31")]},
        **{f"ecampus/syncs/C-{n:02d}.yaml": {"course": f"C-{n:02d}", "owners": ["a@unicaen.fr"],
                                               "syncs": [_sync(f"etp-{vet}-101")]}
           for n, vet in zip(range(5, 11), ("L1DRO", "L2DRO", "L1MAT", "L1INF", "PASS1",
                                            "MED2A"), strict=True)},
    }


def _night(files: dict[str, dict[str, Any] | None], logins: list[str]) -> None:
    """The declarations' changes of the faulted night (T1)."""
    files["ecampus/cohorts/man-tuteurs-histoire.yaml"]["name"] = "Tuteurs d'histoire"
    files["ecampus/cohorts/man-auditeurs.yaml"]["members"] = sorted(AUDITEURS[1:])
    files["ecampus/cohorts/man-jetable.yaml"] = None
    files["ecampus/cohorts/man-nouveaux.yaml"] = _cohort(
        "man-nouveaux", "Nouveaux arrivants", logins[11:15])
    files["ecampus/syncs/C-01.yaml"]["syncs"].append(_sync("man-nouveaux", group="Nouveaux"))
    files["ecampus/syncs/C-02.yaml"]["syncs"][1]["group"] = "L2 histoire"


@contextmanager
def open_matrix_world(tmp: Path) -> Iterator[MatrixWorld]:
    """Build the world, converge it at T0, make the night's changes, run the clean night
    once (the reference), and leave it restored to the night before."""
    data = demo_data.generate(seed=SEED, students=STUDENTS, vets=VETS)
    server: Slapd = start_slapd(tmp / "slapd", demo_data.directory_ldif(_entries(data)),
                                size_limit=100)
    apogee = tmp / "apogee.db"
    conn = demo_data.write_apogee(data, apogee)
    newcomers = _newcomers(data, conn, 10)
    assert len(newcomers) == 10
    active = [s for s in data.students if s.branch == demo_data.PEOPLE]
    seeded = [s for s in active if s not in newcomers]
    repo = tmp / "repo"
    (repo / "cohorts").mkdir(parents=True)
    shipped = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))
    (repo / "cohorts" / "platforms.yaml").write_text(
        yaml.safe_dump(merge(shipped, copy.deepcopy(PLATFORMS)), allow_unicode=True,
                       sort_keys=False), encoding="utf-8")
    logins = [s.login for s in seeded]
    files = _declarations(logins)
    for relative, doc in files.items():
        _write(repo, relative, doc)
    (repo / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    git_repo = git.Repo.init(repo)
    git_repo.git.add(A=True)
    git_repo.index.commit("the night before")

    users = [{"username": s.login, "firstname": s.first, "lastname": s.last,
              "email": f"{s.login}@etu.example.org"} for s in seeded]
    users += [{"username": u, "firstname": u, "lastname": "Auditeur", "email": f"{u}@x.fr"}
              for u in AUDITEURS]
    seed = {
        "categories": [{"name": "Formations", "idnumber": "CAT-F"}],
        "courses": [{"shortname": f"C-{n:02d}", "fullname": f"Cours {n}",
                     "category_idnumber": "CAT-F"} for n in range(1, 11)],
        "users": users,
        "cohorts": [{"idnumber": "fait-main", "name": "Fait main", "members": logins[:3]}],
        "cohort_syncs": [{"course": "C-01", "cohort": "fait-main", "roleid": STUDENT_ROLE}],
    }
    snapshots = tmp / "snapshots"
    snapshots.mkdir()
    with MoodleEmulator(EmulatorConfig(token=TOKEN)) as emu, \
            pytest.MonkeyPatch.context() as patch:
        emu.fault_timeout_s = CLIENT_TIMEOUT_S * 2.5
        emu.seed(seed)
        env = {"ECAMPUS_URL": emu.url, "ECAMPUS_TOKEN": TOKEN,
               "APOGEE_URL": f"sqlite:///{apogee}", **server.environ()}
        patch.setattr(runner, "_default_client", client_factory)
        world = MatrixWorld(repo, emu, apogee, {k: str(v) for k, v in env.items()}, data,
                            snapshots)
        first = world.run("apply", "-p", "ecampus", "--now", T0)
        assert first.code == 0, first.output
        settled = world.run("plan", "-p", "ecampus", "--now", T0)
        assert settled.code == 0 and "Plan: no changes" in settled.output, settled.output

        # Two weeks before the night: IA cancelled and moved. The movers join their new
        # étape at once; the leavers are seen gone and kept for their grace period.
        year = data.year
        cancelled = [row[0] for vet in ("L1HIS-101", "L1DRO-101")
                     for row in _members(conn, year, vet)[:2]]
        conn.executemany("UPDATE ins_adm_etp SET eta_iae = 'A' WHERE cod_anu = ? AND "
                         "cod_ind = ?", [(year, c) for c in cancelled])
        for source, target in (("L1MAT", "L1INF"), ("L2DRO", "L1DRO"), ("MED2A", "PASS1")):
            moved = [row[0] for row in _members(conn, year, f"{source}-101")[:3]]
            conn.executemany(
                "UPDATE ins_adm_etp SET cod_etp = ? WHERE cod_anu = ? AND cod_ind = ? AND "
                "cod_etp = ?", [(target, year, c, source) for c in moved])
        conn.commit()
        seen = world.run("apply", "-p", "ecampus", "--now", T_SEEN)
        assert seen.code == 0, seen.output
        graced = world.run("plan", "-p", "ecampus", "--now", T_SEEN)
        assert graced.code == 0 and "leaving on 2027-01-29" in graced.output, graced.output

        # The night: their grace ends, a new étape, then the declarations' commit.
        conn.execute("INSERT INTO etape VALUES ('L1NEW', 'Licence 1 Nouvelle', 'L1 Nouvelle',"
                     " '1', 'L')")
        conn.execute("INSERT INTO version_etape VALUES ('L1NEW', '101', "
                     "'Licence 1 Nouvelle', 'SCI')")
        conn.executemany("INSERT OR REPLACE INTO ins_adm_anu (cod_anu, cod_ind, eta_iaa) "
                         "VALUES (?, ?, 'E')", [(year, s.cod_ind) for s in newcomers])
        conn.executemany(
            "INSERT INTO ins_adm_etp (cod_anu, cod_ind, cod_etp, cod_vrs_vet, num_occ_iae,"
            " cod_cmp, eta_iae, eta_pmt_iae, tem_iae_prm) VALUES (?, ?, 'L1NEW', '101', 1,"
            " 'SCI', 'E', 'P', 'O')", [(year, s.cod_ind) for s in newcomers])
        conn.commit()
        conn.close()
        _night(files, logins)
        for relative, doc in files.items():
            _write(repo, relative, doc)
        git_repo.git.add(A=True)
        git_repo.index.commit("the night's changes")
        world.save()

        emu.reset_counters()
        clean = world.apply()
        assert clean.code == 0, clean.output
        removed = int(re.search(r"Plan: \d+ to add, \d+ to change, (\d+) to remove",
                                clean.output).group(1))
        assert removed >= len(cancelled) + 9, clean.output  # the leavers' grace is over
        world.write_calls = [f for f, _, _ in emu.call_log if f and _is_write(f)]
        world.reference = world.canon()
        again = world.plan()
        assert again.code == 0 and "Plan: no changes" in again.output, again.output
        world.restore()
        try:
            yield world
        finally:
            server.stop()


def _is_write(function: str) -> bool:
    from reconciler.emulator.functions.services import is_write

    return is_write(function)
