"""Plan renderers: text for terminals, Markdown for merge-request notes, JSON for machines."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

from .plan import Action, Plan

SHOWN_NAMES = 5
SYMBOL = {"add": "+", "change": "~", "remove": "-"}
COHORT_KINDS = {"create_cohort", "update_cohort", "add_members", "remove_members", "delete_cohort"}


def abbreviate(names: Iterable[str], shown: int = SHOWN_NAMES) -> str:
    names = list(names)
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head} … and {len(names) - shown} more"


def _line(action: Action) -> tuple[str, str]:
    """(symbol, description) of one action, without its target."""
    d = action.details
    users = d.get("usernames") or []
    match action.kind:
        case "create_user":
            return "+", f"create user {d['username']} ({d['firstname']} {d['lastname']})"
        case "create_cohort":
            where = f" in category {d['category']}" if d.get("category") else ""
            return "+", f"create cohort {d['name']!r}{where}"
        case "update_cohort":
            parts = [
                f"{k} {v[0]!r} → {v[1]!r}" for k, v in d["changes"].items() if k != "description"
            ]
            if "description" in d["changes"]:
                parts.append("description")
            verb = "adopt and update" if d.get("adopt") else "update"
            return "~", f"{verb} " + ", ".join(parts)
        case "add_members":
            return "+", f"add {len(users)} member{'s' * (len(users) != 1)}: {abbreviate(users)}"
        case "remove_members":
            return "-", (
                f"remove {len(users)} of {d['size_before']} member"
                f"{'s' * (d['size_before'] != 1)}: {abbreviate(users)}"
            )
        case "delete_cohort":
            return "-", f"delete cohort ({d['members']} members)"
        case "create_group":
            return "+", f"create group {d['name']!r}"
        case "create_sync":
            group = f", group {d['group']!r}" if d.get("group") else ""
            return "+", f"cohort sync of {d['cohort']} as {d['role']}{group}"
        case "update_sync":
            parts = [f"{k} {v[0]!r} → {v[1]!r}" for k, v in d["changes"].items()]
            return "~", f"cohort sync of {d['cohort']} as {d['role']}: " + ", ".join(parts)
        case "disable_sync":
            return "-", f"disable cohort sync of {d['cohort']} as {d['role']} (enrolments kept)"
        case "delete_sync":
            return "-", f"delete cohort sync of {d['cohort']} as {d['role']} (unenrols its users)"
        case "enrol_manual":
            return "+", (
                f"enrol {len(users)} member{'s' * (len(users) != 1)} of {d['cohort']} "
                f"manually as {d['role']} until {d['expires']}: {abbreviate(users)}"
            )
        case "suspend_manual":
            return "-", (
                f"suspend the manual enrolment of {len(users)} former member"
                f"{'s' * (len(users) != 1)} of {d['cohort']}: {abbreviate(users)}"
            )
    return "?", action.kind  # pragma: no cover - every kind is listed above


def _grouped(plan: Plan) -> tuple[dict[str, list[Action]], dict[str, list[Action]], list[Action]]:
    cohorts: dict[str, list[Action]] = defaultdict(list)
    courses: dict[str, list[Action]] = defaultdict(list)
    users: list[Action] = []
    for action in plan.sorted_actions():
        if action.kind == "create_user":
            users.append(action)
        elif action.kind in COHORT_KINDS:
            cohorts[action.target].append(action)
        else:
            courses[str(action.details.get("course", action.target))].append(action)
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


def render_text(plan: Plan) -> str:
    out = [plan.summary(), _header(plan)]
    if plan.warnings:
        out += ["", "Warnings:"] + [f"  ! {w.code}: {w.message}" for w in plan.warnings]
    cohorts, courses, users = _grouped(plan)
    if cohorts:
        out += ["", "Cohorts:"]
        for target, actions in cohorts.items():
            out.append(f"  {target}")
            out += [f"    {sym} {text}" for sym, text in map(_line, actions)]
    if courses:
        out += ["", "Courses:"]
        for course, actions in courses.items():
            out.append(f"  {course}")
            out += [f"    {sym} {text}" for sym, text in map(_line, actions)]
    if users:
        out += ["", "Users:"] + [f"  {s} {t}" for s, t in map(_line, users)]
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


def render_markdown(plan: Plan, details_limit: int | None = None) -> str:
    icon = "🛑" if plan.failsafe_tripped else ("📝" if plan.has_changes else "✅")
    out = [f"### {icon} `{plan.platform}`: {plan.summary()}", "", f"<sub>{_header(plan)}</sub>", ""]
    if plan.warnings:
        out += ["**Warnings**", ""] + [f"- ⚠️ `{w.code}` {w.message}" for w in plan.warnings] + [""]
    if plan.failsafe_tripped:
        out += ["**" + _failsafe_lines(plan)[0] + "**", ""]
        out += [f"- `{line.strip()}`" for line in _failsafe_lines(plan)[1:]] + [""]
    cohorts, courses, users = _grouped(plan)
    body: list[str] = []
    for title, groups in (("Cohorts", cohorts), ("Courses", courses)):
        if groups:
            body += [f"#### {title}", ""]
            for target, actions in groups.items():
                body.append(f"- **{target}**")
                body += [f"  - `{sym}` {text}" for sym, text in map(_line, actions)]
            body.append("")
    if users:
        body += ["#### Users", ""] + [f"- `{s}` {t}" for s, t in map(_line, users)] + [""]
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
    return json.dumps(plan.to_json(), ensure_ascii=False, indent=2, sort_keys=False)
