"""Values passed between the source readers, the cohort builder and their callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

MAX_MESSAGE = 400  # characters: a reason stays one readable line in a job log


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space, shortened."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"


def describe(exc: BaseException) -> str:
    """``ExceptionType: message`` on one line, without repeating a type the message names.

    A lower-case type name is qualified by its module (``struct.error``, ``socket.gaierror``),
    since ``error: ...`` alone says nothing.
    """
    kind = type(exc)
    name = kind.__name__
    if name.islower() and kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__.split('.')[0].lstrip('_')}.{name}"
    text = one_line(str(exc))
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


class SourceError(Exception):
    """A source could not be read completely. Never turned into an empty result.

    ``source`` names the source (``LDAP``, ``APOGÉE``); ``message`` is one line (newlines of
    driver messages are flattened) so that reasons print as one line each.
    """

    def __init__(self, source: str, message: str) -> None:
        message = one_line(message)
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class IaRow(NamedTuple):
    """One inscription administrative (IA) to an étape, as the §1.5 query returns it."""

    cod_etp: str
    cod_vrs_vet: str
    cod_etu: str
    cod_ind: str
    cod_dip: str
    cod_vrs_vdi: str
    cod_cmp: str
    tem_iae_prm: str
    eta_pmt_iae: str
    lib_web_vet: str
    lib_etp: str
    lic_etp: str

    @property
    def vet(self) -> str:
        """The étape + version key, ``COD_ETP-COD_VRS_VET``."""
        return f"{self.cod_etp}-{self.cod_vrs_vet}"


class DirectoryEntry(NamedTuple):
    """One directory account in the configured base (values already decoded).

    LDAP attributes may hold several values in no promised order, so the two attributes the
    join depends on keep *every* value, sorted: ``student_ids`` (stripped, non-empty) and
    ``usernames`` (stripped, lower-cased, distinct). The names and the mail address are one
    value each, chosen by the reader (see ``ldap.read_entries``).
    """

    dn: str
    student_ids: tuple[str, ...]
    usernames: tuple[str, ...]
    firstname: str
    lastname: str
    email: str

    @property
    def username(self) -> str | None:
        """The Moodle username when the entry has exactly one, else None (none or undecidable)."""
        return self.usernames[0] if len(self.usernames) == 1 else None


@dataclass(frozen=True)
class Person:
    """A student with a directory account: enough to create the Moodle account."""

    username: str
    firstname: str
    lastname: str
    email: str
    student_ids: tuple[str, ...]  # every student number of the directory entry


@dataclass(frozen=True)
class GeneralCohort:
    """One desired general cohort (one VET) on one platform.

    ``uncertain`` holds usernames whose membership the planner must leave as it is (neither add
    nor remove): their student number maps to several directory accounts, so the sources
    cannot say which one is the student.
    """

    idnumber: str
    name: str
    description: str
    context: str
    members: frozenset[str]
    cod_etp: str
    cod_vrs_vet: str
    cod_cmp: str = ""
    uncertain: frozenset[str] = frozenset()
    # Rollover overlap: the members only last year's IAs bring (a subset of ``members``).
    from_previous_year: frozenset[str] = frozenset()


@dataclass
class SourceSnapshot:
    """What the sources said, whether they can be trusted, and the cohorts they imply.

    When ``healthy`` is false, ``general_cohorts`` is empty: nothing to act on, and the
    planner must leave every general cohort unchanged. ``reasons`` says why; ``notes`` are
    what is worth knowing anyway (one line each). ``rollover_from`` is the academic year of
    the last good run when platforms.yaml now names another one (a rollover), else None.
    """

    academic_year: str
    healthy: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rollover_from: str | None = None
    general_cohorts: dict[str, list[GeneralCohort]] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    digest: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
