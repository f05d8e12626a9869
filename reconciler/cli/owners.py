"""``reconcile codeowners``: GitLab's CODEOWNERS from the declarations' owners."""

from __future__ import annotations

from pathlib import Path

import click

from ..declarations.loader import load_declarations
from ..errors import ConfigurationError, DeclarationErrors
from ..gitlab.codeowners import CODEOWNERS_FILE, drift, render_codeowners


class CodeownersDrift(DeclarationErrors):
    """The committed CODEOWNERS is not what the declarations' owners say."""


@click.command("codeowners")
@click.option("--check", is_flag=True,
              help="Write nothing; fail (exit 1, with the difference) when the file differs "
                   "from what the declarations say.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help=f"The file (default: {CODEOWNERS_FILE} at the repository root).")
@click.pass_context
def codeowners(ctx: click.Context, check: bool, out: Path | None) -> None:
    """Write GitLab's CODEOWNERS from the owners: of every declaration file, so that a
    merge request asks each file's owners to approve changes to it."""
    repo: Path = ctx.obj["repo"]
    if not (repo / "cohorts").is_dir():
        raise ConfigurationError(f"no cohorts/ folder in {repo.resolve()} (use --repo)")
    decls = load_declarations(repo / "cohorts", repo)
    if decls.settings is None or decls.has_errors:
        raise DeclarationErrors(
            "the declarations have errors (run `reconcile validate`): a file with errors names "
            f"no owners; {CODEOWNERS_FILE} not {'checked' if check else 'written'}")
    text = render_codeowners(decls)
    path = out or repo / CODEOWNERS_FILE
    if not check:
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path} ({len(decls.file_owners)} declaration files with owners)")
        return
    committed = path.read_text(encoding="utf-8") if path.exists() else None
    found = drift(committed, text)
    if found is None:
        click.echo(f"{path} matches the owners of the declarations")
        return
    click.echo("\n".join(found.diff))
    what = "is missing" if committed is None else (
        f"does not match the owners of the declarations ({found.changed_lines} line(s) differ)")
    raise CodeownersDrift(f"{path} {what}: run `reconcile codeowners` and commit it")
