"""What a merge request changes, and the note that shows it to its reviewers.

The merge request's own changes are counted from its *fork point* (``git merge-base target
HEAD``), never from the target's tip: whatever landed on the target since the fork is not the
merge request's doing, and comparing with the tip would show it reversed ("- delete cohort
man-other") as if the branch asked for it. When GitLab runs a merged-results pipeline, HEAD is
already the merged result and the target commit it was merged with is the base.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..declarations.history import (
    changed_between,
    changed_files,
    changed_syncs,
    fetch,
    fork_point,
    resolve,
    sync_changes,
)
from ..declarations.loader import DeclarationSet, SyncDeclaration
from ..declarations.suggest import did_you_mean
from ..planning.actions import Action, abbreviate
from ..planning.plan import Plan
from ..planning.render import failsafe_lines, group_actions
from ..planning.render_patterns import pattern_lines
from ..planning.state import ActualState, DesiredState

# GitLab's CI_MERGE_REQUEST_EVENT_TYPE values whose HEAD is the merged result.
MERGED_EVENT_TYPES = {"merged_result", "merge_train"}
# Past this many warnings the note lists the first ones and points to the artifact.
NOTE_WARNINGS = 20


@dataclass(frozen=True)
class Pipeline:
    """What GitLab tells a job about its pipeline (its predefined CI/CD variables)."""

    source: str = ""  # CI_PIPELINE_SOURCE: push, merge_request_event, schedule, web...
    commit: str = ""  # CI_COMMIT_SHA
    merge_request_iid: str = ""  # CI_MERGE_REQUEST_IID
    target_branch: str = ""  # CI_MERGE_REQUEST_TARGET_BRANCH_NAME
    event_type: str = ""  # CI_MERGE_REQUEST_EVENT_TYPE: detached, merged_result, merge_train
    target_sha: str = ""  # CI_MERGE_REQUEST_TARGET_BRANCH_SHA (merged-results pipelines)
    job_url: str = ""  # CI_JOB_URL

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Pipeline:
        """Read the predefined variables; missing ones are empty strings."""
        get = lambda name: (environ.get(name) or "").strip()  # noqa: E731
        return cls(
            source=get("CI_PIPELINE_SOURCE"),
            commit=get("CI_COMMIT_SHA"),
            merge_request_iid=get("CI_MERGE_REQUEST_IID"),
            target_branch=get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
            event_type=get("CI_MERGE_REQUEST_EVENT_TYPE"),
            target_sha=get("CI_MERGE_REQUEST_TARGET_BRANCH_SHA"),
            job_url=get("CI_JOB_URL").rstrip("/"),
        )

    @property
    def is_merge_request(self) -> bool:
        return self.source == "merge_request_event" and bool(self.target_branch)

    @property
    def merged_result(self) -> bool:
        return self.event_type in MERGED_EVENT_TYPES

    def artifacts_url(self, folder: str) -> str | None:
        """The job's artifact browser at ``folder`` (None outside CI)."""
        return f"{self.job_url}/artifacts/browse/{folder}" if self.job_url else None


@dataclass(frozen=True)
class Focus:
    """What one merge request declares differently from its base, across every platform."""

    base: str  # the commit the changes are counted from (full hash)
    label: str  # e.g. "this branch, forked from main at 1a2b3c4d"
    cohorts: frozenset[tuple[str, str]] = frozenset()  # (platform, idnumber) of changed files
    syncs: frozenset[tuple[str, str, str, str]] = frozenset()  # (platform, course, cohort, role)
    changed: tuple[SyncDeclaration, ...] = ()  # sync entries added or changed (as they are now)
    moved: tuple[str, ...] = ()  # cohorts/ files the target changed since the base
    warnings: tuple[str, ...] = ()
    patterns: frozenset[tuple[str, str]] = frozenset()  # (platform, name) of changed patterns

    def owns(self, platform: str, action: Action, members: frozenset[str]) -> bool:
        """Whether ``action`` of ``platform``'s plan comes from this merge request's files.

        ``members`` are the usernames of the manual cohorts it changed (their accounts)."""
        d = action.details
        if action.kind == "create_user":
            return action.target in members
        course = d.course_name()
        if course is None:  # a cohort's action: its target is the idnumber
            return (platform, action.target) in self.cohorts
        if action.kind == "create_group":
            return any(
                s.platform == platform
                and s.course == course
                and s.group == getattr(d, "name", None)
                for s in self.changed
            )
        cohort = d.cohort_idnumber() or ""
        key = (platform, course, cohort, str(getattr(d, "role", "")))
        return key in self.syncs or (platform, cohort) in self.cohorts


def merge_request_focus(
    repo: Path, pipeline: Pipeline, decls: DeclarationSet, remote: str = "origin"
) -> Focus:
    """Fetch the target branch and find what the merge request changes, from its fork point
    (or, in a merged-results pipeline, from the target commit it was merged with).

    Raises ``GitError`` (target not fetchable, unknown commits, unrelated histories)."""
    branch = pipeline.target_branch
    fetch(repo, remote, branch)
    tip = resolve(repo, f"{remote}/{branch}")
    warnings: list[str] = []
    if pipeline.merged_result:
        base = resolve(repo, pipeline.target_sha or "HEAD^1")
        label = f"the merged result with {branch} at {base[:8]}"
        moved = sorted(changed_between(repo, base, tip)) if tip != base else []
        if moved:
            warnings.append(
                f"{branch} changed cohorts/ again since this merged result was made "
                f"({_files(moved)}): the next pipeline plans the new merged result."
            )
    else:
        base = fork_point(repo, f"{remote}/{branch}")
        label = f"this branch, forked from {branch} at {base[:8]}"
        moved = sorted(changed_between(repo, base, tip)) if tip != base else []
        if moved:
            warnings.append(
                f"{branch} changed cohorts/ since this branch forked ({_files(moved)}); "
                "this plan does not include those changes: rebase to see the merged result."
            )
    changed = changed_files(repo, base)
    # Only the files the merge request touches are read back from git.
    mine = dataclasses.replace(decls, syncs=[s for s in decls.syncs if s.location.file in changed])
    cohorts, patterns = set(), set()
    for name in changed:
        parts = PurePosixPath(name).parts
        if len(parts) == 4 and parts[2] == "cohorts" and parts[3].endswith(".yaml"):
            cohorts.add((parts[1], PurePosixPath(parts[3]).stem))
        if len(parts) == 4 and parts[2] == "patterns" and parts[3].endswith(".yaml"):
            patterns.add((parts[1], PurePosixPath(parts[3]).stem))
    return Focus(
        base=base,
        label=label,
        cohorts=frozenset(cohorts),
        syncs=frozenset(sync_changes(repo, base, changed)),
        changed=tuple(changed_syncs(repo, base, mine)),
        moved=tuple(moved),
        warnings=tuple(warnings),
        patterns=frozenset(patterns),
    )


def pattern_changes(plan: Plan, focus: Focus) -> tuple[list[dict], frozenset[tuple[str, str, str]]]:
    """The plan's reports of the course patterns ``focus`` changes, and the (course, cohort,
    role) their syncs touch: the courses each matches or stopped matching, times its entries
    (a pattern's actions are the merge request's own, whatever course they land in)."""
    changed = [p for p in plan.patterns if (plan.platform, p["name"]) in focus.patterns]
    touched = frozenset(
        (course, sync["cohort"], sync["role"])
        for p in changed
        for course in [*p["courses"], *p["losing"]]
        for sync in p["syncs"]
    )
    return changed, touched


def _files(names: list[str], shown: int = 3) -> str:
    return abbreviate([n.removeprefix("cohorts/") for n in names], shown)


# -- what a merge request may not do ------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One sync of the merge request that names what does not exist (``file:line: message``)."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def unknown_names(
    focus: Focus,
    platform: str,
    desired: DesiredState,
    actual: ActualState,
    all_courses: Callable[[], Iterable[str]] | None = None,
) -> tuple[list[Problem], list[str]]:
    """(errors, warnings) for the syncs the merge request adds or changes on ``platform``.

    A sync whose course Moodle does not have, or whose cohort is neither a declared manual
    cohort nor a general cohort the sources produce, waits for ever: in a merge request that
    is a typo until proven otherwise, so it is an error naming the closest known names. When
    the sources are unhealthy the general cohorts cannot be checked: a warning says so.
    ``all_courses`` gives every course shortname of the platform, asked only when a course is
    missing (the plan reads just the courses it needs, so the closest names come from it);
    without it, the courses the plan read are the candidates."""
    known_courses: list[str] | None = None
    errors: list[Problem] = []
    warnings: list[str] = []
    cohorts = set(desired.cohorts) | set(desired.expired_cohorts)
    pattern = desired.general_pattern is not None
    courses_told: set[tuple[str, str]] = set()  # a file's missing course is said once
    for sync in focus.changed:
        if sync.platform != platform:
            continue
        where = str(sync.location)
        told = (sync.location.file, sync.course)
        if sync.course not in actual.courses and told not in courses_told:
            courses_told.add(told)
            if known_courses is None:
                known_courses = list(all_courses() if all_courses else actual.courses)
            errors.append(
                Problem(
                    where,
                    f"course {sync.course!r} does not exist in Moodle ({platform})"
                    + did_you_mean(sync.course, known_courses),
                )
            )
        if sync.cohort in cohorts:
            continue
        if desired.general_frozen and pattern and sync.cohort in actual.cohorts:
            continue  # an existing general cohort kept as it is while the sources are down
        if desired.general_frozen and pattern:
            warnings.append(
                f"{where}: cannot check that the sources produce cohort {sync.cohort!r}: "
                "they are unhealthy"
            )
            continue
        errors.append(
            Problem(
                where,
                f"cohort {sync.cohort!r} is neither a manual cohort declared for {platform} "
                "nor a general cohort the sources produce" + did_you_mean(sync.cohort, cohorts),
            )
        )
    return errors, warnings


# -- the note -----------------------------------------------------------------------------------


@dataclass
class NoteFacts:
    """Everything the note shows beside the plan itself."""

    focus: Focus | None
    artifacts: str | None = None  # URL of the plan artifacts (the job's artifact browser)
    artifact_names: tuple[str, ...] = ()
    extra_warnings: list[str] = field(default_factory=list)
    declared: list[SyncDeclaration] = field(default_factory=list)  # the platform's syncs
    members: frozenset[str] = frozenset()  # usernames of the manual cohorts it changed


def _counts(plan: Plan, actions: list[Action]) -> str:
    c = dataclasses.replace(plan, actions=actions).counts()
    if not actions:
        return "no change in Moodle"
    return f"{c['add']} to add, {c['change']} to change, {c['remove']} to remove"


def _health(plan: Plan) -> str:
    if not plan.sources:
        return "not used (no general cohorts on this platform)"
    if plan.sources.get("healthy") is False:
        reasons = "; ".join(plan.sources.get("reasons") or []) or "unknown reason"
        return f"**unhealthy**: every general cohort is left as it is ({reasons})"
    return "healthy"


def _action_lines(
    plan: Plan, actions: list[Action], expiry: dict[tuple[str, str, str], str]
) -> list[str]:
    sub = dataclasses.replace(plan, actions=actions)
    cohorts, courses, users = group_actions(sub)
    out: list[str] = []
    for target, group in cohorts.items():
        out.append(f"- **{target}**")
        out += [f"  - `{sym}` {text}" for sym, text in (a.line() for a in group)]
    for course, group in courses.items():
        out.append(f"- **{course}**")
        for action in group:
            sym, text = action.line()
            d = action.details
            until = expiry.get((course, d.cohort_idnumber() or "", str(getattr(d, "role", ""))))
            if until and action.kind in ("create_sync", "update_sync"):
                text += f" · expires {until}"
            out.append(f"  - `{sym}` {text}")
    out += [f"- `{sym}` {text}" for sym, text in (a.line() for a in users)]
    return out


def render_note(plan: Plan, facts: NoteFacts) -> str:
    """The merge-request note of one platform's plan, in GitLab Markdown.

    One summary (the merge request's own actions), the plan's notices (``Plan.notices``: a
    rollover, the digest a tripped failsafe expects, the sources' notes), the saved plan's
    digest, failsafe and source-health status, warnings, the merge request's actions with
    the expiry dates of its syncs, then the rest of the plan collapsed and a link to the
    artifacts."""
    focus = facts.focus
    patterns, from_patterns = pattern_changes(plan, focus) if focus else ([], frozenset())
    mine: list[Action] = []
    rest: list[Action] = []
    for action in plan.sorted_actions():
        d = action.details
        key = (d.course_name(), d.cohort_idnumber(), getattr(d, "role", None))
        owned = focus is not None and (
            focus.owns(plan.platform, action, facts.members) or key in from_patterns)
        (mine if owned else rest).append(action)
    # Without a merge request to focus on, the whole plan is the subject of the summary.
    subject = mine if focus is not None else rest
    icon = "🛑" if plan.failsafe_tripped else ("📝" if subject else "✅")
    who = "this merge request" if focus is not None else "this plan"
    out = [f"### {icon} `{plan.platform}`: {who}: {_counts(plan, subject)}", ""]
    # A rollover, the digest a tripped failsafe expects, the sources' notes: first.
    if plan.notices():
        out += [f"> - {line}" for line in plan.notices()] + [""]
    commit = (plan.commit or "no commit")[:12] + (" (dirty tree)" if plan.dirty else "")
    planned_on = f"planned on {focus.label}" if focus is not None else "planned"
    out += [
        f"Plan of `{commit}`, {planned_on}; academic year {plan.academic_year}.",
        "",
        f"- **Digest** of the saved plan: `{plan.digest()}`",
    ]
    fs = failsafe_lines(plan)
    if plan.failsafe_tripped:
        out.append(
            "- **Failsafes**: 🛑 tripped: apply refuses this plan unless its digest is approved"
        )
        out += [f"  - `{line.strip()}`" for line in fs[1:]]
        out.append("  - to let it through, approve this digest (README: approving a plan)")
    else:
        out.append("- **Failsafes**: all within limits")
    out.append(f"- **Sources**: {_health(plan)}")
    warnings = [*(focus.warnings if focus else ()), *facts.extra_warnings]
    warnings += [f"`{w.code}` {w.message}" for w in plan.warnings]
    if warnings:
        out += ["", "**Warnings**", ""]
        out += [f"- ⚠️ {w}" for w in warnings[:NOTE_WARNINGS]]
        if len(warnings) > NOTE_WARNINGS:
            out.append(f"- … and {len(warnings) - NOTE_WARNINGS} more in the plan artifact")
    expiry = {
        (s.course, s.cohort, s.role): s.expires.isoformat()
        for s in facts.declared
        if s.expires is not None
    }
    if focus is not None:
        out += ["", "#### What this merge request changes", ""]
        out += _action_lines(plan, mine, expiry) or ["Nothing to do in Moodle."]
        mine_syncs = [s for s in focus.changed if s.platform == plan.platform]
        if mine_syncs:
            out += ["", "Syncs it adds or changes:", ""]
            for s in mine_syncs:
                until = (
                    f"until {s.expires.isoformat()} (last day in force)"
                    if s.expires
                    else "no end date"
                )
                group = f", group {s.group!r}" if s.group else ""
                out.append(f"- **{s.course}**: {s.cohort} as {s.role} ({s.method}{group}), {until}")
        if patterns:
            out += ["", "Course patterns it changes, as Moodle's courses are today:", ""]
            out += [f"{'  ' * depth}- {text}" for item in patterns
                    for depth, text in pattern_lines(item)]
    if rest:
        label = "The rest of the plan" if focus is not None else "The plan"
        whence = ""
        if focus is not None:
            target = " or from the target's changes since the fork" if focus.moved else ""
            whence = f" (from the sources, from drift in Moodle{target})"
        out += [
            "",
            f"<details><summary>{label}: {_counts(plan, rest)}{whence}</summary>",
            "",
            *_action_lines(plan, rest, expiry),
            "",
            "</details>",
        ]
    if plan.pending_users:
        out += [
            "",
            f"**Pending users** ({len(plan.pending_users)}, no Moodle account yet): "
            f"{abbreviate(plan.pending_users, 10)}",
        ]
    if facts.artifact_names:
        names = ", ".join(f"`{n}`" for n in facts.artifact_names)
        where = (
            f"[the job's artifacts]({facts.artifacts})"
            if facts.artifacts
            else "the job's artifacts"
        )
        out += ["", f"The whole plan: {names} in {where}."]
    return "\n".join(out)


def render_failure(
    platform: str, commit: str, reason: str, details: list[str] | None = None
) -> str:
    """The note that replaces the plan when planning failed: the previous push's plan must not
    stay in the merge request as if it were current."""
    out = [f"### ❌ `{platform}`: plan failed at {commit[:8] or 'unknown commit'}: {reason}"]
    if details:
        out += [""] + [f"- {line}" for line in details]
    out += ["", "Nothing is planned for this push; the job log has the details."]
    return "\n".join(out)
