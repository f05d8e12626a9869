"""General cohorts from IA rows and directory entries: selection, templates, matching."""

from __future__ import annotations

import dataclasses
import random

import pytest

from reconciler.demo import data as dd
from reconciler.settings import GeneralCohortSettings, Settings
from reconciler.sources import GeneralCohort, read_sources
from reconciler.sources.general import build_general_cohorts, cohorts_digest, norm_id, selects
from reconciler.sources.model import DirectoryEntry, IaRow


def row(etp: str, vrs: str, etu: str, cmp: str = "LET", label: str = "") -> IaRow:
    return IaRow(etp, vrs, etu, "1", "D", "1", cmp, "O", "P", label or f"Lib {etp}", "", "")


def entry(etu: str | None, login: str | None) -> DirectoryEntry:
    return DirectoryEntry(f"uid={login},ou=people", (etu,) if etu else (),
                          (login,) if login else (), "Ana", "Nom", f"{login}@x")


def one_platform(settings: Settings, **gc: object) -> Settings:
    base = settings.platforms["ecampus"]
    platform = dataclasses.replace(
        base, general_cohorts=dataclasses.replace(base.general_cohorts, **gc))
    return dataclasses.replace(settings, platforms={"ecampus": platform})


def test_include_exclude_match_cod_etp_or_vet() -> None:
    gc = GeneralCohortSettings(enabled=True, include=("L1*",), exclude=("*TEST*", "L1HIS-102"))
    assert selects(gc, "L1HIS", "L1HIS-101", "LET")
    assert not selects(gc, "L1HIS", "L1HIS-102", "LET")
    assert not selects(gc, "L1TEST", "L1TEST-101", "LET")
    assert not selects(gc, "L2HIS", "L2HIS-101", "LET")
    health = GeneralCohortSettings(enabled=True, components=("SAN", "PHA", "ODO"))
    assert selects(health, "PHA2A", "PHA2A-101", "PHA")
    assert not selects(health, "L1HIS", "L1HIS-101", "LET")


def test_members_templates_and_unmatched(make_settings) -> None:
    settings = one_platform(make_settings(), description="Étape {cod_etp} en {academic_year}",
                            context="cat-{cod_cmp}")
    rows = [row("L1HIS", "101", "21000001"), row("L1HIS", "101", "21000001"),  # two occurrences
            row("L1HIS", "101", "21000002"), row("L1HIS", "101", "21000003"),
            row("L1TEST", "101", "21000001")]
    entries = [entry("21000001", "e21000001"), entry("021000002", "e21000002"),
               entry("21000009", "e21000009")]
    cohorts, people, stats = build_general_cohorts(settings, rows, entries)
    assert cohorts["ecampus"] == [GeneralCohort(
        idnumber="etp-L1HIS-101", name="Lib L1HIS (L1HIS-101)",
        description="Étape L1HIS en 2026", context="cat-LET",
        members=frozenset({"e21000001", "e21000002"}), cod_etp="L1HIS", cod_vrs_vet="101",
        cod_cmp="LET")]
    assert stats["platforms"]["ecampus"]["ia_without_account"] == {
        "count": 1, "sample": ["21000003"]}
    assert stats["account_without_ia"] == {"count": 1, "sample": ["e21000009"]}
    assert people["e21000002"].student_ids == ("021000002",)
    assert norm_id("021000002") == norm_id("21000002")


def test_a_template_merging_versions_merges_members(make_settings) -> None:
    settings = one_platform(make_settings(), idnumber_template="etp-{cod_etp}")
    rows = [row("L1HIS", "101", "1"), row("L1HIS", "102", "2")]
    cohorts, _, _ = build_general_cohorts(settings, rows, [entry("1", "a"), entry("2", "b")])
    assert [(c.idnumber, c.members) for c in cohorts["ecampus"]] == [
        ("etp-L1HIS", frozenset({"a", "b"}))]


def test_a_login_shared_by_two_students_is_uncertain(make_settings) -> None:
    settings = one_platform(make_settings())
    rows = [row("L1HIS", "101", "1"), row("L1HIS", "101", "2"), row("L1HIS", "101", "3")]
    entries = [entry("1", "same"), entry("2", "same"), entry("3", "c")]
    cohorts, people, stats = build_general_cohorts(settings, rows, entries)
    (cohort,) = cohorts["ecampus"]
    assert cohort.members == {"c"} and cohort.uncertain == {"same"}
    assert "same" not in people
    assert stats["directory"]["login_shared_by_students"]["count"] == 1


def test_entries_without_login_are_reported(make_settings) -> None:
    settings = one_platform(make_settings())
    _, _, stats = build_general_cohorts(settings, [row("L1HIS", "101", "1")],
                                        [entry("1", None)])
    assert stats["directory"]["without_username"]["count"] == 1
    assert stats["platforms"]["ecampus"]["ia_without_account"]["count"] == 1


def test_a_platform_selecting_nothing_is_noted(make_settings, sources_data) -> None:
    settings = one_platform(make_settings(), components=("XYZ",))
    snap = read_sources(settings, {}, apogee_conn=dd.write_apogee(sources_data),
                        ldap_conn=dd.mock_directory(sources_data.entries))
    assert snap.general_cohorts == {"ecampus": []}
    assert any(n.startswith("ecampus: no étape selected") for n in snap.notes)


def test_a_template_with_an_unknown_field_is_unhealthy(make_settings, sources_data) -> None:
    settings = one_platform(make_settings(), name_template="{lib_vet}")
    snap = read_sources(settings, {}, apogee_conn=dd.write_apogee(sources_data),
                        ldap_conn=dd.mock_directory(sources_data.entries))
    assert not snap.healthy and snap.general_cohorts == {}
    assert any(r.startswith("configuration: name_template '{lib_vet}'") for r in snap.reasons)


def test_digest_is_stable_and_order_independent(make_settings, sources_data) -> None:
    settings: Settings = make_settings()
    rows = [row("L1HIS", "101", str(n)) for n in range(50)] + [row("L2HIS", "101", "7")]
    entries = [entry(str(n), f"e{n}") for n in range(50)]
    first, _, _ = build_general_cohorts(settings, rows, entries)
    rng = random.Random(3)
    rng.shuffle(rows)
    rng.shuffle(entries)
    second, _, _ = build_general_cohorts(settings, rows, entries)
    assert cohorts_digest("2026", first) == cohorts_digest("2026", second)
    assert cohorts_digest("2026", first) != cohorts_digest("2027", first)
    fewer, _, _ = build_general_cohorts(settings, rows[1:], entries)
    assert cohorts_digest("2026", fewer) != cohorts_digest("2026", first)


@pytest.mark.parametrize("platform, wanted, unwanted", [
    ("ecampus", "etp-L1HIS-101", "etp-L1TEST-101"),
    ("collegium", "etp-PHA2A-101", "etp-L1HIS-101"),
])
def test_shipped_settings_on_demo_data(make_settings, sources_data, platform, wanted,
                                       unwanted) -> None:
    settings: Settings = make_settings()
    snap = read_sources(settings, {}, apogee_conn=dd.write_apogee(sources_data),
                        ldap_conn=dd.mock_directory(sources_data.entries))
    ids = {c.idnumber: c for c in snap.general_cohorts[platform]}
    assert wanted in ids and unwanted not in ids
    assert ids[wanted].members and all(m == m.lower() for m in ids[wanted].members)
    assert "prelude" not in snap.general_cohorts
    if platform == "collegium":
        assert {c.cod_cmp for c in ids.values()} <= {"SAN", "PHA", "ODO"}
