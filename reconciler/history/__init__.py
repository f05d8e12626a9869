"""The history of applied changes, kept beyond CI artifacts (issue 16).

* ``entries``: one JSON line per applied change (with the plan's reason) and per run;
* ``spool``: what ``apply`` wrote locally and is not pushed yet (``.reconciler/history/``);
* ``gitstore``: the branch ``reconciler-history`` of the same repository, append-only month
  files, pushed with fetch and retry so that concurrent jobs lose nothing;
* ``query``: when and why a person left a cohort or a course, the last run of a platform;
* ``render``: those answers for people.

``record.Recorder`` is what ``applying.runner.apply`` writes with.
"""

from .record import Recorder

__all__ = ["Recorder"]
