"""The manual-enrolment ledger on disk: ``.reconciler/manual-enrolments-<platform>.json``.

One file per platform (the CI cache is kept per platform), holding one section per site URL
(ids mean nothing on another site: pointing ``<PLATFORM>_URL`` at a test site never mixes
its enrolments with production's, nor overwrites them). Every change is written atomically
(a temporary file, ``fsync``, ``os.replace``): a run killed mid-write leaves the previous
file. The applier writes entries *before* the enrolment call (``LedgerStore.will_enrol``)
and marks them ended after the call that ended them came back (``LedgerStore.ended``).

A missing file, or no section for this site, is a ledger with ``found=False``: the plan
warns and nothing is ended on its strength. An unreadable file is an error (exit 1, one
line naming it): replacing it silently would forget what it named for good.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..planning.ledger import Ledger, LedgerEntry

FORMAT_VERSION = 1
_FIELDS: dict[str, type] = {
    "courseid": int, "course": str, "cohort": str, "role": str, "roleid": int,
    "userid": int, "username": str, "timeend": int, "state": str, "at": str,
}  # fmt: skip


class LedgerFileError(ConfigurationError):
    """The ledger file exists but cannot be read or written as a ledger."""


def ledger_path(state_dir: Path, platform: str) -> Path:
    """Where ``platform``'s ledger lives under ``state_dir`` (the repository's ``.reconciler``)."""
    return state_dir / f"manual-enrolments-{platform}.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _unreadable(path: Path, why: str) -> LedgerFileError:
    return LedgerFileError(
        f"{path}: unreadable record of manual enrolments ({why}); move it aside to start a "
        "new one (the enrolments it names are then left to their end date)"
    )


def _read_doc(path: Path, platform: str) -> dict[str, Any] | None:
    """The file's document, None when there is no file. Raises LedgerFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, str(exc)) from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _unreadable(path, f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
        raise _unreadable(path, f"not a format_version {FORMAT_VERSION} ledger")
    if doc.get("platform") != platform or not isinstance(doc.get("sites"), dict):
        raise _unreadable(path, f"not the ledger of platform {platform}")
    return doc


def _entry(raw: Any) -> LedgerEntry:
    if not isinstance(raw, dict) or set(raw) != set(_FIELDS):
        raise ValueError(f"an entry must have exactly the fields {', '.join(_FIELDS)}")
    for name, kind in _FIELDS.items():
        value = raw[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"entry field {name} is not a {kind.__name__}: {value!r}")
    if raw["state"] not in ("enrolled", "ended"):
        raise ValueError(f"entry state {raw['state']!r} is neither enrolled nor ended")
    return LedgerEntry(**raw)


def _section_ledger(path: Path, platform: str, site: str,
                    section: dict[str, Any] | None) -> Ledger:
    if section is None:
        return Ledger(platform, site, found=False)
    try:
        entries = [_entry(e) for e in section["entries"]]
        started = str(section["started"])
        until = int(section["unrecorded_until"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable(path, f"site {site}: {exc}") from None
    return Ledger.of(platform, site, entries, started=started, unrecorded_until=until)


def load_ledger(path: Path, platform: str, site: str) -> Ledger:
    """The ledger of ``platform`` at ``site`` (its base URL) kept in ``path``; ``found`` is
    False when the file or its section for ``site`` is missing. Raises LedgerFileError when
    the file exists but is not a readable ledger of ``platform``."""
    return LedgerStore.open(path, platform, site).ledger


class LedgerStore:
    """The ledger of one platform at one site, saved to ``path`` at every change.

    ``ledger`` is the current value. A ledger that was not found starts when first saved
    (``start``). Every method that changes it writes the file before returning (the other
    sites' sections as they were read) and raises ``LedgerFileError`` when it cannot (the
    caller must then not make the call it was recording).
    """

    def __init__(self, path: Path, ledger: Ledger,
                 others: dict[str, Any] | None = None) -> None:
        """``others``: the other sites' sections as read (``open``); None reads them from
        ``path`` at each save."""
        self.path = path
        self.ledger = ledger
        self._others = others

    @classmethod
    def open(cls, path: Path, platform: str, site: str) -> LedgerStore:
        """The store of ``platform`` at ``site`` in ``path`` (see ``load_ledger``)."""
        doc = _read_doc(path, platform)
        sites = {} if doc is None else dict(doc["sites"])
        ledger = _section_ledger(path, platform, site, sites.pop(site, None))
        return cls(path, ledger, sites)

    def start(self, unrecorded_until: int) -> None:
        """Begin a new record for a ledger that was not found; ``unrecorded_until`` (Unix
        time, 0 none) bounds what earlier runs may have enrolled without recording."""
        self.ledger = dataclasses.replace(
            self.ledger, found=True, started=_now(), unrecorded_until=unrecorded_until
        )
        self.save()

    def replace(self, ledger: Ledger) -> None:
        """Keep ``ledger`` instead (e.g. pruned) and save it."""
        self.ledger = ledger
        self.save()

    def will_enrol(self, entries: Iterable[LedgerEntry]) -> None:
        """Record ``entries`` as ``enrolled`` *before* the enrolment call."""
        at = _now()
        self.ledger = self.ledger.with_entries(
            dataclasses.replace(e, state="enrolled", at=at) for e in entries
        )
        self.save()

    def ended(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Mark every entry of each (course id, user id) ended, once Moodle confirmed it."""
        self.ledger = self.ledger.ended(pairs, _now())
        self.save()

    def save(self) -> None:
        """Write this site's section beside the other sites' (atomic): one entry a line.
        Raises LedgerFileError when the file cannot be written."""
        ledger = self.ledger
        section = {"started": ledger.started or _now(),
                   "unrecorded_until": ledger.unrecorded_until}
        lines = [
            json.dumps({name: getattr(e, name) for name in _FIELDS}, ensure_ascii=False)
            for e in sorted(ledger.entries.values(), key=lambda e: e.key)
        ]
        head = json.dumps(section, ensure_ascii=False)[:-1]  # the section, still open
        entries = "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"
        others = self._others
        if others is None:
            doc = _read_doc(self.path, ledger.platform)
            others = {} if doc is None else doc["sites"]
        sites = [f"{json.dumps(site)}: {json.dumps(value, ensure_ascii=False)}"
                 for site, value in sorted(others.items()) if site != ledger.site]
        sites.append(f'{json.dumps(ledger.site)}: {head}, "entries": {entries}}}')
        text = (
            f'{{"format_version": {FORMAT_VERSION}, "platform": {json.dumps(ledger.platform)}, '
            '"sites": {\n' + ",\n".join(sites) + "\n}}\n"
        )
        try:
            _write_atomically(self.path, text)
        except OSError as exc:
            raise LedgerFileError(
                f"{self.path}: cannot write the record of manual enrolments "
                f"({exc.strerror or exc})"
            ) from None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # the rename itself survives a power cut only once the folder is synced
        dirfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dirfd)
    except OSError:
        pass
    finally:
        os.close(dirfd)
