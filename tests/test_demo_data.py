"""The fictional university: what the demo, the tests and the benchmark rely on."""

from __future__ import annotations

from reconciler.demo import data as dd
from reconciler.settings import ApogeeSettings
from reconciler.sources import apogee


def test_the_etapes_the_declarations_reference_exist() -> None:
    db = dd.write_apogee(dd.generate())
    vets = dict(db.execute("SELECT cod_etp || '-' || cod_vrs_vet, cod_cmp FROM version_etape"))
    assert vets["L1HIS-101"] == "LET" and vets["PHA2A-101"] == "PHA"
    assert {"SAN", "PHA", "ODO", "DRO", "SCI", "LET"} <= set(vets.values())
    rows = apogee.read_ia(db, "2026", ApogeeSettings())
    assert {r.vet for r in rows} >= {"L1HIS-101", "PHA2A-101"}


def test_realistic_noise_is_present() -> None:
    data = dd.generate()
    states = {r[6] for r in data.iae}
    assert {"E", "A", "R"} <= states
    assert {r[7] for r in data.iae} == {"P", "A"}  # paid and unpaid
    assert {r[8] for r in data.iae} == {"O", "N"}  # principal and secondary
    assert {r[0] for r in data.iae} == {"2025", "2026"}
    assert "A" in {r[2] for r in data.iaa}  # a cancelled annual registration
    assert any(r[4] == 2 for r in data.iae)  # a second occurrence of one étape
    assert any(s.branch == dd.DEACTIVATED for s in data.students)
    assert all(len(s.cod_etu) == 8 and s.login == f"e{s.cod_etu}" for s in data.students)


def test_the_generator_is_deterministic_and_scales() -> None:
    assert dd.generate(seed=5).iae == dd.generate(seed=5).iae
    big = dd.generate(seed=1, students=40_000, vets=2_500)
    assert len(big.students) == 40_000
    assert len({v.key for v in big.vets}) == 2_500
    assert len({s.cod_etu for s in big.students}) == 40_000


def test_ldif_encodes_accents() -> None:
    ldif = dd.directory_ldif([dd.student_entry(dd.Student(1, "22600001", "Éva", "Hébert",
                                                          dd.PEOPLE), "2026", ["L1HIS"])])
    assert "givenName:: w4l2YQ==" in ldif
    assert "supannEtuInscription: [etab={UAI}0141408E][anneeinsc=2026]" in ldif
