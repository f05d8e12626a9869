"""``reconcile demo``: the whole job on a small fictional university, with no server at all.

The demo's own declarations (``declarations/cohorts/``, shipped in the package so that the
demo runs from an installed wheel, away from any checkout) are copied into a scratch folder;
APOGÉE is a sqlite database and the directory an in-process ldap3 server (both generated),
and each platform is a Moodle emulator in this process. The demo then runs exactly the code
of the nightly job: first plan and apply, a second plan with nothing to do, then a night
later (an IA cancelled, a new student, a temporary sync expired) and that night's plan and
apply.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import click

from ..applying.runner import Environment, apply, make_plan
from ..declarations.loader import load_declarations
from ..emulator import EmulatorConfig, MoodleEmulator
from ..moodle.client import MoodleClient
from ..planning.render import render_text
from ..planning.render_patterns import patterns_text
from ..settings import PlatformSettings, Settings
from ..sources import SourceSnapshot, read_sources
from . import data as demo_data

TOKEN = "demo-token"
FIRST_NIGHT = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)
# Two months later: the temporary sync of late enrolments (expires 2027-01-31) has expired.
LATER_NIGHT = dt.datetime(2027, 2, 1, 1, 0, tzinfo=dt.UTC)
COURSES: dict[str, list[tuple[str, str]]] = {
    "ecampus": [("HIST-L1-MOD", "Histoire moderne L1"), ("DROIT-L1-CIVIL", "Droit civil L1")],
    # The FOAD2 spaces get the DFGSP2 promotion from the course pattern foad2-dfgsp2,
    # all but the archived one.
    "collegium": [("FOAD2-PHARMA", "FOAD2 Pharmacie"), ("FOAD2-PHARMA-BIO", "FOAD2 Biologie"),
                  ("FOAD2-2025-ARCHIVE", "FOAD2 2025 (archive)"),
                  ("MED2-ANAT", "Anatomie DFGSM2")],
    "prelude": [("PRELUDE-METHODO", "Méthodologie du travail universitaire")],
}


def _seed(platform: str, data: demo_data.DemoData, manual_members: set[str]) -> dict[str, Any]:
    """What each Moodle already has: courses, accounts (a few students have none yet), and
    a cohort plus a cohort sync made by hand, which the reconciler must leave alone."""
    students = [s for s in data.students if s.branch == demo_data.PEOPLE]
    users = [
        {
            "username": s.login,
            "firstname": s.first,
            "lastname": s.last,
            "email": f"{s.login}@etu.unicaen.fr",
            "auth": "ldap",
        }
        for n, s in enumerate(students)
        if n % 40 != 7
    ]  # about 2.5 % never logged in
    users += [
        {
            "username": u,
            "firstname": u,
            "lastname": "Demo",
            "email": f"{u}@unicaen.fr",
            "auth": "ldap",
        }
        for u in sorted(manual_members)
    ]
    first = COURSES[platform][0][0]
    return {
        "categories": [{"name": "Formations", "idnumber": "CAT-FORMATIONS"}],
        "courses": [
            {"shortname": s, "fullname": f, "category_idnumber": "CAT-FORMATIONS"}
            for s, f in COURSES[platform]
        ],
        "users": users,
        "cohorts": [
            {
                "idnumber": "delegues-2026",
                "name": "Délégués étudiants (fait main)",
                "members": [u["username"] for u in users[:3]],
            }
        ],
        "cohort_syncs": [{"course": first, "cohort": "delegues-2026", "roleid": 5}],
    }


@contextmanager
def demo_world(workdir: Path, students: int = 300) -> Iterator[dict[str, Any]]:
    """Scratch repository, sources and one emulator per platform."""
    repo = workdir / "repo"
    with resources.as_file(resources.files(__package__) / "declarations" / "cohorts") as shipped:
        shutil.copytree(shipped, repo / "cohorts")
    decls = load_declarations(repo / "cohorts", repo)
    settings: Settings = decls.settings  # type: ignore[assignment]
    manual_members = {m for c in decls.cohorts for m in c.members}
    data = demo_data.generate(seed=2026, students=students, year=settings.academic_year)
    apogee = demo_data.write_apogee(data, workdir / "apogee.db")
    directory = demo_data.mock_directory(data.entries)
    with ExitStack() as stack:
        emulators: dict[str, MoodleEmulator] = {}
        for name in settings.platforms:
            emu = stack.enter_context(MoodleEmulator(EmulatorConfig(token=TOKEN, now=FIRST_NIGHT)))
            emu.seed(_seed(name, data, manual_members))
            emulators[name] = emu

        def client(platform: PlatformSettings) -> MoodleClient:
            return MoodleClient(emulators[platform.name].url, TOKEN)

        def sources(s: Settings, names: list[str], today: dt.date) -> SourceSnapshot:
            return read_sources(s, {}, apogee_conn=apogee, ldap_conn=directory, platforms=names,
                                today=today)

        yield {
            "repo": repo,
            "settings": settings,
            "data": data,
            "apogee": apogee,
            "directory": directory,
            "emulators": emulators,
            "client": client,
            "sources": sources,
        }


def _environment(world: dict[str, Any], now: dt.datetime) -> Environment:
    return Environment(
        repo=world["repo"],
        environ={},
        now=now,
        client_factory=world["client"],
        sources_reader=world["sources"],
    )


def _title(text: str) -> None:
    click.echo("")
    click.secho(f"== {text} ==", bold=True)


def _plan_and_apply(world: dict[str, Any], now: dt.datetime, show: str, do_apply: bool) -> None:
    env = _environment(world, now)
    for name in world["settings"].platforms:
        plan = make_plan(env, name)
        if name == show:
            click.echo(render_text(plan))
            click.echo("")
        else:
            click.echo(f"[{name}] {plan.summary()}")
            for line in patterns_text(plan)[2:]:  # what its course patterns match
                click.echo(f"[{name}] {line.strip()}")
        if do_apply and plan.has_changes:
            outcome = apply(env, name, allow_dirty=True)
            r = outcome.result
            click.echo(
                f"[{name}] applied {len(r.done)} action{'s' * (len(r.done) != 1)} "
                f"(one action may add many members), {len(r.failed)} failed, "
                f"{len(r.skipped)} skipped"
            )


def run_demo(students: int = 300) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp,
        demo_world(Path(tmp), students) as world,
    ):
        click.echo(
            f"A fictional university: {len(world['data'].students)} students, "
            f"{len(world['data'].vets)} étape versions, platforms "
            f"{', '.join(world['settings'].platforms)} (Moodle emulators on "
            f"{', '.join(e.url for e in world['emulators'].values())})."
        )
        _title(f"1. First plan and apply ({FIRST_NIGHT:%Y-%m-%d}), empty Moodle cohorts")
        _plan_and_apply(world, FIRST_NIGHT, show="ecampus", do_apply=True)
        _title("2. The same night, again: nothing to do")
        _plan_and_apply(world, FIRST_NIGHT, show="ecampus", do_apply=False)

        night = demo_data.simulate_night(world["apogee"], world["data"])
        entry = night.new_entry
        world["directory"].strategy.add_entry(entry["dn"], entry["attributes"])
        for emu in world["emulators"].values():
            emu.seed(
                {
                    "users": [
                        {
                            "username": night.new_student.login,
                            "firstname": night.new_student.first,
                            "lastname": night.new_student.last,
                            "email": f"{night.new_student.login}@etu.unicaen.fr",
                            "auth": "ldap",
                        }
                    ]
                }
            )
        for emu in world["emulators"].values():
            emu.set_now(LATER_NIGHT)
        _title(
            f"3. A night later ({LATER_NIGHT:%Y-%m-%d}): IA of student {night.cancelled[0]} "
            f"in {night.cancelled[1]} cancelled, new student {night.new_student.login} in "
            f"{night.new_vet}, the late-enrolment sync expired"
        )
        _plan_and_apply(world, LATER_NIGHT, show="ecampus", do_apply=True)
        _title("4. And once more: converged")
        _plan_and_apply(world, LATER_NIGHT, show="", do_apply=False)
