"""One person in the sources: their directory entries and their inscriptions administratives,
each judged by the nightly's own rules, and the sources restricted to them for the planner.

Reads are targeted: two LDAP searches (``ldap.search_person``) and one APOGÉE query
(``apogee.read_person_ia``, the §1.5 query parametrised by the person's student numbers).
The judgement reuses the nightly code: ``apogee.unmet_conditions`` (the same conditions the
nightly query filters on), ``general.index_directory`` (numbers claimed twice, several
logins) and ``general.build_general_cohorts`` (the cohorts the person's IAs make).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..settings import Settings, previous_year, render_template, vet_fields
from ..sources import apogee, ldap
from ..sources.general import Directory, build_general_cohorts, index_directory, norm_id, selects
from ..sources.model import DirectoryEntry, SourceError, SourceSnapshot, describe, one_line


def _dn_under(dn: str, base: str) -> bool:
    return dn.lower().replace(" ", "").endswith(base.lower().replace(" ", ""))


@dataclass
class PersonSources:
    """What the directory and APOGÉE say about ``username`` for ``academic_year``.

    ``entries``: every directory entry found, each a dict (``dn``, ``usernames``,
    ``student_ids``, ``affiliations``, ``counts``: whether the nightly read uses it,
    ``why``: one line). ``numbers``: the student numbers of the person's counted entries, and
    for each what the nightly index makes of it. ``ia``: the person's IAs of the year, each
    a dict with its states, the rules it fails and, per platform, the general cohort it
    makes (or why not). ``errors``: one line per source that could not be read (the general
    cohorts are then not judged). ``reads``: LDAP searches, APOGÉE queries, seconds.
    """

    username: str
    academic_year: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[dict[str, Any]] = field(default_factory=list)
    ia: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reads: dict[str, Any] = field(default_factory=dict)
    snapshot: SourceSnapshot | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (the snapshot is the planner's input, not shown)."""
        return {
            "username": self.username,
            "academic_year": self.academic_year,
            "directory": {"entries": self.entries, "numbers": self.numbers},
            "apogee": self.ia,
            "errors": self.errors,
            "notes": self.notes,
            "reads": self.reads,
        }


def read_person(
    settings: Settings,
    environ: Mapping[str, str],
    username: str,
    platforms: Iterable[str],
    today: dt.date,
    *,
    apogee_conn: Any = None,
    ldap_conn: Any = None,
) -> PersonSources:
    """Read and judge ``username`` in the directory and APOGÉE (see :class:`PersonSources`).

    ``platforms``: the platforms whose general cohorts are judged; ``today`` (Europe/Paris)
    says on which of them a rollover overlap is in force: last year's IAs are then read in
    the same query and count as at night. ``apogee_conn`` (DB-API) and ``ldap_conn``
    (ldap3) replace the connections the environment names (left open). Never raises for a
    source failure: it becomes a line of ``errors``.
    """
    started = time.monotonic()
    person = PersonSources(username.lower(), settings.academic_year)
    names = [n for n in platforms if settings.platform(n).general_cohorts.enabled]
    overlap = [n for n in names
               if settings.platform(n).general_cohorts.overlap_in_force(
                   settings.academic_year, today)]
    years = [settings.academic_year] + ([previous_year(settings.academic_year)] if overlap
                                        else [])
    found = _read_directory(settings, environ, person, ldap_conn)
    rows = None if found is None else _read_apogee(settings, environ, person, apogee_conn,
                                                   found, years)
    if found is not None and rows is not None:
        _judge(settings, person, found, rows, names, overlap)
    person.reads["seconds"] = round(time.monotonic() - started, 3)
    return person


def _read_directory(settings: Settings, environ: Mapping[str, str], person: PersonSources,
                    conn: Any) -> ldap.PersonEntries | None:
    own = conn is None
    try:
        if own:
            conn = ldap.connect(settings.sources.ldap, environ)
        found = ldap.search_person(conn, settings.sources.ldap, person.username)
    except SourceError as exc:
        person.errors.append(str(exc))
        return None
    except Exception as exc:  # any failure is "not read", never a traceback
        person.errors.append(one_line(f"LDAP: unexpected {describe(exc)}"))
        return None
    finally:
        if own and conn is not None:
            with contextlib.suppress(Exception):  # closing must not hide the outcome
                conn.unbind()
    person.reads["ldap_searches"] = found.searches
    person.notes += found.notes
    return found


def _read_apogee(settings: Settings, environ: Mapping[str, str], person: PersonSources,
                 conn: Any, found: ldap.PersonEntries,
                 years: list[str]) -> list[apogee.PersonIa] | None:
    # The numbers of every entry holding the username, counted or not: a deactivated
    # account still says which IAs were the person's.
    holders = [e for e, _ in found.found] + found.view
    numbers = sorted({n for e in holders if person.username in e.usernames
                      for n in e.student_ids})
    if not numbers:
        person.reads["apogee_queries"] = 0
        return []
    own = conn is None
    try:
        if own:
            conn = apogee.connect(settings.sources.apogee, environ)
        rows = apogee.read_person_ia(conn, years, settings.sources.apogee, numbers)
    except SourceError as exc:
        person.errors.append(str(exc))
        return None
    except Exception as exc:
        person.errors.append(one_line(f"APOGÉE: unexpected {describe(exc)}"))
        return None
    finally:
        if own and conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
    person.reads["apogee_queries"] = 1
    return rows


def _judge(settings: Settings, person: PersonSources, found: ldap.PersonEntries,
           rows: list[apogee.PersonIa], platforms: list[str], overlap: list[str]) -> None:
    ldap_settings = settings.sources.ldap
    view_dns = {e.dn.lower() for e in found.view}
    directory = index_directory(found.view)
    _entries(person, found, view_dns, ldap_settings.base, ldap_settings.filter)
    _numbers(person, directory, [e for e, _ in found.found] + found.view)
    year = settings.academic_year
    in_force = {ia for ia in rows if not apogee.unmet_conditions(ia, settings.sources.apogee)}
    this_year = [ia.row for ia in rows if ia in in_force and ia.cod_anu == year]
    last_year = [ia.row for ia in rows if ia in in_force and ia.cod_anu != year]
    registered = {norm_id(r.cod_etu) for r in this_year}
    for ia in sorted(rows, key=lambda r: (r.cod_anu != year, r.row.cod_etp, r.row.cod_vrs_vet,
                                          r.row.cod_etu)):
        person.ia.append(_ia(settings, ia, directory, person.username, platforms, overlap,
                             registered))
    cohorts, people, stats = build_general_cohorts(
        settings, this_year, found.view, platforms,
        previous_rows=last_year if overlap else None, overlap=overlap)
    stats["overlap"] = sorted(overlap)  # as read_sources says which windows it applied
    person.snapshot = SourceSnapshot(
        academic_year=settings.academic_year, healthy=True, general_cohorts=cohorts,
        people=people, digest="", stats=stats,
    )


def _entries(person: PersonSources, found: ldap.PersonEntries, view_dns: set[str],
             base: str, search_filter: str) -> None:
    seen: set[str] = set()
    for entry, affiliations in found.found:
        seen.add(entry.dn.lower())
        counts = entry.dn.lower() in view_dns
        if counts:
            why = f"under {base} and matches {search_filter}: the nightly read uses it"
        elif not _dn_under(entry.dn, base):
            why = (f"outside {base} (a deactivated or other branch): the nightly read does "
                   "not see it")
        else:
            why = (f"does not match {search_filter} (affiliations: "
                   f"{', '.join(affiliations) or 'none'}): not read as a student")
        person.entries.append(_entry(entry, affiliations, counts, why, person.username))
    for entry in found.view:
        if entry.dn.lower() in seen:
            continue
        shared = ", ".join(entry.student_ids)
        person.entries.append(_entry(entry, (), True, f"another entry claiming student "
                                     f"number {shared}", person.username))


def _entry(entry: DirectoryEntry, affiliations: tuple[str, ...], counts: bool, why: str,
           username: str) -> dict[str, Any]:
    return {
        "dn": entry.dn,
        "usernames": list(entry.usernames),
        "student_ids": list(entry.student_ids),
        "affiliations": list(affiliations),
        "holds_username": username in entry.usernames,
        "counts": counts,
        "why": why,
    }


def _numbers(person: PersonSources, directory: Directory,
             entries: list[DirectoryEntry]) -> None:
    """What the nightly index (``directory``) makes of each student number of the entries
    holding the person's username, counted or not."""
    mine = list({e.dn: e for e in entries if person.username in e.usernames}.values())
    for entry in mine:
        if len(entry.usernames) > 1:
            person.notes.append(
                f"{entry.dn} holds several usernames ({', '.join(entry.usernames)}): which "
                "one is the Moodle account cannot be told, so its memberships are left as "
                "they are")
    for number in sorted({norm_id(n) for e in mine for n in e.student_ids}):
        if number in directory.ambiguous:
            logins = sorted(directory.ambiguous[number])
            person.numbers.append({
                "number": number, "login": None, "uncertain": logins,
                "why": f"claimed by {len(logins)} directory accounts ({', '.join(logins)}): "
                       "the nightly neither adds nor removes them",
            })
        else:
            login = directory.by_student.get(number)
            person.numbers.append({
                "number": number, "login": login, "uncertain": [],
                "why": f"matches {login} only" if login else "matches no account",
            })


def _ia(settings: Settings, ia: apogee.PersonIa, directory: Directory, username: str,
        platforms: list[str], overlap: list[str], registered: set[str]) -> dict[str, Any]:
    """One IA as people read it, and per platform the general cohort it makes or why not
    (last year's IAs count only where the rollover overlap is in force, for students with
    no IA in force this year)."""
    row = ia.row
    unmet = apogee.unmet_conditions(ia, settings.sources.apogee)
    last_year = ia.cod_anu != settings.academic_year
    login = directory.by_student.get(norm_id(row.cod_etu))
    fields = vet_fields(row.cod_etp, row.cod_vrs_vet, row.cod_cmp, row.lib_web_vet,
                        row.lib_etp, row.lic_etp, settings.academic_year)
    makes: dict[str, dict[str, Any]] = {}
    for name in platforms:
        gc = settings.platform(name).general_cohorts
        try:
            idnumber = render_template(gc.idnumber_template, fields, "idnumber_template")
        except ValueError as exc:
            makes[name] = {"cohort": None, "member": False, "why": str(exc)}
            continue
        if last_year and name not in overlap:
            makes[name] = {"cohort": idnumber, "member": False,
                           "why": f"an IA of {ia.cod_anu}: no rollover overlap in force"}
        elif last_year and norm_id(row.cod_etu) in registered:
            makes[name] = {"cohort": idnumber, "member": False,
                           "why": f"an IA of {ia.cod_anu}: re-registered for "
                                  f"{settings.academic_year}, only this year's IAs count"}
        elif not selects(gc, row.cod_etp, row.vet, row.cod_cmp):
            why = "étape not selected by this platform (etapes include/exclude, components)"
            makes[name] = {"cohort": idnumber, "member": False, "why": why}
        elif unmet:
            makes[name] = {"cohort": idnumber, "member": False,
                           "why": "not in force: " + "; ".join(c.meaning for c in unmet)}
        elif norm_id(row.cod_etu) in directory.ambiguous:
            makes[name] = {"cohort": idnumber, "member": False, "uncertain": True,
                           "why": "its student number is on several directory accounts: "
                                  "membership left as it is"}
        elif login != username:
            makes[name] = {"cohort": idnumber, "member": False,
                           "why": f"its student number matches {login or 'no directory account'}"}
        else:
            why = "in force, with this directory account"
            if last_year:
                why = (f"an IA of {ia.cod_anu} in force, not re-registered: counts while the "
                       "rollover overlap is in force")
            makes[name] = {"cohort": idnumber, "member": True, "why": why}
    states = apogee.STATES
    return {
        "year": ia.cod_anu,
        "vet": row.vet,
        "cod_etp": row.cod_etp,
        "cod_vrs_vet": row.cod_vrs_vet,
        "lib_web_vet": row.lib_web_vet,
        "cod_cmp": row.cod_cmp,
        "cod_etu": row.cod_etu,
        "eta_iae": ia.eta_iae,
        "eta_iae_label": states["eta_iae"].get(ia.eta_iae, "?"),
        "eta_iaa": ia.eta_iaa,
        "eta_iaa_label": states["eta_iaa"].get(ia.eta_iaa, "?"),
        "eta_pmt_iae": row.eta_pmt_iae,
        "tem_iae_prm": row.tem_iae_prm,
        "dat_annul_res_iae": ia.dat_annul_res_iae or None,
        "in_force": not unmet,
        "unmet": [c.meaning for c in unmet],
        "platforms": makes,
    }
