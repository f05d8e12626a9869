"""The ``reconcile`` command line: takes options and files, calls one library function,
renders its result and exits with a documented code (``reconciler.errors.ExitCode``).

``main`` is the click group (``reconciler.cli:main``). Shared option types and the plan
loader are in ``options``; every exception a command meets becomes one line and an exit
code in ``errors``, the one place that does it.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import (
    adoption,
    ci,
    demo,
    emulator,
    helpdesk,
    owners,
    plan,
    scaffold,
    sources,
    validate,
    workflow,
)
from .errors import ReconcileGroup


@click.group(cls=ReconcileGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    envvar="RECONCILER_REPO",
    help="Repository root holding cohorts/.",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.pass_context
def main(ctx: click.Context, repo: Path, debug: bool) -> None:
    """Keep Moodle cohorts and cohort syncs converged to what this repository declares."""
    ctx.obj = {"repo": repo, "debug": debug}


main.add_command(validate.validate)
main.add_command(sources.sources)
main.add_command(plan.plan_command)
main.add_command(plan.apply_command)
main.add_command(plan.approve_command)
main.add_command(demo.demo_command)
main.add_command(workflow.mr_note)
main.add_command(workflow.expiring)
main.add_command(emulator.emulator)
main.add_command(adoption.import_command)
main.add_command(adoption.audit_command)
main.add_command(owners.codeowners)
main.add_command(scaffold.new)
main.add_command(ci.ci)
main.add_command(helpdesk.explain_command)
main.add_command(helpdesk.history_command)
main.add_command(helpdesk.history_push_command)
