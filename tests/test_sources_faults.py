"""Any failure while reading a source is a source error (issue 9, item 2), through the CLI.

Whatever a source raises while connecting or reading (ldap3, the DB-API driver, the socket
layer, ``struct``, a bug of ours), ``reconcile sources``, ``plan`` and ``apply`` exit 4 with
the cause on one line, no traceback, and the general cohorts in Moodle stay as they were.
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys
import time
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.slapd import Slapd
from support.source_faults import (
    apogee_fails,
    hanging_server,
    ldap_open_fails,
    ldap_search_fails,
)
from support.world import World, make_repo, write_platforms

from reconciler.cli import exitcodes, main
from reconciler.demo import data as dd
from reconciler.sources import snapshot

NOW = "2026-11-28T02:00:00Z"
BASE = "ou=people,dc=unicaen,dc=fr"


def struct_error() -> struct.error:
    """The very exception ldap3 raised on Linux for a float receive timeout."""
    try:
        struct.pack("LL", 2.5, 0)
    except struct.error as exc:
        return exc
    raise AssertionError("struct.pack accepted a float")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path, declarations=False)


@pytest.fixture
def env(slapd: Slapd, tmp_path: Path, sources_data: dd.DemoData) -> dict[str, str]:
    db = tmp_path / "apogee.db"
    dd.write_apogee(sources_data, db).close()
    return {**slapd.environ(), "APOGEE_URL": f"sqlite:///{db}"}


def sources(repo: Path, env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--repo", str(repo), "sources"], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"crashed: {result.exception!r}")
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def reasons(output: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index("Reasons:") + 1
    return [line[4:] for line in lines[start:] if line.startswith("  - ")][:20]


@pytest.mark.parametrize("timeout", [2.5, None], ids=["2.5", "default"])
def test_fractional_and_default_ldap_timeouts_read_the_directory(
        repo: Path, env: dict[str, str], timeout: float | None) -> None:
    write_platforms(repo, {"sources": {"ldap": {"timeout_seconds": timeout}}})
    code, out = sources(repo, env)
    assert code == exitcodes.OK, out
    assert "HEALTHY" in out.splitlines()[0]


def test_a_hanging_directory_is_unhealthy_after_the_rounded_up_timeout(
        repo: Path, env: dict[str, str]) -> None:
    write_platforms(repo, {"sources": {"ldap": {"timeout_seconds": 0.4}}})
    with hanging_server() as url:
        started = time.monotonic()
        code, out = sources(repo, {**env, "LDAP_URL": url})
    assert code == exitcodes.UNHEALTHY, out
    assert time.monotonic() - started < 10
    [reason] = [r for r in reasons(out) if r.startswith("LDAP:")]
    assert reason.startswith(f"LDAP: cannot connect or bind to {url}: ") and "timed out" in reason


LDAP_FAULTS = {
    "struct.error": (struct_error(), "struct.error: required argument is not an integer"),
    "connection reset": (ConnectionResetError(104, "Connection reset by peer"),
                         "ConnectionResetError: [Errno 104] Connection reset by peer"),
    "ssl": (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "SSLEOFError"),
    "bug of ours": (KeyError("controls"), "KeyError: 'controls'"),
}


@pytest.mark.parametrize("fault", list(LDAP_FAULTS))
def test_any_exception_while_reading_the_directory_exits_4_with_one_line(
        repo: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    exc, text = LDAP_FAULTS[fault]
    ldap_search_fails(monkeypatch, exc, page=2)
    code, out = sources(repo, env)
    assert code == exitcodes.UNHEALTHY, out
    assert "UNHEALTHY: every general cohort stays as it is" in out
    [reason] = [r for r in reasons(out) if r.startswith("LDAP:")]
    assert reason.startswith(f"LDAP: search under {BASE} failed on page 2: ") and text in reason
    assert "Platform " not in out  # no cohort offered


def test_any_exception_while_connecting_to_the_directory_exits_4(
        repo: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    ldap_open_fails(monkeypatch, socket.gaierror(-2, "Name or service not known"))
    code, out = sources(repo, env)
    assert code == exitcodes.UNHEALTHY, out
    assert "LDAP: not read (cannot connect or bind to ldap://127.0.0.1:" in out
    assert "socket.gaierror: [Errno -2] Name or service not known" in out


APOGEE_FAULTS = {
    "connect: struct.error": ("connect", struct_error(), "struct.error: required argument"),
    "connect: OSError": ("connect", OSError(113, "No route to host"), "No route to host"),
    "execute: bug of ours": ("execute", AttributeError("'NoneType' object has no attribute 'x'"),
                             "AttributeError: 'NoneType' object has no attribute 'x'"),
    "fetch: dropped": ("fetch", ConnectionResetError(104, "Connection reset by peer"),
                       "ConnectionResetError"),
}


@pytest.mark.parametrize("fault", list(APOGEE_FAULTS))
def test_any_exception_while_reading_apogee_exits_4_with_one_line(
        repo: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    at, exc, text = APOGEE_FAULTS[fault]
    write_platforms(repo, {"sources": {"apogee": {"arraysize": 50}}})  # several batches
    apogee_fails(monkeypatch, exc, at=at)
    code, out = sources(repo, env)
    assert code == exitcodes.UNHEALTHY, out
    [reason] = [r for r in reasons(out) if r.startswith("APOGÉE:")]
    assert text in reason
    assert "LDAP: " in out and " entries in " in out  # the directory was still read


def test_a_driver_raising_a_non_driver_exception_is_a_source_error(
        repo: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """oracledb's connect failing with a socket error, not an oracledb.Error."""
    class DriverError(Exception):
        pass

    def connect(**kwargs: object) -> None:
        raise TimeoutError("timed out\nwhile connecting to apogee.unicaen.fr:1521")

    monkeypatch.setitem(sys.modules, "oracledb", types.SimpleNamespace(
        connect=connect, Error=DriverError))
    code, out = sources(repo, {**env, "APOGEE_PASSWORD": "pw",
                               "APOGEE_URL": "oracle://apo@apogee.unicaen.fr:1521/APOPROD"})
    assert code == exitcodes.UNHEALTHY, out
    [reason] = [r for r in reasons(out) if r.startswith("APOGÉE:")]
    assert reason == ("APOGÉE: cannot connect to apogee.unicaen.fr:1521/APOPROD: TimeoutError: "
                      "timed out while connecting to apogee.unicaen.fr:1521")


def test_a_bug_while_building_the_cohorts_is_unhealthy(
        repo: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(snapshot, "build_general_cohorts", broken)
    code, out = sources(repo, env)
    assert code == exitcodes.UNHEALTHY, out
    assert "general cohorts: unexpected TypeError: unhashable type: 'list'" in reasons(out)


# --- plan and apply: exit 4, general cohorts untouched, the rest still reconciled ---------

def general(world: World) -> dict[str, set[str]]:
    return {k: v for k, v in world.cohorts().items() if k.startswith("etp-")}


@pytest.mark.parametrize("source", ["LDAP", "APOGÉE"])
def test_plan_and_apply_exit_4_and_leave_general_cohorts_alone(
        world: World, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    before = general(world)
    assert before and all(before.values())
    gone = world.cancel_ia("L1HIS-101", 1)  # a change the sources would otherwise carry
    manual = world.repo / "cohorts" / "ecampus" / "cohorts" / "man-auditeurs-libres-histoire.yaml"
    manual.write_text(manual.read_text().replace("  - e22409003\n", ""), encoding="utf-8")
    if source == "LDAP":
        ldap_search_fails(monkeypatch, struct_error(), page=1)
    else:
        apogee_fails(monkeypatch, OSError(113, "No route to host"), at="connect")

    code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
    assert code == exitcodes.UNHEALTHY, out
    assert "Traceback" not in out
    [line] = [x for x in out.splitlines() if "sources-unhealthy" in x]
    assert f"{source}: " in line and gone[0] not in out

    code, out = world.run("apply", "-p", "ecampus", "--now", NOW, "--allow-dirty")
    assert code == exitcodes.UNHEALTHY, out
    assert general(world) == before
    assert "e22409003" not in world.cohort_members("man-auditeurs-libres-histoire")
