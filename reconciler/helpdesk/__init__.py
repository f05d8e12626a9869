"""The help desk's questions: "why is this student (not) in this course?" (issue 16).

* ``person``: the person in the directory and APOGÉE (two LDAP searches, one query), judged
  by the nightly's own rules;
* ``moodle``: the person in Moodle in a handful of calls, as the platform's actual state
  restricted to them;
* ``verdict``: what the next apply will do for them (the planner's own plan on the restricted
  states) or what blocks it (the history's last run);
* ``explanation``: the whole chain (``explain``), ``render``: for people and machines.
"""

from .explanation import explain

__all__ = ["explain"]
