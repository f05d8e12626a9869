"""The plan: an ordered list of actions with counts, warnings and what it was computed on.

Like Terraform's, a plan is a value: saved as JSON (``schemas/plan.schema.json``), rendered
several ways, reviewed, approved by digest, and consumed by ``apply``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .actions import Action

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
    source_digest: str = ""
    moodle_fingerprint: str = ""
    commit: str | None = None
    dirty: bool = False
    created_at: str = ""
    format_version: int = FORMAT_VERSION

    def sorted_actions(self) -> list[Action]:
        return sorted(self.actions, key=lambda a: (a.phase, a.kind, a.target))

    def counts(self) -> dict[str, int]:
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
        return head + ("; " + "; ".join(extras) if extras else "") + "."

    def to_json(self) -> dict[str, Any]:
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
            "counts": self.counts(),
            "failsafe": {
                "tripped": self.failsafe_tripped,
                "checks": [asdict(c) for c in self.failsafe],
            },
            "actions": [a.to_json() for a in self.sorted_actions()],
            "warnings": [asdict(w) for w in self.warnings],
            "pending_users": sorted(self.pending_users),
            "unmanaged": self.unmanaged,
            "expiring": self.expiring,
            "sources": self.sources,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
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
            source_digest=data["source_digest"],
            moodle_fingerprint=data["moodle_fingerprint"],
            commit=data["commit"],
            dirty=data["dirty"],
            created_at=data["created_at"],
        )
        if plan.digest() != data["digest"]:
            raise ValueError("plan file was modified: its digest does not match its content")
        return plan
