"""``read_sources``: read APOGÉE and the directory, judge their health, build the cohorts.

A source failure never raises from here: whatever the exception (the driver's, the socket
layer's, ``struct``'s or a bug of ours), it makes the snapshot unhealthy with its cause in one
line, and an unhealthy snapshot offers no general cohort to act on (DESIGN §5.2).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ..clock import today_in_paris
from ..settings import Settings, previous_year
from . import apogee, health, ldap
from .general import build_general_cohorts, cohorts_digest
from .model import DirectoryEntry, IaRow, SourceError, SourceSnapshot, describe, one_line

T = TypeVar("T")


def _close(conn: Any) -> None:
    try:
        if hasattr(conn, "unbind"):
            conn.unbind()
        else:
            conn.close()
    except Exception:  # closing must not hide the real outcome
        pass


def _read_apogee(settings: Settings, environ: Mapping[str, str], conn: Any,
                 stats: dict, notes: list[str],
                 previous: str | None) -> tuple[list[IaRow], list[IaRow] | None]:
    """This year's IA rows and, when ``previous`` names a year (a rollover overlap is in
    force), that year's too: the same query, on the same connection. Failing to read
    either year fails APOGÉE as a whole."""
    own = conn is None
    started = time.monotonic()
    try:
        if own:
            conn = apogee.connect(settings.sources.apogee, environ)
        rows = apogee.read_ia(conn, settings.academic_year, settings.sources.apogee)
        stats["rows"] = len(rows)
        stats["seconds"] = round(time.monotonic() - started, 3)
        old: list[IaRow] | None = None
        if previous is not None:
            started = time.monotonic()
            try:
                old = apogee.read_ia(conn, previous, settings.sources.apogee)
            except SourceError as exc:
                raise SourceError(apogee.SOURCE, f"year {previous} (rollover overlap): "
                                  f"{exc.message}") from exc
            stats["previous_year"] = {"academic_year": previous, "rows": len(old),
                                      "seconds": round(time.monotonic() - started, 3)}
        try:
            stats["open_years"] = apogee.open_years(conn)
        except SourceError as exc:  # information only: the year comes from platforms.yaml
            notes.append(f"could not read APOGÉE's open year: {exc.message}")
        else:
            if stats["open_years"] and settings.academic_year not in stats["open_years"]:
                notes.append(f"APOGÉE's open year is {', '.join(stats['open_years'])}; "
                             f"platforms.yaml says {settings.academic_year} (used as is)")
        return rows, old
    finally:
        if own and conn is not None:
            _close(conn)


def _read_ldap(settings: Settings, environ: Mapping[str, str], conn: Any,
               stats: dict) -> list[DirectoryEntry]:
    own = conn is None
    try:
        if own:
            conn = ldap.connect(settings.sources.ldap, environ)
        entries, read_stats = ldap.read_entries(conn, settings.sources.ldap)
        stats.update(read_stats)
        return entries
    finally:
        if own and conn is not None:
            _close(conn)


def _guarded(source: str, read: Callable[[], T], reasons: list[str],
             stats: dict[str, Any]) -> T | None:
    """``read()``, or None with one reason line when it raised anything at all."""
    try:
        return read()
    except SourceError as exc:
        reasons.append(str(exc))
        stats["error"] = exc.message
    except Exception as exc:  # any failure while reading is a source error, never a traceback
        message = one_line(f"unexpected {describe(exc)}")
        reasons.append(f"{source}: {message}")
        stats["error"] = message
    return None


def read_sources(
    settings: Settings,
    environ: Mapping[str, str] = os.environ,
    *,
    apogee_conn: Any = None,
    ldap_conn: Any = None,
    platforms: Iterable[str] | None = None,
    today: dt.date | None = None,
) -> SourceSnapshot:
    """Read both sources and compute the general cohorts of every enabled platform.

    ``apogee_conn`` (DB-API) and ``ldap_conn`` (ldap3 Connection) replace the connections the
    environment would open; they are left open. ``platforms`` limits the platforms computed.
    ``today`` (a Europe/Paris date, default the current one) decides which rollover overlap
    windows are in force: on those platforms last year's IAs count too, and they are read
    (once, for all of them) and judged like this year's.
    """
    started = time.monotonic()
    today = today or today_in_paris()
    names = sorted(platforms) if platforms is not None else sorted(settings.platforms)
    overlap = frozenset(
        name for name in names
        if name in settings.platforms and settings.platforms[name].general_cohorts.enabled
        and settings.platforms[name].general_cohorts.overlap_in_force(
            settings.academic_year, today))
    previous = previous_year(settings.academic_year) if overlap else None
    reasons: list[str] = []
    notes: list[str] = []
    stats: dict[str, Any] = {"academic_year": settings.academic_year, "apogee": {}, "ldap": {},
                             "today": today.isoformat(), "overlap": sorted(overlap)}

    read: tuple[list[IaRow], list[IaRow] | None] | None = _guarded(
        apogee.SOURCE,
        lambda: _read_apogee(settings, environ, apogee_conn, stats["apogee"], notes, previous),
        reasons, stats["apogee"])
    rows, old_rows = read if read is not None else (None, None)
    entries: list[DirectoryEntry] | None = _guarded(
        ldap.SOURCE, lambda: _read_ldap(settings, environ, ldap_conn, stats["ldap"]),
        reasons, stats["ldap"])

    cohorts: dict = {}
    people: dict = {}
    if rows is not None and entries is not None:
        try:
            cohorts, people, built = build_general_cohorts(
                settings, rows, entries, platforms, previous_rows=old_rows, overlap=overlap)
            stats.update(built)
            notes.extend(f"{name}: no étape selected by general_cohorts (check include, "
                         "exclude and components)"
                         for name, p in built["platforms"].items() if not p["cohorts"])
        except ValueError as exc:  # a template the settings cannot render
            reasons.append(one_line(f"configuration: {exc}"))
        except Exception as exc:  # a bug of ours must not pass for an empty directory
            reasons.append(one_line(f"general cohorts: unexpected {describe(exc)}"))
            cohorts, people = {}, {}

    rollover_from = None
    try:
        state, state_error = health.load_state(health.state_path(settings))
        if state_error:
            reasons.append(state_error)
        verdict = health.check(
            settings, state,
            None if rows is None else len(rows),
            None if entries is None else len(entries),
            stats.get("platforms"),
            None if old_rows is None else len(old_rows),
        )
        reasons += verdict.reasons
        notes += verdict.notes
        rollover_from = verdict.rollover_from
    except Exception as exc:  # health unknown is unhealthy
        reasons.append(one_line(f"source health: unexpected {describe(exc)}"))
    # One line each, whatever a driver put in its message: they print as list items.
    reasons = [one_line(r) for r in reasons]
    notes = [one_line(n) for n in notes]
    healthy = not reasons
    stats["seconds"] = round(time.monotonic() - started, 3)
    return SourceSnapshot(
        academic_year=settings.academic_year,
        healthy=healthy,
        reasons=reasons,
        notes=notes,
        rollover_from=rollover_from,
        general_cohorts=cohorts if healthy else {},
        # Accounts stay useful to manual cohorts even when APOGÉE is down.
        people=people,
        digest=cohorts_digest(settings.academic_year, cohorts) if healthy else "",
        stats=stats,
    )


def record_good_run(snap: SourceSnapshot, settings: Settings,
                    now: dt.datetime | None = None) -> dict[str, Any]:
    """Save the counts of a healthy run as the reference for the next ones."""
    if not snap.healthy:
        raise ValueError("refusing to record an unhealthy run: " + "; ".join(snap.reasons))
    if snap.academic_year != settings.academic_year:
        raise ValueError("snapshot and settings disagree on the academic year")
    path = health.state_path(settings)
    platforms = dict(snap.stats.get("platforms", {}))
    previous, _ = health.load_state(path)
    if previous and str(previous["academic_year"]) == settings.academic_year:
        # A run limited to some platforms keeps the others' reference counts.
        for name, counts in (previous.get("platforms") or {}).items():
            platforms.setdefault(name, counts)
    # Last year's rows: read now (an overlap in force), else the reference kept so far.
    last = previous_year(settings.academic_year)
    read = snap.stats["apogee"].get("previous_year")
    kept = health.reference_rows(previous, last) if previous else None
    last_rows = (read["rows"] if read else kept)
    state = health.new_state(
        settings, int(snap.stats["apogee"]["rows"]), int(snap.stats["ldap"]["entries"]),
        platforms, snap.digest, now,
        None if last_rows is None else {"academic_year": last, "apogee_rows": int(last_rows)},
    )
    health.save_state(path, state)
    return state
