"""Failsafes: removal caps checked on the plan, before the first write (DESIGN §5.1).

Like peribolos' ``--maximum-removal-delta`` they look only at the difference, so they catch
a source outage, an empty query or a wrong academic year whatever caused it.
"""

from __future__ import annotations

from ..errors import ExitCode, ReconcilerError
from ..settings import Failsafes
from .plan import FailsafeCheck, Plan


def check_failsafes(plan: Plan, limits: Failsafes) -> list[FailsafeCheck]:
    """Every check of ``limits`` on ``plan``: per-cohort removal shares first (in the order
    of ``plan.actions``), then the global caps. A check is ``tripped`` when over its limit;
    the caller decides (apply refuses a tripped plan unless that exact plan is approved).
    Each action says what it weighs (``Details.weight``), so no kind is named here."""
    checks: list[FailsafeCheck] = []
    weights = [(action.target, action.details.weight()) for action in plan.actions]
    added: dict[str, int] = {}
    for target, weight in weights:
        added[target] = added.get(target, 0) + weight.members_added
    memberships_removed = sum(w.memberships_removed for _, w in weights)
    syncs_removed = sum(w.syncs_removed for _, w in weights)
    emptied_or_deleted: set[str] = set()

    for target, weight in weights:
        loss = weight.cohort_loss
        if loss is None:
            continue
        removed, size = loss.removed, loss.size_before
        if loss.deleted or (removed >= size and added.get(target, 0) == 0):
            emptied_or_deleted.add(target)
        percent = 100.0 * removed / size if size else 0.0
        exempt = size <= limits.small_cohort_size or removed <= limits.per_cohort_removal_floor
        limit = limits.per_cohort_max_removal_percent
        detail = (
            f"cohort deleted with its {size} members"
            if loss.deleted
            else f"{removed} of {size} members removed"
        )
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


class FailsafeTripped(ReconcilerError):
    """A removal cap tripped and this exact plan is not approved: nothing is applied.

    ``plan`` is the refused plan; ``str(error)`` is the report (which caps, by how much, and
    how to approve exactly this plan)."""

    exit_code = ExitCode.FAILSAFE
    multiline = True

    def __init__(self, plan: Plan) -> None:
        super().__init__(tripped_report(plan))
        self.plan = plan


def tripped_report(plan: Plan) -> str:
    """The tripped checks of ``plan``, one a line, and the command that approves it."""
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
