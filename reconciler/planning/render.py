"""Plan renderers: text for terminals, Markdown for merge-request notes, JSON for machines.

Each action's line comes from its details (``actions.Details.describe``)."""

from __future__ import annotations

import json
from collections import defaultdict

from .actions import Action, abbreviate
from .plan import Plan
from .render_general import general_markdown, general_text
from .render_patterns import patterns_markdown, patterns_text


def _grouped(plan: Plan) -> tuple[dict[str, list[Action]], dict[str, list[Action]], list[Action]]:
    cohorts: dict[str, list[Action]] = defaultdict(list)
    courses: dict[str, list[Action]] = defaultdict(list)
    users: list[Action] = []
    for action in plan.sorted_actions():
        section = action.spec.section
        if section == "user":
            users.append(action)
        elif section == "cohort":
            cohorts[action.target].append(action)
        else:
            courses[action.details.course_name() or action.target].append(action)
    return dict(sorted(cohorts.items())), dict(sorted(courses.items())), users


def _header(plan: Plan) -> str:
    commit = (plan.commit or "no commit")[:12] + (" (dirty tree)" if plan.dirty else "")
    year = f"academic year {plan.academic_year}"
    return f"Platform {plan.platform} · {year} · {commit} · {plan.digest()[:19]}"


def _failsafe_lines(plan: Plan) -> list[str]:
    tripped = [c for c in plan.failsafe if c.tripped]
    if not tripped:
        return ["Failsafes: all within limits."]
    lines = ["FAILSAFE TRIPPED: apply will refuse this plan unless it is approved."]
    for c in tripped:
        where = "" if c.target == "*" else f" [{c.target}]"
        lines.append(f"  {c.name}{where}: {c.value:g} > {c.limit:g} ({c.detail})")
    return lines


def render_text(plan: Plan, notices: list[str] | None = None) -> str:
    """The plan for a terminal or a CI log: summary, notices (a rollover, what the failsafes
    expect, the sources' notes: ``Plan.notices``, unless ``notices`` is given), header,
    warnings, actions grouped by cohort, course and user (long name lists abbreviated),
    pending users, failsafes."""
    out = [plan.summary(), *(plan.notices() if notices is None else notices), _header(plan)]
    if plan.warnings:
        out += ["", "Warnings:"] + [f"  ! {w.code}: {w.message}" for w in plan.warnings]
    out += general_text(plan)
    out += patterns_text(plan)
    cohorts, courses, users = _grouped(plan)
    if cohorts:
        out += ["", "Cohorts:"]
        for target, actions in cohorts.items():
            out.append(f"  {target}")
            out += [f"    {sym} {text}" for sym, text in map(Action.line, actions)]
    if courses:
        out += ["", "Courses:"]
        for course, actions in courses.items():
            out.append(f"  {course}")
            out += [f"    {sym} {text}" for sym, text in map(Action.line, actions)]
    if users:
        out += ["", "Users:"] + [f"  {s} {t}" for s, t in map(Action.line, users)]
    if plan.pending_users:
        out += [
            "",
            f"Pending users (not in Moodle, not created): {len(plan.pending_users)}: "
            f"{abbreviate(plan.pending_users, 10)}",
        ]
    if plan.unmanaged:
        out += ["", f"Unmanaged (left alone): {len(plan.unmanaged)}"]
        out += [
            f"  {u['kind']} {u.get('idnumber') or u.get('course', '')} "
            f"{u.get('cohort', '')}: {u['reason']}"
            for u in plan.unmanaged[:20]
        ]
    out += ["", *_failsafe_lines(plan)]
    return "\n".join(out)


def render_markdown(
    plan: Plan, details_limit: int | None = None, notices: list[str] | None = None
) -> str:
    """The plan as a merge-request note: summary, notices (``Plan.notices`` unless
    ``notices`` is given) and warnings, the actions in a collapsed ``<details>`` cut at
    ``details_limit`` characters (a pointer to the artifact then)."""
    icon = "🛑" if plan.failsafe_tripped else ("📝" if plan.has_changes else "✅")
    out = [f"### {icon} `{plan.platform}`: {plan.summary()}", ""]
    lines = plan.notices() if notices is None else notices
    if lines:
        out += [f"> - {line}" for line in lines] + [""]
    out += [f"<sub>{_header(plan)}</sub>", ""]
    if plan.warnings:
        out += ["**Warnings**", ""] + [f"- ⚠️ `{w.code}` {w.message}" for w in plan.warnings] + [""]
    if plan.failsafe_tripped:
        out += ["**" + _failsafe_lines(plan)[0] + "**", ""]
        out += [f"- `{line.strip()}`" for line in _failsafe_lines(plan)[1:]] + [""]
    out += general_markdown(plan)
    out += patterns_markdown(plan)
    cohorts, courses, users = _grouped(plan)
    body: list[str] = []
    for title, groups in (("Cohorts", cohorts), ("Courses", courses)):
        if groups:
            body += [f"#### {title}", ""]
            for target, actions in groups.items():
                body.append(f"- **{target}**")
                body += [f"  - `{sym}` {text}" for sym, text in map(Action.line, actions)]
            body.append("")
    if users:
        body += ["#### Users", ""] + [f"- `{s}` {t}" for s, t in map(Action.line, users)] + [""]
    if plan.pending_users:
        body += [
            f"**Pending users** ({len(plan.pending_users)}): {abbreviate(plan.pending_users, 10)}",
            "",
        ]
    if plan.unmanaged:
        body += [f"**Unmanaged, left alone**: {len(plan.unmanaged)}", ""]
    if body:
        text = "\n".join(body)
        if details_limit is not None and len(text) > details_limit:
            text = text[:details_limit].rsplit("\n", 1)[0] + "\n\n… (cut: see the plan artifact)"
        out += ["<details><summary>Details</summary>", "", text, "</details>"]
    return "\n".join(out)


def render_json(plan: Plan) -> str:
    """The plan as saved for ``apply`` (``Plan.to_json``), complete, indented."""
    return json.dumps(plan.to_json(), ensure_ascii=False, indent=2, sort_keys=False)


# -- the pieces other renderings (the merge-request note) compose ------------------------------


def group_actions(
    plan: Plan,
) -> tuple[dict[str, list[Action]], dict[str, list[Action]], list[Action]]:
    """(actions by cohort idnumber, actions by course shortname, user creations), each sorted
    in the order the applier runs them."""
    return _grouped(plan)


def failsafe_lines(plan: Plan) -> list[str]:
    """"Failsafes: all within limits." or the tripped line followed by one line a check."""
    return _failsafe_lines(plan)
