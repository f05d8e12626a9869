"""APOGÉE: the inscriptions administratives of one academic year (sources.md §1.5).

The SQL is portable on purpose (ANSI joins, ``:name`` binds, no NVL/DECODE/ROWNUM): the same
text runs on Oracle through ``oracledb`` (thin mode) and on a sqlite3 copy in tests and the demo.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..settings import ApogeeSettings
from .model import IaRow, SourceError, describe

SOURCE = "APOGÉE"

_BASE_SQL = """\
SELECT iae.cod_etp, iae.cod_vrs_vet, ind.cod_etu, ind.cod_ind,
       iae.cod_dip, iae.cod_vrs_vdi, iae.cod_cmp, iae.tem_iae_prm, iae.eta_pmt_iae,
       vet.lib_web_vet, etp.lib_etp, etp.lic_etp
FROM ins_adm_etp iae
JOIN individu      ind ON ind.cod_ind = iae.cod_ind
JOIN ins_adm_anu   iaa ON iaa.cod_ind = iae.cod_ind AND iaa.cod_anu = iae.cod_anu
JOIN etape         etp ON etp.cod_etp = iae.cod_etp
JOIN version_etape vet ON vet.cod_etp = iae.cod_etp AND vet.cod_vrs_vet = iae.cod_vrs_vet
WHERE iae.cod_anu = :cod_anu
  AND iae.eta_iae = 'E'
  AND iaa.eta_iaa = 'E'
  AND ind.cod_etu IS NOT NULL"""

OPEN_YEAR_SQL = "SELECT cod_anu FROM annee_uni WHERE eta_anu_iae = 'O' ORDER BY cod_anu"


def ia_query(settings: ApogeeSettings) -> str:
    """The IA query with the policy filters the settings ask for."""
    sql = _BASE_SQL
    if settings.require_paid_fees:
        sql += "\n  AND iae.eta_pmt_iae = 'P'"
    if settings.principal_only:
        sql += "\n  AND iae.tem_iae_prm = 'O'"
    return sql


def _text(value: Any) -> str:
    """Oracle CHAR columns come padded and COD_ETU may be a NUMBER: normalise to str."""
    if value is None:
        return ""
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


def read_ia(conn: Any, academic_year: str, settings: ApogeeSettings) -> list[IaRow]:
    """All IA rows in force for ``academic_year``; any database error is a SourceError."""
    if isinstance(conn, sqlite3.Connection):
        _sqlite_deadline(conn, settings.timeout_seconds)
    try:
        return [
            IaRow(*(_text(v) for v in row))
            for row in _fetch(conn, ia_query(settings), {"cod_anu": academic_year},
                              settings.arraysize, settings.timeout_seconds)
        ]
    except SourceError:
        raise
    except Exception as exc:  # DB-API drivers have no common base class
        raise SourceError(SOURCE, f"query failed: {describe(exc)}") from exc
    finally:
        if isinstance(conn, sqlite3.Connection):
            conn.set_progress_handler(None, 0)


def open_years(conn: Any) -> list[str]:
    """The year(s) APOGÉE considers open (ANNEE_UNI.ETA_ANU_IAE = 'O'): information only."""
    try:
        return [_text(row[0]) for row in _fetch(conn, OPEN_YEAR_SQL, {}, 100)]
    except Exception as exc:
        raise SourceError(SOURCE, f"reading ANNEE_UNI failed: {describe(exc)}") from exc
