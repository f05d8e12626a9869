"""One person in the sources (``reconcile explain``): the same rules as the nightly read.

The APOGÉE query for a person is the nightly query's columns and joins with the person's
numbers instead of the state conditions, and those conditions are judged from one list
(``apogee.IN_FORCE``): for every student and every policy, what the person's read keeps is
exactly what the nightly query returns. The LDAP search for a person sees what the nightly
read sees, plus the entries that do not count and why.
"""

from __future__ import annotations

import itertools
import sqlite3

import pytest
from support.slapd import Slapd

from reconciler.demo import data as demo_data
from reconciler.settings import ApogeeSettings, LdapSettings
from reconciler.sources import apogee, ldap


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    return demo_data.write_apogee(demo_data.generate(seed=11, students=250))


@pytest.mark.parametrize(
    ("paid", "principal"), list(itertools.product([False, True], [False, True]))
)
def test_a_persons_ia_in_force_are_the_nightly_rows(
    db: sqlite3.Connection, paid: bool, principal: bool
) -> None:
    settings = ApogeeSettings(require_paid_fees=paid, principal_only=principal)
    nightly = sorted(apogee.read_ia(db, "2026", settings))
    numbers = sorted({str(r[0]) for r in db.execute("SELECT cod_etu FROM individu")})
    everyone = apogee.read_person_ia(db, "2026", settings, numbers)
    kept = sorted(ia.row for ia in everyone if not apogee.unmet_conditions(ia, settings))
    assert kept == nightly
    dropped = [ia for ia in everyone if apogee.unmet_conditions(ia, settings)]
    assert dropped, "the world has IAs out of force: the comparison would prove nothing"
    for ia in dropped:
        for rule in apogee.unmet_conditions(ia, settings):
            assert getattr(ia, rule.field) != rule.value
    assert apogee.person_query(2).count(":etu") == 2 and "eta_iae = 'E'" not in (
        apogee.person_query(2))


def test_a_persons_numbers_with_leading_zeros_or_letters(db: sqlite3.Connection) -> None:
    cod_etu = str(db.execute("SELECT cod_etu FROM individu LIMIT 1").fetchone()[0])
    plain = apogee.read_person_ia(db, "2026", ApogeeSettings(), [cod_etu])
    assert plain and {ia.row.cod_etu for ia in plain} == {cod_etu}
    assert apogee.read_person_ia(db, "2026", ApogeeSettings(), [f"00{cod_etu}", "X12"]) == plain
    assert apogee.read_person_ia(db, "2026", ApogeeSettings(), ["X12", " "]) == []


def test_the_ldap_search_of_a_person(slapd: Slapd, sources_data: demo_data.DemoData) -> None:
    settings = LdapSettings(base="ou=people,dc=unicaen,dc=fr", username_attr="supannAliasLogin")
    conn = ldap.connect(settings, slapd.environ())
    try:
        twin = sources_data.students[1].login
        found = ldap.search_person(conn, settings, twin.upper())
        assert found.searches == 2 and found.scope == "dc=unicaen,dc=fr"
        assert [e.dn for e, _ in found.found] == [f"uid={twin},ou=people,dc=unicaen,dc=fr"]
        assert sorted(e.usernames[0] for e in found.view) == [twin, f"{twin}b"]
        (_, affiliations), = found.found
        assert "student" in affiliations
        nobody = ldap.search_person(conn, settings, "nobody*)(uid=*")  # escaped, not a filter
        assert (nobody.found, nobody.view) == ([], [])
    finally:
        conn.unbind()


def test_a_search_refused_above_the_base_falls_back_to_the_base(
    slapd: Slapd, sources_data: demo_data.DemoData
) -> None:
    settings = LdapSettings(base="ou=people,dc=unicaen,dc=fr", username_attr="supannAliasLogin")
    conn = ldap.connect(settings, slapd.environ())
    original = conn.search

    def refuse_above_base(base: str, *args: object, **kwargs: object) -> object:
        if base == "dc=unicaen,dc=fr":
            raise PermissionError("insufficientAccessRights")
        return original(base, *args, **kwargs)

    conn.search = refuse_above_base  # type: ignore[method-assign]
    try:
        login = sources_data.students[5].login
        found = ldap.search_person(conn, settings, login)
        assert found.scope == settings.base and found.searches == 3
        assert found.notes and "could not search dc=unicaen,dc=fr" in found.notes[0]
        assert [e.usernames for e, _ in found.found] == [(login,)]
    finally:
        conn.unbind()
