"""``reconcile validate``: schema and lint diagnostics for the declaration tree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeclarationErrors
from .diagnostics import Diagnostic, sort_diagnostics
from .history import changed_files, fork_point, new_entries
from .lint import lint
from .loader import DeclarationSet, load_declarations


@dataclass
class ValidationReport:
    decls: DeclarationSet
    diagnostics: list[Diagnostic]
    files_checked: int

    @property
    def errors(self) -> int:
        return sum(d.severity == "error" for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity == "warning" for d in self.diagnostics)


def validate_tree(
    repo: Path,
    today: dt.date,
    paths: list[Path] | None = None,
    changed_since: str | None = None,
) -> ValidationReport:
    """Check the whole tree (rules need it); report only on ``paths`` when given (a path
    that matches no file of the tree raises ``DeclarationErrors``).

    With ``changed_since`` (a git reference), an entry added since then with an expiry date
    already past is an error (``expired-new``): nobody should add what the next apply removes;
    and a file changed since then that does not start with its schema hint is warned about
    (``schema-hint``).
    """
    repo = repo.resolve()
    decls = load_declarations(repo / "cohorts", repo)
    diagnostics = decls.diagnostics + (lint(decls, today) if decls.settings else [])
    if changed_since:
        # Counted from where this branch forked: what landed on the target since is not new here.
        base = fork_point(repo, changed_since)
        new = new_entries(repo, base, decls)
        diagnostics = [
            Diagnostic(
                d.file,
                d.line,
                d.column,
                "error",
                "expired-new",
                d.message.split(",")[0] + " but was added since "
                f"{changed_since}; give a future date or drop the entry",
            )
            if d.rule == "expired" and f"{d.file}:{d.line}" in new
            else d
            for d in diagnostics
        ]
        changed = changed_files(repo, base)
        diagnostics += [d for d in decls.hint_problems if d.file in changed]
    files = decls.files
    if paths:
        prefixes = [_relative(p, repo) for p in paths]
        keep = lambda name: any(name == p or name.startswith(p.rstrip("/") + "/") for p in prefixes)  # noqa: E731
        diagnostics = [d for d in diagnostics if keep(d.file)]
        files = [f for f in files if keep(f)]
        for path, prefix in zip(paths, prefixes, strict=True):
            if not any(f == prefix or f.startswith(prefix.rstrip("/") + "/") for f in files):
                raise DeclarationErrors(
                    f"{path}: no declaration file there (give files or folders under cohorts/)"
                )
    return ValidationReport(decls, sort_diagnostics(diagnostics), len(files))


def _relative(path: Path, repo: Path) -> str:
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        return (
            str(absolute.resolve().relative_to(repo))
            if not absolute.is_symlink()
            else str(absolute.parent.resolve().relative_to(repo) / absolute.name)
        )
    except ValueError:
        return str(path)
