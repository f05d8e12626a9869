"""Approvals: a person lets one exact plan (by digest) through the failsafes, for a while.

Recorded in a small JSON file (kept by CI like the source-health state) or given for one
pipeline run in ``RECONCILER_APPROVED_DIGEST``. Thresholds are never edited to get a plan
through, and an approval never covers another plan: a different digest is a different plan.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ..planning.plan import Plan

APPROVAL_ENV = "RECONCILER_APPROVED_DIGEST"
DEFAULT_FILE = ".reconciler/approvals.json"


def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")))


def approve(plan: Plan, path: Path, by: str, hours: float, now: dt.datetime) -> dict:
    """Record that ``by`` approves exactly ``plan`` (its digest) for ``hours`` from ``now``
    (timezone-aware) in the JSON file ``path``; gives the entry written."""
    entry = {
        "digest": plan.digest(),
        "platform": plan.platform,
        "summary": plan.summary(),
        "approved_by": by,
        "approved_at": now.isoformat(timespec="seconds"),
        "expires_at": (now + dt.timedelta(hours=hours)).isoformat(timespec="seconds"),
    }
    # Expired entries are dropped as new ones are written, so the file stays small.
    kept = [e for e in _load(path) if dt.datetime.fromisoformat(e["expires_at"]) > now]
    kept.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return entry


def find_approval(
    plan: Plan, path: Path, now: dt.datetime, environ: Mapping[str, str] | None = None
) -> str | None:
    """Who approved this exact plan, or None.

    ``RECONCILER_APPROVED_DIGEST`` may list several digests (spaces or commas between them),
    so that one pipeline run started by hand or one schedule variable can approve the
    reviewed plan of each platform; each still lets through only its exact plan."""
    env = os.environ if environ is None else environ
    digest = plan.digest()
    if digest in env.get(APPROVAL_ENV, "").replace(",", " ").split():
        return f"{APPROVAL_ENV} for this run"
    for entry in _load(path):
        if entry["digest"] == digest and dt.datetime.fromisoformat(entry["expires_at"]) > now:
            return f"{entry['approved_by']} at {entry['approved_at']}"
    return None
