"""The files ``reconcile import`` writes, for any names Moodle may hold: they load back through
the declarations loader with exactly Moodle's values, pass the schemas and the lint rules,
and look like the README's examples.

Property-based (hypothesis): bounded and derandomized here; set ``IMPORT_FILE_EXAMPLES`` to
run more cases on demand.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.adoption.importer import ImportOptions, build_import, write_files
from reconciler.adoption.inventory import Inventory, PlatformCohort, PlatformSync
from reconciler.declarations.lint import lint
from reconciler.declarations.loader import DeclarationSet, load_declarations
from reconciler.paramtext import safe_text
from reconciler.planning.state import COHORT_MARKER, ActualInstance
from reconciler.settings import PlatformSettings

REPO = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 28)
PLATFORM = PlatformSettings(name="ecampus", url="https://ecampus.example.org")
EXAMPLES = int(os.environ.get("IMPORT_FILE_EXAMPLES", "60"))

# Whatever text a Moodle field can hold (UTF-8: no lone surrogates).
moodle_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
usernames = st.lists(st.from_regex(r"[a-z0-9_.@-]{1,12}", fullmatch=True), unique=True,
                     max_size=5)


def inventory(name: str, description: str, visible: bool, members: list[str],
              instance_name: str, group: str) -> Inventory:
    ids = {username: 100 + n for n, username in enumerate(members)}
    cohort = PlatformCohort(
        id=7, idnumber="man-x", name=name, description=description, visible=visible,
        kind="manual", owned=False, declared=False, context="system",
        members=frozenset(ids.values()),
    )
    instance = ActualInstance(
        id=13, courseid=3, cohortid=7, roleid=5, groupid=9 if group else 0, name=instance_name,
        status=0, course="C-1", cohort="man-x", group=group,
    )
    return Inventory(
        platform=PLATFORM,
        cohorts=[cohort],
        syncs=[PlatformSync(instance, "C-1", cohort, "student", declared=False)],
        usernames={v: k for k, v in ids.items()},
        courses={3: "C-1"},
    )


def load(tmp: Path) -> DeclarationSet:
    return load_declarations(tmp / "cohorts", tmp)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=moodle_text, description=st.text(st.characters(exclude_categories=("Cs",)),
                                               max_size=80),
       visible=st.booleans(), members=usernames, instance_name=st.text(
           st.characters(exclude_categories=("Cs",)), max_size=40),
       group=st.one_of(st.just(""), moodle_text))
def test_written_files_load_back_with_moodle_values(
    tmp_path: Path, name: str, description: str, visible: bool, members: list[str],
    instance_name: str, group: str,
) -> None:
    root = tmp_path / "case"
    shutil.rmtree(root, ignore_errors=True)
    (root / "cohorts").mkdir(parents=True)
    shutil.copy(REPO / "cohorts" / "platforms.yaml", root / "cohorts" / "platforms.yaml")
    inv = inventory(name, description + COHORT_MARKER * (len(description) % 2), visible,
                    members, instance_name, group)
    result = build_import(inv, load(root), ImportOptions(), TODAY)
    write_files(result, root / "cohorts", force=False)
    assert [str(p) for p in result.written] == [
        "ecampus/cohorts/man-x.yaml", "ecampus/syncs/C-1.yaml"
    ]

    decls = load(root)
    assert decls.diagnostics == [] and lint(decls, TODAY) == []
    [cohort] = decls.cohorts
    # Names Moodle's PARAM_TEXT would change (markup) are declared in their safe form.
    assert (cohort.idnumber, cohort.name, cohort.visible) == ("man-x", safe_text(name), visible)
    assert cohort.description == description.replace(COHORT_MARKER, "").strip()
    assert sorted(cohort.members) == sorted(members)
    assert (cohort.adopt, cohort.owners) == (True, ())
    [sync] = decls.syncs
    assert (sync.course, sync.cohort, sync.role, sync.adopt) == ("C-1", "man-x", "student", True)
    assert sync.group == (safe_text(group) if group else None)
    assert instance_name in sync.reason


def test_files_look_like_the_readme_examples(tmp_path: Path) -> None:
    (tmp_path / "cohorts").mkdir()
    shutil.copy(REPO / "cohorts" / "platforms.yaml", tmp_path / "cohorts" / "platforms.yaml")
    inv = inventory("Tuteurs L2 pharma", "Étudiants de 5e année.\nTutorat.", True,
                    ["e20170412", "e20171588"], "Tuteurs", "Tutorat")
    result = build_import(inv, load(tmp_path), ImportOptions(), TODAY)
    write_files(result, tmp_path / "cohorts", force=False)
    cohort = (tmp_path / "cohorts" / "ecampus" / "cohorts" / "man-x.yaml").read_text("utf-8")
    body = [line for line in cohort.splitlines() if not line.startswith("#")]
    assert body == [
        "idnumber: man-x",
        "name: Tuteurs L2 pharma",
        "description: |-",
        "  Étudiants de 5e année.",
        "  Tutorat.",
        "owners: []  # who answers for this cohort? add at least one (told before it expires)",
        "adopt: true",
        "members:  # Moodle usernames, lower case",
        "  - e20170412",
        "  - e20171588",
    ]
    syncs = (tmp_path / "cohorts" / "ecampus" / "syncs" / "C-1.yaml").read_text("utf-8")
    assert '  # Moodle instance 13 "Tuteurs"' in syncs.splitlines()
    body = [line for line in syncs.splitlines() if not line.lstrip().startswith("#")]
    assert body == [
        "course: C-1",
        "owners: []  # who answers for these syncs? add at least one (told before expiry)",
        "syncs:",
        "  - cohort: man-x",
        "    role: student",
        "    group: Tutorat",
        "    adopt: true",
        '    reason: Made in Moodle before the reconciler as instance 13 "Tuteurs"; imported on '
        "2026-11-28.",
    ]
