"""The rollover overlap on the sources' side (issue 17, item 3): last year's IAs read with the
same query, the students not re-registered added to their étape's cohort, and both years'
reads judged by the source-health rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.demo import data as dd
from reconciler.settings import GeneralCohortSettings, OverlapWindow, PlatformSettings, Settings
from reconciler.sources import read_sources, record_good_run
from reconciler.sources.general import build_general_cohorts
from reconciler.sources.model import DirectoryEntry, IaRow

REPO = Path(__file__).resolve().parent.parent
IN_WINDOW = dt.date(2026, 7, 15)
AFTER_WINDOW = dt.date(2026, 10, 16)
WINDOW = {"from": "07-01", "until": "10-15"}


def row(etp: str, etu: str) -> IaRow:
    return IaRow(etp, "101", etu, "1", "D", "1", "LET", "O", "P", f"Lib {etp}", "", "")


def entry(etu: str) -> DirectoryEntry:
    return DirectoryEntry(f"uid=e{etu},ou=people", (etu,), (f"e{etu}",), "A", "B", "x@y")


def ecampus_only(settings: Settings, window: OverlapWindow | None) -> Settings:
    base = settings.platforms["ecampus"]
    platform = dataclasses.replace(
        base, general_cohorts=dataclasses.replace(base.general_cohorts, overlap=window))
    return dataclasses.replace(settings, platforms={"ecampus": platform})


def overlapping(make_settings, **extra: Any) -> Settings:
    return make_settings({"platforms": {"ecampus": {"general_cohorts": {
        "rollover_overlap": WINDOW}}}, **extra})


def snapshot(settings: Settings, data: dd.DemoData, today: dt.date, conn: Any = None):
    return read_sources(settings, {}, apogee_conn=conn or dd.write_apogee(data),
                        ldap_conn=dd.mock_directory(data.entries), today=today)


def in_force(data: dd.DemoData, year: str) -> dict[str, set[int]]:
    """VET -> cod_ind of the IAs in force that year, straight from the generated data."""
    annual = {(anu, ind) for anu, ind, eta in data.iaa if eta == "E"}
    vets: dict[str, set[int]] = defaultdict(set)
    for anu, ind, etp, vrs, _, _, eta, _, _ in data.iae:
        if anu == year and eta == "E" and (anu, ind) in annual:
            vets[f"{etp}-{vrs}"].add(ind)
    return vets


def test_members_are_this_years_plus_last_years_not_re_registered(make_settings,
                                                                  sources_data) -> None:
    settings = overlapping(make_settings)
    snap = snapshot(settings, sources_data, IN_WINDOW)
    assert snap.healthy, snap.reasons
    login = {s.cod_ind: s.login for s in sources_data.students if s.branch == dd.PEOPLE}
    now, before = in_force(sources_data, "2026"), in_force(sources_data, "2025")
    re_registered = set().union(*now.values())
    brought = 0
    for cohort in snap.general_cohorts["ecampus"]:
        vet = f"{cohort.cod_etp}-{cohort.cod_vrs_vet}"
        this_year = {login[i] for i in now.get(vet, ()) if i in login}
        last_year = {login[i] for i in before.get(vet, ()) - re_registered if i in login}
        assert cohort.members == this_year | last_year, vet
        assert cohort.from_previous_year == last_year - this_year, vet
        brought += len(cohort.from_previous_year)
    assert brought > 0  # the demo university has students who did not come back
    figures = snap.stats["platforms"]["ecampus"]["overlap"]
    assert figures["memberships"] == brought and 0 < figures["members"] <= brought
    assert snap.stats["apogee"]["previous_year"]["academic_year"] == "2025"
    assert snap.stats["overlap"] == ["collegium", "ecampus"]  # the shipped collegium window too


def test_outside_the_window_last_year_is_not_even_read(make_settings, sources_data) -> None:
    settings = overlapping(make_settings)
    plain = snapshot(make_settings(), sources_data, AFTER_WINDOW)
    after = snapshot(settings, sources_data, AFTER_WINDOW, conn=Refusing(sources_data, "2025"))
    assert after.healthy, after.reasons
    assert after.digest == plain.digest
    assert "previous_year" not in after.stats["apogee"]
    assert all(not c.from_previous_year for c in after.general_cohorts["ecampus"])
    during = snapshot(settings, sources_data, IN_WINDOW)
    assert during.digest != plain.digest


class Refusing:
    """A DB-API connection over the demo APOGÉE whose queries for one year fail."""

    def __init__(self, data: dd.DemoData, year: str) -> None:
        self.conn, self.year = dd.write_apogee(data), year

    def cursor(self) -> Any:
        return _Cursor(self.conn.cursor(), self.year)


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor, year: str) -> None:
        self.cursor, self.year, self.arraysize = cursor, year, 100

    def execute(self, sql: str, binds: dict[str, str]) -> None:
        if binds.get("cod_anu") == self.year:
            raise sqlite3.OperationalError("ORA-01013: user requested cancel of current operation")
        self.cursor.execute(sql, binds)

    def fetchmany(self, size: int) -> list[tuple]:
        return self.cursor.fetchmany(size)

    def close(self) -> None:
        self.cursor.close()


def test_failing_to_read_last_year_is_unhealthy(make_settings, sources_data) -> None:
    snap = snapshot(overlapping(make_settings), sources_data, IN_WINDOW,
                    conn=Refusing(sources_data, "2025"))
    assert not snap.healthy and snap.general_cohorts == {} and snap.digest == ""
    assert any(r.startswith("APOGÉE: year 2025 (rollover overlap): query failed:")
               and "ORA-01013" in r for r in snap.reasons), snap.reasons


def test_last_year_answering_nothing_is_unhealthy(make_settings, sources_data) -> None:
    db = dd.write_apogee(sources_data)
    db.execute("DELETE FROM ins_adm_etp WHERE cod_anu = '2025'")
    snap = snapshot(overlapping(make_settings), sources_data, IN_WINDOW, conn=db)
    assert not snap.healthy
    assert "APOGÉE: empty answer (0 rows) for year 2025 (rollover overlap)" in snap.reasons
    rows = snapshot(overlapping(make_settings), sources_data, IN_WINDOW).stats["apogee"]
    floor = rows["previous_year"]["rows"] + 1
    assert floor <= rows["rows"]  # this year's read stays above the floor
    min_rows = overlapping(make_settings, sources={"health": {"min_rows": {"apogee": floor}}})
    snap = snapshot(min_rows, sources_data, IN_WINDOW)
    assert snap.reasons == [f"APOGÉE: {floor - 1} rows for year 2025 (rollover overlap) < "
                            f"min_rows {floor}"]


def test_last_year_dropping_since_the_last_good_run_is_unhealthy(make_settings,
                                                                 sources_data) -> None:
    settings = overlapping(make_settings)
    state = record_good_run(snapshot(settings, sources_data, IN_WINDOW), settings)
    assert state["previous_year"]["academic_year"] == "2025"
    db = dd.write_apogee(sources_data)
    db.execute("DELETE FROM ins_adm_etp WHERE cod_anu = '2025' AND cod_ind % 2 = 0")
    snap = snapshot(settings, sources_data, IN_WINDOW, conn=db)
    assert not snap.healthy
    assert any(r.startswith("APOGÉE IA rows of 2025 (rollover overlap):")
               and "max_drop_percent 20" in r for r in snap.reasons), snap.reasons


def test_on_the_rollover_last_year_is_compared_with_its_own_last_good_run(
    make_settings, sources_data,
) -> None:
    """The last good run of 2025 is the reference of 2025's rows read for the overlap of 2026."""
    last_year = make_settings({"academic_year": "2025"})
    record_good_run(snapshot(last_year, sources_data, dt.date(2026, 6, 20)), last_year)
    db = dd.write_apogee(sources_data)
    db.execute("DELETE FROM ins_adm_etp WHERE cod_anu = '2025' AND cod_ind % 2 = 0")
    snap = snapshot(overlapping(make_settings), sources_data, IN_WINDOW, conn=db)
    assert any(r.startswith("APOGÉE IA rows of 2025 (rollover overlap):") for r in snap.reasons)
    assert not any(r.startswith("APOGÉE IA rows:") for r in snap.reasons)  # 2026: no reference


def test_last_years_join_is_judged_too(make_settings, sources_data) -> None:
    loose = overlapping(make_settings, sources={"health": {"min_join_percent": 0}})
    figures = snapshot(loose, sources_data, IN_WINDOW).stats["platforms"]["ecampus"]
    share = 100.0 * figures["ia_with_account"] / figures["ia"]
    old = figures["overlap"]
    old_share = 100.0 * old["ia_with_account"] / old["ia"]
    assert old_share < share  # last year's leavers lost their accounts more often
    between = overlapping(make_settings, sources={"health": {
        "min_join_percent": (share + old_share) / 2}})
    snap = snapshot(between, sources_data, IN_WINDOW)
    assert not snap.healthy
    assert [r for r in snap.reasons if r.startswith("ecampus:")] == [
        f"ecampus: only {old['ia_with_account']} of {old['ia']} IAs of 2025 (rollover overlap) "
        f"({old_share:.1f}%) find a directory account by supannEtuId, below min_join_percent "
        f"{(share + old_share) / 2:g} (is the student-id attribute filled and named right?)"]


def test_moves_between_etapes_and_etapes_of_last_year_only(make_settings) -> None:
    settings = ecampus_only(make_settings(), OverlapWindow("07-01", "10-15"))
    now = [row("L2HIS", "1")]
    before = [row("L1HIS", "1"), row("L1HIS", "2"), row("L3OLD", "3"), row("L3OLD", "1"),
              row("L3GONE", "1")]
    cohorts, _, stats = build_general_cohorts(
        settings, now, [entry(n) for n in "123"], previous_rows=before, overlap=["ecampus"])
    assert {c.idnumber: (set(c.members), set(c.from_previous_year))
            for c in cohorts["ecampus"]} == {
        "etp-L1HIS-101": ({"e2"}, {"e2"}),  # 1 re-registered in L2HIS: gone from L1HIS
        "etp-L2HIS-101": ({"e1"}, set()),
        "etp-L3OLD-101": ({"e3"}, {"e3"}),  # an étape of last year only keeps its stayers
        # L3GONE: its only student re-registered, so no cohort at all
    }
    assert stats["platforms"]["ecampus"]["overlap"]["ia"] == 5  # re-registered ones count
    without, _, _ = build_general_cohorts(settings, now, [entry(n) for n in "123"],
                                          previous_rows=before, overlap=[])
    assert [c.idnumber for c in without["ecampus"]] == ["etp-L2HIS-101"]


students = st.sampled_from([str(n) for n in range(1, 9)])
vets = st.sampled_from(["L1A", "L1B", "L2A"])


ONE_PLATFORM = Settings(academic_year="2026", platforms={"ecampus": PlatformSettings(
    name="ecampus", url="https://ecampus.example.org", general_cohorts=GeneralCohortSettings(
        enabled=True, overlap=OverlapWindow("07-01", "10-15")))})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(vets, students), max_size=12),
       st.lists(st.tuples(vets, students), max_size=12),
       st.sets(students))
def test_overlap_members_follow_the_rule_for_any_rows(now, before, accounts) -> None:
    """Members = this year's students of the VET + last year's students of the VET who have
    no IA in force this year at all; each with a directory account."""
    cohorts, _, _ = build_general_cohorts(
        ONE_PLATFORM, [row(v, s) for v, s in now], [entry(s) for s in sorted(accounts)],
        previous_rows=[row(v, s) for v, s in before], overlap=["ecampus"])
    got = {c.idnumber: c for c in cohorts["ecampus"]}
    re_registered = {s for _, s in now}
    for vet in {v for v, _ in now} | {v for v, _ in before}:
        this_year = {f"e{s}" for v, s in now if v == vet and s in accounts}
        last_year = {f"e{s}" for v, s in before
                     if v == vet and s in accounts and s not in re_registered}
        cohort = got.pop(f"etp-{vet}-101", None)
        if cohort is None:  # only last year's, and nobody of it left
            assert not this_year and not last_year and vet not in {v for v, _ in now}
            continue
        assert cohort.members == this_year | last_year
        assert cohort.from_previous_year == last_year - this_year
    assert not got


def test_reconcile_sources_shows_the_overlap_in_force(tmp_path, slapd, sources_data) -> None:
    """Through the CLI on the shipped platforms.yaml (collegium: 1 July to 15 October), the
    real slapd and the sqlite APOGÉE."""
    (tmp_path / "cohorts").mkdir()
    shutil.copy(REPO / "cohorts" / "platforms.yaml", tmp_path / "cohorts" / "platforms.yaml")
    db = tmp_path / "apogee.db"
    dd.write_apogee(sources_data, db).close()
    env = {**slapd.environ(), "APOGEE_URL": f"sqlite:///{db}"}

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--repo", str(tmp_path), "sources", *args], env=env)
        return result.exit_code, result.output

    code, out = run("--today", "2026-07-15")
    assert code == 0, out
    assert "APOGÉE, year 2025 (rollover overlap in force on collegium):" in out
    collegium = out.split("Platform collegium:")[1]
    assert "rollover overlap in force (2026-07-15):" in collegium.split("Platform ")[0]
    assert "rollover overlap" not in out.split("Platform ecampus:")[1].split("Platform ")[0]
    code, out = run("--today", "2026-07-15", "--format", "json")
    doc = json.loads(out)
    assert sum(c["members_from_previous_year"] for c in doc["general_cohorts"]["collegium"]) > 0
    code, out = run("--today", "2026-10-16")
    assert code == 0 and "rollover overlap" not in out and "year 2025" not in out
