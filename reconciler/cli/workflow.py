"""``reconcile mr-note`` and ``reconcile expiring``: the GitLab side of the workflow."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from ..clock import today_in_paris
from ..declarations.loader import load_declarations
from ..errors import ConfigurationError
from ..gitlab.expiring import (
    find_expiring,
    render_json,
    render_markdown,
    render_text,
    send_reminders,
)
from ..gitlab.notes import NOTE_LIMIT, MergeRequest, NotePoster, fit, marker
from ..gitlab.review import NoteFacts, render_note
from ..planning.plan import read_plan
from .options import DAY, DAYS, plan_file_argument


@click.command("mr-note")
@plan_file_argument
@click.option("--dry-run", is_flag=True, help="Print the note instead of posting it.")
@click.option(
    "--limit",
    type=click.IntRange(min=200),
    default=NOTE_LIMIT,
    show_default=True,
    help="Longest note; longer plans are cut with a pointer to the artifact.",
)
def mr_note(plan_file: Path, dry_run: bool, limit: int) -> None:
    """Post a saved plan as this merge request's note for its platform, updated in place,
    in the note's one format (``gitlab.review.render_note``; ``reconcile ci plan`` plans and
    posts in one step and also focuses on what the merge request changes).

    Uses CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID and GITLAB_NOTE_TOKEN (a project
    access token with the api scope); CI_JOB_URL points long plans to the job's artifacts.
    """
    plan = read_plan(plan_file)
    job = os.environ.get("CI_JOB_URL")
    artifact = f"{job}/artifacts/browse" if job else None
    body = render_note(plan, NoteFacts(focus=None, artifacts=artifact,
                                       artifact_names=(plan_file.name,)))
    if dry_run:
        click.echo(fit(f"{marker(plan.platform)}\n{body}", limit, artifact))
        return
    poster = NotePoster(MergeRequest.from_ci())
    action, note = poster.upsert(plan.platform, body, artifact, limit)
    click.echo(f"{action} note {note.get('id')} for {plan.platform}")


@click.command("expiring")
@click.option(
    "--within",
    type=DAYS,
    default="14d",
    show_default=True,
    help="Window: days (14d) or weeks (2w).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
)
@click.option("--today", type=DAY, help="As if today were this day (Europe/Paris).")
@click.option(
    "--send-mail",
    is_flag=True,
    help="Mail each owner through RECONCILER_SMTP_RELAY (host:port), from RECONCILER_MAIL_FROM.",
)
@click.pass_context
def expiring(
    ctx: click.Context, within: int, fmt: str, today: dt.date | None, send_mail: bool
) -> None:
    """List the syncs and manual cohorts that expire soon, with owners and who added them."""
    repo = Path(ctx.obj["repo"])
    window = within
    day = today or today_in_paris()
    decls = load_declarations(repo / "cohorts", repo)
    items = find_expiring(decls, repo, day, window)
    out = {
        "text": lambda: render_text(items, window),
        "markdown": lambda: render_markdown(items, window),
        "json": lambda: render_json(items),
    }[fmt]()
    click.echo(out)
    if decls.has_errors:
        click.echo("warning: some declarations have errors and were skipped", err=True)
    if send_mail and items:
        relay = os.environ.get("RECONCILER_SMTP_RELAY")
        sender = os.environ.get("RECONCILER_MAIL_FROM", "moodle-reconciler@localhost")
        if not relay:
            raise ConfigurationError("--send-mail needs RECONCILER_SMTP_RELAY (host:port)")
        sent = send_reminders(items, relay, sender)
        click.echo(f"sent {sent} reminder mail(s) through {relay}", err=True)
