"""The plan's "General cohorts" section: which rollover overlap is in force, what each rule
brings, and who is leaving on which day (the grace period). Rendered from ``Plan.general``,
for text and Markdown alike; nothing is shown when the platform declares neither window."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .actions import abbreviate
from .plan import Plan

SHOWN_COHORTS = 10


def _overlap(item: dict[str, Any]) -> list[tuple[int, str]]:
    window = f"Rollover overlap {item['from']} → {item['until']}"
    year, last = item["academic_year"], item["previous_year"]
    if not item["in_force"]:
        return [(0, f"{window}: not in force (members: the IAs of {year} only)")]
    if "members" not in item:
        return [(0, f"{window}: in force (members: the IAs of {year}, and those of {last} "
                    "not re-registered yet)")]
    counts = item["members"]
    lines = [(0, f"{window}: in force: {counts['academic_year']} members from the IAs of "
                 f"{year}, {counts['previous_year']} more from those of {last} not "
                 "re-registered yet")]
    brought = [(idnumber, c) for idnumber, c in sorted(item.get("cohorts", {}).items())
               if c["previous_year"]]
    lines += [(1, f"{idnumber}: {c['academic_year']} from {year} + {c['previous_year']} "
                  f"from {last}") for idnumber, c in brought[:SHOWN_COHORTS]]
    if len(brought) > SHOWN_COHORTS:
        lines.append((1, f"… and {len(brought) - SHOWN_COHORTS} more cohorts with members "
                         f"from {last} (all in the JSON plan)"))
    return lines


def _grace(item: dict[str, Any]) -> list[tuple[int, str]]:
    leaving = item["leaving"]
    total = sum(len(names) for names in leaving.values())
    longest = f" (at most {item['max_days']})" if item["max_days"] != item["days"] else ""
    who = f"{total} member{'s' * (total != 1)} leaving" if total else "nobody leaving"
    lines = [(0, f"Grace period for leavers: {item['days']} days{longest}; {who}")]
    for idnumber, names in list(sorted(leaving.items()))[:SHOWN_COHORTS]:
        by_day: dict[str, list[str]] = defaultdict(list)
        for name, day in sorted(names.items()):
            by_day[day].append(name)
        days = item["cohort_days"].get(idnumber)
        own = f" (grace {days} days)" if days is not None else ""
        text = "; ".join(f"leaving on {day}: {abbreviate(people)}"
                         for day, people in sorted(by_day.items()))
        lines.append((1, f"{idnumber}{own}: {text}"))
    if len(leaving) > SHOWN_COHORTS:
        lines.append((1, f"… and {len(leaving) - SHOWN_COHORTS} more cohorts with leavers "
                         "(all in the JSON plan)"))
    return lines


def general_items(plan: Plan) -> list[tuple[int, str]]:
    """(depth, text) lines of the section; empty when there is nothing to say."""
    lines: list[tuple[int, str]] = []
    if "overlap" in plan.general:
        lines += _overlap(plan.general["overlap"])
    if "grace" in plan.general:
        lines += _grace(plan.general["grace"])
    return lines


def section_text(title: str, items: list[tuple[int, str]]) -> list[str]:
    """A plan section for terminals: a blank line, ``title:``, the (depth, text) ``items``
    indented (nothing at all without items)."""
    if not items:
        return []
    return ["", f"{title}:"] + [f"{'  ' * (depth + 1)}{text}" for depth, text in items]


def section_markdown(title: str, items: list[tuple[int, str]]) -> list[str]:
    """A plan section for merge-request notes: ``**title**`` and a nested list (or nothing)."""
    if not items:
        return []
    return [f"**{title}**", ""] + [f"{'  ' * depth}- {text}" for depth, text in items] + [""]


def general_text(plan: Plan) -> list[str]:
    """The section for terminals: a blank line, a title, indented lines (or nothing)."""
    return section_text("General cohorts", general_items(plan))


def general_markdown(plan: Plan) -> list[str]:
    """The section for merge-request notes, outside the collapsed details (or nothing)."""
    return section_markdown("General cohorts", general_items(plan))
