"""Each CI job's logic, start to end, so that no shell line decides an exit code (DESIGN §5.8).

``reconcile ci validate``, ``reconcile ci plan --platform P`` and ``reconcile ci apply
--platform P`` are thin commands over ``run_validate``, ``run_plan`` and ``run_apply``. Each
returns an ``Outcome``: a status the command turns into the documented exit code, what to
print, and the files it wrote. GitLab Runner echoes every script line before running it, so
`` code=$?`` on the next line is the echo's 0: the verdict must be the command's own exit code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..applying.applier import ProgressCallback
from ..applying.report import apply_report, incomplete_line
from ..applying.runner import Environment, apply, plan_with_states
from ..declarations.diagnostics import render_text as render_diagnostics
from ..declarations.history import fetch, fork_point, git_info
from ..declarations.validate import validate_tree
from ..errors import ExitCode, GitError, GitLabError, ReconcilerError, StalePlan, most_severe
from ..planning.failsafe import FailsafeTripped, tripped_report
from ..planning.plan import read_plan
from ..planning.reader import read_all_courses
from ..planning.render import render_json, render_text
from ..planning.state import ActualState
from .notes import MergeRequest, NotePoster
from .reports import code_quality, junit
from .review import (
    NoteFacts,
    Pipeline,
    merge_request_focus,
    render_failure,
    render_note,
    unknown_names,
)

PLANS_DIR = "plans"  # the artifact folder: one <platform>.json and .md each
APPROVAL_HINT = (
    "To let this exact plan through, run the pipeline of the default branch by hand "
    "(Build > Pipelines > Run pipeline) or its schedule with the variable "
    "RECONCILER_APPROVED_DIGEST={digest}"
)


@dataclass
class Outcome:
    """What a CI command did: its exit code, what it prints (stdout, stderr) and writes."""

    status: ExitCode
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- validate -----------------------------------------------------------------------------------


def run_validate(
    repo: Path,
    pipeline: Pipeline,
    today: dt.date,
    quality: Path | None,
    junit_path: Path | None,
    remote: str = "origin",
) -> Outcome:
    """Validate the declarations; in a merge request, entries added since the fork point
    must not be expired already. The reports (paths relative to ``repo``) carry the verdict's
    own diagnostics."""
    changed_since = None
    if pipeline.is_merge_request:
        try:
            fetch(repo, remote, pipeline.target_branch)
            changed_since = fork_point(repo, f"{remote}/{pipeline.target_branch}")
        except GitError as exc:
            return Outcome(ExitCode.ERROR, err=[f"error: {exc}"])
    report = validate_tree(repo, today, None, changed_since)
    quality = quality if quality is None or quality.is_absolute() else repo / quality
    junit_path = junit_path if junit_path is None or junit_path.is_absolute() else repo / junit_path
    outcome = Outcome(ExitCode.ERROR if report.errors else ExitCode.OK)
    outcome.out.append(render_diagnostics(report.diagnostics, report.files_checked))
    files = [f for f in report.decls.files]
    for path, text in (
        (quality, code_quality(report.diagnostics)),
        (junit_path, junit(report.diagnostics, files)),
    ):
        if path is not None:
            path.write_text(text + "\n", encoding="utf-8")
            outcome.written.append(path)
    return outcome


# -- plan ---------------------------------------------------------------------------------------


PosterFactory = Callable[[], NotePoster]


def _course_shortnames(env: Environment, platform: str) -> list[str]:
    """Every course shortname of ``platform`` (one ``core_course_get_courses_by_field`` call):
    the candidates of "did you mean" for a course the merge request names wrongly."""
    actual = ActualState()
    with env.client(env.platform(platform)) as client:
        read_all_courses(client, actual)
    return list(actual.courses)


def _default_poster(env: Environment) -> PosterFactory:
    return lambda: NotePoster(MergeRequest.from_ci(env.environ))


def run_plan(
    env: Environment,
    platform: str,
    pipeline: Pipeline,
    out_dir: Path = Path(PLANS_DIR),
    poster: PosterFactory | None = None,
    remote: str = "origin",
) -> Outcome:
    """Plan one platform, save ``<out_dir>/<platform>.json`` and ``.md`` (``out_dir`` relative
    to the repository) and, in a merge request, post the note or update it in place.

    Status: 0 (with or without changes), 1 (the plan failed, or a sync the merge request
    adds names a course or cohort that does not exist, or the note could not be posted),
    else the plan's own (``Plan.exit_code``: 3 failsafe, 4 unhealthy, 7 incomplete: what
    was declared before and still cannot be done). A failed plan *replaces* the note, so
    the previous push's plan never stays in the merge request as if it were current."""
    folder = out_dir if out_dir.is_absolute() else env.repo / out_dir
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{platform}.json", folder / f"{platform}.md"
    names = ((out_dir / json_path.name).as_posix(), (out_dir / md_path.name).as_posix())
    for stale in (json_path, md_path):
        stale.unlink(missing_ok=True)
    commit = pipeline.commit or git_info(env.repo).commit or ""
    outcome = Outcome(ExitCode.OK)
    focus = None
    try:
        decls = env.declarations()
        if pipeline.is_merge_request:
            focus = merge_request_focus(env.repo, pipeline, decls, remote)
        planned = plan_with_states(env, platform)
    except ReconcilerError as exc:  # declarations, configuration, git, Moodle
        return _failed(env, platform, pipeline, commit, _one_line(exc), [], md_path, poster)
    except Exception as exc:  # our own bug: the stale note must still go
        reason = f"unexpected {type(exc).__name__}: {_one_line(exc)}"
        return _failed(env, platform, pipeline, commit, reason, [], md_path, poster)

    plan = planned.plan
    json_path.write_text(render_json(plan) + "\n", encoding="utf-8")
    outcome.written.append(json_path)
    outcome.out.append(render_text(plan))
    problems, warnings = [], []
    if focus is not None:
        problems, warnings = unknown_names(
            focus, platform, planned.desired, planned.actual,
            lambda: _course_shortnames(env, platform))
        outcome.out.insert(0, f"Focus: the changes of {focus.label} ({focus.base[:12]}).")
    if problems:
        n = len(problems)
        reason = str(problems[0]) if n == 1 else f"{n} syncs name what does not exist"
        details = [str(p) for p in problems] if n > 1 else []
        return _failed(
            env,
            platform,
            pipeline,
            commit,
            reason,
            details,
            md_path,
            poster,
            outcome,
        )
    members = frozenset()
    if focus is not None:
        members = frozenset(
            u
            for c in decls.cohorts_of(platform)
            if (platform, c.idnumber) in focus.cohorts
            for u in c.members
        )
    facts = NoteFacts(
        focus=focus,
        artifacts=pipeline.artifacts_url(out_dir.as_posix()),
        artifact_names=names,
        extra_warnings=warnings,
        declared=decls.syncs_of(platform),
        members=members,
    )
    body = render_note(plan, facts)
    md_path.write_text(body + "\n", encoding="utf-8")
    outcome.written.append(md_path)
    if pipeline.is_merge_request and not _post(env, platform, body, pipeline, poster, outcome):
        return outcome
    # A plan job is done whether or not there are changes; the rest as `reconcile plan`
    # (errors.PRECEDENCE: a tripped failsafe, then unhealthy sources, then incomplete).
    outcome.status = most_severe(plan.exit_codes() - {ExitCode.CHANGES})
    if plan.failsafe_tripped:
        outcome.err.append(tripped_report(plan))
        outcome.err.append(APPROVAL_HINT.format(digest=plan.digest()))
    if plan.sources.get("healthy") is False:
        outcome.err.append("sources unhealthy: general cohorts are left unchanged (exit 4)")
    if plan.incomplete:
        outcome.err.append(incomplete_line(plan))
    return outcome


def _post(
    env: Environment,
    platform: str,
    body: str,
    pipeline: Pipeline,
    poster: PosterFactory | None,
    outcome: Outcome,
) -> bool:
    try:
        client = (poster or _default_poster(env))()
        action, note = client.upsert(platform, body, pipeline.artifacts_url(PLANS_DIR))
    except GitLabError as exc:
        outcome.status = ExitCode.ERROR
        outcome.err.append(f"error: the plan note was not posted: {exc}")
        return False
    outcome.out.append(f"{action} note {note.get('id')} for {platform}")
    return True


def _failed(
    env: Environment,
    platform: str,
    pipeline: Pipeline,
    commit: str,
    reason: str,
    details: list[str],
    md_path: Path,
    poster: PosterFactory | None,
    outcome: Outcome | None = None,
) -> Outcome:
    outcome = outcome or Outcome(ExitCode.ERROR)
    outcome.status = ExitCode.ERROR
    outcome.err.append(f"error: plan failed at {commit[:8] or 'unknown commit'}: {reason}")
    outcome.err += [f"  {line}" for line in details]
    body = render_failure(platform, commit, reason, details)
    md_path.write_text(body + "\n", encoding="utf-8")
    outcome.written.append(md_path)
    if pipeline.is_merge_request:
        _post(env, platform, body, pipeline, poster, outcome)
        outcome.status = ExitCode.ERROR
    return outcome


# -- apply --------------------------------------------------------------------------------------


def run_apply(
    env: Environment,
    platform: str,
    plan_file: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Outcome:
    """Apply ``plan_file`` (refused once stale) or plan and apply afresh (the nightly job).

    ``progress`` is called once an action is done (the CLI prints one line each, also when
    the log is not a terminal). Exit code: 0, 1 (bad plan file, configuration, Moodle, a
    failed action), 3 failsafe tripped (the digest to approve is printed), 4 unhealthy
    sources, 5 stale plan, 7 incomplete (``ApplyOutcome.exit_code``)."""
    try:
        saved = read_plan(plan_file) if plan_file is not None else None
        done = apply(env, platform, saved, progress=progress)
    except StalePlan as exc:
        return Outcome(ExitCode.STALE, err=[f"error: stale plan, nothing applied: {exc}"])
    except FailsafeTripped as exc:
        return Outcome(
            ExitCode.FAILSAFE,
            out=[render_text(exc.plan)],
            err=[tripped_report(exc.plan), APPROVAL_HINT.format(digest=exc.plan.digest())],
        )
    except ReconcilerError as exc:
        return Outcome(ExitCode.ERROR, err=[f"error: {_one_line(exc)}; nothing applied"])
    out, err = apply_report(done)
    return Outcome(done.exit_code, out=out, err=err)
