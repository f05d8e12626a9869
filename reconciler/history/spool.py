"""Entries written by ``apply`` and not yet pushed to the history branch.

``apply`` only appends here (a local file: no network, nothing that can fail an apply);
``reconcile history push`` moves the entries to the branch and then drops them from the
spool. An entry pushed but not yet dropped (a job cut in between) is pushed again and kept
once (entries have ids). The spool lives in ``.reconciler/history/``, which CI keeps in its
cache and publishes as an artifact until the push succeeds.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .entries import dumps, loads

DEFAULT_DIR = ".reconciler/history"


class Spool:
    """The pending entries under ``folder``, one ``<platform>.jsonl`` file per platform."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, platform: str) -> Path:
        """The pending file of ``platform``."""
        return self.folder / f"{platform}.jsonl"

    def append(self, platform: str, entries: Iterable[Mapping[str, Any]]) -> None:
        """Append ``entries`` to the platform's file and flush them to disk. Raises
        OSError when the folder cannot be written."""
        lines = "".join(dumps(e) + "\n" for e in entries)
        if not lines:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path(platform).open("a", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())

    def platforms(self) -> list[str]:
        """Platforms with a pending file, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.jsonl"))

    def read(self, platform: str | None = None) -> list[dict[str, Any]]:
        """The pending entries of ``platform`` (None: of every platform), in file order."""
        names = [platform] if platform else self.platforms()
        out: list[dict[str, Any]] = []
        for name in names:
            path = self.path(name)
            if path.exists():
                out += loads(path.read_text(encoding="utf-8").splitlines())
        return out

    def drop(self, platform: str, ids: set[str]) -> int:
        """Remove the entries whose id is in ``ids`` from the platform's file (rewritten
        atomically; deleted when empty). Gives how many remain."""
        path = self.path(platform)
        if not path.exists():
            return 0
        kept = [e for e in loads(path.read_text(encoding="utf-8").splitlines())
                if e["id"] not in ids]
        if not kept:
            path.unlink()
            return 0
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(dumps(e) + "\n" for e in kept))
        os.replace(tmp, path)
        return len(kept)
