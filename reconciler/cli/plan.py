"""``reconcile plan``, ``reconcile apply`` and ``reconcile approve``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import click

from ..applying.applier import Progress
from ..applying.approvals import approve as record_approval
from ..applying.report import apply_report, incomplete_line
from ..applying.runner import apply, make_plan
from ..declarations.history import (
    changed_between,
    changed_files,
    changed_patterns,
    focus,
    fork_point,
    resolve,
)
from ..planning.actions import Action
from ..planning.failsafe import FailsafeTripped
from ..planning.plan import Plan, read_plan
from ..planning.render import render_json, render_markdown, render_text
from .options import environment, now_option, plan_file_argument, platform_option

FORMATS = {"text": render_text, "markdown": render_markdown, "json": render_json}


def focused_report(plan: Plan, repo: Path, ref: str, render: Callable[..., str]) -> str:
    """The full summary and notices, then only the actions that come from the files changed
    since the commit where this branch forked from ref (what landed on ref since is not this
    branch's)."""
    base = fork_point(repo, ref)
    changed = changed_files(repo, base)
    cohorts, courses = focus(changed)
    patterns = changed_patterns(changed)
    for item in plan.patterns:  # a changed pattern: the courses it gives or takes its syncs
        if item["name"] in patterns:
            courses |= {*item["courses"], *item["losing"],
                        *(e["course"] for e in item["excluded"])}
    moved = sorted(changed_between(repo, base, resolve(repo, ref)))

    def mine(action: Action) -> bool:
        d = action.details
        return (
            action.target in cohorts
            or d.cohort_idnumber() in cohorts
            or d.course_name() in courses
        )

    shown = dataclasses.replace(plan, actions=[a for a in plan.actions if mine(a)])
    others = len(plan.actions) - len(shown.actions)
    since = ref if not moved else f"this branch forked from {ref} at {base[:8]}"
    head = [
        plan.summary(),
        *plan.notices(),  # the whole plan's: its digest is what an approval names
        f"Focus: the changes declared since {since} ({len(shown.actions)} of "
        f"{len(plan.actions)} actions); {others} other action(s) come from the sources or "
        "from drift in Moodle and are in the saved plan.",
    ]
    if moved:
        head.append(
            f"warning: {ref} changed cohorts/ since this branch forked "
            f"({', '.join(m.removeprefix('cohorts/') for m in moved[:3])}"
            f"{' …' if len(moved) > 3 else ''}): rebase to see the merged result."
        )
    head.append("")
    return "\n".join(head) + render(shown, notices=[])


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
    now: dt.datetime | None,
) -> None:
    """Show what apply would change on one platform. Exit 0 no change, 2 changes pending,
    3 failsafe tripped, 4 sources unhealthy, 7 incomplete (README: exit codes)."""
    env = environment(ctx, now, "read")
    plan = make_plan(env, platform)
    if changed_since and fmt != "json":
        click.echo(focused_report(plan, env.repo, changed_since, FORMATS[fmt]))
    else:
        click.echo(FORMATS[fmt](plan))
    if out:
        out.write_text(render_json(plan) + "\n", encoding="utf-8")
    if markdown_out:
        markdown_out.write_text(render_markdown(plan) + "\n", encoding="utf-8")
    if plan.incomplete and fmt != "json":  # the JSON document says it: "incomplete"
        click.echo(incomplete_line(plan), err=True)
    ctx.exit(plan.exit_code)


def _progress(event: Progress) -> None:
    """One line per action on stderr, terminal or CI log alike."""
    click.echo(event.line(), err=True)


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
    now: dt.datetime | None,
) -> None:
    """Apply a saved plan (refused once stale) or, with --platform, plan and apply."""
    env = environment(ctx, now)
    saved = read_plan(plan_file) if plan_file else None
    name = saved.platform if saved else platform
    if not name:
        raise click.UsageError("give a saved plan file or --platform")
    try:
        outcome = apply(env, name, saved, allow_dirty=allow_dirty, progress=_progress)
    except FailsafeTripped as exc:
        click.echo(render_text(exc.plan))  # what was refused; the report follows on stderr
        raise
    out, err = apply_report(outcome)
    for line in out:
        click.echo(line)
    for line in err:
        click.echo(line, err=True)
    ctx.exit(outcome.exit_code)


@click.command("approve")
@plan_file_argument
@click.option("--by", "by", required=True, help="Who approves (recorded with the approval).")
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True, max=24 * 366),
    help="Validity (default: the platform's approval_valid_hours).",
)
@now_option
@click.pass_context
def approve_command(
    ctx: click.Context, plan_file: Path, by: str, hours: float | None, now: dt.datetime | None
) -> None:
    """Approve one exact plan (its digest) through the failsafes, for a limited time."""
    env = environment(ctx, now)
    plan = read_plan(plan_file)
    valid = hours or env.platform(plan.platform).failsafes.approval_valid_hours
    entry = record_approval(plan, env.approvals(), by, valid, env.now)
    click.echo(
        f"Approved {entry['digest']} for {plan.platform} until {entry['expires_at']} "
        f"({plan.summary()})"
    )

