"""What an apply says once it ran: the lines ``reconcile apply`` and ``reconcile ci apply``
print, the same for both (DESIGN §5.8: every warning of the plan is printed by apply too)."""

from __future__ import annotations

from collections import Counter

from ..errors import ExitCode
from ..planning.plan import Plan
from .applier import NOT_ATTEMPTED
from .runner import ApplyOutcome


def incomplete_line(plan: Plan) -> str:
    """``incomplete: N things the declarations ask cannot be done (course-missing ×1, …);
    see the warnings above (exit 7)``: one line, for a plan whose ``incomplete`` is not
    empty."""
    counts = Counter(w.code for w in plan.incomplete)
    kinds = ", ".join(f"{code} ×{n}" for code, n in sorted(counts.items()))
    n = len(plan.incomplete)
    return (
        f"incomplete: {n} thing{'s' * (n != 1)} the declarations ask cannot be done ({kinds}); "
        f"see the warnings above (exit {int(ExitCode.INCOMPLETE)})"
    )


def apply_report(outcome: ApplyOutcome) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) of an apply that ran. Stdout: the summary, the plan's
    notices, who approved it, the counts. Stderr: each action done with a warning (a mail Moodle
    could not send), each failed action, each skipped one (the
    actions not attempted after the run stopped as one line), every warning of the plan
    (``warning: <code>: <message>``), and the ``incomplete:`` line when the plan is."""
    plan, result = outcome.plan, outcome.result
    out = [plan.summary(), *plan.notices()]
    if outcome.approved_by:
        out.append(f"Failsafe tripped, but this exact plan was approved by {outcome.approved_by}.")
    warned = f", {len(result.warnings)} done with a warning" if result.warnings else ""
    out.append(
        f"Applied {len(result.done)} of {len(plan.actions)} actions; "
        f"{len(result.failed)} failed, {len(result.skipped)} skipped{warned}."
    )
    err = [f"  WARNING {a.kind} {a.target}: {w}" for a, w in result.warnings]
    err += [f"  FAILED {a.kind} {a.target}: {e}" for a, e in result.failed]
    err += [f"  SKIPPED {a.kind} {a.target}: {why}" for a, why in result.skipped
            if not why.startswith(NOT_ATTEMPTED)]
    if result.stopped and result.not_attempted:
        n = len(result.not_attempted)
        err.append(
            f"error: the run stopped at a failure every later call would meet "
            f"({result.stopped}); {n} action{'s' * (n != 1)} not attempted, for the next run"
        )
    err += [f"warning: {w.code}: {w.message}" for w in plan.warnings]
    if plan.incomplete:
        err.append(incomplete_line(plan))
    return out, err
