"""One vocabulary of template fields (issue 9, item 3): what validate accepts, the builder renders.

The fields are listed once (``reconciler.settings.TEMPLATE_FIELDS``); validation and the
cohort builder both use that list, and the README documents it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.slapd import Slapd, slapd_available, start_slapd
from support.world import make_repo, open_world, write_platforms

from reconciler.cli import exitcodes, main
from reconciler.declarations.loader import load_declarations
from reconciler.demo import data as dd
from reconciler.settings import TEMPLATE_FIELDS as FIELDS
from reconciler.settings import TEMPLATES, Settings, template_problem
from reconciler.sources.general import build_general_cohorts
from reconciler.sources.model import DirectoryEntry, IaRow

REPO = Path(__file__).resolve().parent.parent
YEAR = "2026"
NOW = "2026-11-28T02:00:00Z"
DL1DRT = dd.Vet("DL1DRT", "1", "Licence 1 Droit (Alençon)", "DRO")
STUDENT = dd.Student(300, "22600001", "Léa", "Martin", dd.PEOPLE)
WITH_YEAR = "etp-{cod_anu}-{cod_etp}-{cod_vrs_vet}"

# What each documented field renders to for one IA in DL1DRT version 1, year 2026.
VALUES = {
    "cod_etp": "DL1DRT", "cod_vrs_vet": "1", "vet": "DL1DRT-1", "cod_anu": "2026",
    "academic_year": "2026", "cod_cmp": "DRO", "lib_web_vet": "Licence 1 Droit (Alençon)",
    "lib_etp": "Licence 1 Droit", "lic_etp": "L1 Droit",
}


def one_ia_world() -> tuple[list[IaRow], list[DirectoryEntry]]:
    row = IaRow("DL1DRT", "1", STUDENT.cod_etu, "300", "DDL1DR", "1", "DRO", "O", "P",
                "Licence 1 Droit (Alençon)", "Licence 1 Droit", "L1 Droit")
    entry = DirectoryEntry(f"uid={STUDENT.login},{dd.PEOPLE}", (STUDENT.cod_etu,),
                           (STUDENT.login,), "Léa", "Martin", "lea.martin@etu.unicaen.fr")
    return [row], [entry]


def test_every_documented_field_renders_its_value(make_settings) -> None:
    assert {f.name for f in FIELDS} == set(VALUES)
    every = "|".join(f"{{{name}}}" for name in VALUES)
    in_idnumber = [f.name for f in FIELDS if f.in_idnumber]
    idnumber = "etp-{cod_etp}-" + "-".join(f"{{{name}}}" for name in in_idnumber)
    settings: Settings = make_settings({"platforms": {"ecampus": {"general_cohorts": {
        "idnumber_template": idnumber, "name_template": every, "description": every,
        "context": every}}}})
    for key, template in (("idnumber_template", idnumber), ("name_template", every),
                          ("description", every), ("context", every)):
        assert template_problem(key, template) is None
    rows, entries = one_ia_world()
    cohorts, _, _ = build_general_cohorts(settings, rows, entries, ["ecampus"])
    [cohort] = cohorts["ecampus"]
    assert cohort.name == cohort.description == cohort.context == "|".join(VALUES.values())
    assert cohort.idnumber == "etp-DL1DRT-" + "-".join(VALUES[n] for n in in_idnumber)
    assert cohort.members == {STUDENT.login}


def test_labels_are_refused_in_idnumbers_and_unknown_fields_everywhere() -> None:
    labels = [f.name for f in FIELDS if not f.in_idnumber]
    assert labels
    for name in labels:
        problem = template_problem("idnumber_template", f"etp-{{cod_etp}}-{{{name}}}")
        assert problem and f"unknown field(s) {name}" in problem
    for key in TEMPLATES:
        assert "unknown field(s) lib_vet" in (template_problem(key, "x {lib_vet}") or "")
        assert "cannot be rendered" in (template_problem(key, "{cod_etp:d}") or "")
        assert "unknown field(s) 'cod_etp.upper'" in (
            template_problem(key, "{cod_etp.upper}") or "")
        assert "literal braces" in (template_problem(key, "Cohorte {") or "")
    assert template_problem("description", "Étape {{exemple}} {cod_etp}") is None


def test_the_readme_lists_exactly_the_fields() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Template fields", 1)[1].split("\n#", 1)[0]
    listed = re.findall(r"^\| `\{([a-z_]+)\}` \|", section, flags=re.MULTILINE)
    assert listed == [f.name for f in FIELDS]


def validate(repo: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--repo", str(repo), "validate"])
    return result.exit_code, result.output


@pytest.mark.parametrize("key, template, accepted", [
    ("idnumber_template", WITH_YEAR, True),
    ("idnumber_template", "etp-{academic_year}-{cod_etp}-{cod_vrs_vet}", True),
    ("idnumber_template", "etp-{cod_etp}-{lib_etp}", False),
    ("name_template", "{lib_web_vet} {academic_year}-{cod_anu}", True),
    ("description", "Inscrits de {vet} en {cod_anu}", True),
    ("description", "Inscrits de {etape}", False),
    ("context", "cat-{cod_cmp}", True),
    ("context", "cat-{cod_cmp:d}", False),
])
def test_validate_takes_exactly_what_the_builder_renders(
        tmp_path: Path, key: str, template: str, accepted: bool) -> None:
    repo = make_repo(tmp_path, declarations=False)
    write_platforms(repo, {"platforms": {"ecampus": {"general_cohorts": {key: template}}}})
    code, out = validate(repo)
    if accepted:
        assert code == 0, out
        rows, entries = one_ia_world()
        settings = load_declarations(repo / "cohorts", repo).settings
        assert settings is not None
        cohorts, _, _ = build_general_cohorts(settings, rows, entries, ["ecampus"])
        assert len(cohorts["ecampus"]) == 1
    else:
        assert code == 1
        [line] = [x for x in out.splitlines() if "bad-template" in x]
        assert line.startswith("cohorts/platforms.yaml:") and key in line


@pytest.fixture(scope="module")
def drt_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if not slapd_available():
        pytest.skip("/usr/sbin/slapd is not installed (apt-get install slapd ldap-utils)")
    entry = dd.student_entry(STUDENT, YEAR, [DL1DRT.cod_etp])
    server = start_slapd(tmp_path_factory.mktemp("drt-slapd"), dd.directory_ldif([entry]))
    yield server
    server.stop()


def test_a_year_in_the_idnumber_makes_the_issue_cohort(drt_slapd: Slapd, tmp_path: Path) -> None:
    """The issue's right value, through validate, sources and plan."""
    data = dd.DemoData(year=YEAR, vets=[DL1DRT], students=[STUDENT],
                       iaa=[(YEAR, STUDENT.cod_ind, "E")],
                       iae=[(YEAR, STUDENT.cod_ind, "DL1DRT", "1", 1, "DRO", "E", "P", "O")])
    repo = make_repo(tmp_path, {
        "sources": {"health": {"min_rows": {"apogee": 1, "ldap": 1}}},
        "platforms": {"ecampus": {"general_cohorts": {"idnumber_template": WITH_YEAR}}},
    }, declarations=False)
    assert validate(repo)[0] == 0
    with open_world(tmp_path, repo, data, drt_slapd.environ()) as world:
        code, out = world.run("sources", "--platform", "ecampus", "--format", "json")
        assert code == exitcodes.OK, out
        assert '"idnumber": "etp-2026-DL1DRT-1"' in out and '"members": 1' in out
        code, out = world.run("apply", "-p", "ecampus", "--now", NOW)
        assert code == exitcodes.OK, out
        assert world.cohort_members("etp-2026-DL1DRT-1") == {STUDENT.login}
        assert world.run("plan", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
