"""Multi-valued directory attributes (issue 9, item 1): every value counts, no order assumed.

On a real slapd: the issue's entry, an old student number first then ``22100001``, and the
reverse order; through the CLI: a converged Moodle keeps the student when the server flips the
order. Then the rules for usernames and names, and a property test over value orders.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from support.slapd import ROOT_DN, ROOT_PW, Slapd, slapd_available, start_slapd
from support.world import make_repo, open_world

from reconciler.cli import exitcodes
from reconciler.demo import data as dd
from reconciler.settings import Settings, settings_from_document
from reconciler.sources import read_sources
from reconciler.sources.general import build_general_cohorts
from reconciler.sources.ldap import connect, entry_from_raw, read_entries
from reconciler.sources.model import IaRow

REPO = Path(__file__).resolve().parent.parent
YEAR = "2026"
NOW = "2026-11-28T02:00:00Z"
L1HIS = dd.Vet("L1HIS", "101", "Licence 1 Histoire", "LET")
OLD_NUMBER = "88000001"  # from another establishment
STUDENT = "22100001"  # COD_ETU of the IA in L1HIS-101
LOGIN = "e22100001"
TWO_UIDS = "22100003"  # an entry whose uid has two values


def university() -> dd.DemoData:
    """Six students in L1HIS-101; the first is the issue's entry with two supannEtuId."""
    students = [dd.Student(200 + n, f"2210000{n}", "Ana", f"Nom{n}", dd.PEOPLE)
                for n in range(1, 7)]
    data = dd.DemoData(year=YEAR, vets=[L1HIS], students=students)
    for s in students:
        data.iaa.append((YEAR, s.cod_ind, "E"))
        data.iae.append((YEAR, s.cod_ind, L1HIS.cod_etp, L1HIS.cod_vrs_vet, 1, L1HIS.cod_cmp,
                         "E", "P", "O"))
        entry = dd.student_entry(s, YEAR, [L1HIS.cod_etp])
        if s.cod_etu == STUDENT:
            entry["attributes"]["supannEtuId"] = [OLD_NUMBER, STUDENT]
        if s.cod_etu == TWO_UIDS:
            entry["attributes"]["uid"] = [s.login, "ana.nom3"]
        data.entries.append(entry)
    return data


@pytest.fixture(scope="module")
def tiny_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if not slapd_available():
        pytest.skip("/usr/sbin/slapd is not installed (apt-get install slapd ldap-utils)")
    server = start_slapd(tmp_path_factory.mktemp("mv-slapd"),
                         dd.directory_ldif(university().entries))
    yield server
    server.stop()


def set_values(server: Slapd, login: str, attribute: str, values: list[str]) -> list[str]:
    """Replace an attribute's values as the directory's admin; returns the order slapd sends."""
    conn = ldap3.Connection(f"127.0.0.1:{server.port}", ROOT_DN, ROOT_PW, auto_bind=True,
                            raise_exceptions=True)
    dn = f"uid={login},{dd.PEOPLE}"
    conn.modify(dn, {attribute: [(ldap3.MODIFY_REPLACE, values)]})
    conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute])
    sent = [v.decode() for v in conn.response[0]["raw_attributes"][attribute]]
    conn.unbind()
    return sent


@pytest.fixture
def student_ids(tiny_slapd: Slapd) -> Iterator[None]:
    yield
    set_values(tiny_slapd, LOGIN, "supannEtuId", [OLD_NUMBER, STUDENT])


def small_world_overrides() -> dict:
    return {"sources": {"health": {"min_rows": {"apogee": 1, "ldap": 1}}}}


@pytest.mark.parametrize("order", [[OLD_NUMBER, STUDENT], [STUDENT, OLD_NUMBER]])
def test_the_issue_entry_is_in_its_etape_whatever_the_value_order(
        tiny_slapd: Slapd, make_settings, student_ids: None, order: list[str]) -> None:
    assert set_values(tiny_slapd, LOGIN, "supannEtuId", order) == order  # slapd keeps it
    settings: Settings = make_settings(small_world_overrides())
    snap = read_sources(settings, tiny_slapd.environ(), apogee_conn=dd.write_apogee(university()))
    assert snap.healthy, snap.reasons
    cohort = {c.idnumber: c for c in snap.general_cohorts["ecampus"]}["etp-L1HIS-101"]
    assert LOGIN in cohort.members
    assert snap.people[LOGIN].student_ids == (STUDENT, OLD_NUMBER)
    assert snap.stats["directory"]["several_student_ids"] == {
        "count": 1, "sample": [f"uid={LOGIN},{dd.PEOPLE}"]}
    assert snap.stats["ldap"]["multi_valued"]["supannEtuId"] == 1
    assert snap.stats["account_without_ia"]["count"] == 0  # the old number is no other account


def test_a_flipped_value_order_never_removes_the_student(
        tiny_slapd: Slapd, student_ids: None, tmp_path: Path) -> None:
    """The issue's scenario through the CLI: converge, the server flips the order, re-plan."""
    set_values(tiny_slapd, LOGIN, "supannEtuId", [OLD_NUMBER, STUDENT])
    repo = make_repo(tmp_path, small_world_overrides(), declarations=False)
    with open_world(tmp_path, repo, university(), tiny_slapd.environ()) as world:
        code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
        assert code == exitcodes.OK, out
        assert LOGIN in world.cohort_members("etp-L1HIS-101")
        set_values(tiny_slapd, LOGIN, "supannEtuId", [STUDENT, OLD_NUMBER])
        code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
        assert code == exitcodes.OK, out
        assert out.splitlines()[0] == "Plan: no changes."
        set_values(tiny_slapd, LOGIN, "supannEtuId", [OLD_NUMBER, STUDENT])
        code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
        assert code == exitcodes.OK and LOGIN in world.cohort_members("etp-L1HIS-101")


def test_an_entry_with_two_usernames_is_uncertain_never_guessed(
        tiny_slapd: Slapd, make_settings, tmp_path: Path) -> None:
    """uid is multi-valued (RFC 4519): which value is the Moodle account cannot be told."""
    overrides = {**small_world_overrides(),
                 "sources": {**small_world_overrides()["sources"],
                             "ldap": {"attributes": {"username": "uid"}}}}
    settings: Settings = make_settings(overrides)
    data = university()
    snap = read_sources(settings, tiny_slapd.environ(), apogee_conn=dd.write_apogee(data))
    assert snap.healthy, snap.reasons
    cohort = {c.idnumber: c for c in snap.general_cohorts["ecampus"]}["etp-L1HIS-101"]
    assert cohort.uncertain == {"e22100003", "ana.nom3"}
    assert not cohort.uncertain & cohort.members
    assert "e22100003" not in snap.people and "ana.nom3" not in snap.people
    assert snap.stats["directory"]["several_usernames"]["count"] == 1

    # Through the CLI: a member already in Moodle stays, and nobody is added in its place.
    repo = make_repo(tmp_path, overrides, declarations=False)
    with open_world(tmp_path, repo, data, tiny_slapd.environ()) as world:
        assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
        members = world.cohort_members("etp-L1HIS-101")
        assert "e22100003" not in members
        with world.client() as c:
            [cohort_row] = [x for x in c.get_cohorts() if x["idnumber"] == "etp-L1HIS-101"]
            [user] = c.get_users_by_field("username", ["e22100003"])
            c.add_cohort_members([(int(cohort_row["id"]), int(user["id"]))])
        code, out = world.run("plan", "-p", "ecampus", "--now", NOW)
        assert code == exitcodes.OK and out.startswith("Plan: no changes"), out


def test_names_and_mail_do_not_depend_on_the_value_order(make_settings) -> None:
    settings: Settings = make_settings()
    raw = {"supannEtuId": [b"1"], "supannAliasLogin": [b"E1"], "givenName": [b"Zoe", b"Ana"],
           "sn": [b"Martin"], "mail": [b"z@x", b"a@x", b"  "]}
    flipped = {k: list(reversed(v)) for k, v in raw.items()}
    one = entry_from_raw("uid=e1", raw, settings.sources.ldap)
    assert one == entry_from_raw("uid=e1", flipped, settings.sources.ldap)
    assert (one.firstname, one.email, one.usernames) == ("Ana", "a@x", ("e1",))


def test_the_slapd_and_the_mock_read_the_same_multi_valued_entries(
        tiny_slapd: Slapd, make_settings, student_ids: None) -> None:
    settings: Settings = make_settings()
    from_slapd, _ = read_entries(connect(settings.sources.ldap, tiny_slapd.environ()),
                                 settings.sources.ldap)
    from_mock, _ = read_entries(dd.mock_directory(university().entries), settings.sources.ldap)
    assert sorted(from_slapd) == sorted(from_mock)


# --- property: no order, no guess --------------------------------------------------------

IDS = st.sampled_from(["1", "01", "2", "3", "4", "88"])
LOGINS = st.sampled_from(["a", "b", "c", "d", "A"])
ENTRY = st.tuples(st.lists(IDS, min_size=0, max_size=3), st.lists(LOGINS, min_size=0, max_size=2))


def _rows(ids: list[str]) -> list[IaRow]:
    return [IaRow("L1HIS", "101", i, "1", "D", "1", "LET", "O", "P", "Lib", "", "")
            for i in ids]


SHIPPED = settings_from_document(
    yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8")))


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(ENTRY, max_size=6), ia=st.lists(IDS, min_size=1, max_size=4),
       seed=st.randoms(use_true_random=False))
def test_cohorts_ignore_value_order_and_never_drop_a_claiming_login(
        entries: list[tuple[list[str], list[str]]], ia: list[str], seed) -> None:
    ldap_settings = SHIPPED.sources.ldap

    def parse(shuffle: bool) -> list:
        out = []
        for n, (ids, logins) in enumerate(entries):
            raw = {"supannEtuId": [i.encode() for i in ids],
                   "supannAliasLogin": [x.encode() for x in logins]}
            if shuffle:
                raw = {k: seed.sample(v, len(v)) for k, v in raw.items()}
            out.append(entry_from_raw(f"uid=n{n}", raw, ldap_settings))
        if shuffle:
            seed.shuffle(out)
        return out

    first, _, _ = build_general_cohorts(SHIPPED, _rows(ia), parse(False), ["ecampus"])
    again, _, _ = build_general_cohorts(SHIPPED, _rows(ia), parse(True), ["ecampus"])
    assert first == again
    (cohort,) = first["ecampus"]
    assert not cohort.members & cohort.uncertain
    wanted = {i.lstrip("0") for i in ia}
    for ids, logins in entries:
        claimed = {i.lstrip("0") for i in ids}
        names = {x.lower() for x in logins}
        if claimed & wanted and names:
            # An account carrying an IA's number is kept or left alone, never removed.
            assert names <= cohort.members | cohort.uncertain
        if ids and len(names) > 1:
            assert not names & cohort.members  # several usernames: never a guess

