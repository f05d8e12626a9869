"""The leavers record between runs: ``.reconciler/leavers/<platform>.json`` (CI caches it).

One file per platform, since the nightly jobs of the platforms run apart. Losing, breaking
or rolling back the file only restarts grace periods (``planning.grace``): it is read
leniently (any problem is reported, never raised) and written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..planning.grace import LeaversRecord
from ..sources.health import save_state

LEAVERS_DIR = ".reconciler/leavers"


def record_path(repo: Path, platform: str) -> Path:
    """Where ``platform``'s record lives in the repository ``repo`` (git-ignored state)."""
    return repo / LEAVERS_DIR / f"{platform}.json"


def load_record(path: Path) -> tuple[LeaversRecord | None, str | None]:
    """(record, None); (None, None) when there is no file; (None, why) when it is unusable."""
    if not path.exists():
        return None, None
    try:
        return LeaversRecord.from_json(json.loads(path.read_text(encoding="utf-8"))), None
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        return None, f"{path}: {' '.join(str(exc).split())}"


def save_record(path: Path, record: LeaversRecord) -> None:
    """Write ``record`` atomically (a run cut in the middle leaves the old file). OSError
    when the folder cannot be written."""
    save_state(path, record.to_json())
