"""General cohorts: one per VET a platform selects, members = directory logins of its IA.

Pure functions of (IA rows, directory entries, settings): no I/O, deterministic output.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from ..settings import GeneralCohortSettings, Settings, render_template, vet_fields
from .model import DirectoryEntry, GeneralCohort, IaRow, Person

SAMPLE_SIZE = 10


def norm_id(value: str) -> str:
    """Join key for COD_ETU / supannEtuId: COD_ETU is a NUMBER in Oracle, so '01234' == '1234'."""
    value = value.strip()
    return (value.lstrip("0") or "0") if value.isdigit() else value


def _sample(values: Iterable[str]) -> list[str]:
    return sorted(values)[:SAMPLE_SIZE]


@dataclass
class Directory:
    """The directory indexed by student number, with its anomalies set aside."""

    by_student: dict[str, str] = field(default_factory=dict)  # norm id -> username
    ambiguous: dict[str, frozenset[str]] = field(default_factory=dict)  # norm id -> usernames
    people: dict[str, Person] = field(default_factory=dict)
    anomalies: dict[str, Any] = field(default_factory=dict)


def index_directory(entries: Iterable[DirectoryEntry]) -> Directory:
    """Index entries by *every* student number they carry; set the undecidable ones aside.

    Rules (README, "What the directory must provide"):

    * an entry matches each of its student numbers (``supannEtuId`` is multi-valued and its
      values come in no promised order; an old number from another establishment is common);
    * a number claimed by several entries, an entry with several usernames (which one is the
      Moodle account cannot be told) and a username on entries claiming different numbers
      are *ambiguous*: every login involved is left as it is (neither added nor removed);
    * entries without a number or without a username are reported and match nothing.
    """
    no_id: list[str] = []
    no_login: list[str] = []
    several_ids: list[str] = []
    several_logins: list[str] = []
    # Per entry, one frozenset shared by all its keys: a directory of 40,000 stays small.
    claims: dict[str, frozenset[str]] = {}  # norm id -> logins claiming it
    first_claimer: dict[str, str] = {}  # norm id -> DN of the first entry claiming it
    duplicate_ids: set[str] = set()
    ids_of_login: dict[str, frozenset[str]] = {}  # login -> norm ids of its first entry
    shared_logins: set[str] = set()
    entry_of_login: dict[str, DirectoryEntry] = {}
    for entry in entries:
        ids = frozenset(norm_id(v) for v in entry.student_ids)
        if not ids:
            no_id.append(entry.dn)
            continue
        if not entry.usernames:
            no_login.append(entry.dn)
            continue
        if len(ids) > 1:
            several_ids.append(entry.dn)
        if len(entry.usernames) > 1:
            several_logins.append(entry.dn)
        logins = frozenset(entry.usernames)
        for key in ids:
            known = claims.get(key)
            claims[key] = logins if known is None else known | logins
            if first_claimer.setdefault(key, entry.dn) != entry.dn:
                duplicate_ids.add(key)
        for login in logins:
            if ids_of_login.setdefault(login, ids) != ids:
                shared_logins.add(login)
            entry_of_login.setdefault(login, entry)

    directory = Directory()
    for key, logins in claims.items():
        if len(logins) > 1 or logins & shared_logins:
            directory.ambiguous[key] = logins
            continue
        (login,) = logins
        entry = entry_of_login[login]
        directory.by_student[key] = login
        directory.people[login] = Person(login, entry.firstname, entry.lastname, entry.email,
                                         entry.student_ids)
    directory.anomalies = {
        "without_student_id": {"count": len(no_id), "sample": _sample(no_id)},
        "without_username": {"count": len(no_login), "sample": _sample(no_login)},
        "duplicate_student_id": {"count": len(duplicate_ids), "sample": _sample(duplicate_ids)},
        "login_shared_by_students": {"count": len(shared_logins),
                                     "sample": _sample(shared_logins)},
        "several_student_ids": {"count": len(several_ids), "sample": _sample(several_ids)},
        "several_usernames": {"count": len(several_logins), "sample": _sample(several_logins)},
    }
    return directory


def _matches(patterns: Iterable[str], cod_etp: str, vet: str) -> bool:
    return any(fnmatchcase(cod_etp, p) or fnmatchcase(vet, p) for p in patterns)


def selects(gc: GeneralCohortSettings, cod_etp: str, vet: str, cod_cmp: str) -> bool:
    """Whether a platform's settings take this VET (component, then include/exclude)."""
    if gc.components and cod_cmp not in gc.components:
        return False
    return _matches(gc.include, cod_etp, vet) and not _matches(gc.exclude, cod_etp, vet)


@dataclass
class _Vet:
    cod_etp: str
    cod_vrs_vet: str
    fields: dict[str, str]
    students: set[str]


def _group_vets(rows: Iterable[IaRow], academic_year: str) -> dict[tuple[str, str], _Vet]:
    """Group IA rows by VET; two occurrences (NUM_OCC_IAE) of one student count once."""
    vets: dict[tuple[str, str], _Vet] = {}
    components: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in rows:
        key = (row.cod_etp, row.cod_vrs_vet)
        vet = vets.get(key)
        if vet is None:
            vet = vets[key] = _Vet(row.cod_etp, row.cod_vrs_vet, vet_fields(
                row.cod_etp, row.cod_vrs_vet, row.cod_cmp, row.lib_web_vet, row.lib_etp,
                row.lic_etp, academic_year), set())
        vet.students.add(norm_id(row.cod_etu))
        components[key][row.cod_cmp] += 1
    for key, vet in vets.items():
        # A VET's IA normally share one component; if not, the most frequent one decides.
        counts = components[key]
        vet.fields["cod_cmp"] = min(counts, key=lambda c: (-counts[c], c))
    return vets


def build_platform(
    gc: GeneralCohortSettings, vets: Mapping[tuple[str, str], _Vet], directory: Directory,
    exclude: frozenset[str] = frozenset(),
) -> tuple[list[GeneralCohort], dict[str, Any]]:
    """The general cohorts of one platform and what could not be matched.

    Returns the cohorts sorted by idnumber and their statistics, among them the join's
    figures the health rule judges: ``ia`` (IAs in force in the selected VETs, one per
    student and VET) and ``ia_with_account`` (those whose student number maps to exactly one
    directory account; an ambiguous number does not count as found). Students in
    ``exclude`` (normalised numbers) count in those figures but are nobody's member: last
    year's students who already re-registered (the rollover overlap).
    """
    cohorts: dict[str, GeneralCohort] = {}
    without_account: set[str] = set()
    ia_students: set[str] = set()
    ia = ia_with_account = 0
    for key in sorted(vets):
        vet = vets[key]
        if not selects(gc, vet.cod_etp, vet.fields["vet"], vet.fields["cod_cmp"]):
            continue
        members: set[str] = set()
        uncertain: set[str] = set()
        for student in vet.students:
            ia_students.add(student)
            ia += 1
            login = directory.by_student.get(student)
            if login is not None:
                ia_with_account += 1
            if student in exclude:
                continue
            if login is not None:
                members.add(login)
            elif student in directory.ambiguous:
                uncertain |= directory.ambiguous[student]
            else:
                without_account.add(student)
        idnumber = render_template(gc.idnumber_template, vet.fields, "idnumber_template")
        previous = cohorts.get(idnumber)
        if previous is not None:  # a template without the version merges the versions
            members |= previous.members
            uncertain |= previous.uncertain
        cohorts[idnumber] = GeneralCohort(
            idnumber=idnumber,
            name=render_template(gc.name_template, vet.fields, "name_template"),
            description=render_template(gc.description, vet.fields, "description"),
            context=render_template(gc.context, vet.fields, "context"),
            members=frozenset(members),
            cod_etp=vet.cod_etp,
            cod_vrs_vet=vet.cod_vrs_vet,
            cod_cmp=vet.fields["cod_cmp"],
            # A login that another of its numbers makes a certain member is certain here.
            uncertain=frozenset(uncertain - members),
        )
    result = sorted(cohorts.values(), key=lambda c: c.idnumber)
    distinct = set().union(*(c.members for c in result)) if result else set()
    stats = {
        "cohorts": len(result),
        "members": len(distinct),
        "memberships": sum(len(c.members) for c in result),
        "students_with_ia": len(ia_students),
        "ia": ia,
        "ia_with_account": ia_with_account,
        "uncertain": sum(len(c.uncertain) for c in result),
        "ia_without_account": {"count": len(without_account), "sample": _sample(without_account)},
    }
    return result, stats


def with_previous_year(
    current: list[GeneralCohort], previous: list[GeneralCohort],
) -> list[GeneralCohort]:
    """The cohorts of the rollover overlap: each VET's students of this year plus its
    students of last year who have not re-registered (``previous``, already without them).

    A cohort only last year has keeps last year's name (and is left out when none of its
    students is left); ``from_previous_year`` holds the members only the previous year
    brings. Sorted by idnumber.
    """
    merged = {c.idnumber: c for c in current}
    for old in previous:
        now = merged.get(old.idnumber)
        if now is None:
            if old.members:  # a VET whose students all re-registered elsewhere: no cohort
                merged[old.idnumber] = replace(old, from_previous_year=old.members)
            continue
        members = now.members | old.members
        merged[old.idnumber] = replace(
            now, members=members, from_previous_year=old.members - now.members,
            uncertain=(now.uncertain | old.uncertain) - members)
    return sorted(merged.values(), key=lambda c: c.idnumber)


def _overlap_stats(cohorts: list[GeneralCohort], stats: dict[str, Any]) -> dict[str, Any]:
    """What the previous year adds to one platform (its join figures judge its read too)."""
    added = set().union(*(c.from_previous_year for c in cohorts)) if cohorts else set()
    return {
        "members": len(added),
        "memberships": sum(len(c.from_previous_year) for c in cohorts),
        "cohorts": sum(1 for c in cohorts if c.from_previous_year),
        "ia": stats["ia"],
        "ia_with_account": stats["ia_with_account"],
        "ia_without_account": stats["ia_without_account"],
    }


def build_general_cohorts(
    settings: Settings, rows: list[IaRow], entries: list[DirectoryEntry],
    platforms: Iterable[str] | None = None,
    previous_rows: list[IaRow] | None = None, overlap: Iterable[str] = (),
) -> tuple[dict[str, list[GeneralCohort]], dict[str, Person], dict[str, Any]]:
    """Cohorts per platform (only platforms with general cohorts enabled), people, stats.

    ``rows`` are the IAs in force for ``settings.academic_year``. On the platforms named in
    ``overlap`` (their rollover overlap is in force), ``previous_rows`` (the IAs in force the
    year before) add to each VET's cohort its students who have no IA in ``rows`` at all;
    the platform's statistics then carry an ``overlap`` entry (``_overlap_stats``), while
    their own figures stay those of ``academic_year`` alone (what the health drops compare).
    """
    directory = index_directory(entries)
    vets = _group_vets(rows, settings.academic_year)
    overlap = frozenset(overlap) if previous_rows is not None else frozenset()
    # Last year's rows under this year's template fields: the same VET, the same cohort.
    old_vets = _group_vets(previous_rows or [], settings.academic_year) if overlap else {}
    re_registered = frozenset(norm_id(r.cod_etu) for r in rows)
    names = sorted(platforms) if platforms is not None else sorted(settings.platforms)
    cohorts: dict[str, list[GeneralCohort]] = {}
    per_platform: dict[str, Any] = {}
    for name in names:
        gc = settings.platform(name).general_cohorts
        if not gc.enabled:
            continue
        cohorts[name], per_platform[name] = build_platform(gc, vets, directory)
        if name in overlap:
            old, old_stats = build_platform(gc, old_vets, directory, exclude=re_registered)
            cohorts[name] = with_previous_year(cohorts[name], old)
            per_platform[name]["overlap"] = _overlap_stats(cohorts[name], old_stats)
    with_ia = {norm_id(r.cod_etu) for r in rows}
    # An account with an old number besides its current one has an IA: judge by login.
    logins_with_ia = {login for key, login in directory.by_student.items() if key in with_ia}
    no_ia = sorted(set(directory.by_student.values()) - logins_with_ia)
    stats = {
        "platforms": per_platform,
        "vets": len(vets),
        "directory": directory.anomalies,
        "account_without_ia": {"count": len(no_ia), "sample": _sample(no_ia)},
    }
    return cohorts, directory.people, stats


def cohorts_digest(academic_year: str, cohorts: Mapping[str, list[GeneralCohort]]) -> str:
    """sha256 of everything the sources decide about the cohorts; independent of row order."""
    canonical = {
        "academic_year": academic_year,
        "platforms": {
            platform: sorted(
                [c.idnumber, c.name, c.description, c.context, sorted(c.members),
                 sorted(c.uncertain)]
                for c in items
            )
            for platform, items in cohorts.items()
        },
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
