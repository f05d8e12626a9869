"""Failsafes: removal caps checked on the plan, before the first write (DESIGN §5.1).

Like peribolos' ``--maximum-removal-delta`` they look only at the difference, so they catch
a source outage, an empty query or a wrong academic year whatever caused it.
"""

from __future__ import annotations

from ..settings import Failsafes
from .plan import FailsafeCheck, Plan


def check_failsafes(plan: Plan, limits: Failsafes) -> list[FailsafeCheck]:
    checks: list[FailsafeCheck] = []
    memberships_removed = 0
    emptied_or_deleted: set[str] = set()
    syncs_removed = 0
    added: dict[str, int] = {}
    for action in plan.actions:
        if action.kind == "add_members":
            added[action.target] = added.get(action.target, 0) + len(action.details["usernames"])

    def per_cohort(target: str, removed: int, size: int, detail: str) -> None:
        percent = 100.0 * removed / size if size else 0.0
        exempt = size <= limits.small_cohort_size or removed <= limits.per_cohort_removal_floor
        limit = limits.per_cohort_max_removal_percent
        checks.append(
            FailsafeCheck(
                "per_cohort_removal_percent",
                target,
                round(percent, 1),
                limit,
                not exempt and percent > limit,
                detail,
            )
        )

    for action in plan.actions:
        d = action.details
        if action.kind == "remove_members":
            removed, size = len(d["usernames"]), int(d["size_before"])
            memberships_removed += removed
            if removed >= size and added.get(action.target, 0) == 0:
                emptied_or_deleted.add(action.target)
            per_cohort(action.target, removed, size, f"{removed} of {size} members removed")
        elif action.kind == "suspend_manual":
            memberships_removed += len(d["usernames"])
        elif action.kind == "delete_cohort":
            size = int(d["members"])
            memberships_removed += size
            emptied_or_deleted.add(action.target)
            per_cohort(action.target, size, size, f"cohort deleted with its {size} members")
        elif action.kind in ("disable_sync", "delete_sync"):
            syncs_removed += 1

    def cap(name: str, value: int, limit: int, detail: str) -> None:
        checks.append(FailsafeCheck(name, "*", value, limit, value > limit, detail))

    cap(
        "max_memberships_removed",
        memberships_removed,
        limits.max_memberships_removed,
        f"{memberships_removed} memberships or enrolments removed",
    )
    cap(
        "max_cohorts_deleted_or_emptied",
        len(emptied_or_deleted),
        limits.max_cohorts_deleted_or_emptied,
        ", ".join(sorted(emptied_or_deleted)[:10]),
    )
    cap(
        "max_syncs_removed",
        syncs_removed,
        limits.max_syncs_removed,
        f"{syncs_removed} cohort syncs disabled or deleted",
    )
    return checks


def tripped_report(plan: Plan) -> str:
    lines = ["Failsafe tripped: nothing was applied."]
    for c in plan.failsafe:
        if c.tripped:
            where = "" if c.target == "*" else f" [{c.target}]"
            lines.append(f"  - {c.name}{where}: {c.value:g} > limit {c.limit:g} ({c.detail})")
    lines.append(
        f"Review the plan, then approve exactly this plan with: reconcile approve <plan.json> "
        f"(digest {plan.digest()})"
    )
    return "\n".join(lines)
