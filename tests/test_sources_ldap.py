"""The directory reader against a real OpenLDAP slapd (see tests/support/slapd.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
from conftest import SLAPD_SIZE_LIMIT
from ldap3.core.exceptions import LDAPSocketReceiveError
from support.slapd import (
    READER_DN,
    READER_PW,
    Slapd,
    free_port,
    make_certificate,
    slapd_available,
    start_slapd,
)

from reconciler.demo import data as dd
from reconciler.settings import Settings
from reconciler.sources import SourceError, read_sources
from reconciler.sources.ldap import connect, read_entries


def _active_logins(entries: list[dict]) -> set[str]:
    return {e["attributes"]["supannAliasLogin"][0] for e in entries
            if e["dn"].endswith(dd.PEOPLE) and "student" in e["attributes"]["eduPersonAffiliation"]}


def _env(slapd: Slapd, db: Path) -> dict[str, str]:
    return {**slapd.environ(), "APOGEE_URL": f"sqlite:///{db}"}


@pytest.fixture
def apogee_db(tmp_path: Path, sources_data: dd.DemoData) -> Path:
    path = tmp_path / "apogee.db"
    dd.write_apogee(sources_data, path).close()
    return path


def test_paged_search_reads_past_the_server_size_limit(slapd: Slapd, make_settings,
                                                       sources_data: dd.DemoData) -> None:
    settings: Settings = make_settings()
    conn = connect(settings.sources.ldap, slapd.environ())
    entries, stats = read_entries(conn, settings.sources.ldap)
    expected = _active_logins([*sources_data.entries, *dd.anomaly_entries(sources_data)])
    assert len(entries) == len(expected) > SLAPD_SIZE_LIMIT
    assert {e.username for e in entries} == expected
    assert stats["pages"] >= 3


def test_the_size_limit_is_real_and_an_unpaged_answer_is_an_error(slapd: Slapd, make_settings):
    settings: Settings = make_settings()
    conn = connect(settings.sources.ldap, slapd.environ())
    conn.search(settings.sources.ldap.base, settings.sources.ldap.filter, attributes=["uid"])
    assert conn.result["description"] == "sizeLimitExceeded"
    assert len(conn.response) == SLAPD_SIZE_LIMIT
    # A server (or proxy) that ignores the paging control truncates: an error, not a list.
    server = ldap3.Server("127.0.0.1", port=slapd.port, get_info=ldap3.NONE)
    unpaged = _NoPaging(server, READER_DN, READER_PW, auto_bind=True, raise_exceptions=True)
    with pytest.raises(SourceError, match="sizeLimitExceeded"):
        read_entries(unpaged, settings.sources.ldap)


class _NoPaging(ldap3.Connection):
    """A real connection that drops the paged-results control, like a server ignoring it."""

    def search(self, *args, **kwargs):  # type: ignore[override]
        kwargs.pop("paged_size", None)
        kwargs.pop("paged_cookie", None)
        return super().search(*args, **kwargs)


def test_deactivated_students_and_staff_never_count(slapd: Slapd, make_settings,
                                                    sources_data: dd.DemoData) -> None:
    settings: Settings = make_settings()
    entries, _ = read_entries(connect(settings.sources.ldap, slapd.environ()),
                              settings.sources.ldap)
    gone = {s.login for s in sources_data.students if s.branch == dd.DEACTIVATED}
    assert gone, "the generated data must have students who left"
    assert not gone & {e.username for e in entries}
    assert all(e.dn.endswith(dd.PEOPLE) for e in entries)
    assert not any(e.username.startswith("p") for e in entries)  # staff: not students


def test_unreachable_directory_is_an_error_and_unhealthy(make_settings, apogee_db: Path) -> None:
    settings: Settings = make_settings({"sources": {"ldap": {"timeout_seconds": 2}}})
    env = {"LDAP_URL": f"ldap://127.0.0.1:{free_port()}/", "LDAP_BIND_DN": READER_DN,
           "LDAP_BIND_PASSWORD": READER_PW, "APOGEE_URL": f"sqlite:///{apogee_db}"}
    with pytest.raises(SourceError, match="cannot connect or bind"):
        connect(settings.sources.ldap, env)
    snap = read_sources(settings, env)
    assert not snap.healthy
    assert snap.general_cohorts == {}
    assert any(r.startswith("LDAP: cannot connect or bind") for r in snap.reasons)
    assert snap.stats["apogee"]["rows"] > 0  # the other source was still read


def test_wrong_password_is_an_error(slapd: Slapd, make_settings, apogee_db: Path) -> None:
    settings: Settings = make_settings()
    env = {**_env(slapd, apogee_db), "LDAP_BIND_PASSWORD": "not-the-password"}
    with pytest.raises(SourceError, match="invalidCredentials"):
        connect(settings.sources.ldap, env)
    snap = read_sources(settings, env)
    assert not snap.healthy and snap.general_cohorts == {}
    assert any("invalidCredentials" in r for r in snap.reasons)
    assert "not-the-password" not in " ".join(snap.reasons)


def test_missing_environment_is_an_error(make_settings, apogee_db: Path) -> None:
    snap = read_sources(make_settings(), {"APOGEE_URL": f"sqlite:///{apogee_db}"})
    assert not snap.healthy
    assert "LDAP: environment variable LDAP_URL is not set" in snap.reasons


class _FailOnPage(ldap3.Connection):
    """A real connection whose n-th search (page) breaks like a dropped socket."""

    fail_on = 3

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.searches = 0

    def search(self, *args, **kwargs):  # type: ignore[override]
        self.searches += 1
        if self.searches == self.fail_on:
            raise LDAPSocketReceiveError("connection reset by peer")
        return super().search(*args, **kwargs)


def test_a_search_failing_on_page_3_is_an_error_not_two_pages(
        slapd: Slapd, make_settings, apogee_db: Path) -> None:
    settings: Settings = make_settings()
    server = ldap3.Server("127.0.0.1", port=slapd.port, get_info=ldap3.NONE)
    conn = _FailOnPage(server, READER_DN, READER_PW, auto_bind=True, raise_exceptions=True)
    with pytest.raises(SourceError, match="failed on page 3"):
        read_entries(conn, settings.sources.ldap)
    conn = _FailOnPage(server, READER_DN, READER_PW, auto_bind=True, raise_exceptions=True)
    snap = read_sources(settings, _env(slapd, apogee_db), ldap_conn=conn)
    assert not snap.healthy and snap.general_cohorts == {} and snap.digest == ""
    assert any("page 3" in r and "connection reset" in r for r in snap.reasons)


def test_a_wrong_base_is_an_error(slapd: Slapd, make_settings) -> None:
    settings: Settings = make_settings(
        {"sources": {"ldap": {"base": "ou=nowhere,dc=unicaen,dc=fr"}}})
    with pytest.raises(SourceError, match=r"(?i)nosuchobject"):
        read_entries(connect(settings.sources.ldap, slapd.environ()), settings.sources.ldap)


def test_start_tls_refused_by_the_server_is_an_error(slapd: Slapd, make_settings) -> None:
    settings: Settings = make_settings({"sources": {"ldap": {"start_tls": True}}})
    with pytest.raises(SourceError, match="cannot connect or bind"):
        connect(settings.sources.ldap, slapd.environ())


def test_anomalies_are_reported_and_leave_the_cohorts_as_clean_data_would(
        slapd: Slapd, make_settings, apogee_db: Path, sources_data: dd.DemoData) -> None:
    """An entry without supannEtuId and a duplicated supannEtuId: reported, no cohort damage."""
    settings: Settings = make_settings()
    snap = read_sources(settings, _env(slapd, apogee_db))
    assert snap.healthy, snap.reasons
    directory = snap.stats["directory"]
    assert directory["without_student_id"] == {
        "count": 1, "sample": [f"uid=x99000001,{dd.PEOPLE}"]}
    twin = sources_data.students[1]
    assert directory["duplicate_student_id"]["count"] == 1
    assert directory["duplicate_student_id"]["sample"] == [twin.cod_etu]

    # Clean directory (no odd entries), same code path through the in-process mock server.
    clean = read_sources(settings, {}, apogee_conn=dd.write_apogee(sources_data),
                         ldap_conn=dd.mock_directory(sources_data.entries))
    assert clean.healthy
    pharma = "etp-PHA2A-101"
    for platform in ("ecampus", "collegium"):
        got = {c.idnumber: c for c in snap.general_cohorts[platform]}
        want = {c.idnumber: c for c in clean.general_cohorts[platform]}
        assert got.keys() == want.keys()
        for idnumber in want:
            if idnumber != pharma:
                assert got[idnumber] == want[idnumber]
    # The old account in ou=deactivated is outside the base: not a duplicate, not a member.
    moved = sources_data.students[2]
    l1his2 = {c.idnumber: c for c in snap.general_cohorts["ecampus"]}["etp-L1HIS-102"]
    assert moved.login in l1his2.members and not l1his2.uncertain
    assert f"{moved.login}old" not in snap.people
    # The ambiguous student is neither added nor removed: left as it is, with both logins.
    assert got[pharma].members == want[pharma].members - {twin.login}
    assert got[pharma].uncertain == {twin.login, f"{twin.login}b"}
    assert twin.login not in snap.people


def test_mock_directory_reads_the_same_entries_as_slapd(
        slapd: Slapd, make_settings, sources_data: dd.DemoData) -> None:
    settings: Settings = make_settings()
    entries = [*sources_data.entries, *dd.anomaly_entries(sources_data)]
    from_slapd, _ = read_entries(connect(settings.sources.ldap, slapd.environ()),
                                 settings.sources.ldap)
    from_mock, stats = read_entries(dd.mock_directory(entries), settings.sources.ldap)
    assert sorted(from_mock) == sorted(from_slapd)
    assert stats["pages"] >= 3  # the mock pages too


def test_logins_are_lower_cased(make_settings, sources_data: dd.DemoData) -> None:
    student = dd.Student(1, "29900001", "Ana", "Upper", dd.PEOPLE)
    entry = dd.student_entry(student, "2026")
    entry["attributes"]["supannAliasLogin"] = ["E29900001"]
    entries, _ = read_entries(dd.mock_directory([entry]), make_settings().sources.ldap)
    assert [e.username for e in entries] == ["e29900001"]


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Slapd, Path]]:
    if not slapd_available():
        pytest.skip("/usr/sbin/slapd is not installed (apt-get install slapd ldap-utils)")
    workdir = tmp_path_factory.mktemp("tls-slapd")
    cert, key = make_certificate(workdir)
    data = dd.generate(seed=3, students=20)
    server = start_slapd(workdir / "slapd", dd.directory_ldif(data.entries), tls=(cert, key))
    yield server, cert
    server.stop()


def _tls_env(server: Slapd) -> dict[str, str]:
    return {**server.environ(), "LDAP_URL": f"ldap://localhost:{server.port}/"}


def test_start_tls_with_the_ca_file(tls_slapd: tuple[Slapd, Path], make_settings) -> None:
    server, cert = tls_slapd
    settings: Settings = make_settings(
        {"sources": {"ldap": {"start_tls": True, "ca_file": str(cert)}}})
    conn = connect(settings.sources.ldap, _tls_env(server))
    assert conn.tls_started
    entries, _ = read_entries(conn, settings.sources.ldap)
    assert entries


def test_start_tls_with_an_unknown_certificate_is_an_error(
        tls_slapd: tuple[Slapd, Path], make_settings) -> None:
    server, _ = tls_slapd
    settings: Settings = make_settings({"sources": {"ldap": {"start_tls": True}}})
    with pytest.raises(SourceError, match="cannot connect or bind"):
        connect(settings.sources.ldap, _tls_env(server))
    # Only a test directory turns validation off.
    lax = make_settings({"sources": {"ldap": {"start_tls": True, "validate_certificate": False}}})
    assert connect(lax.sources.ldap, _tls_env(server)).tls_started


def test_ldaps_with_the_ca_file(tls_slapd: tuple[Slapd, Path], make_settings) -> None:
    server, cert = tls_slapd
    env = {**server.environ(), "LDAP_URL": f"ldaps://localhost:{server.ldaps_port}/"}
    settings: Settings = make_settings({"sources": {"ldap": {"ca_file": str(cert)}}})
    entries, _ = read_entries(connect(settings.sources.ldap, env), settings.sources.ldap)
    assert entries
    with pytest.raises(SourceError, match="cannot connect or bind"):
        connect(make_settings().sources.ldap, env)  # system CAs do not know this server
