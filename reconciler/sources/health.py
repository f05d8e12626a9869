"""Source health (DESIGN §5.2): minimum counts, the join, and the last good run.

Three kinds of rule: each source's minimum count; the join itself (the share of IAs in force
that find a directory account), judged on every run including the first; and drops compared
with the last good run.

The state file is small JSON kept between runs (by CI as a cache). It records the academic
year so that counts are only compared within one year: after an explicit change of the year
in platforms.yaml (the rollover) APOGÉE's counts start afresh, and the report says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import HealthSettings, Settings, previous_year

FORMAT_VERSION = 1


def state_path(settings: Settings) -> Path:
    """The last-good-run file: ``sources.health.state_file``, relative to the repository."""
    path = Path(settings.sources.health.state_file)
    return path if path.is_absolute() else settings.root / path


def load_state(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(state, None), (None, None) when there is no file yet, or (None, error)."""
    if not path.exists():
        return None, None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version is not {FORMAT_VERSION}")
        int(state["apogee_rows"])
        int(state["ldap_entries"])
        str(state["academic_year"])
        if "previous_year" in state:  # written while a rollover overlap was in force
            int(state["previous_year"]["apogee_rows"])
            str(state["previous_year"]["academic_year"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, (f"last-good-run state {path} is unreadable ({exc}); fix or delete it "
                      "to start comparisons afresh")
    return state, None


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write atomically so that a run cut in the middle never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(state, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(tmp, path)


@dataclass
class Verdict:
    """Why the sources are unhealthy (``reasons``) and what is worth knowing (``notes``);
    ``rollover_from`` is the academic year of the last good run when it differs from
    platforms.yaml's (a rollover), else None."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rollover_from: str | None = None


def _drop(health: HealthSettings, what: str, now: int, before: int, when: str) -> str | None:
    """A reason when ``now`` fell more than max_drop_percent below ``before``."""
    if before <= 0 or now >= before:
        return None
    percent = 100.0 * (before - now) / before
    if percent <= health.max_drop_percent:
        return None
    return (f"{what}: {now} now vs {before} at the last good run ({when}), a drop of "
            f"{percent:.1f}% > max_drop_percent {health.max_drop_percent:g}")


def join_reasons(settings: Settings, platforms: dict[str, Any] | None) -> list[str]:
    """One reason per platform (and per year read) whose IAs find too few directory accounts.

    ``platforms`` holds each platform's builder statistics (``ia``, ``ia_with_account``, see
    ``general.build_platform``; during a rollover overlap the same figures for last year's
    IAs under ``overlap``, re-registered students included). A platform with no IA in its
    étapes is not judged here (the empty-answer rule and the "no étape selected" note cover
    it). Needs no reference counts: a renamed or emptied student-id attribute is caught on
    the very first run.
    """
    health = settings.sources.health
    attribute = settings.sources.ldap.student_id_attr
    reasons = []
    for name, figures in sorted((platforms or {}).items()):
        judged = [("IAs in force", figures)]
        if "overlap" in figures:
            judged.append((f"IAs of {previous_year(settings.academic_year)} (rollover "
                           "overlap)", figures["overlap"]))
        for what, item in judged:
            total, found = int(item.get("ia", 0)), int(item.get("ia_with_account", 0))
            if total <= 0:
                continue
            percent = 100.0 * found / total
            if percent < health.min_join_percent:
                reasons.append(
                    f"{name}: only {found} of {total} {what} ({percent:.1f}%) find a "
                    f"directory account by {attribute}, below min_join_percent "
                    f"{health.min_join_percent:g} (is the student-id attribute filled and "
                    "named right?)")
    return reasons


def reference_rows(state: dict[str, Any], year: str) -> int | None:
    """APOGÉE's IA rows for ``year`` at the last good run, when it read that year."""
    if str(state["academic_year"]) == year:
        return int(state["apogee_rows"])
    previous = state.get("previous_year") or {}
    if str(previous.get("academic_year")) == year:
        return int(previous["apogee_rows"])
    return None


def check(
    settings: Settings, state: dict[str, Any] | None,
    apogee_rows: int | None, ldap_entries: int | None, platforms: dict[str, Any] | None,
    previous_rows: int | None = None,
) -> Verdict:
    """Health of the counts and of the join.

    ``apogee_rows`` / ``ldap_entries``: what each source returned, ``None`` when it failed
    (reported elsewhere). ``previous_rows``: APOGÉE's IA rows of the year before, read only
    while a rollover overlap is in force (``None`` otherwise); judged by the same rules
    (empty answer, min_rows, the join, the drop against the last good run of that year).
    ``platforms``: each platform's builder statistics, ``None`` when the cohorts were not
    built. ``state``: the last good run, or ``None`` on a first run.
    """
    health = settings.sources.health
    year = settings.academic_year
    verdict = Verdict()
    counts = [("APOGÉE", year, apogee_rows, health.min_rows_apogee),
              ("LDAP", year, ldap_entries, health.min_rows_ldap)]
    if previous_rows is not None:
        counts.append(("APOGÉE", f"{previous_year(year)} (rollover overlap)", previous_rows,
                       health.min_rows_apogee))
    for source, which, count, minimum in counts:
        if count == 0:
            verdict.reasons.append(f"{source}: empty answer (0 rows) for year {which}")
        elif count is not None and count < minimum:
            what = "" if which == year else f" for year {which}"
            verdict.reasons.append(f"{source}: {count} rows{what} < min_rows {minimum}")
    verdict.reasons += join_reasons(settings, platforms)
    if state is None:
        verdict.notes.append("no last good run recorded: counts not compared")
        return verdict
    when = str(state.get("recorded_at", "?"))
    same_year = str(state["academic_year"]) == year
    if ldap_entries is not None:
        reason = _drop(health, "LDAP entries", ldap_entries, int(state["ldap_entries"]), when)
        if reason:
            verdict.reasons.append(reason)
    if previous_rows is not None:
        last = previous_year(year)
        before = reference_rows(state, last)
        reason = _drop(health, f"APOGÉE IA rows of {last} (rollover overlap)",
                       previous_rows, before, when) if before is not None else None
        if reason:
            verdict.reasons.append(reason)
    if not same_year:
        verdict.rollover_from = str(state["academic_year"])
        verdict.notes.append(
            f"academic-year rollover: the last good run was for {state['academic_year']}, "
            f"platforms.yaml now says {year}; APOGÉE and cohort counts not compared")
        return verdict
    if apogee_rows is not None:
        reason = _drop(health, "APOGÉE IA rows", apogee_rows, int(state["apogee_rows"]), when)
        if reason:
            verdict.reasons.append(reason)
    # Members compared with the last good run: a join that degrades slowly, above the floor.
    for name, now in sorted((platforms or {}).items()):
        before = (state.get("platforms") or {}).get(name) or {}
        if "members" in before:
            reason = _drop(health, f"{name}: general-cohort members", int(now["members"]),
                           int(before["members"]), when)
            if reason:
                verdict.reasons.append(reason)
    return verdict


def new_state(settings: Settings, apogee_rows: int, ldap_entries: int,
              platforms: dict[str, Any], digest: str, now: dt.datetime | None = None,
              previous: dict[str, Any] | None = None) -> dict:
    """The state of a good run: counts per source and per platform, the digest, the time
    (``now``, default the current UTC time, ISO 8601 to the second); ``previous``
    (``{"academic_year", "apogee_rows"}``) the rows of the year before when they were read."""
    recorded = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    extra = {"previous_year": previous} if previous else {}
    return {
        **extra,
        "format_version": FORMAT_VERSION,
        "academic_year": settings.academic_year,
        "recorded_at": recorded.isoformat(),
        "apogee_rows": apogee_rows,
        "ldap_entries": ldap_entries,
        "platforms": {name: {"cohorts": p["cohorts"], "members": p["members"]}
                      for name, p in sorted(platforms.items())},
        "digest": digest,
    }
