"""Source health: last good run, drops, rollover, and an unchanged plan when unhealthy."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from reconciler.demo import data as dd
from reconciler.settings import Settings
from reconciler.sources import read_sources, record_good_run
from reconciler.sources.health import state_path


def _snap(settings: Settings, data: dd.DemoData, db: sqlite3.Connection | None = None,
          entries: list | None = None):
    return read_sources(settings, {}, apogee_conn=db or dd.write_apogee(data),
                        ldap_conn=dd.mock_directory(data.entries if entries is None else entries))


def test_first_run_is_healthy_and_recorded(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    snap = _snap(settings, sources_data)
    assert snap.healthy and snap.reasons == []
    assert "no last good run recorded: counts not compared" in snap.notes
    assert set(snap.general_cohorts) == {"ecampus", "collegium"}  # prelude: disabled
    state = record_good_run(snap, settings, now=dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC))
    saved = json.loads(state_path(settings).read_text())
    assert saved == state
    assert saved["academic_year"] == "2026" and saved["apogee_rows"] == snap.stats["apogee"]["rows"]
    assert saved["platforms"]["ecampus"]["members"] == snap.stats["platforms"]["ecampus"]["members"]
    assert saved["digest"] == snap.digest
    again = _snap(settings, sources_data)
    assert again.healthy and again.notes == [] and again.digest == snap.digest


def test_half_of_last_nights_rows_is_unhealthy(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    record_good_run(_snap(settings, sources_data), settings)
    db = dd.write_apogee(sources_data)
    db.execute("DELETE FROM ins_adm_etp WHERE cod_ind % 2 = 0")
    snap = _snap(settings, sources_data, db)
    assert not snap.healthy
    assert snap.general_cohorts == {} and snap.digest == ""
    assert any(r.startswith("APOGÉE IA rows:") and "max_drop_percent 20" in r
               for r in snap.reasons)
    with pytest.raises(ValueError, match="refusing to record an unhealthy run"):
        record_good_run(snap, settings)


def test_a_small_nightly_change_stays_healthy(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    before = _snap(settings, sources_data)
    record_good_run(before, settings)
    data = dd.generate(seed=7, students=300)  # a private copy: the night mutates it
    db = dd.write_apogee(data)
    night = dd.simulate_night(db, data)
    after = _snap(settings, data, db)
    assert after.healthy, after.reasons
    assert after.digest != before.digest
    l1his = {c.idnumber: c for c in after.general_cohorts["ecampus"]}["etp-L1HIS-101"]
    assert night.new_student.login in l1his.members
    cancelled_etu, cancelled_vet = night.cancelled
    cohort = {c.idnumber: c for c in after.general_cohorts["ecampus"]}[f"etp-{cancelled_vet}"]
    assert f"e{cancelled_etu}" not in cohort.members


def test_directory_drop_is_unhealthy(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    record_good_run(_snap(settings, sources_data), settings)
    snap = _snap(settings, sources_data, entries=sources_data.entries[::2])
    assert not snap.healthy and snap.general_cohorts == {}
    assert any(r.startswith("LDAP entries:") for r in snap.reasons)


def test_a_join_that_matches_nobody_is_unhealthy(make_settings, sources_data) -> None:
    """Same counts, but the student-id attribute was renamed: every cohort would empty."""
    settings: Settings = make_settings()
    record_good_run(_snap(settings, sources_data), settings)
    renamed = make_settings({"sources": {"ldap": {"attributes": {"student_id": "employeeNumber"}}}})
    snap = _snap(renamed, sources_data)
    assert not snap.healthy
    assert any(r.startswith("ecampus: general-cohort members") for r in snap.reasons)
    assert snap.stats["directory"]["without_student_id"]["count"] > 0


def test_rollover_compares_no_apogee_counts_but_says_so(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    record_good_run(_snap(settings, sources_data), settings)
    # New year in platforms.yaml: only the few students already re-registered.
    rolled = make_settings({"academic_year": "2027"})
    data = dd.generate(seed=7, students=300, year="2027")
    snap = _snap(rolled, data)
    assert snap.healthy, snap.reasons
    assert any(n.startswith("academic-year rollover: the last good run was for 2026, "
                            "platforms.yaml now says 2027") for n in snap.notes)
    record_good_run(snap, rolled)
    assert json.loads(state_path(rolled).read_text())["academic_year"] == "2027"


def test_rollover_still_checks_the_directory(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    record_good_run(_snap(settings, sources_data), settings)
    rolled = make_settings({"academic_year": "2027"})
    data = dd.generate(seed=7, students=300, year="2027")
    snap = _snap(rolled, data, entries=data.entries[:50])
    assert not snap.healthy
    assert any(r.startswith("LDAP entries:") for r in snap.reasons)


def test_unreadable_state_is_unhealthy(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    path = state_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    snap = _snap(settings, sources_data)
    assert not snap.healthy
    assert any("unreadable" in r and "delete it" in r for r in snap.reasons)


def test_record_with_some_platforms_keeps_the_others(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    record_good_run(_snap(settings, sources_data), settings)
    only = read_sources(settings, {}, apogee_conn=dd.write_apogee(sources_data),
                        ldap_conn=dd.mock_directory(sources_data.entries),
                        platforms=["collegium"])
    assert set(only.general_cohorts) == {"collegium"}
    state = record_good_run(only, settings)
    assert set(state["platforms"]) == {"ecampus", "collegium"}


def _renamed(entries: list[dict]) -> list[dict]:
    """The directory after its student-id attribute was renamed: entries there, no supannEtuId."""
    out = []
    for entry in entries:
        attrs = dict(entry["attributes"])
        if "supannEtuId" in attrs:
            attrs["employeeNumber"] = attrs.pop("supannEtuId")
        out.append({"dn": entry["dn"], "attributes": attrs})
    return out


def test_a_join_that_matches_nobody_is_unhealthy_on_the_first_run(
        make_settings, sources_data) -> None:
    """No reference counts (first run, or the CI cache lost): the join itself is judged."""
    settings: Settings = make_settings()
    snap = _snap(settings, sources_data, entries=_renamed(sources_data.entries))
    assert "no last good run recorded: counts not compared" in snap.notes
    assert not snap.healthy and snap.general_cohorts == {} and snap.digest == ""
    total = snap.stats["platforms"]["ecampus"]["ia"]
    assert total > 200
    assert (f"ecampus: only 0 of {total} IAs in force (0.0%) find a directory account by "
            "supannEtuId, below min_join_percent 80 (is the student-id attribute filled and "
            "named right?)") in snap.reasons
    assert any(r.startswith("collegium: only 0 of ") for r in snap.reasons)
    with pytest.raises(ValueError, match="refusing to record"):
        record_good_run(snap, settings)


def test_the_join_floor_is_configurable_and_a_healthy_world_passes_it(
        make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    snap = _snap(settings, sources_data)
    assert snap.healthy, snap.reasons
    figures = snap.stats["platforms"]["ecampus"]
    share = 100.0 * figures["ia_with_account"] / figures["ia"]
    assert 80 <= share < 100  # the demo has IAs whose account is not created yet
    strict = make_settings({"sources": {"health": {"min_join_percent": 100}}})
    snap = _snap(strict, sources_data)
    assert not snap.healthy
    assert any(r.startswith("ecampus: only ") and f"({share:.1f}%)" in r
               and "below min_join_percent 100" in r for r in snap.reasons)
    off = make_settings({"sources": {"health": {"min_join_percent": 0}}})
    assert _snap(off, sources_data, entries=_renamed(sources_data.entries)).healthy


def test_ambiguous_numbers_do_not_count_as_found(make_settings, sources_data) -> None:
    """A directory where every number sits on two accounts decides nobody: unhealthy."""
    twins = []
    for entry in sources_data.entries:
        twin = {"dn": entry["dn"].replace("uid=", "uid=twin-"),
                "attributes": {**entry["attributes"],
                               "supannAliasLogin": [f"twin-{entry['dn']}"[:60]]}}
        twins += [entry, twin]
    snap = _snap(make_settings(), sources_data, entries=twins)
    assert not snap.healthy
    assert any(r.startswith("ecampus: only 0 of ") for r in snap.reasons)
