"""The Moodle cohort reconciler as a library: the same calls the ``reconcile`` command, the
demo, the tests and the benchmarks make.

    from reconciler import Environment, make_plan, apply, render_text

    env = Environment(repo=Path("."))          # real endpoints from the environment
    plan = make_plan(env, "ecampus")            # read everything, write nothing
    print(render_text(plan))
    outcome = apply(env, "ecampus")            # plan afresh, check, apply

Lower down: ``read_sources`` (APOGÉE + directory -> general cohorts, with health),
``compute_plan`` (the pure planner), ``read_plan`` (a saved ``plan.json``), ``explain``
(why one person is or is not in a cohort or course). Every refusal
is a ``ReconcilerError`` carrying its exit code (``ExitCode``). See ARCHITECTURE.md.

Names are imported on first use (PEP 562), so ``import reconciler.emulator`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # plan and apply one platform
    "Environment": "reconciler.applying.runner",
    "make_plan": "reconciler.applying.runner",
    "apply": "reconciler.applying.runner",
    "ApplyOutcome": "reconciler.applying.runner",
    "ApplyResult": "reconciler.applying.applier",
    "Progress": "reconciler.applying.applier",
    # the stages
    "load_declarations": "reconciler.declarations.loader",
    "validate_tree": "reconciler.declarations.validate",
    "read_sources": "reconciler.sources",
    "SourceSnapshot": "reconciler.sources",
    "MoodleClient": "reconciler.moodle.client",
    "compute_plan": "reconciler.planning.planner",
    # the plan as a value
    "Plan": "reconciler.planning.plan",
    "Action": "reconciler.planning.actions",
    "KINDS": "reconciler.planning.actions",
    "read_plan": "reconciler.planning.plan",
    "render_text": "reconciler.planning.render",
    "render_markdown": "reconciler.planning.render",
    "render_json": "reconciler.planning.render",
    # the help desk: one person's chain and verdict
    "explain": "reconciler.helpdesk",
    # errors
    "ExitCode": "reconciler.errors",
    "ReconcilerError": "reconciler.errors",
    "ConfigurationError": "reconciler.errors",
    "DeclarationErrors": "reconciler.errors",
    "PlanFileError": "reconciler.errors",
    "StalePlan": "reconciler.errors",
    "FailsafeTripped": "reconciler.planning.failsafe",
    "MoodleError": "reconciler.moodle.errors",
}

__all__ = [
    "KINDS",
    "Action",
    "ApplyOutcome",
    "ApplyResult",
    "ConfigurationError",
    "DeclarationErrors",
    "Environment",
    "ExitCode",
    "FailsafeTripped",
    "MoodleClient",
    "MoodleError",
    "Plan",
    "PlanFileError",
    "Progress",
    "ReconcilerError",
    "SourceSnapshot",
    "StalePlan",
    "apply",
    "compute_plan",
    "explain",
    "load_declarations",
    "make_plan",
    "read_plan",
    "read_sources",
    "render_json",
    "render_markdown",
    "render_text",
    "validate_tree",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # what type checkers and editors see
    from .applying.applier import ApplyResult, Progress
    from .applying.runner import ApplyOutcome, Environment, apply, make_plan
    from .declarations.loader import load_declarations
    from .declarations.validate import validate_tree
    from .errors import (
        ConfigurationError,
        DeclarationErrors,
        ExitCode,
        PlanFileError,
        ReconcilerError,
        StalePlan,
    )
    from .helpdesk import explain
    from .moodle.client import MoodleClient
    from .moodle.errors import MoodleError
    from .planning.actions import KINDS, Action
    from .planning.failsafe import FailsafeTripped
    from .planning.plan import Plan, read_plan
    from .planning.planner import compute_plan
    from .planning.render import render_json, render_markdown, render_text
    from .sources import SourceSnapshot, read_sources
