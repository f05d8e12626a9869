"""Failsafes: removal caps checked on the plan, before the first write (DESIGN §5.1).

Like peribolos' ``--maximum-removal-delta`` they look only at the difference, so they catch
a source outage, an empty query or a wrong academic year whatever caused it.
"""

from __future__ import annotations

from .plan import FailsafeCheck, Plan
from .settings import Failsafes


def check_failsafes(plan: Plan, limits: Failsafes) -> list[FailsafeCheck]:
    checks: list[FailsafeCheck] = []
    memberships_removed = 0
    emptied_or_deleted: set[str] = set()
    syncs_removed = 0
    added: dict[str, int] = {}
    for action in plan.actions:
        if action.kind == "add_members":
            added[action.target] = added.get(action.target, 0) + len(action.details["usernames"])

    for action in plan.actions:
        d = action.details
        if action.kind == "remove_members":
            removed = len(d["usernames"])
            size = int(d["size_before"])
            memberships_removed += removed
            if removed >= size and added.get(action.target, 0) == 0:
                emptied_or_deleted.add(action.target)
            percent = 100.0 * removed / size if size else 0.0
            exempt = size <= limits.small_cohort_size or removed <= limits.per_cohort_removal_floor
            checks.append(
                FailsafeCheck(
                    name="per_cohort_removal_percent",
                    target=action.target,
                    value=round(percent, 1),
                    limit=limits.per_cohort_max_removal_percent,
                    tripped=not exempt and percent > limits.per_cohort_max_removal_percent,
                    detail=f"{removed} of {size} members removed",
                )
            )
        elif action.kind == "suspend_manual":
            memberships_removed += len(d["usernames"])
        elif action.kind == "delete_cohort":
            size = int(d["members"])
            memberships_removed += size
            emptied_or_deleted.add(action.target)
            exempt = size <= limits.small_cohort_size or size <= limits.per_cohort_removal_floor
            checks.append(
                FailsafeCheck(
                    name="per_cohort_removal_percent",
                    target=action.target,
                    value=100.0 if size else 0.0,
                    limit=limits.per_cohort_max_removal_percent,
                    tripped=not exempt and limits.per_cohort_max_removal_percent < 100,
                    detail=f"cohort deleted with its {size} members",
                )
            )
        elif action.kind in ("disable_sync", "delete_sync"):
            syncs_removed += 1

    checks.append(
        FailsafeCheck(
            name="max_memberships_removed",
            target="*",
            value=memberships_removed,
            limit=limits.max_memberships_removed,
            tripped=memberships_removed > limits.max_memberships_removed,
            detail=f"{memberships_removed} memberships or enrolments removed",
        )
    )
    checks.append(
        FailsafeCheck(
            name="max_cohorts_deleted_or_emptied",
            target="*",
            value=len(emptied_or_deleted),
            limit=limits.max_cohorts_deleted_or_emptied,
            tripped=len(emptied_or_deleted) > limits.max_cohorts_deleted_or_emptied,
            detail=", ".join(sorted(emptied_or_deleted)[:10]),
        )
    )
    checks.append(
        FailsafeCheck(
            name="max_syncs_removed",
            target="*",
            value=syncs_removed,
            limit=limits.max_syncs_removed,
            tripped=syncs_removed > limits.max_syncs_removed,
            detail=f"{syncs_removed} cohort syncs disabled or deleted",
        )
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
