"""Exit codes, in the spirit of Terraform's -detailed-exitcode (documented in the README)."""

OK = 0  # nothing to do, or applied
ERROR = 1  # bad input, configuration, Moodle errors, failed actions
CHANGES = 2  # plan: changes pending
FAILSAFE = 3  # a failsafe tripped and the plan is not approved: nothing applied
UNHEALTHY = 4  # a source is unhealthy: general cohorts left unchanged
STALE = 5  # the saved plan no longer matches the declarations, the sources or Moodle
