"""``reconcile new cohort`` and ``reconcile new sync``: scaffolds of declaration files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..clock import today_in_paris
from ..declarations.diagnostics import render_text
from ..declarations.layout import relative_path
from ..declarations.lint import course_file_stem
from ..declarations.loader import load_platforms
from ..declarations.scaffold import (
    NewCohort,
    NewSync,
    ScaffoldRefused,
    append_sync,
    cohort_text,
    course_text,
)
from ..declarations.validate import validate_tree
from ..errors import ConfigurationError, DeclarationErrors
from ..settings import PlatformSettings
from .options import DAY


def _platform(repo: Path, name: str) -> PlatformSettings:
    path = repo / "cohorts" / "platforms.yaml"
    settings, _ = load_platforms(path, "cohorts/platforms.yaml", repo)
    if settings is None:
        raise DeclarationErrors("cohorts/platforms.yaml has errors (run `reconcile validate`)")
    try:
        return settings.platform(name)
    except KeyError as exc:
        raise ConfigurationError(str(exc.args[0])) from None


def _write_checked(repo: Path, relative: str, text: str, today: dt.date) -> None:
    """Write ``text`` to ``relative``, validate it, and take it back (the file as it was, or
    none) when it has errors: only a valid file stays. Prints the diagnostics."""
    path = repo / relative
    before = path.read_text(encoding="utf-8") if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    report = validate_tree(repo, today, [path])
    if report.diagnostics:
        click.echo(render_text(report.diagnostics, report.files_checked))
    if report.errors:
        if before is None:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")
        raise DeclarationErrors(f"{relative}: not written, it would not pass validation "
                                f"({report.errors} error(s) above)")
    click.echo(f"wrote {relative}: check it, then `git add {relative}`, commit, push and open "
               "a merge request (its pipeline shows the plan)")


@click.group("new")
def new() -> None:
    """Write a new declaration file (valid, commented, with its schema hint)."""


@new.command("cohort")
@click.argument("idnumber")
@click.option("--platform", "-p", required=True, help="Platform name (ecampus, collegium...).")
@click.option("--name", required=True, help="Cohort name shown in Moodle.")
@click.option("--owner", "owners", multiple=True, required=True,
              help="Who answers for it (GitLab username or mail address); repeat for several.")
@click.option("--description", help="Plain-text description.")
@click.option("--member", "members", multiple=True, help="A Moodle username; repeat.")
@click.option("--expires", type=DAY, help="Last day in force (Europe/Paris).")
@click.option("--review-every", default="180d", show_default=True,
              help="Without --expires: how often the owners review the members (180d, 26w).")
@click.option("--category", help="Idnumber of the course category holding the cohort.")
@click.option("--today", type=DAY, help="Write as if today were this day (Europe/Paris).")
@click.pass_context
def new_cohort(ctx: click.Context, idnumber: str, platform: str, name: str,
               owners: tuple[str, ...], description: str | None, members: tuple[str, ...],
               expires: dt.date | None, review_every: str, category: str | None,
               today: dt.date | None) -> None:
    """Write cohorts/<platform>/cohorts/<IDNUMBER>.yaml: a manual cohort that either
    expires or is reviewed every --review-every."""
    repo: Path = ctx.obj["repo"]
    settings = _platform(repo, platform)
    relative = relative_path(platform, "cohort", idnumber)
    if (repo / relative).exists():
        raise ScaffoldRefused(f"{relative} exists already; edit it instead")
    day = today or today_in_paris()
    text = cohort_text(NewCohort(
        idnumber=idnumber, name=name, owners=owners, platform=platform,
        platform_title=settings.title or platform, prefix=settings.manual_idnumber_prefix,
        description=description, members=tuple(m.lower() for m in members), expires=expires,
        review_every=review_every, category=category), day)
    _write_checked(repo, relative, text, day)


@new.command("sync")
@click.option("--platform", "-p", required=True, help="Platform name (ecampus, collegium...).")
@click.option("--course", required=True, help="Course shortname in Moodle.")
@click.option("--cohort", required=True, help="Idnumber of a manual or general cohort.")
@click.option("--reason", required=True, help="Why this sync exists (shown to reviewers).")
@click.option("--role", default="student", show_default=True, help="Role shortname.")
@click.option("--expires", type=DAY, help="Last day in force (Europe/Paris).")
@click.option("--group", help="Course group the members are put into (created if missing).")
@click.option("--method", type=click.Choice(["cohort", "manual"]), default="cohort",
              show_default=True, help="Cohort sync, or manual enrolments ending on --expires.")
@click.option("--owner", "owners", multiple=True,
              help="Who answers for the course's syncs (a new file needs one); repeat.")
@click.option("--today", type=DAY, help="Write as if today were this day (Europe/Paris).")
@click.pass_context
def new_sync(ctx: click.Context, platform: str, course: str, cohort: str, reason: str,
             role: str, expires: dt.date | None, group: str | None, method: str,
             owners: tuple[str, ...], today: dt.date | None) -> None:
    """Add a sync to cohorts/<platform>/syncs/<COURSE>.yaml, writing the file if needed."""
    repo: Path = ctx.obj["repo"]
    settings = _platform(repo, platform)
    relative = relative_path(platform, "syncs", course_file_stem(course))
    day = today or today_in_paris()
    spec = NewSync(course=course, cohort=cohort, role=role, reason=reason,
                   platform_title=settings.title or platform, owners=owners, expires=expires,
                   group=group, method=method)
    path = repo / relative
    if path.exists():
        if owners:
            click.echo(f"note: {relative} exists; its owners stay as written there", err=True)
        text = append_sync(path.read_text(encoding="utf-8"), spec, day, relative)
    else:
        if not owners:
            raise click.UsageError(f"{relative} is a new file: give at least one --owner")
        text = course_text(spec, day)
    _write_checked(repo, relative, text, day)
