"""A generated university and its Moodle site, shared by the benchmarks.

One seed gives one world, identical for every benchmark that asks for it: APOGÉE (a sqlite
database with APOGÉE's tables), the directory (an in-process ldap3 server), the declarations
of ``syncs`` course syncs over ``syncs // 2`` courses, and the Moodle site that goes with them
(a seed for the project's emulator, or a list of what to create on a real site).

    from world import build_world, moodle_seed, churn

    world = build_world(Path(tmp), students=40_000)
    site = moodle_seed(world, converged=True)          # dict for MoodleEmulator.seed()
    changed = churn(world, fraction=0.01)              # 1 % of the IAs in force change

``build_world`` takes about 20 s and 300 MB at 40,000 students (the directory is held by an
in-process ldap3 server).
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
import yaml

from reconciler.clock import end_of_day_timestamp
from reconciler.demo import data as demo_data
from reconciler.planning.planner import cohort_description, instance_name
from reconciler.planning.state import DesiredCohort, DesiredSync
from reconciler.settings import Settings
from reconciler.sources import SourceSnapshot, read_sources

REPO = Path(__file__).resolve().parent.parent
PLATFORM = "ecampus"
# The night the worlds are planned on (02:00 UTC, the nightly schedule) and the day the
# benchmark's manual syncs expire.
NIGHT = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
EXPIRES = dt.date(2027, 1, 15)
# The emulator answers site_info with this siteurl whatever port it listens on, so that the
# user-id map a run saves is recognised as the same site's by the next run.
SITEURL = "https://ecampus.bench.example"
ROLE_IDS = {"student": 5, "teacher": 4}


@dataclass
class World:
    """A generated university: the repository, both sources and what they say.

    ``root`` holds ``cohorts/`` (platforms.yaml and the sync files) and ``apogee.db``;
    ``declared`` lists the syncs as ``{"course", "cohort", "role", "reason", ...}``;
    ``snapshot`` is what the sources said when last read (see :func:`read_snapshot`).
    """

    root: Path
    students: int
    data: demo_data.DemoData
    apogee: sqlite3.Connection
    directory: ldap3.Connection
    declared: list[dict[str, Any]]
    snapshot: SourceSnapshot
    settings: Settings
    notes: list[str] = field(default_factory=list)


def write_repo(root: Path, cohorts: list[str], syncs: int) -> list[dict[str, Any]]:
    """Write ``cohorts/platforms.yaml`` and ``syncs`` declared syncs over ``syncs // 2``
    courses (a tenth with a group, one in 150 with ``method: manual``) under ``root``.

    platforms.yaml is the shipped one without Ecampus's leavers' grace period, so that a
    churn night removes its leavers that night (as the naive script does) rather than 14
    days later. Returns the declared syncs, one dict each, with the course shortname under
    ``course``.
    """
    (root / "cohorts" / PLATFORM / "syncs").mkdir(parents=True)
    platforms = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))
    platforms["platforms"][PLATFORM]["general_cohorts"].pop("grace_period", None)
    (root / "cohorts" / "platforms.yaml").write_text(
        yaml.safe_dump(platforms, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    declared = []
    for n in range(syncs):
        item: dict[str, Any] = {
            "cohort": cohorts[n % len(cohorts)],
            "role": "student" if n % 2 else "teacher",
            "reason": "benchmark",
        }
        if n % 10 == 3:
            item["group"] = f"Groupe {n % 7}"
        if n % 150 == 5:
            item.update(method="manual", expires=EXPIRES.isoformat())
        declared.append({"course": f"C{n // 2:05d}", **item})
    by_course: dict[str, list[dict[str, Any]]] = {}
    for d in declared:
        by_course.setdefault(d["course"], []).append({k: v for k, v in d.items() if k != "course"})
    for course, items in by_course.items():
        path = root / "cohorts" / PLATFORM / "syncs" / f"{course}.yaml"
        path.write_text(
            yaml.safe_dump({"course": course, "syncs": items}, allow_unicode=True), encoding="utf-8"
        )
    return declared


def build_world(
    root: Path, students: int, vets: int = 2_500, syncs: int = 3_000, seed: int = 1
) -> World:
    """Generate the university of ``seed`` under ``root`` (an empty folder) and read its
    sources once. The syncs use the first 50 general cohorts (étapes of test excluded)."""
    from reconciler.declarations.loader import load_declarations

    data = demo_data.generate(seed=seed, students=students, vets=vets)
    apogee = demo_data.write_apogee(data, root / "apogee.db")
    directory = demo_data.mock_directory(data.entries)
    used = [v for v in data.vets if "TEST" not in v.cod_etp][:50]
    declared = write_repo(root, [f"etp-{v.cod_etp}-{v.cod_vrs_vet}" for v in used], syncs)
    settings = load_declarations(root / "cohorts", root).settings
    assert settings is not None
    world = World(root, students, data, apogee, directory, declared, SourceSnapshot("", False),
                  settings)
    world.snapshot = read_snapshot(world)
    return world


def read_snapshot(world: World) -> SourceSnapshot:
    """Read both sources of ``world`` as the reconciler does (health checks included)."""
    snap = read_sources(
        world.settings, {}, apogee_conn=world.apogee, ldap_conn=world.directory,
        platforms=[PLATFORM], today=NIGHT.date(),
    )
    if not snap.healthy:
        raise RuntimeError(f"the benchmark sources are unhealthy: {snap.reasons}")
    return snap


def moodle_seed(world: World, converged: bool = True) -> dict[str, Any]:
    """The Moodle site of ``world`` as an emulator seed.

    Always: every directory student's account (auth manual) and every declared course.
    With ``converged``: also every general cohort with its members (marked as the
    reconciler's), every cohort-sync instance and every manual enrolment the declarations
    ask for, i.e. exactly what the reconciler would have made from ``world.snapshot``.
    Without: the state before the first run (production creates accounts through LDAP).
    """
    snap = world.snapshot
    people = [
        {
            "username": u,
            "firstname": p.firstname,
            "lastname": p.lastname,
            "email": p.email or f"{u}@example.org",
        }
        for u, p in snap.people.items()
    ]
    courses = sorted({d["course"] for d in world.declared})
    site: dict[str, Any] = {
        "courses": [{"shortname": c, "fullname": f"Cours {c}"} for c in courses],
        "users": people,
    }
    if not converged:
        return site
    cohorts = []
    members: dict[str, list[str]] = {}
    for gc in snap.general_cohorts[PLATFORM]:
        want = DesiredCohort(
            gc.idnumber, gc.name, "general", frozenset(gc.members), "", description=gc.description
        )
        members[gc.idnumber] = sorted(gc.members)
        cohorts.append(
            {
                "idnumber": gc.idnumber,
                "name": gc.name,
                "description": cohort_description(want),
                "members": members[gc.idnumber],
            }
        )
    syncs, enrolments = [], []
    for d in world.declared:
        s = DesiredSync(
            d["course"], d["cohort"], d["role"], ROLE_IDS[d["role"]],
            d.get("method", "cohort"), "benchmark", "",
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
    site.update(cohorts=cohorts, cohort_syncs=syncs, enrolments=enrolments)
    return site


def desired_general_cohorts(world: World) -> list[tuple[str, str, list[str]]]:
    """``(idnumber, name, sorted usernames)`` of every general cohort the sources imply."""
    return [
        (gc.idnumber, gc.name, sorted(gc.members))
        for gc in world.snapshot.general_cohorts[PLATFORM]
    ]


@dataclass(frozen=True)
class Churn:
    """What :func:`churn` changed in APOGÉE: IAs cancelled and IAs added, as
    ``(COD_IND, COD_ETP, COD_VRS_VET)``."""

    cancelled: list[tuple[int, str, str]]
    added: list[tuple[int, str, str]]


def churn(world: World, fraction: float = 0.01, seed: int = 7) -> Churn:
    """One night of APOGÉE life: ``fraction`` of the IAs in force of students with a
    directory account change, half cancelled (``ETA_IAE`` 'A') and half added (a second
    étape, ``TEM_IAE_PRM`` 'N', for another such student). Re-reads the sources into
    ``world.snapshot``. Every change moves one membership of a general cohort."""
    rng = random.Random(seed)
    year = world.data.year
    with_account = {
        s.cod_ind for s in world.data.students if s.branch == demo_data.PEOPLE
    }
    in_force = [
        r
        for r in world.apogee.execute(
            "SELECT iae.cod_ind, iae.cod_etp, iae.cod_vrs_vet FROM ins_adm_etp iae"
            " JOIN ins_adm_anu iaa ON iaa.cod_ind = iae.cod_ind AND iaa.cod_anu = iae.cod_anu"
            " WHERE iae.cod_anu = ? AND iae.eta_iae = 'E' AND iaa.eta_iaa = 'E'"
            " AND iae.num_occ_iae = 1 ORDER BY iae.cod_ind, iae.cod_etp, iae.cod_vrs_vet",
            (year,),
        ).fetchall()
        if r[0] in with_account
    ]
    changes = max(2, round(fraction * len(in_force)))
    cancelled = rng.sample(in_force, changes // 2)
    world.apogee.executemany(
        "UPDATE ins_adm_etp SET eta_iae = 'A', dat_annul_res_iae = ? WHERE cod_anu = ?"
        " AND cod_ind = ? AND cod_etp = ? AND cod_vrs_vet = ?",
        [(NIGHT.date().isoformat(), year, *r) for r in cancelled],
    )
    taken = {(r[0], r[1], r[2]) for r in in_force}
    vets = [v for v in world.data.vets if "TEST" not in v.cod_etp]
    students = sorted({r[0] for r in in_force} - {r[0] for r in cancelled})
    added: list[tuple[int, str, str]] = []
    while len(added) < changes - len(cancelled):
        cod_ind, vet = rng.choice(students), rng.choice(vets)
        if (cod_ind, vet.cod_etp, vet.cod_vrs_vet) in taken:
            continue
        taken.add((cod_ind, vet.cod_etp, vet.cod_vrs_vet))
        added.append((cod_ind, vet.cod_etp, vet.cod_vrs_vet))
        world.apogee.execute(
            "INSERT INTO ins_adm_etp (cod_anu, cod_ind, cod_etp, cod_vrs_vet, num_occ_iae,"
            " cod_cmp, eta_iae, eta_pmt_iae, tem_iae_prm, cod_dip, cod_vrs_vdi, dat_cre_iae)"
            " VALUES (?, ?, ?, ?, 1, ?, 'E', 'P', 'N', ?, '1', ?)",
            (year, cod_ind, vet.cod_etp, vet.cod_vrs_vet, vet.cod_cmp, "D" + vet.cod_etp[:6],
             NIGHT.date().isoformat()),
        )
    world.apogee.commit()
    world.snapshot = read_snapshot(world)
    return Churn([tuple(r) for r in cancelled], added)
