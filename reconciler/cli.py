"""The ``reconcile`` command line."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from .clock import today_in_paris
from .demo import demo_command
from .diagnostics import render_json, render_text
from .gitchanges import GitError
from .moodle.emulator.cli import emulator
from .plan_cli import apply_command, approve_command, plan_command
from .sources.cli import sources
from .validate import validate_tree
from .workflow_cli import expiring, mr_note


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    envvar="RECONCILER_REPO",
    help="Repository root holding cohorts/ and schemas/.",
)
@click.pass_context
def main(ctx: click.Context, repo: Path) -> None:
    """Keep Moodle cohorts and cohort syncs converged to what this repository declares."""
    ctx.obj = {"repo": repo}


def _today(value: str | None) -> dt.date:
    return dt.date.fromisoformat(value) if value else today_in_paris()


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option(
    "--today", metavar="YYYY-MM-DD", help="Check dates as if today were this day (Europe/Paris)."
)
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
    today: str | None,
    changed_since: str | None,
) -> None:
    """Check declarations: schemas, then rules over the whole set (default: all of cohorts/)."""
    repo: Path = ctx.obj["repo"]
    if not (repo / "cohorts").is_dir():
        raise click.ClickException(f"no cohorts/ folder in {repo.resolve()} (use --repo)")
    try:
        report = validate_tree(repo, _today(today), list(paths) or None, changed_since)
    except GitError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        render_json(report.diagnostics)
        if fmt == "json"
        else render_text(report.diagnostics, report.files_checked)
    )
    failed = report.errors > 0 or (strict and report.warnings > 0)
    sys.exit(1 if failed else 0)


main.add_command(sources)
main.add_command(plan_command)
main.add_command(apply_command)
main.add_command(approve_command)
main.add_command(demo_command)
main.add_command(mr_note)
main.add_command(expiring)
main.add_command(emulator)

if __name__ == "__main__":  # pragma: no cover
    main()
