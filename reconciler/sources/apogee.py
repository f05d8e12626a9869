"""APOGÉE: the inscriptions administratives of one academic year (sources.md §1.5).

The SQL is portable on purpose (ANSI joins, ``:name`` binds, no NVL/DECODE/ROWNUM): the same
text runs on Oracle through ``oracledb`` (thin mode) and on a sqlite3 copy in tests and the demo.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote, unquote, urlsplit

from ..settings import ApogeeSettings
from .model import IaRow, SourceError, describe

SOURCE = "APOGÉE"
T = TypeVar("T")

OPEN_YEAR_SQL = "SELECT cod_anu FROM annee_uni WHERE eta_anu_iae = 'O' ORDER BY cod_anu"

# The §1.5 query in parts, so that the nightly read and a one-person read (``reconcile
# explain``) share the same columns, joins and rules: only what they select on differs.
_COLUMNS = """\
SELECT iae.cod_etp, iae.cod_vrs_vet, ind.cod_etu, ind.cod_ind,
       iae.cod_dip, iae.cod_vrs_vdi, iae.cod_cmp, iae.tem_iae_prm, iae.eta_pmt_iae,
       vet.lib_web_vet, etp.lib_etp, etp.lic_etp"""
# What a person's read adds: the states the nightly query filters on, and when an IA ended.
_STATE_COLUMNS = ", iae.eta_iae, iaa.eta_iaa, iae.dat_annul_res_iae, iae.cod_anu"
_FROM = """
FROM ins_adm_etp iae
JOIN individu      ind ON ind.cod_ind = iae.cod_ind
JOIN ins_adm_anu   iaa ON iaa.cod_ind = iae.cod_ind AND iaa.cod_anu = iae.cod_anu
JOIN etape         etp ON etp.cod_etp = iae.cod_etp
JOIN version_etape vet ON vet.cod_etp = iae.cod_etp AND vet.cod_vrs_vet = iae.cod_vrs_vet"""


@dataclass(frozen=True)
class Condition:
    """One rule an IA must meet to make a general-cohort membership: ``column`` (as the
    query names it) equals ``value``. ``field`` is the :class:`PersonIa` attribute holding
    the column; ``meaning`` says it in the users' words (sources.md §1.2)."""

    column: str
    value: str
    field: str
    meaning: str

    def sql(self) -> str:
        return f"\n  AND {self.column} = '{self.value}'"


# An IA in force: INS_ADM_ETP.ETA_IAE 'E' (not annulée A, résiliée R, en création C) and the
# year's annual registration INS_ADM_ANU.ETA_IAA 'E' (not annulée).
IN_FORCE: tuple[Condition, ...] = (
    Condition("iae.eta_iae", "E", "eta_iae", "IA en cours (INS_ADM_ETP.ETA_IAE = 'E')"),
    Condition("iaa.eta_iaa", "E", "eta_iaa",
              "inscription annuelle en cours (INS_ADM_ANU.ETA_IAA = 'E')"),
)
PAID_FEES = Condition("iae.eta_pmt_iae", "P", "eta_pmt_iae",
                      "droits payés (INS_ADM_ETP.ETA_PMT_IAE = 'P', sources.apogee."
                      "require_paid_fees)")
PRINCIPAL = Condition("iae.tem_iae_prm", "O", "tem_iae_prm",
                      "inscription principale (INS_ADM_ETP.TEM_IAE_PRM = 'O', sources.apogee."
                      "principal_only)")
# Meaning of the state values (sources.md §1.2), for people reading a person's IAs.
STATES: dict[str, dict[str, str]] = {
    "eta_iae": {"E": "en cours", "A": "annulée", "R": "résiliée", "C": "en cours de création"},
    "eta_iaa": {"E": "en cours", "A": "annulée"},
    "eta_pmt_iae": {"P": "payée", "A": "en attente de paiement"},
    "tem_iae_prm": {"O": "principale", "N": "secondaire"},
}


def conditions(settings: ApogeeSettings) -> tuple[Condition, ...]:
    """Every rule an IA must meet: in force, plus the policy filters the settings ask for."""
    policy = (PAID_FEES,) if settings.require_paid_fees else ()
    policy += (PRINCIPAL,) if settings.principal_only else ()
    return IN_FORCE + policy


def ia_query(settings: ApogeeSettings) -> str:
    """The IA query of the nightly read (sources.md §1.5): every IA of ``:cod_anu`` meeting
    ``conditions(settings)``, for students with a number."""
    return (_COLUMNS + _FROM + "\nWHERE iae.cod_anu = :cod_anu"
            + "".join(c.sql() for c in conditions(settings)) + "\n  AND ind.cod_etu IS NOT NULL")


def person_query(count: int, years: int = 1) -> str:
    """The same columns and joins for the students numbered ``:etu0`` … (``count`` binds)
    in the years ``:anu0`` … (``years`` binds: this year, and last year during a rollover
    overlap), with the states and whatever their state (the rules are judged by
    :func:`unmet_conditions`, from the same :data:`IN_FORCE` list)."""
    numbers = ", ".join(f":etu{i}" for i in range(count))
    anu = ", ".join(f":anu{i}" for i in range(years))
    return (_COLUMNS + _STATE_COLUMNS + _FROM + f"\nWHERE iae.cod_anu IN ({anu})"
            + f"\n  AND ind.cod_etu IN ({numbers})")


class PersonIa(NamedTuple):
    """One IA of one student for one year (``cod_anu``), whatever its state
    (``person_query``)."""

    row: IaRow
    eta_iae: str
    eta_iaa: str
    dat_annul_res_iae: str  # date the IA was cancelled or resigned, '' if none
    cod_anu: str

    @property
    def eta_pmt_iae(self) -> str:
        return self.row.eta_pmt_iae

    @property
    def tem_iae_prm(self) -> str:
        return self.row.tem_iae_prm


def unmet_conditions(ia: PersonIa, settings: ApogeeSettings) -> list[Condition]:
    """The rules of ``conditions(settings)`` that ``ia`` fails (empty: it makes a
    general-cohort membership, given a directory account)."""
    return [c for c in conditions(settings) if getattr(ia, c.field) != c.value]


def _text(value: Any) -> str:
    """Oracle CHAR columns come padded, COD_ETU may be a NUMBER and dates come as datetime:
    normalise to str (dates as YYYY-MM-DD)."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def connect(settings: ApogeeSettings, environ: Mapping[str, str]) -> Any:
    """Open the DB-API connection named by the environment (never from the YAML file)."""
    url = environ.get(settings.url_env, "").strip()
    if not url:
        raise SourceError(SOURCE, f"environment variable {settings.url_env} is not set")
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
        if not path:
            raise SourceError(SOURCE, "sqlite URL must look like sqlite:///path/to/apogee.db")
        try:
            # Read-only: the reconciler never writes to APOGÉE, not even a local copy.
            return sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        except Exception as exc:  # the driver's errors and any other: "not read"
            raise SourceError(SOURCE, f"cannot open {path}: {describe(exc)}") from exc
    if parts.scheme == "oracle":
        password = environ.get(settings.password_env)
        if not password:
            raise SourceError(SOURCE, f"environment variable {settings.password_env} is not set")
        dsn = f"{parts.hostname}:{parts.port or 1521}{parts.path}"
        try:
            import oracledb  # imported here: only production needs it

            conn = oracledb.connect(
                user=unquote(parts.username or ""), password=password, dsn=dsn,
                tcp_connect_timeout=min(settings.timeout_seconds, 60),
            )
            conn.call_timeout = int(settings.timeout_seconds * 1000)  # per round trip, in ms
        except Exception as exc:  # oracledb.Error, socket errors, anything: "not read"
            raise SourceError(SOURCE, f"cannot connect to {dsn}: {describe(exc)}") from exc
        return conn
    raise SourceError(SOURCE, f"unsupported URL scheme {parts.scheme!r} (oracle:// or sqlite:///)")


def _sqlite_deadline(conn: sqlite3.Connection, seconds: float) -> None:
    """sqlite has no call timeout: abort the statement once the deadline passes."""
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1_000)


def _fetch(conn: Any, sql: str, binds: dict[str, Any], arraysize: int,
           timeout: float | None = None) -> Iterator[tuple]:
    # call_timeout bounds each round trip; this bounds the whole fetch.
    deadline = None if timeout is None else time.monotonic() + timeout
    cur = conn.cursor()
    try:
        cur.arraysize = arraysize
        if hasattr(cur, "prefetchrows"):  # oracledb: first round trip brings a full batch
            cur.prefetchrows = arraysize + 1
        cur.execute(sql, binds)
        while True:
            batch = cur.fetchmany(arraysize)
            if not batch:
                return
            yield from batch
            if deadline is not None and time.monotonic() > deadline:
                raise SourceError(SOURCE, f"query took longer than {timeout:g} s")
    finally:
        cur.close()


def _rows(conn: Any, sql: str, binds: dict[str, Any], settings: ApogeeSettings,
          make: Callable[[tuple], T]) -> list[T]:
    """``make`` of every row ``sql`` gives, as they are fetched, within the settings'
    timeout; any database error (DB-API drivers have no common base class) is a
    SourceError."""
    if isinstance(conn, sqlite3.Connection):
        _sqlite_deadline(conn, settings.timeout_seconds)
    try:
        return [make(row) for row in _fetch(conn, sql, binds, settings.arraysize,
                                             settings.timeout_seconds)]
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(SOURCE, f"query failed: {describe(exc)}") from exc
    finally:
        if isinstance(conn, sqlite3.Connection):
            conn.set_progress_handler(None, 0)


def read_ia(conn: Any, academic_year: str, settings: ApogeeSettings) -> list[IaRow]:
    """All IA rows in force for ``academic_year``; any database error is a SourceError."""
    return _rows(conn, ia_query(settings), {"cod_anu": academic_year}, settings,
                 lambda row: IaRow(*(_text(v) for v in row)))


def read_person_ia(conn: Any, academic_years: str | Iterable[str], settings: ApogeeSettings,
                   student_ids: Iterable[str]) -> list[PersonIa]:
    """Every IA of ``academic_years`` (one COD_ANU or several) of the students numbered
    ``student_ids`` (COD_ETU; leading zeros ignored, non-numeric values skipped: COD_ETU is
    a number), in any state, with the same columns and joins as the nightly query. One
    query. Any database error is a SourceError."""
    numbers = sorted({v.strip().lstrip("0") or "0" for v in student_ids if v.strip().isdigit()})
    years = [academic_years] if isinstance(academic_years, str) else sorted(academic_years)
    if not numbers or not years:
        return []
    binds: dict[str, Any] = {f"anu{i}": year for i, year in enumerate(years)}
    binds.update({f"etu{i}": n for i, n in enumerate(numbers)})
    return _rows(conn, person_query(len(numbers), len(years)), binds, settings,
                 lambda row: PersonIa(IaRow(*(_text(v) for v in row[:12])),
                                      *(_text(v) for v in row[12:16])))


def open_years(conn: Any) -> list[str]:
    """The year(s) APOGÉE considers open (ANNEE_UNI.ETA_ANU_IAE = 'O'): information only."""
    try:
        return [_text(row[0]) for row in _fetch(conn, OPEN_YEAR_SQL, {}, 100)]
    except Exception as exc:
        raise SourceError(SOURCE, f"reading ANNEE_UNI failed: {describe(exc)}") from exc
