"""What ``apply`` writes to the history: its applied changes and how the run ended.

Recording never fails an apply: Moodle has already changed by then, so a spool that cannot
be written is logged (the journal still has the actions) and the apply's result stands.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..declarations.history import last_change
from ..planning.actions import Action
from ..planning.plan import Plan
from .entries import APPLIED, FAILSAFE, NO_CHANGES, PARTIAL, change_entry, run_entry
from .spool import Spool

log = logging.getLogger("reconciler.history")
# Commits looked up per run for the declarations a run's removals come from (one git log
# each): beyond, the entry's commit (the one applied) is the answer.
MAX_LOOKUPS = 20


@dataclass
class Recorder:
    """Writes history entries of one platform's runs to ``spool``.

    ``courses``: ``{cohort idnumber: [courses that sync it]}`` (the declarations), kept with
    each membership change; ``rollover_from``: the academic year of the last good run when it
    differs from the plan's; ``now``: the run's moment (timezone-aware); ``repo``: the
    declarations' repository, where the commit that removed a declaration is looked up
    (``removed_in``). ``written`` holds what was recorded (tests, the CLI's summary).
    """

    spool: Spool
    now: dt.datetime
    courses: Mapping[str, Sequence[str]] = field(default_factory=dict)
    rollover_from: str | None = None
    repo: Path | None = None
    written: list[dict[str, Any]] = field(default_factory=list)
    _lookups: int = 0

    def applied(self, plan: Plan, done: Sequence[Any], failed: int, skipped: int,
                approved_by: str | None = None) -> None:
        """One change entry per action of ``done`` (applied actions of ``plan``), then the
        run entry (``applied``, ``partial`` or ``no-changes``)."""
        entries = []
        digest = plan.digest()  # serialises the whole plan: once, not once per action
        for n, action in enumerate(done):
            entry = change_entry(
                plan, action, self.now, approved_by=approved_by,
                courses=self._courses(action), rollover_from=self.rollover_from, seq=n,
                digest=digest,
            )
            removed = self._removed_in(plan.platform, action)
            if removed:
                entry["removed_in"] = removed
            entries.append(entry)
        if not plan.actions:
            outcome = NO_CHANGES
        else:
            outcome = APPLIED if not failed and not skipped else PARTIAL
        entries.append(run_entry(plan, outcome, self.now, approved_by=approved_by,
                                 done=len(done), failed=failed, skipped=skipped,
                                 seq=len(done), digest=digest))
        self._write(plan.platform, entries)

    def refused(self, plan: Plan) -> None:
        """The run entry of a plan a failsafe refused (nothing applied)."""
        self._write(plan.platform, [run_entry(plan, FAILSAFE, self.now)])

    def _removed_in(self, platform: str, action: Action) -> dict[str, dict[str, str]]:
        """``{username or target: {commit, author, date}}``: the commit that took the member
        out of its cohort file, deleted the cohort file, or removed the sync from its course
        file (``git log -S``), for removals the declarations explain (``undeclared``)."""
        if self.repo is None or action.reason.code != "undeclared":
            return {}
        d: Any = action.details
        if action.kind == "remove_members":
            file = action.reason.source.rsplit(":", 1)[0]
            needles = [(u, u) for u in d.usernames]
        elif action.kind == "delete_cohort":
            file = f"cohorts/{platform}/cohorts/{d.cohort}.yaml"
            needles = [(action.target, d.cohort)]
        elif action.kind in ("disable_sync", "delete_sync", "retire_manual"):
            file = f"cohorts/{platform}/syncs/{d.course}.yaml"
            needles = [(action.target, d.cohort)]
        else:
            return {}
        out: dict[str, dict[str, str]] = {}
        for key, needle in needles:
            if not file or self._lookups >= MAX_LOOKUPS:
                break
            self._lookups += 1
            found = last_change(self.repo, file, needle)
            if found is not None:
                out[key] = {"commit": found.commit, "author": found.author, "date": found.date}
        return out

    def _courses(self, action: Any) -> list[str]:
        cohort = action.details.cohort_idnumber()
        return list(self.courses.get(cohort, ())) if cohort else []

    def _write(self, platform: str, entries: list[dict[str, Any]]) -> None:
        try:
            self.spool.append(platform, entries)
        except OSError as exc:
            log.error("history: cannot write %s (%s); %d entries not recorded",
                      self.spool.path(platform), exc, len(entries))
            return
        self.written += entries
