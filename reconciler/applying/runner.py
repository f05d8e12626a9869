"""Plan and apply for one platform: the glue between declarations, sources, Moodle and git.

The same code runs the demo, the tests, a merge-request plan and the nightly apply; only the
endpoints differ (``Environment``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import today_in_paris
from ..declarations.history import git_info
from ..declarations.loader import DeclarationSet, load_declarations
from ..moodle.client import MoodleClient
from ..planning.desired import build_desired
from ..planning.plan import Plan
from ..planning.planner import compute_plan
from ..planning.reader import read_actual
from ..planning.usermap import UserResolver, final_plan, map_file
from ..settings import PlatformSettings, Settings
from ..sources import SourceSnapshot, read_sources, record_good_run
from ..sources.health import state_path
from .applier import ApplyResult, apply_plan, required_functions
from .approvals import DEFAULT_FILE as APPROVALS_FILE
from .approvals import find_approval
from .journal import Journal

JOURNAL_FILE = ".reconciler/journal.jsonl"


class ConfigError(Exception):
    """Missing token, unknown platform, declarations with errors: exit code 1."""


class StalePlan(Exception):
    """The saved plan was computed on data that moved since."""


class FailsafeTripped(Exception):
    def __init__(self, plan: Plan) -> None:
        super().__init__("failsafe tripped")
        self.plan = plan


def _default_client(platform: PlatformSettings, environ: Mapping[str, str]) -> MoodleClient:
    token = platform.token(dict(environ))
    if not token:
        raise ConfigError(
            f"no web-service token for {platform.name}: set the environment variable "
            f"{platform.token_env}"
        )
    return MoodleClient(platform.effective_url(dict(environ)), token)


@dataclass
class Environment:
    """Where the data comes from. Defaults: the real endpoints named by the environment."""

    repo: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    client_factory: Callable[[PlatformSettings], AbstractContextManager[Any]] | None = None
    sources_reader: Callable[[Settings, list[str]], SourceSnapshot] | None = None
    journal_path: Path | None = None
    approvals_path: Path | None = None
    # Where the user-id maps live (default: next to the source-health state, .reconciler/).
    user_map_dir: Path | None = None
    _decls: DeclarationSet | None = None
    _snapshot: SourceSnapshot | None = None

    @property
    def today(self) -> dt.date:
        return today_in_paris(self.now)

    def declarations(self) -> DeclarationSet:
        if self._decls is None:
            self._decls = load_declarations(self.repo / "cohorts", self.repo)
            if self._decls.settings is None:
                raise ConfigError("cohorts/platforms.yaml has errors (run `reconcile validate`)")
        return self._decls

    @property
    def settings(self) -> Settings:
        settings = self.declarations().settings
        assert settings is not None
        return settings

    def platform(self, name: str) -> PlatformSettings:
        try:
            return self.settings.platform(name)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None

    def sources(self) -> SourceSnapshot:
        """Both sources, read once for every platform with general cohorts."""
        if self._snapshot is None:
            names = [n for n, p in self.settings.platforms.items() if p.general_cohorts.enabled]
            if self.sources_reader is not None:
                self._snapshot = self.sources_reader(self.settings, names)
            else:
                self._snapshot = read_sources(self.settings, self.environ, platforms=names)
        return self._snapshot

    @contextmanager
    def client(self, platform: PlatformSettings) -> Iterator[Any]:
        if self.client_factory is not None:
            with self.client_factory(platform) as client:
                yield client
        else:
            with _default_client(platform, self.environ) as client:
                yield client

    def journal(self, platform: str, commit: str | None) -> Journal:
        return Journal(self.journal_path or self.repo / JOURNAL_FILE, platform, commit)

    def user_map(self, platform: str) -> UserResolver:
        """The user look-ups of one plan, with the platform's map (planning/usermap.py)."""
        folder = self.user_map_dir or state_path(self.settings).parent
        return UserResolver(map_file(folder, platform), platform, self.today)

    def approvals(self) -> Path:
        return self.approvals_path or self.repo / APPROVALS_FILE


def make_plan(env: Environment, platform_name: str) -> Plan:
    """Read everything and compute the plan of one platform (no write anywhere)."""
    platform = env.platform(platform_name)
    decls = env.declarations()
    if decls.has_errors:
        raise ConfigError(
            "the declarations have errors (run `reconcile validate`); nothing planned"
        )
    snapshot = env.sources() if platform.general_cohorts.enabled else None
    desired = build_desired(decls, env.settings, platform_name, env.today, snapshot)
    users = env.user_map(platform_name)
    with env.client(platform) as client:
        actual = read_actual(client, platform, desired, users)
        # Final only once every user a write concerns was confirmed by Moodle tonight.
        plan = final_plan(
            lambda: compute_plan(desired, actual, platform, env.today, env.settings.academic_year),
            users, client, actual,
        )
    users.save(actual, env.now)
    info = git_info(env.repo)
    plan.commit, plan.dirty = info.commit, info.dirty
    plan.created_at = env.now.isoformat(timespec="seconds")
    return plan


def why_stale(saved: Plan, fresh: Plan) -> list[str]:
    reasons = []
    if saved.commit != fresh.commit:
        reasons.append(f"the declarations moved: commit {saved.commit} -> {fresh.commit}")
    if saved.source_digest != fresh.source_digest:
        reasons.append("the APOGÉE/LDAP data changed since the plan was made")
    if saved.moodle_fingerprint != fresh.moodle_fingerprint:
        reasons.append("Moodle's state changed since the plan was made")
    if not reasons and saved.digest() != fresh.digest():
        reasons.append("the plan computed now differs from the saved one")
    return reasons


@dataclass
class ApplyOutcome:
    plan: Plan
    result: ApplyResult
    approved_by: str | None = None


def apply(
    env: Environment,
    platform_name: str,
    saved: Plan | None = None,
    allow_dirty: bool = False,
    progress: bool | None = None,
) -> ApplyOutcome:
    """Plan afresh, check (stale, dirty, failsafes), then apply. Raises before any write."""
    fresh = make_plan(env, platform_name)
    if saved is not None:
        if saved.platform != platform_name:
            raise ConfigError(f"the plan is for {saved.platform}, not {platform_name}")
        reasons = why_stale(saved, fresh)
        if reasons:
            raise StalePlan("; ".join(reasons))
    if fresh.dirty and not allow_dirty:
        raise ConfigError("cohorts/ has uncommitted changes; commit them or pass --allow-dirty")
    approved_by = None
    if fresh.failsafe_tripped:
        approved_by = find_approval(fresh, env.approvals(), env.now, env.environ)
        if approved_by is None:
            raise FailsafeTripped(fresh)
    journal = env.journal(platform_name, fresh.commit)
    if not fresh.actions:
        result = ApplyResult()
    else:
        with env.client(env.platform(platform_name)) as client:
            missing = client.capabilities().missing(required_functions(fresh))
            if missing:
                raise ConfigError(
                    f"the {platform_name} token may not call {', '.join(missing)}; nothing "
                    "applied (add them to the token's web service, or use the write token)"
                )
            result = apply_plan(fresh, client, journal, progress)
    snapshot = env._snapshot
    if snapshot is not None and snapshot.healthy and result.ok:
        record_good_run(snapshot, env.settings, env.now)
    return ApplyOutcome(fresh, result, approved_by)
