"""The plan: an ordered list of actions with counts, warnings and what it was computed on.

Like Terraform's, a plan is a value: saved as JSON (``schemas/plan.schema.json``), rendered
several ways, reviewed, approved by digest, and consumed by ``apply``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..errors import ExitCode, PlanFileError, most_severe
from ..resources import schema
from .actions import Action
from .warnings import makes_incomplete

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Warning:
    code: str
    message: str
    target: str = ""


@dataclass(frozen=True)
class FailsafeCheck:
    name: str
    target: str
    value: float
    limit: float
    tripped: bool
    detail: str = ""


@dataclass
class Plan:
    platform: str
    academic_year: str
    actions: list[Action] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    pending_users: list[str] = field(default_factory=list)
    unmanaged: list[dict[str, Any]] = field(default_factory=list)
    failsafe: list[FailsafeCheck] = field(default_factory=list)
    expiring: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)
    # The general cohorts' windows: rollover overlap in force, leavers in their grace period.
    general: dict[str, Any] = field(default_factory=dict)
    # The course patterns: which courses each matches, which gain or lose its syncs.
    patterns: list[dict[str, Any]] = field(default_factory=list)
    # Manual cohorts whose review of the members is due (or soon), with their owners.
    reviews: list[dict[str, Any]] = field(default_factory=list)
    source_digest: str = ""
    moodle_fingerprint: str = ""
    commit: str | None = None
    dirty: bool = False
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    # How users were identified (the user-id map: used or why not, what it corrected);
    # see planning/usermap.py. Not part of the digest: it says how, not what.
    user_map: dict[str, Any] | None = None

    def sorted_actions(self) -> list[Action]:
        """The actions in apply order: by phase (adds before removes), kind, target."""
        return sorted(self.actions, key=lambda a: (a.phase, a.kind, a.target))

    def counts(self) -> dict[str, int]:
        """``{"add", "change", "remove"}``: objects each effect touches (members one each)."""
        counts = {"add": 0, "change": 0, "remove": 0}
        for action in self.actions:
            counts[action.effect] += action.weight
        return counts

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    @property
    def failsafe_tripped(self) -> bool:
        return any(c.tripped for c in self.failsafe)

    def exit_codes(self) -> set[ExitCode]:
        """Every exit code that holds for this plan: 3 a tripped failsafe, 4 unhealthy
        sources, 7 incomplete (something declared cannot be done), 2 changes pending."""
        codes = set()
        if self.failsafe_tripped:
            codes.add(ExitCode.FAILSAFE)
        if self.sources.get("healthy") is False:
            codes.add(ExitCode.UNHEALTHY)
        if self.incomplete:
            codes.add(ExitCode.INCOMPLETE)
        if self.has_changes:
            codes.add(ExitCode.CHANGES)
        return codes

    @property
    def exit_code(self) -> ExitCode:
        """What ``reconcile plan`` exits with: the most severe of ``exit_codes``
        (``errors.PRECEDENCE``: 3 > 4 > 7 > 2), else 0."""
        return most_severe(self.exit_codes())

    @property
    def incomplete(self) -> list[Warning]:
        """The warnings that say something declared cannot be done (``planning.warnings``):
        ``plan`` and ``apply`` exit 7 when there is any."""
        return [w for w in self.warnings if makes_incomplete(w.code)]

    def digest(self) -> str:
        """Identity of what the plan would do, on which data (not when or from which commit)."""
        canon = {
            "platform": self.platform,
            "academic_year": self.academic_year,
            "actions": [a.to_json() for a in self.sorted_actions()],
            "source_digest": self.source_digest,
            "moodle_fingerprint": self.moodle_fingerprint,
        }
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def summary(self) -> str:
        """The first line people read: ``Plan: 12 to add, 3 to change, 1 to remove; …``."""
        c = self.counts()
        if not self.actions:
            head = "Plan: no changes"
        else:
            head = f"Plan: {c['add']} to add, {c['change']} to change, {c['remove']} to remove"
        extras = []
        if self.pending_users:
            n = len(self.pending_users)
            extras.append(f"{n} pending user{'s' if n != 1 else ''}")
        if self.expiring:
            n = len(self.expiring)
            days = self.expiring[0].get("within_days", 14)
            verb = "syncs expire" if n != 1 else "sync expires"
            extras.append(f"{n} {verb} within {days} days")
        due = sum(r["days_left"] <= 0 for r in self.reviews)
        if due:
            extras.append(f"{due} review{'s' * (due != 1)} due")
        return head + ("; " + "; ".join(extras) if extras else "") + "."

    def notices(self) -> list[str]:
        """The lines shown right after the summary, one sentence each: an academic-year
        rollover (from → to and what it moves in the general cohorts), what the failsafes
        expect when they are tripped (an approval of this exact digest), then every note of
        the sources' health (``Sources: …``). Empty for a plain plan."""
        lines = []
        rollover = self.sources.get("rollover")
        if rollover:
            lines.append(_rollover_line(rollover))
        if self.failsafe_tripped:
            lines.append(
                "The failsafes stop this plan: apply refuses it until its digest "
                f"{self.digest()} is approved (reconcile approve PLAN --by NAME, or "
                "RECONCILER_APPROVED_DIGEST for one pipeline run)."
            )
        elif rollover:
            lines.append("The rollover is within the failsafes: it applies without approval.")
        lines += [f"Sources: {note}" for note in self.sources.get("notes", [])]
        return lines

    def to_json(self) -> dict[str, Any]:
        """The saved form (``schemas/plan.schema.json``), digest and summary included."""
        return {
            "format_version": self.format_version,
            "platform": self.platform,
            "academic_year": self.academic_year,
            "created_at": self.created_at,
            "commit": self.commit,
            "dirty": self.dirty,
            "source_digest": self.source_digest,
            "moodle_fingerprint": self.moodle_fingerprint,
            "digest": self.digest(),
            "summary": self.summary(),
            "notices": self.notices(),
            "counts": self.counts(),
            "failsafe": {
                "tripped": self.failsafe_tripped,
                "checks": [asdict(c) for c in self.failsafe],
            },
            "actions": [a.to_json() for a in self.sorted_actions()],
            "warnings": [asdict(w) for w in self.warnings],
            "incomplete": [asdict(w) for w in self.incomplete],
            "pending_users": sorted(self.pending_users),
            "unmanaged": self.unmanaged,
            "expiring": self.expiring,
            "sources": self.sources,
            "general": self.general,
            "patterns": self.patterns,
            "reviews": self.reviews,
            "user_map": self.user_map,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], verify: bool = True) -> Plan:
        """The plan a ``to_json`` document describes. ``data`` must match the plan schema
        (``read_plan`` checks it); raises ``PlanFileError`` when its digest does not match
        its content (a modified file), unless ``verify`` is false."""
        if data.get("format_version") != FORMAT_VERSION:
            raise PlanFileError(
                f"plan format_version {data.get('format_version')!r} is not {FORMAT_VERSION}"
            )
        plan = cls(
            platform=data["platform"],
            academic_year=data["academic_year"],
            actions=[Action.from_json(a) for a in data["actions"]],
            warnings=[Warning(**w) for w in data["warnings"]],
            pending_users=list(data["pending_users"]),
            unmanaged=list(data["unmanaged"]),
            failsafe=[FailsafeCheck(**c) for c in data["failsafe"]["checks"]],
            expiring=list(data["expiring"]),
            sources=dict(data["sources"]),
            general=dict(data.get("general") or {}),
            patterns=list(data.get("patterns") or []),
            reviews=list(data.get("reviews") or []),
            source_digest=data["source_digest"],
            moodle_fingerprint=data["moodle_fingerprint"],
            commit=data["commit"],
            dirty=data["dirty"],
            created_at=data["created_at"],
            user_map=data.get("user_map"),
        )
        if verify and plan.digest() != data["digest"]:
            raise PlanFileError("plan file was modified: its digest does not match its content")
        return plan


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _rollover_line(rollover: dict[str, Any]) -> str:
    """``Academic-year rollover 2026 → 2027: 3 general cohorts created, …``."""
    m = rollover.get("moves") or {}
    parts = [
        _count(m.get("cohorts_created", 0), "general cohort") + " created",
        f"{m.get('cohorts_emptied', 0)} emptied",
        f"{m.get('cohorts_deleted', 0)} deleted",
    ]
    members = (
        _count(m.get("memberships_added", 0), "membership") + " added, "
        f"{m.get('memberships_removed', 0)} removed"
    )
    ended = m.get("enrolments_ended", 0)
    extra = f"; {_count(ended, 'manual enrolment')} ended" if ended else ""
    return (
        f"Academic-year rollover {rollover['from']} → {rollover['to']} (platforms.yaml): "
        f"{', '.join(parts)}; {members}{extra}."
    )


# Deeper than any plan the planner writes (4 levels); refused before parsing, so a file of
# 100,000 nested brackets costs a scan, not a RecursionError.
MAX_DEPTH = 16
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(text: str) -> int:
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_plan(data: bytes | str, name: str) -> Plan:
    """The plan saved as ``data`` (the bytes of ``plan.json``), checked in order: UTF-8,
    nesting depth, strict JSON (no NaN/Infinity, finite numbers), an object matching
    ``schemas/plan.schema.json``, then its digest. Any failure raises ``PlanFileError``
    naming ``name`` and what is wrong, in one line; nothing else is raised."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise PlanFileError(f"{name}: not a saved plan: not UTF-8 (byte {exc.start})") from None
    if _depth(text) > MAX_DEPTH:
        raise PlanFileError(f"{name}: not a saved plan: nested deeper than {MAX_DEPTH} levels")
    try:
        doc = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise PlanFileError(f"{name}: not a saved plan: not JSON ({_short(exc)})") from None
    if not isinstance(doc, dict):
        raise PlanFileError(
            f"{name}: not a saved plan: the file holds a JSON {_json_type(doc)}, "
            "not the object `reconcile plan --out` writes"
        )
    error = best_match(_plan_validator().iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise PlanFileError(f"{name}: not a saved plan: at {where}: {_short(error.message)}")
    try:
        return Plan.from_json(doc)
    except PlanFileError as exc:
        raise PlanFileError(f"{name}: {exc}") from None


def read_plan(path: Path) -> Plan:
    """The plan saved in ``path`` by ``reconcile plan --out`` (see ``parse_plan``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan ({exc.strerror})") from None
    return parse_plan(data, str(path))


@cache
def _plan_validator() -> Draft202012Validator:
    return Draft202012Validator(schema("plan.schema.json"))


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _short(exc: object, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
