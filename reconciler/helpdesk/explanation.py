"""``reconcile explain``: why is this person (not) in this cohort or course, in one place.

For one username, the whole chain with its evidence: the directory entries (and why one
counts or not), the inscriptions administratives of the configured year (and why each makes
a general-cohort membership or not), the manual cohorts that list the person (file:line, the
commit and author that added the line, expiry), the syncs that bring those cohorts into
courses, what Moodle holds (account, cohorts, enrolments and roles in the courses
concerned), the last history entries, and the verdict: what the next apply will do for the
person and why, or what blocks it.

Read-only and targeted: two LDAP searches and one APOGÉE query for the person, a handful of
web-service calls per platform. The verdict comes from the nightly planner itself, run on the
platform's states restricted to the person (``moodle.read_person_actual``,
``moodle.restrict_desired``); nothing is written anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..applying.leavers import load_record, record_path
from ..applying.ledger_file import LedgerFileError
from ..applying.runner import Environment
from ..declarations.history import blame_line, git_info, last_change
from ..declarations.loader import DeclarationSet
from ..errors import ConfigurationError, DeclarationErrors
from ..history.query import Question, changes, last_run
from ..moodle.errors import MoodleError
from ..planning.desired import build_desired
from ..planning.grace import apply_grace
from ..planning.ledger import Ledger
from ..planning.planner import compute_plan
from ..settings import PlatformSettings
from ..sources.model import SourceSnapshot
from .moodle import (
    MoodlePerson,
    general_shells,
    person_cohorts,
    read_person_actual,
    restrict_desired,
)
from .person import PersonSources, read_person
from .verdict import blockers, person_changes, summary

HISTORY_SHOWN = 5


def explain(
    env: Environment,
    username: str,
    platforms: Sequence[str] | None = None,
    *,
    course: str | None = None,
    cohort: str | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    apogee_conn: Any = None,
    ldap_conn: Any = None,
) -> dict[str, Any]:
    """The explanation for ``username`` on ``platforms`` (default: every platform), as plain
    JSON values (rendered by ``render``): ``{username, at, academic_year, commit, sources
    (PersonSources.to_json, None without general cohorts), platforms: {name: {title,
    declarations: {cohorts, syncs}, moodle (MoodlePerson.to_json), verdict: {summary,
    changes, leaving, blockers, notes}, history: {entries, last_run}}}, reads: {ldap_searches,
    apogee_queries, web_service_calls, seconds}}``. ``course``/``cohort`` add a course or cohort the
    question is about even when the person has nothing to do with it. ``history``: the
    history entries (branch and spool) to look the person up in. ``apogee_conn`` and
    ``ldap_conn`` replace the connections the environment names.

    Raises ``DeclarationErrors`` when ``platforms.yaml`` is unusable, ``ConfigurationError``
    for an unknown platform, and for one platform asked alone a missing token
    (``ConfigurationError``) or a failed Moodle read (``MoodleError``); among several, such a
    platform's section says so (``error``) and the others are explained. A source that
    cannot be read is reported, never raised.
    """
    started = time.monotonic()
    username = username.strip().lower()
    decls = env.declarations()
    settings = env.settings
    names = list(platforms) if platforms else list(settings.platforms)
    for name in names:
        env.platform(name)  # an unknown platform is refused before anything is read
    general = [n for n in names if settings.platform(n).general_cohorts.enabled]
    person = read_person(settings, env.environ, username, general, env.today,
                         apogee_conn=apogee_conn, ldap_conn=ldap_conn) if general else None
    entries = list(history)
    doc: dict[str, Any] = {
        "username": username,
        "at": env.now.isoformat(timespec="seconds"),
        "academic_year": settings.academic_year,
        "commit": _commit(env),
        "sources": person.to_json() if person else None,
        "platforms": {},
    }
    calls = 0
    for name in names:
        platform = env.platform(name)
        try:
            section = _platform(env, decls, platform, username, person, entries, course,
                                cohort)
        except (ConfigurationError, MoodleError) as exc:
            if len(names) == 1:
                raise
            # One platform out of reach (no token here, Moodle down) leaves the others.
            section = _refused(platform, f"Moodle not read: {exc}", "moodle")
        calls += sum(section["moodle"]["calls"].values())
        doc["platforms"][name] = section
    doc["reads"] = {
        "ldap_searches": (person.reads.get("ldap_searches", 0) if person else 0),
        "apogee_queries": (person.reads.get("apogee_queries", 0) if person else 0),
        "web_service_calls": calls,
        "seconds": round(time.monotonic() - started, 3),
    }
    return doc


def _commit(env: Environment) -> str | None:
    return git_info(env.repo).commit


def _platform(
    env: Environment,
    decls: DeclarationSet,
    platform: PlatformSettings,
    username: str,
    person: PersonSources | None,
    history: list[Mapping[str, Any]],
    course: str | None,
    cohort: str | None,
) -> dict[str, Any]:
    general = platform.general_cohorts.enabled
    snapshot = None
    if general and person is not None:
        snapshot = person.snapshot or SourceSnapshot(
            env.settings.academic_year, healthy=False, reasons=list(person.errors))
    try:
        desired = build_desired(decls, env.settings, platform.name, env.today, snapshot)
    except DeclarationErrors as exc:
        return _refused(platform, str(exc))
    restricted = restrict_desired(desired, username)
    courses = [course] if course else []
    ledger, ledger_problem = _ledger(env, platform, username)
    with env.client(platform) as client:
        actual, view, restricted = read_person_actual(
            client, platform, restricted, username, courses=courses,
            cohorts=[cohort] if cohort else [],
            recorded=sorted({e.course for e in ledger.enrolled()}))
    syncs = restricted.syncs
    restricted = general_shells(restricted, actual, platform, _other_vets(person, platform.name))
    # The leavers' grace period, as the nightly keeps it between reading Moodle and planning,
    # from the record this clone holds (read only: explain saves nothing).
    record, problem = load_record(record_path(env.repo, platform.name))
    restricted = apply_grace(restricted, actual, platform, env.settings.academic_year,
                             env.today, record, problem).desired
    uid = view.account["id"] if view.account else None
    # The person's own entries, by the account Moodle has now (ids, not names, are kept).
    ledger = replace(ledger, entries={k: e for k, e in ledger.entries.items() if e.userid == uid})
    plan = compute_plan(restricted, actual, platform, env.today, env.settings.academic_year,
                        ledger=ledger)

    member_of = person_cohorts(restricted, actual, username, uid)
    concern = member_of | ({cohort} if cohort else set())
    found = person_changes(plan, username, member_of, set(courses), syncs)
    leaving = _leaving(restricted, username)
    run = last_run(history, platform.name)
    blocking = blockers(plan, username, person.to_json() if person else {}, syncs, run, found,
                        general)
    if ledger_problem:
        blocking.append({"code": "ledger", "text": (
            f"{ledger_problem}: plan and apply stop on this platform until it is fixed")})
    return {
        "title": platform.title or platform.name,
        "declarations": _declarations(env, decls, platform.name, username, concern, course),
        "moodle": view.to_json(),
        "verdict": {
            "summary": summary(found, blocking, leaving),
            "changes": found,
            "leaving": leaving,
            "blockers": blocking,
            "notes": _notes(plan, restricted, concern, username, view,
                            person.entries if person else []),
        },
        "history": {
            "entries": changes(history, Question(username=username, platform=platform.name))[
                -HISTORY_SHOWN:],
            "last_run": run,
        },
    }


def _ledger(env: Environment, platform: PlatformSettings, username: str) -> tuple[Ledger, str]:
    """The manual-enrolment ledger's entries naming ``username`` (read only), and the
    problem when the file cannot be read (then an empty ledger: nothing to end, no warning
    of a missing one; the nightly stops on it, which the blocker says)."""
    try:
        ledger = env.ledger(platform).ledger
    except LedgerFileError as exc:
        return Ledger(platform.name, ""), str(exc)
    mine = {k: e for k, e in ledger.entries.items() if e.username == username}
    return replace(ledger, entries=mine), ""


def _leaving(desired: Any, username: str) -> list[dict[str, str]]:
    """The general cohorts ``username`` is leaving after a grace period: ``{cohort, on,
    record}`` (the day the nightly removes them, and how far the leavers record vouches)."""
    grace = desired.general_report.get("grace") or {}
    return [
        {"cohort": idnumber, "on": users[username], "record": str(grace.get("record", ""))}
        for idnumber, users in sorted((grace.get("leaving") or {}).items())
        if username in users
    ]


def _refused(platform: PlatformSettings, why: str, code: str = "declarations") -> dict[str, Any]:
    summary = {
        "declarations": "nothing will be applied: the declarations have errors",
        "moodle": "unknown: Moodle could not be read",
    }[code]
    return {
        "error": why,
        "title": platform.title or platform.name,
        "declarations": {"cohorts": [], "syncs": []},
        "moodle": {"account": None, "cohorts": [], "courses": [], "other_courses": [],
                   "plugin_available": True, "calls": {}},
        "verdict": {"summary": summary, "changes": [], "leaving": [],
                    "blockers": [{"code": code, "text": why}], "notes": []},
        "history": {"entries": [], "last_run": None},
    }


def _other_vets(person: PersonSources | None, platform: str) -> dict[str, str]:
    """``{general cohort idnumber: VET}`` of the person's IAs on ``platform``."""
    out: dict[str, str] = {}
    for ia in person.ia if person else []:
        made = ia["platforms"].get(platform) or {}
        if made.get("cohort"):
            out[made["cohort"]] = ia["vet"]
    return out


# Plan warnings worth a note when they are about the person's syncs or cohorts.
NOTED = ("expired", "expiring", "cohort-kept", "etape-empty", "cohort-sync-discouraged")
# Warnings of the manual phase: about the person whatever their target, since the restricted
# plan names nobody else.
MANUAL_NOTED = ("manual-enrolled-otherwise", "manual-end-kept", "manual-role-kept",
                "manual-ledger-incomplete")


def _notes(plan: Any, desired: Any, concern: set[str], username: str,
           view: MoodlePerson, entries: list[dict[str, Any]]) -> list[str]:
    """The plan's warnings about the person's syncs (the restricted plan has no other) and
    cohorts, the cohorts where they are neither added nor removed, an unknown username."""
    syncs = {s.source for s in [*desired.syncs, *desired.expired_syncs]}
    notes = [f"{w.code}: {w.message}" for w in plan.warnings
             if (w.code in NOTED and (w.target in syncs or w.target in concern))
             or w.code in MANUAL_NOTED]
    if any(w.code == "manual-ledger-missing" for w in plan.warnings):
        notes.append("this clone holds no record of the manual enrolments the reconciler made "
                     "(.reconciler/manual-enrolments-<platform>.json, kept by the nightly in "
                     "the CI cache): an end of a method: manual enrolment still owed to the "
                     "person cannot be shown here")
    for idnumber in sorted(concern):
        want = desired.cohorts.get(idnumber)
        if want is not None and username in want.uncertain:
            notes.append(f"{idnumber}: {username} is neither added nor removed (their student "
                         "number is on several directory accounts)")
    if view.account is None and not concern and not entries:
        notes.append(f"nothing knows {username}: no directory entry, no Moodle account, no "
                     "declaration (a typo?)")
    return notes


def _declarations(
    env: Environment,
    decls: DeclarationSet,
    platform: str,
    username: str,
    concern: set[str],
    course: str | None,
) -> dict[str, Any]:
    """The manual cohorts that list the person (or that Moodle still has them in), each
    with the line, commit and author that added the member (or removed it), and the syncs
    of the cohorts that concern them (and of ``course``)."""
    cohorts = []
    declared = {c.idnumber: c for c in decls.cohorts_of(platform)}
    for idnumber in sorted(concern):
        decl = declared.get(idnumber)
        if decl is None:
            continue
        item: dict[str, Any] = {
            "idnumber": idnumber,
            "name": decl.name,
            "file": decl.location.file,
            "expires": decl.expires.isoformat() if decl.expires else None,
            "expired": bool(decl.expires and env.today > decl.expires),
            "owners": list(decl.owners),
        }
        if username in decl.members:
            line = decl.member_lines[decl.members.index(username)] if decl.member_lines else (
                decl.location.line)
            added = blame_line(env.repo, decl.location.file, line)
            item.update(listed=True, line=line, added_by=added.__dict__ if added else None)
        else:
            gone = last_change(env.repo, decl.location.file, username)
            item.update(listed=False, line=None, removed_by=gone.__dict__ if gone else None)
        cohorts.append(item)
    syncs = []
    patterns = [s for p in decls.patterns_of(platform) for s in p.syncs]  # course: its label
    for sync in [*decls.syncs_of(platform), *patterns]:
        if sync.cohort not in concern and sync.course != course:
            continue
        syncs.append({
            "course": sync.course,
            "cohort": sync.cohort,
            "role": sync.role,
            "method": sync.method,
            "group": sync.group,
            "expires": sync.expires.isoformat() if sync.expires else None,
            "expired": bool(sync.expires and env.today > sync.expires),
            "reason": sync.reason,
            "source": str(sync.location),
        })
    return {"cohorts": cohorts, "syncs": syncs}
