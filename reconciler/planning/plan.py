"""The plan: an ordered list of actions with counts, warnings and what it was computed on.

Like Terraform's, a plan is a value: saved as JSON (``schemas/plan.schema.json``), rendered
several ways, reviewed, approved by digest, and consumed by ``apply``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = 1

# Adds before removes (DESIGN §5.6): the order in which the applier runs action kinds.
PHASES: dict[str, int] = {
    "create_user": 1,
    "create_cohort": 2,
    "update_cohort": 2,
    "add_members": 3,
    "create_group": 4,
    "create_sync": 5,
    "update_sync": 5,
    "enrol_manual": 6,
    "remove_members": 7,
    "suspend_manual": 8,
    "disable_sync": 9,
    "delete_sync": 9,
    "delete_cohort": 10,
}
ADDS = {
    "create_user",
    "create_cohort",
    "add_members",
    "create_group",
    "create_sync",
    "enrol_manual",
}
CHANGES = {"update_cohort", "update_sync"}
REMOVES = {"remove_members", "suspend_manual", "disable_sync", "delete_sync", "delete_cohort"}


@dataclass(frozen=True)
class Action:
    kind: str
    target: str
    details: dict[str, Any]

    @property
    def phase(self) -> int:
        return PHASES[self.kind]

    @property
    def weight(self) -> int:
        """How many objects the action touches (members count one each)."""
        users = self.details.get("usernames")
        return len(users) if isinstance(users, list) else 1


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
    # How users were identified (the user-id map: used or why not, what it corrected);
    # see planning/usermap.py. Not part of the digest: it says how, not what.
    user_map: dict[str, Any] | None = None

    def sorted_actions(self) -> list[Action]:
        return sorted(self.actions, key=lambda a: (a.phase, a.kind, a.target))

    def counts(self) -> dict[str, int]:
        add = sum(a.weight for a in self.actions if a.kind in ADDS)
        change = sum(a.weight for a in self.actions if a.kind in CHANGES)
        remove = sum(a.weight for a in self.actions if a.kind in REMOVES)
        return {"add": add, "change": change, "remove": remove}

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
            "actions": [asdict(a) for a in self.sorted_actions()],
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
            "actions": [asdict(a) for a in self.sorted_actions()],
            "warnings": [asdict(w) for w in self.warnings],
            "pending_users": sorted(self.pending_users),
            "unmanaged": self.unmanaged,
            "expiring": self.expiring,
            "sources": self.sources,
            "user_map": self.user_map,
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
            actions=[Action(**a) for a in data["actions"]],
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
            user_map=data.get("user_map"),
        )
        if plan.digest() != data["digest"]:
            raise ValueError("plan file was modified: its digest does not match its content")
        return plan
