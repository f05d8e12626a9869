"""What the history keeps: one JSON line per applied change and one per run.

A *change* entry is one applied action: when, on which platform, from which commit and plan
(digest), who approved the plan if a failsafe needed it, what it did (kind, target, cohort,
course, usernames) and why (the plan's :class:`~reconciler.planning.actions.Reason`, plus the
academic-year rollover when the run changed year). A *run* entry is one ``apply``: its
outcome (applied, partly applied, nothing to do, refused by a failsafe), its summary, the
tripped checks and the sources' health, so that ``reconcile explain`` can say what blocks.

Times are ISO 8601 in UTC, to the second. Every entry has an ``id`` unique to its run and
action, so that pushing the same entry twice keeps one copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..planning.actions import Action
from ..planning.plan import Plan

FORMAT = 1
CHANGE, RUN = "change", "run"
# Run outcomes: every action applied / some failed or were skipped / nothing to do / a
# failsafe refused the plan (nothing applied).
APPLIED, PARTIAL, NO_CHANGES, FAILSAFE = "applied", "partial", "no-changes", "failsafe-tripped"


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="seconds")


def _id(*parts: object) -> str:
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _common(plan: Plan, now: dt.datetime, approved_by: str | None,
            digest: str | None) -> dict[str, Any]:
    return {
        "v": FORMAT,
        "time": _stamp(now),
        "platform": plan.platform,
        "commit": plan.commit,
        "plan": digest or plan.digest(),
        "year": plan.academic_year,
        "approved_by": approved_by,
    }


def change_entry(
    plan: Plan,
    action: Action,
    now: dt.datetime,
    *,
    approved_by: str | None = None,
    courses: Sequence[str] = (),
    rollover_from: str | None = None,
    seq: int = 0,
    digest: str | None = None,
) -> dict[str, Any]:
    """The entry of one applied ``action`` of ``plan`` at ``now`` (timezone-aware), the
    ``seq``-th change its run applied (entries of one run share their time).

    ``courses``: the courses that sync the action's cohort (declared), so that a question
    about a course finds the memberships that enrolled or unenrolled people there.
    ``rollover_from``: the academic year of the last good run when it differs from the
    plan's (the removals of general cohorts then come from the rollover).
    ``digest``: ``plan.digest()`` when the caller has it (it serialises the whole plan:
    computed once per run, not once per entry).
    """
    d = action.details
    usernames = getattr(d, "usernames", None)
    if usernames is None and action.kind == "create_user":
        usernames = (action.target,)
    entry = _common(plan, now, approved_by, digest)
    entry.update(
        {
            "id": _id(plan.platform, entry["plan"], action.kind, action.target, entry["time"]),
            "type": CHANGE,
            "seq": seq,
            "kind": action.kind,
            "effect": action.effect,
            "target": action.target,
            "cohort": d.cohort_idnumber(),
            "course": d.course_name(),
            "courses": sorted(courses),
            "usernames": list(usernames or ()),
            "summary": d.describe(),
            "reason": action.reason.to_json(),
        }
    )
    if rollover_from and action.reason.code in ("left-sources", "etape-empty"):
        entry["rollover"] = f"{rollover_from} → {plan.academic_year}"
    return entry


def run_entry(
    plan: Plan,
    outcome: str,
    now: dt.datetime,
    *,
    approved_by: str | None = None,
    done: int = 0,
    failed: int = 0,
    skipped: int = 0,
    seq: int = 0,
    digest: str | None = None,
) -> dict[str, Any]:
    """The entry of one apply of ``plan`` at ``now``: ``outcome`` (``applied``,
    ``partial``, ``no-changes`` or ``failsafe-tripped``), counts of actions done, failed and
    skipped, the tripped failsafe checks and the sources' health. ``digest``: as for
    :func:`change_entry`."""
    entry = _common(plan, now, approved_by, digest)
    entry.update(
        {
            "id": _id(plan.platform, entry["plan"], "run", entry["time"], outcome),
            "type": RUN,
            "seq": seq,
            "outcome": outcome,
            "summary": plan.summary(),
            "done": done,
            "failed": failed,
            "skipped": skipped,
            "failsafe": [
                {"name": c.name, "target": c.target, "value": c.value, "limit": c.limit,
                 "detail": c.detail}
                for c in plan.failsafe
                if c.tripped
            ],
            "sources": {
                "healthy": plan.sources.get("healthy", True),
                "reasons": list(plan.sources.get("reasons") or []),
            },
        }
    )
    return entry


def courses_by_cohort(syncs: Iterable[Any]) -> dict[str, list[str]]:
    """``{cohort idnumber: [course shortnames]}`` from sync declarations (anything with
    ``cohort`` and ``course``)."""
    out: dict[str, set[str]] = {}
    for sync in syncs:
        out.setdefault(sync.cohort, set()).add(sync.course)
    return {cohort: sorted(courses) for cohort, courses in out.items()}


def order(entry: Mapping[str, Any]) -> tuple[str, int, str]:
    """Sort key of entries: time, then the order their run wrote them, then id."""
    return (str(entry["time"]), int(entry.get("seq", 0)), str(entry["id"]))


def dumps(entry: Mapping[str, Any]) -> str:
    """One entry as one JSON line (no newline inside, keys in a stable order)."""
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def loads(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The entries of JSON lines; blank lines and lines that are not an entry (a cut
    write, a hand edit) are skipped rather than failing the whole history."""
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "id" in entry and "type" in entry and "time" in entry:
            out.append(entry)
    return out
