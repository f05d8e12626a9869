"""``reconcile validate``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..clock import today_in_paris
from ..declarations.diagnostics import render_json, render_text
from ..declarations.validate import validate_tree
from ..errors import ConfigurationError, ExitCode
from .options import DAY


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option("--today", type=DAY, help="Check dates as if today were this day (Europe/Paris).")
@click.option(
    "--changed-since",
    metavar="REF",
    help="Git reference of the target branch: entries added since then must not be expired.",
)
@click.pass_context
def validate(
    ctx: click.Context,
    paths: tuple[Path, ...],
    fmt: str,
    strict: bool,
    today: dt.date | None,
    changed_since: str | None,
) -> None:
    """Check declarations: schemas, then rules over the whole set (default: all of cohorts/)."""
    repo: Path = ctx.obj["repo"]
    if not (repo / "cohorts").is_dir():
        raise ConfigurationError(f"no cohorts/ folder in {repo.resolve()} (use --repo)")
    report = validate_tree(repo, today or today_in_paris(), list(paths) or None, changed_since)
    click.echo(
        render_json(report.diagnostics)
        if fmt == "json"
        else render_text(report.diagnostics, report.files_checked)
    )
    failed = report.errors > 0 or (strict and report.warnings > 0)
    ctx.exit(ExitCode.ERROR if failed else ExitCode.OK)
