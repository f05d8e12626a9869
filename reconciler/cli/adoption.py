"""``reconcile import`` and ``reconcile audit``: options -> one library call -> rendering ->
exit code (the work is in ``reconciler.adoption``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..adoption.importer import ImportOptions
from ..adoption.render import (
    render_audit_json,
    render_audit_markdown,
    render_audit_text,
    render_import_json,
    render_import_text,
)
from ..adoption.run import run_audit, run_import
from ..errors import ExitCode
from ..moodle.errors import MoodleError
from .options import environment, now_option, platform_option

AUDIT_FORMATS = {
    "text": render_audit_text,
    "markdown": render_audit_markdown,
    "json": render_audit_json,
}


@click.command("import")
@platform_option
@click.option(
    "--cohorts", default="*", show_default=True, metavar="PATTERN",
    help="Import the cohorts whose idnumber matches this shell pattern.",
)
@click.option(
    "--courses", default="*", show_default=True, metavar="PATTERN",
    help="Import the syncs of the courses whose shortname matches this shell pattern.",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path),
    help="Declarations root to write into (default: the repository's cohorts/).",
)
@click.option("--force", is_flag=True, help="Replace files that already exist.")
@click.option(
    "--adopt-outside-prefix", is_flag=True,
    help="Also import cohorts whose idnumber is outside the managed prefix, as they are "
    "(adopt: true keeps their idnumber; managed only while declared, never deleted).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
)
@now_option
@click.pass_context
def import_command(
    ctx: click.Context, platform: str, cohorts: str, courses: str, out: Path | None,
    force: bool, adopt_outside_prefix: bool, fmt: str, now: dt.datetime | None,
) -> None:
    """Write declarations for the cohorts and cohort syncs a platform already holds.

    Reads Moodle only (a read-only token is enough). The plan after the merge only adopts.
    """
    options = ImportOptions(cohorts, courses, adopt_outside_prefix, force)
    try:
        result = run_import(environment(ctx, now, "read"), platform, options, out)
    except MoodleError as exc:  # Moodle failed before any file was written
        exc.add_note("nothing written")
        raise
    click.echo(render_import_json(result) if fmt == "json" else render_import_text(result))
    ctx.exit(ExitCode.OK)


@click.command("audit")
@platform_option
@click.option(
    "--format", "fmt", type=click.Choice(list(AUDIT_FORMATS)), default="text",
    show_default=True,
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report here, in the same format (a pipeline artifact).",
)
@click.option(
    "--json-out", type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON report here (one Moodle read for both artifacts).",
)
@click.option(
    "--fail-over-limit", is_flag=True,
    help=f"Exit {int(ExitCode.OVER_LIMIT)} when an undeclared sync is over the platform's limit.",
)
@now_option
@click.pass_context
def audit_command(
    ctx: click.Context, platform: str, fmt: str, out: Path | None, json_out: Path | None,
    fail_over_limit: bool, now: dt.datetime | None,
) -> None:
    """Report every cohort-sync instance and cohort the repository does not declare.

    Reads Moodle only; remembers when it first saw each one in .reconciler/.
    """
    report = run_audit(environment(ctx, now, "read"), platform)
    text = AUDIT_FORMATS[fmt](report)
    click.echo(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    if json_out:
        json_out.write_text(render_audit_json(report) + "\n", encoding="utf-8")
    ctx.exit(ExitCode.OVER_LIMIT if fail_over_limit and report.over_limit else ExitCode.OK)
