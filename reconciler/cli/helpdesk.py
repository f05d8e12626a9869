"""``reconcile explain``, ``reconcile history`` and ``reconcile history-push``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from ..applying.runner import Environment
from ..errors import ConfigurationError, ExitCode, GitError
from ..helpdesk import explain as explain_person
from ..helpdesk.render import render_history, render_json, render_text
from ..history import gitstore
from ..history.query import Question, changes, merge
from .options import DAY, environment, now_option


def load_history(env: Environment, fetch: bool, remote: str) -> list[dict[str, Any]]:
    """The history branch as this clone holds it (fetched first with ``fetch``) and the
    entries not pushed yet, each once, oldest first. Raises GitError when ``fetch`` fails."""
    if fetch:
        gitstore.fetch(env.repo, remote)
    try:
        pushed = gitstore.read_entries(env.repo)
    except GitError:
        pushed = []  # outside git: only the local entries
    return merge(pushed, env.history().read())


fetch_option = click.option(
    "--fetch", is_flag=True,
    help="Fetch the reconciler-history branch first (from --remote).",
)
remote_option = click.option(
    "--remote", default="origin", show_default=True, metavar="NAME|URL",
    help="Where the history branch lives.",
)


@click.command("explain")
@click.argument("username")
@click.option(
    "--platform", "-p", "platform", default="all", show_default=True,
    help="Platform name, or all.",
)
@click.option("--course", metavar="SHORTNAME", help="Also explain this course.")
@click.option("--cohort", metavar="IDNUMBER", help="Also explain this cohort.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@fetch_option
@remote_option
@now_option
@click.pass_context
def explain_command(
    ctx: click.Context, username: str, platform: str, course: str | None, cohort: str | None,
    fmt: str, fetch: bool, remote: str, now: dt.datetime | None,
) -> None:
    """Why is USERNAME (not) in a cohort or course: the directory, APOGÉE, the
    declarations, Moodle, the history, and what the next apply will do (or what blocks it).

    Read-only: two LDAP searches, one APOGÉE query and a handful of web-service calls per
    platform. Exit 0; 1 on an error (with --platform all, after explaining the platforms
    that could be read).
    """
    env = environment(ctx, now, "read")
    names = None if platform == "all" else [platform]
    history = load_history(env, fetch, remote)
    doc = explain_person(env, username, names, course=course, cohort=cohort, history=history)
    click.echo(render_json(doc) if fmt == "json" else render_text(doc))
    if any("error" in section for section in doc["platforms"].values()):
        ctx.exit(ExitCode.ERROR)  # one platform could not be read: said in its section


@click.command("history")
@click.argument("username", required=False)
@click.option("--cohort", metavar="IDNUMBER", help="Changes of this cohort.")
@click.option("--course", metavar="SHORTNAME",
              help="Changes of this course (its syncs, and the memberships of the cohorts it "
                   "syncs).")
@click.option("--platform", "-p", "platform", help="Only this platform.")
@click.option("--since", type=DAY, help="Only changes on or after this day (UTC).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@fetch_option
@remote_option
@click.pass_context
def history_command(
    ctx: click.Context, username: str | None, cohort: str | None, course: str | None,
    platform: str | None, since: dt.date | None, fmt: str, fetch: bool, remote: str,
) -> None:
    """When and why did USERNAME (or --cohort, --course) join or leave: the applied changes
    recorded on the reconciler-history branch (and those not pushed yet)."""
    if not (username or cohort or course):
        raise click.UsageError("give a USERNAME, --cohort or --course")
    env = environment(ctx, None)
    question = Question(username=username, cohort=cohort, course=course, platform=platform,
                        since=since)
    found = changes(load_history(env, fetch, remote), question)
    what = " ".join(
        part for part in (
            f"for {username}" if username else "",
            f"in cohort {cohort}" if cohort else "",
            f"in course {course}" if course else "",
            f"on {platform}" if platform else "",
            f"since {since}" if since else "",
        ) if part
    )
    click.echo(render_json(found) if fmt == "json" else render_history(found, what))


@click.command("history-push")
@click.option(
    "--remote", metavar="NAME|URL",
    help="Where to push (default: the CI URL built from RECONCILER_HISTORY_TOKEN, "
         "CI_SERVER_URL and CI_PROJECT_PATH).",
)
@click.pass_context
def history_push_command(ctx: click.Context, remote: str | None) -> None:
    """Push the history entries apply recorded locally to the reconciler-history branch,
    then drop them from .reconciler/history/ (they stay there until a push succeeds).

    Pushes only where it is told to (--remote, or the CI's RECONCILER_HISTORY_TOKEN): a
    clone's origin may be someone's working repository."""
    env = environment(ctx, None)
    spool = env.history()
    target = remote or gitstore.remote_url(env.environ)
    if target is None:
        raise ConfigurationError(
            "history not pushed: set RECONCILER_HISTORY_TOKEN (with CI_SERVER_URL and "
            "CI_PROJECT_PATH, as in CI) or give --remote; the entries stay in .reconciler/history/")
    platforms = spool.platforms()
    if not platforms:
        click.echo("history: nothing to push")
    for platform in platforms:
        entries = spool.read(platform)
        result = gitstore.push(Path(env.repo), entries, remote=target)
        spool.drop(platform, {e["id"] for e in entries})
        tries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        click.echo(f"{platform}: {result.added} new of {len(entries)} entries pushed to "
                   f"{gitstore.BRANCH}{tries}")
