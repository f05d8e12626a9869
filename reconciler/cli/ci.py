"""``reconcile ci validate|plan|apply``: one command a CI job, deciding the job's exit code."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..applying.applier import Progress
from ..clock import today_in_paris
from ..gitlab.ci import PLANS_DIR, Outcome, run_apply, run_plan, run_validate
from ..gitlab.review import Pipeline
from .options import DAY, environment, now_option, platform_option


def _finish(ctx: click.Context, outcome: Outcome) -> None:
    for line in outcome.out:
        click.echo(line)
    for line in outcome.err:
        click.echo(line, err=True)
    ctx.exit(outcome.status)


def _progress(event: Progress) -> None:
    """One line an action on stderr: CI logs are not terminals, and still show them."""
    click.echo(event.line(), err=True)


@click.group("ci")
def ci() -> None:
    """The pipeline's jobs (.gitlab-ci.yml): each command is a whole job and its exit code.

    \b
    Exit codes: 0 done (a plan with or without changes), 1 error (the plan failed, a sync
    the merge request adds names a course or cohort that does not exist, the note could not
    be posted, an action failed), 3 failsafe tripped, 4 sources unhealthy, 5 stale plan,
    7 incomplete (something already declared cannot be done; the rest planned or applied).
    """


@ci.command("validate")
@click.option(
    "--code-quality",
    type=click.Path(dir_okay=False, path_type=Path),
    default="gl-code-quality-report.json",
    show_default=True,
    help="GitLab Code Quality report to write (relative to --repo).",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="validate-junit.xml",
    show_default=True,
    help="JUnit report to write (relative to --repo).",
)
@click.option("--today", type=DAY, help="Check dates as if today were this day (Europe/Paris).")
@click.pass_context
def validate_job(
    ctx: click.Context, code_quality: Path, junit_path: Path, today: dt.date | None
) -> None:
    """Validate; in a merge request, from its fork point (as --changed-since); write the
    Code Quality and JUnit reports from this same run."""
    env = environment(ctx, None)
    pipeline = Pipeline.from_environ(env.environ)
    day = today or today_in_paris()
    _finish(ctx, run_validate(env.repo, pipeline, day, code_quality, junit_path))


@ci.command("plan")
@platform_option
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=PLANS_DIR,
    show_default=True,
    help="Where <platform>.json (the saved plan) and <platform>.md (the note) go, relative "
    "to --repo.",
)
@now_option
@click.pass_context
def plan_job(ctx: click.Context, platform: str, out_dir: Path, now: dt.datetime | None) -> None:
    """Plan one platform, save it, and in a merge request post or update its note.

    Uses CI_PIPELINE_SOURCE, CI_MERGE_REQUEST_TARGET_BRANCH_NAME, CI_MERGE_REQUEST_EVENT_TYPE,
    CI_MERGE_REQUEST_TARGET_BRANCH_SHA, CI_COMMIT_SHA, CI_JOB_URL and, to post,
    CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID and GITLAB_NOTE_TOKEN.
    """
    env = environment(ctx, now, "read")
    pipeline = Pipeline.from_environ(env.environ)
    if pipeline.is_merge_request:
        # The merge request's own code runs here: never with the write token, whatever
        # GitLab makes visible (its project variables outrank the job's own).
        env.token_use = "read-only"
    _finish(ctx, run_plan(env, platform, pipeline, out_dir))


@ci.command("apply")
@platform_option
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Apply this saved plan (refused once stale); without it, plan and apply afresh.",
)
@now_option
@click.pass_context
def apply_job(
    ctx: click.Context, platform: str, plan_file: Path | None, now: dt.datetime | None
) -> None:
    """Apply one platform, one line an applied action in the log."""
    _finish(ctx, run_apply(environment(ctx, now), platform, plan_file, _progress))
