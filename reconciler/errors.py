"""The errors a caller of the reconciler can meet, each carrying the exit code it means.

Every stage raises a subclass of :class:`ReconcilerError` for what it refuses (bad input,
configuration, a Moodle error, a stale plan, a tripped failsafe...); the command line maps
them to one line and ``exit_code`` in one place (``reconciler.cli.errors``), and a library
caller can catch ``ReconcilerError`` alone. Exit codes follow Terraform's
``-detailed-exitcode`` idea (documented in the README, "Exit codes"):

* 0 nothing to do or all applied, 2 changes pending (``plan``);
* 1 an error: bad input, configuration, a Moodle error, an action that failed;
* 3 a failsafe tripped, 5 a stale plan: nothing applied (raised before the first write);
* 4 a source unhealthy: general cohorts left as they are, the rest planned or applied;
* 6 ``audit --fail-over-limit``: an undeclared cohort sync over the platform's limit;
* 7 the plan is incomplete: something the declarations ask cannot be done (the plugin
  missing, a declared course or cohort missing in Moodle...; ``planning.warnings``); the
  rest is planned or applied. Distinct from 1: nothing failed, the declarations wait.

When several hold, the first of :data:`PRECEDENCE` wins (``most_severe``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """The ``reconcile`` exit codes."""

    OK = 0  # nothing to do, or applied
    ERROR = 1  # bad input, configuration, Moodle errors, failed actions
    CHANGES = 2  # plan: changes pending
    FAILSAFE = 3  # a failsafe tripped and the plan is not approved: nothing applied
    UNHEALTHY = 4  # a source is unhealthy: general cohorts left unchanged
    STALE = 5  # the saved plan no longer matches the declarations, the sources or Moodle
    OVER_LIMIT = 6  # audit --fail-over-limit: undeclared cohort syncs over the platform's limit
    INCOMPLETE = 7  # something declared cannot be done (plugin, course or cohort missing...)


# Which code a command exits with when several hold, most severe first:
# * 1 first: something failed, whatever else is true (a person must look);
# * 5 and 3 next: nothing was (or would be) applied at all; stale first, since a stale
#   plan's failsafe verdict is about data that moved;
# * 4 before 7: an unhealthy source is the cause of most incompleteness it brings along (a
#   general cohort not created makes its syncs wait); and 7 before 2: an incomplete plan with
#   changes pending says the more useful thing;
# * 6 only comes from ``audit``, which has none of the others; 2 before 0.
PRECEDENCE: tuple[ExitCode, ...] = (
    ExitCode.ERROR,
    ExitCode.STALE,
    ExitCode.FAILSAFE,
    ExitCode.UNHEALTHY,
    ExitCode.INCOMPLETE,
    ExitCode.OVER_LIMIT,
    ExitCode.CHANGES,
    ExitCode.OK,
)


def most_severe(codes: Iterable[ExitCode]) -> ExitCode:
    """The code to exit with when all of ``codes`` hold (``PRECEDENCE``); OK when none."""
    present = set(codes)
    return next((code for code in PRECEDENCE if code in present), ExitCode.OK)


class ReconcilerError(Exception):
    """Base of every error the reconciler raises on purpose (never a bug).

    ``str(error)`` is the message shown after ``error:``; notes added with
    ``add_note`` (e.g. "nothing applied") are shown after it on the same line.
    """

    exit_code: ClassVar[ExitCode] = ExitCode.ERROR
    # A report is several lines by design (which failsafe tripped, what moved); other
    # messages are flattened to one line.
    multiline: ClassVar[bool] = False


class ConfigurationError(ReconcilerError):
    """The environment or ``platforms.yaml`` cannot serve the request: a missing token, an
    unknown platform, a token without the write functions, uncommitted declarations."""


class DeclarationErrors(ReconcilerError):
    """Declarations with errors never become a desired state: a missing file is not a
    removal. Run ``reconcile validate`` for the file:line of each."""


class PlanFileError(ReconcilerError):
    """A saved plan that cannot be used (not JSON, not the plan format, modified)."""


class StalePlan(ReconcilerError):
    """The saved plan was computed on declarations, sources or Moodle data that moved."""

    exit_code = ExitCode.STALE
    multiline = True


class SourcesUnhealthy(ReconcilerError):
    """APOGÉE or the directory could not be trusted: general cohorts stay as they are."""

    exit_code = ExitCode.UNHEALTHY
    multiline = True


class GitError(ReconcilerError):
    """A git reference or repository the command needs is missing."""


class GitLabError(ReconcilerError):
    """The GitLab API refused or failed a merge-request note."""
