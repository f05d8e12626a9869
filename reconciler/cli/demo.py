"""``reconcile demo``."""

from __future__ import annotations

import click

from ..demo.run import run_demo


@click.command("demo")
@click.option(
    "--students", default=300, show_default=True, help="Size of the fictional university."
)
def demo_command(students: int) -> None:
    """Run plan and apply on an embedded fictional university (no server, no configuration)."""
    run_demo(students)
