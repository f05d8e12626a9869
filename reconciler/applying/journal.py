"""The apply journal: one JSON line per action (time, platform, commit, action, target, result)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any


class Journal:
    """Appends one JSON line per applied action to ``path`` (None: kept in ``entries``
    only), with the UTC time, platform and commit."""

    def __init__(self, path: Path | None, platform: str, commit: str | None) -> None:
        self.path, self.platform, self.commit = path, platform, commit
        self.entries: list[dict[str, Any]] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, action: str, target: str, result: str, **extra: Any) -> None:
        """One line: ``action`` (kind) on ``target`` ended ``result`` (ok/failed/skipped)."""
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "platform": self.platform,
            "commit": self.commit,
            "action": action,
            "target": target,
            "result": result,
            **extra,
        }
        self.entries.append(entry)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
