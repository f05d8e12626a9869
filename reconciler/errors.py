"""The errors a caller of the reconciler can meet, each carrying the exit code it means.

Every stage raises a subclass of :class:`ReconcilerError` for what it refuses (bad input,
configuration, a Moodle error, a stale plan, a tripped failsafe...); the command line maps
them to one line and ``exit_code`` in one place (``reconciler.cli.errors``), and a library
caller can catch ``ReconcilerError`` alone. Exit codes follow Terraform's
``-detailed-exitcode`` idea (documented in the README):
"""

from __future__ import annotations

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
