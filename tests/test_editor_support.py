"""What editors and hooks rely on (issue 17, item 5): every declaration file starts with the
schema hint of its kind, .vscode/settings.json maps each kind's files to its schema, and the
pre-commit hooks run commands that exist and pass on the shipped tree."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.declarations.layout import HINT_PREFIX, SCHEMA_OF, classify, schema_hint

REPO = Path(__file__).resolve().parent.parent
TREES = [REPO / "cohorts", REPO / "reconciler" / "demo" / "declarations" / "cohorts"]


def _declarations(tree: Path) -> list[Path]:
    return sorted(tree.rglob("*.yaml"))


@pytest.mark.parametrize("tree", TREES, ids=["shipped", "demo"])
def test_every_declaration_starts_with_the_hint_of_its_schema(tree: Path) -> None:
    files = _declarations(tree)
    kinds = set()
    for path in files:
        _, kind = classify(path.relative_to(tree).parts)
        assert kind is not None, path
        kinds.add(kind)
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == schema_hint(kind), path
        if tree == TREES[0]:  # in the checkout, the path leads to the schema itself
            target = (path.parent / first[len(HINT_PREFIX):]).resolve()
            assert target == (REPO / "schemas" / SCHEMA_OF[kind]).resolve(), path
    assert kinds == set(SCHEMA_OF)  # the shipped tree shows every kind


def test_vscode_maps_each_kind_to_its_schema() -> None:
    settings = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    mapping = settings["yaml.schemas"]
    assert {Path(schema).name for schema in mapping} == set(SCHEMA_OF.values())
    for schema in mapping:
        assert (REPO / schema).is_file(), schema
    for path in _declarations(TREES[0]):
        relative = PurePosixPath(path.relative_to(REPO).as_posix())
        _, kind = classify(path.relative_to(TREES[0]).parts)
        matched = [Path(schema).name for schema, globs in mapping.items()
                   if any(relative.match(glob) for glob in globs)]
        assert matched == [SCHEMA_OF[kind]], relative


def _hooks(name: str) -> list[dict]:
    doc = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
    return doc if isinstance(doc, list) else [h for r in doc["repos"] for h in r["hooks"]]


def test_pre_commit_hooks_run_reconcile_on_the_declarations() -> None:
    offered, used = _hooks(".pre-commit-hooks.yaml"), _hooks(".pre-commit-config.yaml")
    assert [h["id"] for h in offered] == [h["id"] for h in used] == [
        "reconcile-validate", "reconcile-codeowners"]
    for hook, local in zip(offered, used, strict=True):
        assert hook["entry"] == local["entry"] and hook["files"] == local["files"]
        assert hook["pass_filenames"] is False and hook["language"] == "python"
        files = re.compile(hook["files"])
        assert files.search("cohorts/ecampus/syncs/HIST-L1-MOD.yaml")
        assert not files.search("reconciler/cli/validate.py")
        command = shlex.split(hook["entry"])
        assert command[0] == "reconcile"
        result = CliRunner().invoke(main, ["--repo", str(REPO), *command[1:]])
        assert result.exit_code == 0, (hook["id"], result.output)
    assert re.compile(offered[1]["files"]).search("CODEOWNERS")


def test_imported_files_carry_their_hint_and_keep_a_course_files_exclusions(tmp_path) -> None:
    import datetime as dt
    import shutil

    from test_import_files import inventory

    from reconciler.adoption.importer import ImportOptions, build_import, write_files
    from reconciler.declarations.loader import load_declarations

    cohorts = tmp_path / "cohorts"
    (cohorts / "ecampus" / "patterns").mkdir(parents=True)
    (cohorts / "ecampus" / "syncs").mkdir(parents=True)
    shutil.copy(REPO / "cohorts" / "platforms.yaml", cohorts / "platforms.yaml")
    (cohorts / "ecampus" / "patterns" / "tous-c.yaml").write_text(
        "owners: [a@b.fr]\ncourses: {shortname: 'C-*'}\n"
        "syncs: [{cohort: man-y, role: student, reason: tous}]\n")
    (cohorts / "ecampus" / "syncs" / "C-1.yaml").write_text(
        "course: C-1\nexclude_patterns: [tous-c]\n")
    inv = inventory("Tuteurs", "", True, ["e1"], "Tuteurs", "")
    decls = load_declarations(cohorts, tmp_path)
    result = build_import(inv, decls, ImportOptions(), dt.date(2026, 11, 28))
    write_files(result, cohorts, force=True)
    cohort = (cohorts / "ecampus" / "cohorts" / "man-x.yaml").read_text(encoding="utf-8")
    assert cohort.splitlines()[0] == schema_hint("cohort")
    course = (cohorts / "ecampus" / "syncs" / "C-1.yaml").read_text(encoding="utf-8")
    assert course.splitlines()[0] == schema_hint("syncs")
    assert yaml.safe_load(course)["exclude_patterns"] == ["tous-c"]
    assert [e.pattern for e in load_declarations(cohorts, tmp_path).exclusions] == ["tous-c"]
