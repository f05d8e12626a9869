"""Why a saved plan is stale, and exactly what moved (DESIGN §5.5).

``apply plan.json`` plans afresh and refuses the saved plan when the declarations' commit,
the sources' digest or Moodle's fingerprint moved. Saying only *that* it moved leaves the
reviewer guessing, so ``what_moved`` compares the two plans action by action with DeepDiff
(which actions appeared or went, which of their fields differ), abbreviated.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .actions import abbreviate
from .plan import Plan

SHOWN_ACTIONS = 10
SHOWN_FIELDS = 4


def why_stale(saved: Plan, fresh: Plan) -> list[str]:
    """What the saved plan was computed on that moved since (empty: not stale)."""
    reasons = []
    if saved.commit != fresh.commit:
        reasons.append(f"the declarations moved: commit {saved.commit} -> {fresh.commit}")
    if saved.source_digest != fresh.source_digest:
        reasons.append("the APOGÉE/LDAP data changed since the plan was made")
    if saved.moodle_fingerprint != fresh.moodle_fingerprint:
        reasons.append("Moodle's state changed since the plan was made")
    if not reasons and saved.digest() != fresh.digest():
        reasons.append("the plan computed now differs from the saved one")
    return reasons


def _by_action(plan: Plan) -> dict[str, dict[str, Any]]:
    return {f"{a.kind} {a.target}": a.details.to_json() for a in plan.sorted_actions()}


def _value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def what_moved(saved: Plan, fresh: Plan) -> list[str]:
    """One line per action that differs between ``saved`` and ``fresh``: ``+`` planned now
    but not saved, ``-`` saved but no longer planned, ``~`` planned both ways with fields
    that differ (list items added/removed, values old → new). At most ``SHOWN_ACTIONS``
    lines, then a count of the rest."""
    from deepdiff import DeepDiff  # imported on this rare path only (0.2 s)

    old, new = _by_action(saved), _by_action(fresh)
    diff = DeepDiff(old, new, ignore_order=True, view="tree")
    lines: list[str] = []
    changed: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for kind, levels in diff.items():
        for level in levels:
            path = level.path(output_format="list")
            if len(path) == 1:
                key = str(path[0])
                if kind == "dictionary_item_added":
                    lines.append(f"+ {key}: {_summary(new[key])} (planned now, not in the file)")
                else:
                    lines.append(f"- {key} (in the file, no longer planned)")
                continue
            key, field = str(path[0]), str(path[1])
            if kind == "iterable_item_added":
                changed[key][field].append(f"+{level.t2}")
            elif kind == "iterable_item_removed":
                changed[key][field].append(f"-{level.t1}")
            else:
                changed[key][field].append(f"{_value(level.t1)} → {_value(level.t2)}")
    for key in sorted(changed):
        fields = [
            f"{field} {abbreviate(sorted(items), 3)}" for field, items in changed[key].items()
        ]
        more = len(fields) - SHOWN_FIELDS
        text = "; ".join(fields[:SHOWN_FIELDS]) + (f"; and {more} more fields" if more > 0 else "")
        lines.append(f"~ {key}: {text}")
    lines.sort(key=lambda line: line[2:])
    if len(lines) > SHOWN_ACTIONS:
        lines = [*lines[:SHOWN_ACTIONS], f"… and {len(lines) - SHOWN_ACTIONS} more actions"]
    return lines


def _summary(details: dict[str, Any]) -> str:
    users = details.get("usernames")
    if isinstance(users, list):
        return f"{len(users)} user(s): {abbreviate(users, 3)}"
    return ", ".join(f"{k}={_value(v)}" for k, v in list(details.items())[:3])


def stale_message(saved: Plan, fresh: Plan, reasons: list[str]) -> str:
    """The refusal: the reasons on the first line, then what moved, one action a line."""
    moved = what_moved(saved, fresh)
    head = f"stale plan, nothing applied: {'; '.join(reasons)}. Make a new plan."
    if not moved:
        return head + "\nThe actions are the same; only the data they were computed on moved."
    return "\n".join([head, "What moved (saved plan → a plan made now):", *moved])
