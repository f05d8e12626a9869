"""``reconcile validate``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..applying.runner import explain_patterns
from ..clock import today_in_paris
from ..declarations.diagnostics import render_json, render_text
from ..declarations.validate import ValidationReport, validate_tree
from ..errors import ConfigurationError, DeclarationErrors, ExitCode
from ..planning.render_patterns import explain_lines
from .options import DAY, environment


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
@click.option(
    "--explain-patterns",
    is_flag=True,
    help="Also show which courses each course pattern matches today, read from Moodle "
    "(read-only: the platform's token, a read-only one is enough).",
)
@click.option(
    "--platform", "-p", "platforms", multiple=True,
    help="With --explain-patterns: only this platform (repeat for several; default: every "
    "platform with course patterns).",
)
@click.pass_context
def validate(
    ctx: click.Context,
    paths: tuple[Path, ...],
    fmt: str,
    strict: bool,
    today: dt.date | None,
    changed_since: str | None,
    explain_patterns: bool,
    platforms: tuple[str, ...],
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
    if explain_patterns:
        _explain(ctx, report, platforms, today)
    ctx.exit(ExitCode.ERROR if failed else ExitCode.OK)


def _explain(ctx: click.Context, report: ValidationReport, platforms: tuple[str, ...],
             today: dt.date | None) -> None:
    """The courses each course pattern matches today, per platform (on stderr when the
    diagnostics are JSON, so that stdout stays one JSON document)."""
    if report.decls.has_errors:
        raise DeclarationErrors("the declarations have errors: patterns not explained")
    env = environment(ctx, None, "read")  # reads only: the read-only token if set
    if today is not None:
        env.now = dt.datetime.combine(today, dt.time(12), dt.UTC)
    names = list(platforms) or sorted({p.platform for p in report.decls.patterns})
    to_stderr = ctx.params.get("fmt") == "json"
    if not names:
        click.echo("No course patterns.", err=to_stderr)
    for name in names:
        found = explain_patterns(env, name)
        categories = ", the course categories" if found.categories_read else ""
        if not found.patterns:
            click.echo(f"{name}: no course patterns", err=to_stderr)
            continue
        click.echo(f"Course patterns on {name} (read from Moodle today: {found.courses} "
                   f"courses{categories}):", err=to_stderr)
        for line in explain_lines(found.patterns):
            click.echo(line, err=to_stderr)
