"""The ``reconcile`` command line: takes options and files, calls one stage, gives text and
an exit code (``exitcodes``). ``main`` is the click group (``reconciler.cli:main``)."""

from __future__ import annotations

from pathlib import Path

import click

from . import demo, emulator, plan, sources, validate, workflow


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


main.add_command(validate.validate)
main.add_command(sources.sources)
main.add_command(plan.plan_command)
main.add_command(plan.apply_command)
main.add_command(plan.approve_command)
main.add_command(demo.demo_command)
main.add_command(workflow.mr_note)
main.add_command(workflow.expiring)
main.add_command(emulator.emulator)
