"""A small fictional university for the demo, the tests and the benchmark.

``generate(seed, students, vets, year)`` draws students, their inscriptions administratives
over two years and their directory entries. The result is written as:

* a sqlite APOGÉE database with APOGÉE's own table and column names (``write_apogee``), read
  by the same SQL as Oracle;
* directory entries, as LDIF for a test slapd (``directory_ldif``) or loaded into an
  in-process ldap3 mock server (``mock_directory``) so the demo reads the directory through
  the same LDAP code with no server at all.

Realistic noise: cancelled (A) and resigned (R) IA, unpaid fees, secondary IA, two
occurrences of one étape, cancelled annual registrations, students who left (their entry sits
in ``ou=deactivated``), accounts without IA, IA without account, staff entries.
"""

from __future__ import annotations

import base64
import random
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3

SUFFIX = "dc=unicaen,dc=fr"
PEOPLE = f"ou=people,{SUFFIX}"
DEACTIVATED = f"ou=deactivated,{SUFFIX}"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "demo-reader"
UAI = "0141408E"


@dataclass(frozen=True)
class Vet:
    cod_etp: str
    cod_vrs_vet: str
    lib_web_vet: str
    cod_cmp: str
    cod_cur: str = "L"

    @property
    def key(self) -> str:
        return f"{self.cod_etp}-{self.cod_vrs_vet}"


# The étapes the shipped declarations reference come first (cohorts/*/syncs/*.yaml).
NAMED_VETS: tuple[Vet, ...] = (
    Vet("L1HIS", "101", "Licence 1 Histoire", "LET"),
    Vet("PHA2A", "101", "DFGSP2 Pharmacie 2e année", "PHA"),
    Vet("L1HIS", "102", "Licence 1 Histoire (enseignement à distance)", "LET"),
    Vet("L2HIS", "101", "Licence 2 Histoire", "LET"),
    Vet("L1LMO", "101", "Licence 1 Lettres modernes", "LET"),
    Vet("L1DRO", "101", "Licence 1 Droit", "DRO"),
    Vet("L2DRO", "101", "Licence 2 Droit", "DRO"),
    Vet("M1DPR", "101", "Master 1 Droit privé", "DRO", "M"),
    Vet("L1MAT", "101", "Licence 1 Mathématiques", "SCI"),
    Vet("L1INF", "101", "Licence 1 Informatique", "SCI"),
    Vet("L3PHY", "101", "Licence 3 Physique", "SCI"),
    Vet("PASS1", "101", "PASS Parcours d'accès spécifique santé", "SAN"),
    Vet("MED2A", "101", "DFGSM2 Médecine 2e année", "SAN"),
    Vet("MED3A", "101", "DFGSM3 Médecine 3e année", "SAN"),
    Vet("PHA3A", "101", "DFGSP3 Pharmacie 3e année", "PHA"),
    Vet("ODO2A", "101", "DFGSO2 Odontologie 2e année", "ODO"),
    Vet("L1TEST", "101", "Étape de test (recette APOGÉE)", "LET"),
)
_OTHER_COMPONENTS = ("LET", "DRO", "SCI", "SAN", "PHA", "ODO", "ECO", "STA")
_FIRST = ("Camille", "Léa", "Hugo", "Chloé", "Lucas", "Inès", "Théo", "Manon", "Nathan", "Zoé",
          "Louis", "Jade", "Enzo", "Maëlys", "Raphaël", "Anaïs", "Noé", "Clémence", "Yanis", "Éva")
_LAST = ("Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Lemoine", "Girard",
         "Roux", "Fournier", "Leclerc", "Lebrun", "Hébert", "Guérin", "Marie", "Lecomte",
         "Duval", "Renaud", "Vasseur", "Lefrançois")


@dataclass
class Student:
    cod_ind: int
    cod_etu: str
    first: str
    last: str
    branch: str | None  # PEOPLE, DEACTIVATED or None (no directory entry)

    @property
    def login(self) -> str:
        return f"e{self.cod_etu}"


@dataclass
class DemoData:
    year: str
    vets: list[Vet]
    students: list[Student]
    iaa: list[tuple[str, int, str]] = field(default_factory=list)  # cod_anu, cod_ind, eta_iaa
    # cod_anu, cod_ind, cod_etp, cod_vrs_vet, num_occ, cod_cmp, eta_iae, eta_pmt, tem_prm
    iae: list[tuple[str, int, str, str, int, str, str, str, str]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)  # {"dn":…, "attributes":…}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def make_vets(count: int) -> list[Vet]:
    """The named étapes, then generated ones up to ``count`` (at least the named ones)."""
    vets = list(NAMED_VETS)
    i = 0
    while len(vets) < count:
        cmp = _OTHER_COMPONENTS[i % len(_OTHER_COMPONENTS)]
        vets.append(Vet(f"G{cmp[0]}{i // 3:04d}", f"1{i % 3:02d}",
                        f"Formation {cmp} n°{i // 3} version {i % 3}", cmp))
        i += 1
    return vets


def student_entry(student: Student, year: str, etapes: Iterable[str] = ()) -> dict[str, Any]:
    """A SUPANN student entry, as found at Caen (login supannAliasLogin = uid = e<COD_ETU>)."""
    attrs: dict[str, list[str]] = {
        "objectClass": ["inetOrgPerson", "eduPerson", "supannPerson"],
        "uid": [student.login],
        "cn": [f"{student.first} {student.last}"],
        "sn": [student.last],
        "givenName": [student.first],
        "mail": [f"{_ascii(student.first)}.{_ascii(student.last)}.{student.cod_etu[-4:]}"
                 "@etu.unicaen.fr"],
        "supannAliasLogin": [student.login],
        "supannEtuId": [student.cod_etu],
        "eduPersonAffiliation": ["student", "member"],
        "eduPersonPrimaryAffiliation": ["student"],
        "supannEtablissement": [f"{{UAI}}{UAI}"],
    }
    inscriptions = [f"[etab={{UAI}}{UAI}][anneeinsc={year}][regimeinsc={{SISE}}10]"
                    f"[sectdisc={{INCONNU}}][typedip={{INCONNU}}][cursusann={{SUPANN}}L1]"
                    f"[etape={{UAI:{UAI}}}{etp}]" for etp in sorted(set(etapes))]
    if inscriptions:
        attrs["supannEtuInscription"] = inscriptions
    return {"dn": f"uid={student.login},{student.branch or PEOPLE}", "attributes": attrs}


def _staff_entry(n: int) -> dict[str, Any]:
    login = f"p{10000000 + n:08d}"
    return {"dn": f"uid={login},{PEOPLE}", "attributes": {
        "objectClass": ["inetOrgPerson", "eduPerson", "supannPerson"],
        "uid": [login], "cn": [f"Agent {n}"], "sn": [f"Agent{n}"], "givenName": ["Agent"],
        "mail": [f"agent{n}@unicaen.fr"], "supannAliasLogin": [login],
        "eduPersonAffiliation": ["staff", "member"], "eduPersonPrimaryAffiliation": ["staff"],
    }}


def generate(seed: int = 2026, students: int = 400, vets: int = 17,
             year: str = "2026") -> DemoData:
    """Draw a university: ``students`` people over ``vets`` VETs, years ``year``-1 and ``year``."""
    rng = random.Random(seed)
    prev = str(int(year) - 1)
    vet_list = make_vets(vets)
    data = DemoData(year=year, vets=vet_list, students=[])
    seq: dict[str, int] = {}
    for i in range(students):
        yy = rng.choice(("21", "22", "23", "24", "25", year[2:]))
        seq[yy] = seq.get(yy, 0) + 1
        cod_etu = f"2{yy}{seq[yy]:05d}"
        student = Student(100000 + i, cod_etu, rng.choice(_FIRST), rng.choice(_LAST), PEOPLE)
        data.students.append(student)
        etapes: list[str] = []
        # The first students cover every VET once, so every étape has members.
        primary = vet_list[i] if i < len(vet_list) else rng.choice(vet_list)
        previous_only = i >= len(vet_list) and rng.random() < 0.04
        if rng.random() < 0.6 or previous_only:
            old = rng.choice(vet_list)
            data.iaa.append((prev, student.cod_ind, "E"))
            data.iae.append((prev, student.cod_ind, old.cod_etp, old.cod_vrs_vet, 1,
                             old.cod_cmp, "E", "P", "O"))
        if previous_only:
            # Left after last year: half still have an account (account without IA).
            student.branch = DEACTIVATED if rng.random() < 0.5 else PEOPLE
            data.entries.append(student_entry(student, prev))
            continue
        iaa_state = "A" if i >= len(vet_list) and rng.random() < 0.02 else "E"
        data.iaa.append((year, student.cod_ind, iaa_state))
        roll = rng.random() if i >= len(vet_list) else 1.0
        eta = "A" if roll < 0.04 else "R" if roll < 0.08 else "E"
        paid = "A" if rng.random() < 0.1 else "P"
        data.iae.append((year, student.cod_ind, primary.cod_etp, primary.cod_vrs_vet, 1,
                         primary.cod_cmp, eta, paid, "O"))
        etapes.append(primary.cod_etp)
        if rng.random() < 0.01:  # the same étape twice (second occurrence, NUM_OCC_IAE 2)
            data.iae.append((year, student.cod_ind, primary.cod_etp, primary.cod_vrs_vet, 2,
                             primary.cod_cmp, "E", paid, "O"))
        if rng.random() < 0.12:
            second = rng.choice(vet_list)
            if second != primary:
                data.iae.append((year, student.cod_ind, second.cod_etp, second.cod_vrs_vet, 1,
                                 second.cod_cmp, "E", "P", "N"))
                etapes.append(second.cod_etp)
        if eta != "E" or iaa_state != "E":
            student.branch = DEACTIVATED if rng.random() < 0.5 else PEOPLE
        elif i >= len(vet_list) and rng.random() < 0.01:
            student.branch = None  # IA without directory account (account not created yet)
        if student.branch is not None:
            data.entries.append(student_entry(student, year, etapes))
    data.entries.extend(_staff_entry(n) for n in range(max(3, students // 100)))
    return data


_DDL = """
CREATE TABLE annee_uni (cod_anu VARCHAR(4) PRIMARY KEY, eta_anu_iae CHAR(1) NOT NULL);
CREATE TABLE individu (
    cod_ind INTEGER PRIMARY KEY, cod_etu INTEGER, lib_nom_pat_ind VARCHAR(30),
    lib_nom_usu_ind VARCHAR(30), lib_pr1_ind VARCHAR(20), cod_nne_ind VARCHAR(10),
    cod_cle_nne_ind CHAR(1), date_nai_ind DATE, cod_sex_etu CHAR(1), daa_etb VARCHAR(4));
CREATE TABLE ins_adm_anu (
    cod_anu VARCHAR(4), cod_ind INTEGER, eta_iaa CHAR(1), cod_rgi CHAR(1), tem_brs_iaa CHAR(1),
    PRIMARY KEY (cod_anu, cod_ind));
CREATE TABLE etape (
    cod_etp VARCHAR(8) PRIMARY KEY, lib_etp VARCHAR(60), lic_etp VARCHAR(25),
    cod_cyc CHAR(1), cod_cur CHAR(1));
CREATE TABLE version_etape (
    cod_etp VARCHAR(8), cod_vrs_vet VARCHAR(3), lib_web_vet VARCHAR(120), cod_cmp VARCHAR(3),
    PRIMARY KEY (cod_etp, cod_vrs_vet));
CREATE TABLE ins_adm_etp (
    cod_anu VARCHAR(4), cod_ind INTEGER, cod_etp VARCHAR(8), cod_vrs_vet VARCHAR(3),
    num_occ_iae INTEGER, cod_dip VARCHAR(7), cod_vrs_vdi VARCHAR(3), cod_cmp VARCHAR(3),
    cod_cge VARCHAR(3), eta_iae CHAR(1), eta_pmt_iae CHAR(1), tem_iae_prm CHAR(1),
    dat_cre_iae DATE, dat_annul_res_iae DATE,
    PRIMARY KEY (cod_anu, cod_ind, cod_etp, cod_vrs_vet, num_occ_iae));
CREATE INDEX ins_adm_etp_anu ON ins_adm_etp (cod_anu);
"""


def write_apogee(data: DemoData, target: str | Path = ":memory:") -> sqlite3.Connection:
    """Write the APOGÉE tables into a new sqlite database and return the connection."""
    if str(target) != ":memory:":
        Path(target).unlink(missing_ok=True)
    conn = sqlite3.connect(str(target))
    conn.executescript(_DDL)
    prev = str(int(data.year) - 1)
    conn.executemany("INSERT INTO annee_uni VALUES (?, ?)",
                     [(str(int(prev) - 1), "F"), (prev, "F"), (data.year, "O")])
    conn.executemany(
        "INSERT INTO individu (cod_ind, cod_etu, lib_nom_pat_ind, lib_pr1_ind, daa_etb) "
        "VALUES (?, ?, ?, ?, ?)",
        [(s.cod_ind, int(s.cod_etu), s.last.upper(), s.first, "20" + s.cod_etu[1:3])
         for s in data.students])
    etapes: dict[str, tuple[str, str, str, str, str]] = {}
    for v in data.vets:  # one ETAPE row for all the versions of an étape
        label = v.lib_web_vet.split(" (")[0]
        etapes.setdefault(v.cod_etp, (v.cod_etp, label, label[:25], "1", v.cod_cur))
    conn.executemany("INSERT INTO etape VALUES (?, ?, ?, ?, ?)", list(etapes.values()))
    seen: set[str] = set()
    rows = []
    for v in data.vets:
        if v.key not in seen:
            seen.add(v.key)
            rows.append((v.cod_etp, v.cod_vrs_vet, v.lib_web_vet, v.cod_cmp))
    conn.executemany("INSERT INTO version_etape VALUES (?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO ins_adm_anu (cod_anu, cod_ind, eta_iaa) VALUES (?, ?, ?)",
                     data.iaa)
    conn.executemany(
        "INSERT INTO ins_adm_etp (cod_anu, cod_ind, cod_etp, cod_vrs_vet, num_occ_iae, cod_cmp,"
        " eta_iae, eta_pmt_iae, tem_iae_prm, cod_dip, cod_vrs_vdi, dat_cre_iae,"
        " dat_annul_res_iae) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'D' || ?, '1', ?,"
        " CASE WHEN ? = 'E' THEN NULL ELSE ? END)",
        [(*r, r[2][:6], f"{r[0]}-07-15", r[6], f"{r[0]}-10-01") for r in data.iae])
    conn.commit()
    return conn


def _ldif_line(name: str, value: str) -> str:
    if value.isascii() and not value.startswith((" ", ":", "<")):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def directory_ldif(entries: Iterable[dict[str, Any]]) -> str:
    """LDIF for slapadd/ldapadd (the branches themselves come from the server's base LDIF)."""
    blocks = []
    for entry in entries:
        lines = [_ldif_line("dn", entry["dn"])]
        for name, values in entry["attributes"].items():
            lines.extend(_ldif_line(name, v) for v in values)
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


def mock_directory(entries: Iterable[dict[str, Any]]) -> ldap3.Connection:
    """An ldap3 MOCK_SYNC connection holding the entries, bound as the reader account.

    It supports the paged-results control, so the reconciler's LdapReader code path is the
    same as against slapd.
    """
    server = ldap3.Server("demo-directory", get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=READER_DN, password=READER_PASSWORD,
                            client_strategy=ldap3.MOCK_SYNC, raise_exceptions=True)
    add = conn.strategy.add_entry
    add(SUFFIX, {"objectClass": ["dcObject", "organization"], "dc": "unicaen"})
    add(PEOPLE, {"objectClass": ["organizationalUnit"], "ou": "people"})
    add(DEACTIVATED, {"objectClass": ["organizationalUnit"], "ou": "deactivated"})
    add(READER_DN, {"objectClass": ["person"], "cn": "reader", "sn": "reader",
                    "userPassword": READER_PASSWORD})
    for entry in entries:
        add(entry["dn"], entry["attributes"])
    conn.bind()
    return conn


@dataclass(frozen=True)
class Night:
    cancelled: tuple[str, str]  # (COD_ETU, VET) whose IA became 'A'
    new_student: Student
    new_entry: dict[str, Any]
    new_vet: str


def simulate_night(conn: sqlite3.Connection, data: DemoData, seed: int = 1,
                   vet: str = "L1HIS-101") -> Night:
    """One night of APOGÉE life: one IA is cancelled, one new student registers in ``vet``.

    The caller adds ``new_entry`` to the directory (the account is created the same night).
    """
    rng = random.Random(seed)
    candidates = conn.execute(
        "SELECT iae.cod_ind, ind.cod_etu, iae.cod_etp, iae.cod_vrs_vet FROM ins_adm_etp iae"
        " JOIN individu ind ON ind.cod_ind = iae.cod_ind JOIN ins_adm_anu iaa"
        " ON iaa.cod_ind = iae.cod_ind AND iaa.cod_anu = iae.cod_anu"
        " WHERE iae.cod_anu = ? AND iae.eta_iae = 'E' AND iaa.eta_iaa = 'E'"
        " AND iae.tem_iae_prm = 'O' ORDER BY iae.cod_ind, iae.cod_etp",
        (data.year,)).fetchall()
    cod_ind, cod_etu, etp, vrs = rng.choice(candidates)
    conn.execute("UPDATE ins_adm_etp SET eta_iae = 'A', dat_annul_res_iae = date('now')"
                 " WHERE cod_anu = ? AND cod_ind = ? AND cod_etp = ? AND cod_vrs_vet = ?",
                 (data.year, cod_ind, etp, vrs))
    cod_etp, cod_vrs_vet = vet.rsplit("-", 1)
    cmp = conn.execute("SELECT cod_cmp FROM version_etape WHERE cod_etp = ? AND cod_vrs_vet = ?",
                       (cod_etp, cod_vrs_vet)).fetchone()[0]
    new_ind = conn.execute("SELECT MAX(cod_ind) + 1 FROM individu").fetchone()[0]
    new_etu = str(conn.execute("SELECT MAX(cod_etu) + 1 FROM individu").fetchone()[0])
    student = Student(new_ind, new_etu, rng.choice(_FIRST), rng.choice(_LAST), PEOPLE)
    conn.execute("INSERT INTO individu (cod_ind, cod_etu, lib_nom_pat_ind, lib_pr1_ind)"
                 " VALUES (?, ?, ?, ?)", (new_ind, int(new_etu), student.last.upper(),
                                           student.first))
    conn.execute("INSERT INTO ins_adm_anu (cod_anu, cod_ind, eta_iaa) VALUES (?, ?, 'E')",
                 (data.year, new_ind))
    conn.execute("INSERT INTO ins_adm_etp (cod_anu, cod_ind, cod_etp, cod_vrs_vet, num_occ_iae,"
                 " cod_cmp, eta_iae, eta_pmt_iae, tem_iae_prm) VALUES (?, ?, ?, ?, 1, ?, 'E',"
                 " 'P', 'O')", (data.year, new_ind, cod_etp, cod_vrs_vet, cmp))
    conn.commit()
    data.students.append(student)
    entry = student_entry(student, data.year, [cod_etp])
    data.entries.append(entry)
    return Night((str(cod_etu), f"{etp}-{vrs}"), student, entry, vet)


def anomaly_entries(data: DemoData) -> list[dict[str, Any]]:
    """Directory entries real directories have and the reconciler must survive.

    * a student entry without supannEtuId (an exchange account created by hand);
    * a second account carrying the student number of ``data.students[1]`` (a member of
      PHA2A-101): which of the two logins is the student cannot be told;
    * an old account of ``data.students[2]`` (a member of L1HIS-102) moved to
      ``ou=deactivated``: outside the base, so it is neither a duplicate nor a member.
    """
    exchange = Student(0, "", "Erasmus", "Visitor", PEOPLE)
    no_id = student_entry(exchange, data.year)
    no_id["dn"] = f"uid=x99000001,{PEOPLE}"
    attrs = no_id["attributes"]
    del attrs["supannEtuId"]
    attrs["uid"] = attrs["supannAliasLogin"] = ["x99000001"]
    twin = data.students[1]
    dup = student_entry(twin, data.year)
    dup["dn"] = f"uid={twin.login}b,{PEOPLE}"
    dup["attributes"]["uid"] = dup["attributes"]["supannAliasLogin"] = [f"{twin.login}b"]
    moved = data.students[2]
    old = student_entry(moved, str(int(data.year) - 1))
    old["dn"] = f"uid={moved.login}old,{DEACTIVATED}"
    old["attributes"]["uid"] = old["attributes"]["supannAliasLogin"] = [f"{moved.login}old"]
    return [no_id, dup, old]
