"""When ``reconcile audit`` first saw each undeclared object: the only memory it keeps.

Moodle's web services give no creation date for a cohort or a cohort-sync instance, so the
audit remembers the first night it saw each one, per platform, in
``.reconciler/audit-<platform>.json`` (days in Europe/Paris). Objects first seen on the
night the file was started existed already: they are "present before <that day>". A lost or
unreadable file only restarts the count (it is never an error, never a reason to act).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Age:
    """How long an object has been seen: ``days`` from ``first_seen`` to the audit's day,
    a lower bound when ``present_before`` (it was there on the first audited night)."""

    first_seen: dt.date
    present_before: bool
    days: int

    def describe(self) -> str:
        """"present before D (≥ N days)" or "first seen D (N days)"."""
        if self.present_before:
            return f"present before {self.first_seen.isoformat()} (≥ {self.days} days)"
        return f"first seen {self.first_seen.isoformat()} ({self.days} days)"


@dataclass
class SeenLog:
    """First-seen days of the undeclared instances and cohorts (by Moodle id) of one
    platform at one site URL (ids mean nothing on another site); ``started`` is the first
    audited day."""

    platform: str
    site: str
    started: dt.date
    instances: dict[int, dt.date] = field(default_factory=dict)
    cohorts: dict[int, dt.date] = field(default_factory=dict)

    def age(self, kind: str, object_id: int, today: dt.date) -> Age:
        """Record ``object_id`` as seen ``today`` if new; its age. ``kind``: instance or
        cohort."""
        table = self.instances if kind == "instance" else self.cohorts
        first = table.setdefault(object_id, today)
        return Age(first, first <= self.started, max((today - first).days, 0))

    def keep_only(self, instance_ids: set[int], cohort_ids: set[int]) -> None:
        """Forget what is gone or declared now (a new id later is a new object)."""
        self.instances = {i: d for i, d in self.instances.items() if i in instance_ids}
        self.cohorts = {i: d for i, d in self.cohorts.items() if i in cohort_ids}


def load_seen(
    path: Path, platform: str, site: str, today: dt.date
) -> tuple[SeenLog, str | None]:
    """The log at ``path`` for ``platform`` at ``site`` (its base URL), or a new one
    started ``today``; the second value says why the file was not used (a missing file is
    normal and says nothing)."""
    fresh = SeenLog(platform, site, today)
    if not path.exists():
        return fresh, None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format_version") != FORMAT_VERSION or doc.get("platform") != platform:
            return fresh, f"{path}: not this platform's audit memory; ages start again today"
        if doc.get("site") != site:
            return fresh, (
                f"{path}: kept for another site ({doc.get('site')}); ages start again today"
            )
        log = SeenLog(
            platform,
            site,
            dt.date.fromisoformat(doc["started"]),
            {int(k): dt.date.fromisoformat(v) for k, v in doc["instances"].items()},
            {int(k): dt.date.fromisoformat(v) for k, v in doc["cohorts"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return fresh, f"{path}: unreadable ({exc}); ages start again today"
    if log.started > today:  # a clock moved back: the memory is from the future
        return fresh, f"{path}: started on {log.started}, after today; ages start again today"
    return log, None


def save_seen(log: SeenLog, path: Path) -> None:
    """Write the log atomically (a run cut mid-write leaves the old file). Raises OSError."""
    doc = {
        "format_version": FORMAT_VERSION,
        "platform": log.platform,
        "site": log.site,
        "started": log.started.isoformat(),
        "instances": {str(k): v.isoformat() for k, v in sorted(log.instances.items())},
        "cohorts": {str(k): v.isoformat() for k, v in sorted(log.cohorts.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=1)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
