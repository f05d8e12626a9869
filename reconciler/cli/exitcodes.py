"""Exit codes (``reconciler.errors.ExitCode``), by the names the tests and scripts use."""

from ..errors import ExitCode

OK = ExitCode.OK
ERROR = ExitCode.ERROR
CHANGES = ExitCode.CHANGES
FAILSAFE = ExitCode.FAILSAFE
UNHEALTHY = ExitCode.UNHEALTHY
STALE = ExitCode.STALE
OVER_LIMIT = ExitCode.OVER_LIMIT
INCOMPLETE = ExitCode.INCOMPLETE
