"""``reconcile plan``, ``reconcile apply`` and ``reconcile approve``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from ..applying.approvals import approve as record_approval
from ..applying.runner import ConfigError, Environment, FailsafeTripped, StalePlan, apply, make_plan
from ..declarations.history import GitError, changed_files, focus
from ..moodle.errors import MoodleError
from ..planning.desired import DeclarationErrors
from ..planning.failsafe import tripped_report
from ..planning.plan import Action, Plan
from ..planning.render import render_json, render_markdown, render_text
from . import exitcodes

FORMATS = {"text": render_text, "markdown": render_markdown, "json": render_json}


def _now(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _env(ctx: click.Context, now: str | None) -> Environment:
    return Environment(repo=Path(ctx.obj["repo"]), now=_now(now))


def _fail(message: str, code: int = exitcodes.ERROR) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


now_option = click.option(
    "--now", metavar="ISO-TIME", help="Plan as if it were this moment (previews and tests)."
)
platform_option = click.option(
    "--platform", "-p", "platform", required=True, help="Platform name (ecampus, collegium...)."
)


def focused_report(plan: Plan, repo: Path, ref: str, render: Callable[[Plan], str]) -> str:
    """The full summary, then only the actions that come from the files changed since ref."""
    cohorts, courses = focus(changed_files(repo, ref))

    def mine(action: Action) -> bool:
        d = action.details
        return action.target in cohorts or d.get("cohort") in cohorts or d.get("course") in courses

    shown = dataclasses.replace(plan, actions=[a for a in plan.actions if mine(a)])
    others = len(plan.actions) - len(shown.actions)
    head = [
        plan.summary(),
        f"Focus: the changes declared since {ref} ({len(shown.actions)} of "
        f"{len(plan.actions)} actions); {others} other action(s) come from the sources or "
        "from drift in Moodle and are in the saved plan.",
        "",
    ]
    return "\n".join(head) + render(shown)


def _load_plan(path: Path) -> Plan:
    try:
        return Plan.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a usable plan ({exc})") from None


@click.command("plan")
@platform_option
@click.option(
    "--format", "fmt", type=click.Choice(list(FORMATS)), default="text", show_default=True
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Save the plan as JSON."
)
@click.option(
    "--markdown-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the Markdown rendering here (for merge-request notes).",
)
@click.option(
    "--changed-since",
    metavar="REF",
    help="Focus the report on what changed since this git reference (the whole plan is "
    "still computed and saved).",
)
@now_option
@click.pass_context
def plan_command(
    ctx: click.Context,
    platform: str,
    fmt: str,
    out: Path | None,
    markdown_out: Path | None,
    changed_since: str | None,
    now: str | None,
) -> None:
    """Show what apply would change on one platform. Exit 0 no change, 2 changes pending."""
    env = _env(ctx, now)
    try:
        plan = make_plan(env, platform)
    except (ConfigError, DeclarationErrors) as exc:
        _fail(str(exc))
    except MoodleError as exc:
        _fail(f"Moodle: {exc}")
    if changed_since and fmt != "json":
        try:
            click.echo(focused_report(plan, env.repo, changed_since, FORMATS[fmt]))
        except GitError as exc:
            _fail(str(exc))
    else:
        click.echo(FORMATS[fmt](plan))
    if out:
        out.write_text(render_json(plan) + "\n", encoding="utf-8")
    if markdown_out:
        markdown_out.write_text(render_markdown(plan) + "\n", encoding="utf-8")
    if plan.sources.get("healthy") is False:
        sys.exit(exitcodes.UNHEALTHY)
    if plan.failsafe_tripped:
        sys.exit(exitcodes.FAILSAFE)
    sys.exit(exitcodes.CHANGES if plan.has_changes else exitcodes.OK)


@click.command("apply")
@click.argument(
    "plan_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--platform", "-p", "platform", help="Plan and apply in one go (the nightly job).")
@click.option("--allow-dirty", is_flag=True, help="Apply even if cohorts/ has uncommitted changes.")
@now_option
@click.pass_context
def apply_command(
    ctx: click.Context,
    plan_file: Path | None,
    platform: str | None,
    allow_dirty: bool,
    now: str | None,
) -> None:
    """Apply a saved plan (refused once stale) or, with --platform, plan and apply."""
    env = _env(ctx, now)
    try:
        saved = _load_plan(plan_file) if plan_file else None
        name = saved.platform if saved else platform
        if not name:
            raise ConfigError("give a saved plan file or --platform")
        outcome = apply(env, name, saved, allow_dirty=allow_dirty)
    except StalePlan as exc:
        _fail(f"stale plan, nothing applied: {exc}. Make a new plan.", exitcodes.STALE)
    except FailsafeTripped as exc:
        click.echo(render_text(exc.plan))
        click.echo(tripped_report(exc.plan), err=True)
        sys.exit(exitcodes.FAILSAFE)
    except (ConfigError, DeclarationErrors) as exc:
        _fail(str(exc))
    except MoodleError as exc:
        _fail(f"Moodle: {exc}; nothing applied")
    plan, result = outcome.plan, outcome.result
    click.echo(plan.summary())
    if outcome.approved_by:
        click.echo(f"Failsafe tripped, but this exact plan was approved by {outcome.approved_by}.")
    click.echo(
        f"Applied {len(result.done)} of {len(plan.actions)} actions; "
        f"{len(result.failed)} failed, {len(result.skipped)} skipped."
    )
    for action, error in result.failed:
        click.echo(f"  FAILED {action.kind} {action.target}: {error}", err=True)
    for action, why in result.skipped:
        click.echo(f"  SKIPPED {action.kind} {action.target}: {why}", err=True)
    for warning in plan.warnings:
        if warning.code == "sources-unhealthy":
            click.echo(f"warning: {warning.message}", err=True)
    if not result.ok:
        sys.exit(exitcodes.ERROR)
    if plan.sources.get("healthy") is False:
        sys.exit(exitcodes.UNHEALTHY)
    sys.exit(exitcodes.OK)


@click.command("approve")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "by", required=True, help="Who approves (recorded with the approval).")
@click.option(
    "--hours", type=float, help="Validity (default: the platform's approval_valid_hours)."
)
@now_option
@click.pass_context
def approve_command(
    ctx: click.Context, plan_file: Path, by: str, hours: float | None, now: str | None
) -> None:
    """Approve one exact plan (its digest) through the failsafes, for a limited time."""
    env = _env(ctx, now)
    try:
        plan = _load_plan(plan_file)
        valid = hours or env.platform(plan.platform).failsafes.approval_valid_hours
    except ConfigError as exc:
        _fail(str(exc))
    entry = record_approval(plan, env.approvals(), by, valid, env.now)
    click.echo(
        f"Approved {entry['digest']} for {plan.platform} until {entry['expires_at']} "
        f"({plan.summary()})"
    )
