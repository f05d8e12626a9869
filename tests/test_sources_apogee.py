"""APOGÉE reader: the §1.5 query on a sqlite copy with APOGÉE's tables, filters, faults."""

from __future__ import annotations

import re
import sqlite3
import sys
import time
import types
from pathlib import Path

import pytest

from reconciler.demo import data as dd
from reconciler.settings import ApogeeSettings, Settings
from reconciler.sources import SourceError, apogee, read_sources

YEAR = "2026"


def _tiny() -> dd.DemoData:
    """Hand-made IA covering each state the query must keep or drop."""
    people = {n: dd.Student(n, f"2260000{n}", "Ana", f"S{n}", dd.PEOPLE) for n in range(1, 10)}
    data = dd.DemoData(year=YEAR, vets=list(dd.NAMED_VETS), students=list(people.values()))
    his, dro = ("L1HIS", "101", "LET"), ("L1DRO", "101", "DRO")

    def ia(n: int, vet: tuple[str, str, str], eta: str = "E", paid: str = "P", prm: str = "O",
           occ: int = 1, year: str = YEAR) -> None:
        data.iae.append((year, n, vet[0], vet[1], occ, vet[2], eta, paid, prm))

    for n in range(1, 10):
        data.iaa.append((YEAR, n, "A" if n == 6 else "E"))
    data.iaa.append(("2025", 8, "E"))
    ia(1, his)                      # kept
    ia(2, his, eta="A")             # annulée
    ia(3, his, eta="R")             # résiliée
    ia(4, his, paid="A")            # fees not paid
    ia(5, dro)
    ia(5, his, prm="N")             # secondary IA
    ia(6, his)                      # IAA annulée
    ia(7, his)
    ia(7, his, occ=2)               # the same étape twice
    ia(8, his, year="2025")         # last year only
    ia(9, dro, eta="C")             # en cours de création: not yet in
    return data


def _students(rows: list) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row.vet, set()).add(row.cod_etu[-1])
    return out


@pytest.fixture
def tiny_db() -> sqlite3.Connection:
    return dd.write_apogee(_tiny())


def test_query_is_portable_sql_with_named_binds() -> None:
    for settings in (ApogeeSettings(), ApogeeSettings(require_paid_fees=True, principal_only=True)):
        sql = apogee.ia_query(settings)
        assert re.findall(r":(\w+)", sql) == ["cod_anu"]
        for oracle_only in ("NVL", "DECODE", "ROWNUM", "(+)", "TO_CHAR", "APOGEE."):
            assert oracle_only not in sql.upper()
        assert "?" not in sql and "%s" not in sql


def test_only_ia_in_force_for_the_configured_year(tiny_db: sqlite3.Connection) -> None:
    rows = apogee.read_ia(tiny_db, YEAR, ApogeeSettings())
    assert _students(rows) == {"L1HIS-101": {"1", "4", "5", "7"}, "L1DRO-101": {"5"}}
    # Two occurrences of one étape are two rows; the cohort builder counts the student once.
    assert sum(1 for r in rows if r.cod_etu.endswith("7")) == 2
    last_year = apogee.read_ia(tiny_db, "2025", ApogeeSettings())
    assert _students(last_year) == {"L1HIS-101": {"8"}}


def test_policy_filters(tiny_db: sqlite3.Connection) -> None:
    paid = apogee.read_ia(tiny_db, YEAR, ApogeeSettings(require_paid_fees=True))
    assert _students(paid)["L1HIS-101"] == {"1", "5", "7"}
    principal = apogee.read_ia(tiny_db, YEAR, ApogeeSettings(principal_only=True))
    assert _students(principal)["L1HIS-101"] == {"1", "4", "7"}


def test_values_are_normalised_text(tiny_db: sqlite3.Connection) -> None:
    row = apogee.read_ia(tiny_db, YEAR, ApogeeSettings())[0]
    assert all(isinstance(v, str) for v in row)  # COD_ETU is an INTEGER column here
    assert row.lib_web_vet and row.lib_etp


def test_open_year_is_information_only(tiny_db: sqlite3.Connection) -> None:
    assert apogee.open_years(tiny_db) == [YEAR]


def test_sqlite_url_and_missing_settings(tmp_path: Path) -> None:
    path = tmp_path / "apogee.db"
    dd.write_apogee(_tiny(), path).close()
    conn = apogee.connect(ApogeeSettings(), {"APOGEE_URL": f"sqlite:///{path}"})
    assert len(apogee.read_ia(conn, YEAR, ApogeeSettings())) == 6
    with pytest.raises(sqlite3.OperationalError):  # opened read-only
        conn.execute("DELETE FROM ins_adm_etp")
    with pytest.raises(SourceError, match="APOGEE_URL is not set"):
        apogee.connect(ApogeeSettings(), {})
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        apogee.connect(ApogeeSettings(), {"APOGEE_URL": "mysql://x@y/z"})
    with pytest.raises(SourceError, match="cannot open"):
        apogee.connect(ApogeeSettings(), {"APOGEE_URL": f"sqlite:///{tmp_path}/none.db"})


def test_oracle_url_uses_thin_connect_with_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict = {}

    class FakeConn:
        call_timeout = 0

    def fake_connect(**kwargs):
        calls.update(kwargs)
        return FakeConn()

    fake = types.SimpleNamespace(connect=fake_connect, Error=Exception)
    monkeypatch.setitem(sys.modules, "oracledb", fake)
    env = {"APOGEE_URL": "oracle://apo_read@apogee.unicaen.fr:1521/APOPROD",
           "APOGEE_PASSWORD": "s3cret"}
    conn = apogee.connect(ApogeeSettings(timeout_seconds=120), env)
    assert calls["user"] == "apo_read" and calls["password"] == "s3cret"
    assert calls["dsn"] == "apogee.unicaen.fr:1521/APOPROD"
    assert conn.call_timeout == 120_000
    with pytest.raises(SourceError, match="APOGEE_PASSWORD is not set"):
        apogee.connect(ApogeeSettings(), {"APOGEE_URL": env["APOGEE_URL"]})


def test_query_timeout_on_sqlite(sources_data: dd.DemoData) -> None:
    db = dd.write_apogee(sources_data)
    with pytest.raises(SourceError, match="query failed: OperationalError: interrupted"):
        apogee.read_ia(db, YEAR, ApogeeSettings(timeout_seconds=1e-9))
    assert apogee.read_ia(db, YEAR, ApogeeSettings())  # the handler is removed afterwards


def test_the_whole_fetch_has_a_deadline() -> None:
    class Slow:
        """A driver that keeps sending batches slowly (each round trip within call_timeout)."""

        arraysize = 1

        def cursor(self):
            return self

        def execute(self, sql, binds):
            pass

        def fetchmany(self, n):
            time.sleep(0.02)
            return [("L1HIS", "101", "1", "1", "", "", "LET", "O", "P", "x", "x", "x")]

        def close(self):
            pass

    with pytest.raises(SourceError, match=r"query took longer than 0\.1 s"):
        apogee.read_ia(Slow(), YEAR, ApogeeSettings(timeout_seconds=0.1))


def test_connection_error_is_unhealthy_never_empty(make_settings, sources_data) -> None:
    class Broken:
        def cursor(self):
            raise ConnectionError("ORA-03113: end-of-file on communication channel")

    settings: Settings = make_settings()
    snap = read_sources(settings, {}, apogee_conn=Broken(),
                        ldap_conn=dd.mock_directory(sources_data.entries))
    assert not snap.healthy and snap.general_cohorts == {} and snap.digest == ""
    assert any("APOGÉE: query failed" in r and "ORA-03113" in r for r in snap.reasons)
    assert snap.stats["ldap"]["entries"] > 0


def test_zero_rows_is_unhealthy(make_settings, sources_data) -> None:
    settings: Settings = make_settings({"academic_year": "2031"})  # a year with no IA at all
    snap = read_sources(settings, {}, apogee_conn=dd.write_apogee(sources_data),
                        ldap_conn=dd.mock_directory(sources_data.entries))
    assert not snap.healthy and snap.general_cohorts == {}
    assert "APOGÉE: empty answer (0 rows) for year 2031" in snap.reasons
    assert any("open year is 2026" in n for n in snap.notes)


def test_too_few_rows_is_unhealthy(make_settings, sources_data) -> None:
    settings: Settings = make_settings({"sources": {"health": {"min_rows": {"apogee": 10_000}}}})
    snap = read_sources(settings, {}, apogee_conn=dd.write_apogee(sources_data),
                        ldap_conn=dd.mock_directory(sources_data.entries))
    assert not snap.healthy
    assert any(r.startswith("APOGÉE: ") and "< min_rows 10000" in r for r in snap.reasons)
