"""The plan's "Course patterns" section: for each pattern, the courses it matches today and
what the plan does about them (courses gaining its syncs, courses that stopped matching and
lose them), what is left out or overridden, and why a pattern could not be matched.
Rendered from ``Plan.patterns``, for text and Markdown alike; nothing when there is none."""

from __future__ import annotations

from typing import Any

from .actions import abbreviate
from .plan import Plan
from .render_general import section_markdown, section_text

SHOWN_COURSES = 8


def pattern_lines(item: dict[str, Any], shown: int = SHOWN_COURSES) -> list[tuple[int, str]]:
    """(depth, text) lines of one pattern's report (``Plan.patterns`` item), naming at most
    ``shown`` courses a list."""
    head = f"{item['name']} ({item['rule']}; {item['source']})"
    if item["unresolved"] is not None:
        return [(0, f"{head}: not matched: {item['unresolved']}; the syncs of its cohorts "
                    "are left as they are")]
    courses = item["courses"]
    n = len(courses)
    lines = [(0, f"{head}: {n} course{'s' * (n != 1)}"
                 + (f": {abbreviate(courses, shown)}" if courses else ""))]
    if item.get("gaining"):
        lines.append((1, f"gaining its syncs: {abbreviate(item['gaining'], shown)}"))
    if item.get("losing"):
        lines.append((1, "no longer matching, their syncs retired: "
                         f"{abbreviate(item['losing'], shown)}"))
    if item["excluded"]:
        left_out = [f"{e['course']} ({e['by']})" for e in item["excluded"]]
        lines.append((1, f"left out: {abbreviate(left_out, shown)}"))
    if item["overridden"]:
        replaced = [f"{o['course']}: {o['cohort']} as {o['role']} ({o['by']})"
                    for o in item["overridden"]]
        lines.append((1, f"overridden by the course's own file: {abbreviate(replaced, shown)}"))
    return lines


def pattern_items(plan: Plan) -> list[tuple[int, str]]:
    """(depth, text) lines of the section; empty when the platform has no pattern."""
    return [line for item in plan.patterns for line in pattern_lines(item)]


def explain_lines(patterns: list[dict[str, Any]]) -> list[str]:
    """Each pattern's report in full (every course named), for ``validate
    --explain-patterns``: indented text lines."""
    return [f"{'  ' * (depth + 1)}{text}" for item in patterns
            for depth, text in pattern_lines(item, shown=10**6)]


def patterns_text(plan: Plan) -> list[str]:
    """The section for terminals: a blank line, a title, indented lines (or nothing)."""
    return section_text("Course patterns", pattern_items(plan))


def patterns_markdown(plan: Plan) -> list[str]:
    """The section for merge-request notes, outside the collapsed details (or nothing)."""
    return section_markdown("Course patterns", pattern_items(plan))
