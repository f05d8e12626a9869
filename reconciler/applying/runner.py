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
from ..declarations.lint import plan_blocking
from ..declarations.loader import DeclarationSet, load_declarations
from ..errors import (
    ConfigurationError,
    DeclarationErrors,
    ExitCode,
    ReconcilerError,
    StalePlan,
    most_severe,
)
from ..history.entries import courses_by_cohort
from ..history.record import Recorder
from ..history.spool import DEFAULT_DIR as HISTORY_DIR
from ..history.spool import Spool
from ..moodle.client import MoodleClient
from ..planning.desired import build_desired
from ..planning.failsafe import FailsafeTripped
from ..planning.grace import LeaversRecord, apply_grace
from ..planning.manual import unrecorded
from ..planning.patterns import expand_patterns
from ..planning.plan import Plan
from ..planning.planner import compute_plan
from ..planning.reader import read_actual, read_courses
from ..planning.stale import stale_message, why_stale
from ..planning.state import ActualState, DesiredState
from ..planning.usermap import UserResolver, final_plan, map_file
from ..settings import PlatformSettings, Settings, TokenUse
from ..sources import SourceSnapshot, read_sources, record_good_run
from ..sources.health import load_state, state_path
from .applier import ApplyResult, ProgressCallback, apply_plan, required_functions
from .approvals import DEFAULT_FILE as APPROVALS_FILE
from .approvals import find_approval
from .journal import Journal
from .leavers import load_record, record_path, save_record
from .ledger_file import LedgerStore, ledger_path

STATE_DIR = ".reconciler"
JOURNAL_FILE = f"{STATE_DIR}/journal.jsonl"


def _default_client(
    platform: PlatformSettings, environ: Mapping[str, str], use: TokenUse = "write"
) -> MoodleClient:
    token = platform.token(dict(environ), use)
    if not token:
        if use == "read-only":
            raise ConfigurationError(
                f"no read-only web-service token for {platform.name}: set the environment "
                f"variable {platform.readonly_token_env} (a merge request's plan never uses "
                f"the write token {platform.token_env})"
            )
        also = "" if use == "write" else (
            f" (or {platform.readonly_token_env}, which this command prefers)")
        raise ConfigurationError(
            f"no web-service token for {platform.name}: set the environment variable "
            f"{platform.token_env}{also}"
        )
    return MoodleClient(platform.effective_url(dict(environ)), token)


@dataclass
class Environment:
    """Where one run's data comes from and goes to. The defaults are the real endpoints
    named by the process environment (``ECAMPUS_URL``/``ECAMPUS_TOKEN``..., ``APOGEE_URL``,
    ``LDAP_URL``); the demo and the tests pass their own ``client_factory`` (a platform's
    settings -> a context manager giving a Moodle client) and ``sources_reader``.

    ``now`` is timezone-aware (UTC by default); expiry dates are judged on ``today``, its
    Europe/Paris date. Declarations and sources are read once per environment.
    """

    repo: Path
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    client_factory: Callable[[PlatformSettings], AbstractContextManager[Any]] | None = None
    # (settings, platforms with general cohorts, today in Paris) -> what the sources say
    sources_reader: Callable[[Settings, list[str], dt.date], SourceSnapshot] | None = None
    journal_path: Path | None = None
    approvals_path: Path | None = None
    ledger_dir: Path | None = None
    # Where the user-id maps live (default: next to the source-health state, .reconciler/).
    user_map_dir: Path | None = None
    history_path: Path | None = None
    # Which token the default client presents: ``write`` (apply), ``read`` (commands that
    # only read: the read-only token when set) or ``read-only`` (a merge request's plan).
    token_use: TokenUse = "write"
    _decls: DeclarationSet | None = field(default=None, init=False, repr=False)
    _snapshot: SourceSnapshot | None = field(default=None, init=False, repr=False)
    # Per platform, the leavers record of the last plan, saved by apply (None: keep the file).
    _leavers: dict[str, LeaversRecord | None] = field(
        default_factory=dict, init=False, repr=False)

    @property
    def today(self) -> dt.date:
        """``now``'s date in Europe/Paris (expiry dates are Paris days)."""
        return today_in_paris(self.now)

    def declarations(self) -> DeclarationSet:
        """``cohorts/`` of ``repo``, loaded and schema-checked once. Raises
        ``DeclarationErrors`` when ``platforms.yaml`` itself is unusable."""
        if self._decls is None:
            self._decls = load_declarations(self.repo / "cohorts", self.repo)
            if self._decls.settings is None:
                raise DeclarationErrors(
                    "cohorts/platforms.yaml has errors (run `reconcile validate`): "
                    + self._decls.error_summary()
                )
        return self._decls

    @property
    def settings(self) -> Settings:
        """The typed ``platforms.yaml`` (see ``declarations``)."""
        settings = self.declarations().settings
        assert settings is not None
        return settings

    def platform(self, name: str) -> PlatformSettings:
        """One platform's settings; an unknown name raises ``ConfigurationError`` listing
        the known ones."""
        try:
            return self.settings.platform(name)
        except KeyError as exc:
            raise ConfigurationError(str(exc.args[0])) from None

    def sources(self) -> SourceSnapshot:
        """APOGÉE and the directory, read once for every platform with general cohorts
        (``read_sources``: a source failure is an unhealthy snapshot, never an exception)."""
        if self._snapshot is None:
            names = [n for n, p in self.settings.platforms.items() if p.general_cohorts.enabled]
            if self.sources_reader is not None:
                self._snapshot = self.sources_reader(self.settings, names, self.today)
            else:
                self._snapshot = read_sources(self.settings, self.environ, platforms=names,
                                              today=self.today)
        return self._snapshot

    @property
    def sources_read(self) -> SourceSnapshot | None:
        """The snapshot this environment has read so far, or None (nothing read yet)."""
        return self._snapshot

    def keep_leavers(self, platform: PlatformSettings, desired: DesiredState,
                     actual: ActualState) -> DesiredState:
        """``desired`` with the general cohorts' leavers kept through their grace period,
        from the saved record; the new record waits for ``save_leavers``."""
        record, problem = load_record(record_path(self.repo, platform.name))
        outcome = apply_grace(desired, actual, platform, self.settings.academic_year,
                              self.today, record, problem)
        self._leavers[platform.name] = outcome.record
        return outcome.desired

    def save_leavers(self, platform: str) -> None:
        """Save what the last plan of ``platform`` saw of its leavers (before any write:
        the days first seen gone are facts, whether the apply then succeeds or stops).
        Raises ConfigurationError when the file cannot be written."""
        record = self._leavers.get(platform)
        if record is None:
            return
        path = record_path(self.repo, platform)
        try:
            save_record(path, record)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot save the leavers record {path} ({exc.strerror or exc}); without it "
                "grace periods would restart at every run") from None

    @contextmanager
    def client(self, platform: PlatformSettings, use: TokenUse | None = None) -> Iterator[Any]:
        """A Moodle client for ``platform``, closed on exit. Without a ``client_factory``,
        a ``MoodleClient`` on the platform's URL with the token ``use`` selects (default
        ``token_use``; ``PlatformSettings.token``); a missing token raises
        ``ConfigurationError`` naming the variable to set."""
        if self.client_factory is not None:
            with self.client_factory(platform) as client:
                yield client
        else:
            with _default_client(platform, self.environ, use or self.token_use) as client:
                yield client

    def journal(self, platform: str, commit: str | None) -> Journal:
        """The apply journal (``.reconciler/journal.jsonl`` unless ``journal_path``)."""
        return Journal(self.journal_path or self.repo / JOURNAL_FILE, platform, commit)

    def user_map(self, platform: str) -> UserResolver:
        """The user look-ups of one plan, with the platform's map (planning/usermap.py)."""
        folder = self.user_map_dir or state_path(self.settings).parent
        return UserResolver(map_file(folder, platform), platform, self.today)

    def approvals(self) -> Path:
        """The approvals file (``.reconciler/approvals.json`` unless ``approvals_path``)."""
        return self.approvals_path or self.repo / APPROVALS_FILE

    def ledger(self, platform: PlatformSettings) -> LedgerStore:
        """The manual-enrolment ledger of ``platform`` at its effective URL, read from
        ``.reconciler/manual-enrolments-<platform>.json`` (unless ``ledger_dir``). Raises
        ``LedgerFileError`` when that file is unreadable."""
        path = ledger_path(self.ledger_dir or self.repo / STATE_DIR, platform.name)
        return LedgerStore.open(path, platform.name, platform.effective_url(dict(self.environ)))

    def history(self) -> Spool:
        """History entries not pushed yet (``.reconciler/history/`` unless
        ``history_path``); ``reconcile history push`` sends them to the history branch."""
        return Spool(self.history_path or self.repo / HISTORY_DIR)

    def recorder(self, platform: str) -> Recorder:
        """What ``apply`` writes to the history for ``platform``: entries at ``now``, with
        the courses that sync each cohort, the year of the last good run if it differs
        (the rollover) and the commits that removed declarations (looked up in ``repo``)."""
        settings = self.settings
        state, _ = load_state(state_path(settings))
        previous = str(state["academic_year"]) if state else None
        return Recorder(
            self.history(),
            self.now,
            courses_by_cohort(self.declarations().syncs_of(platform)),
            previous if previous and previous != settings.academic_year else None,
            self.repo,
        )


@dataclass
class Planned:
    """A plan with the two states it was computed from (checks that need the names Moodle
    and the sources know, such as a merge request's typos, read them here), and the
    manual-enrolment ledger it read (``apply`` keeps it in step with the plan)."""

    plan: Plan
    desired: DesiredState
    actual: ActualState
    ledger: LedgerStore | None = None


def make_plan(env: Environment, platform_name: str) -> Plan:
    """Read everything and compute the plan of one platform, writing nothing to Moodle.

    Reads the declarations, the sources (platforms with general cohorts only), the
    manual-enrolment ledger, then Moodle in bulk (``read_actual``, users through the
    platform's user-id map), and computes the plan (``compute_plan``), final once every user
    its writes concern was looked up afresh (``final_plan``), stamped with the git commit of
    ``env.repo``, whether ``cohorts/`` is dirty, and ``env.now``. Saves the user-id map (the
    one file it writes). Raises ``DeclarationErrors`` (declarations with errors: nothing is
    planned), ``ConfigurationError`` (unknown platform, missing token, unreadable ledger) or
    ``MoodleError``."""
    return plan_with_states(env, platform_name).plan


def plan_with_states(env: Environment, platform_name: str) -> Planned:
    """``make_plan``, keeping the desired and actual states and the manual-enrolment ledger
    next to the plan (same errors)."""
    platform = env.platform(platform_name)
    decls = env.declarations()
    blocking = plan_blocking(decls, env.today) if decls.settings else []
    if decls.has_errors or blocking:
        raise DeclarationErrors(
            "the declarations have errors (run `reconcile validate`); nothing planned: "
            + decls.error_summary(blocking)
        )
    snapshot = env.sources() if platform.general_cohorts.enabled else None
    desired = build_desired(decls, env.settings, platform_name, env.today, snapshot)
    store = env.ledger(platform)
    users = env.user_map(platform_name)
    with env.client(platform) as client:
        actual = read_actual(client, platform, desired, users,
                             recorded_courses=store.ledger.courses())
        # Course patterns meet Moodle's courses before the grace: their syncs ask for it too.
        desired = expand_patterns(desired, actual)

        planned_from = [desired]  # the desired state of the last computation (grace kept)

        def compute() -> Plan:
            planned_from[0] = env.keep_leavers(platform, desired, actual)
            return compute_plan(planned_from[0], actual, platform, env.today,
                                env.settings.academic_year, ledger=store.ledger)

        # Final only once every user a write concerns was confirmed by Moodle tonight.
        plan = final_plan(compute, users, client, actual)
    users.save(actual, env.now)
    desired = planned_from[0]
    info = git_info(env.repo)
    plan.commit, plan.dirty = info.commit, info.dirty
    plan.created_at = env.now.isoformat(timespec="seconds")
    return Planned(plan, desired, actual, store)


def _keep_ledger(planned: Planned) -> LedgerStore | None:
    """Before applying: the ledger started when missing (on every platform, so that a
    missing file later means a lost one, not a platform that never had manual syncs) and
    pruned of what can no longer be ended, saved. Raises LedgerFileError."""
    store, desired, actual = planned.ledger, planned.desired, planned.actual
    if store is None:
        return None
    if not store.ledger.found:
        lost = unrecorded(desired, actual)
        store.start(lost.until if lost.count else 0)
    store.replace(store.ledger.pruned(actual.enrolled, actual.missing_courses))
    return store


@dataclass
class PatternExplanation:
    """What ``explain_patterns`` read and found: each pattern's report (``expand_patterns``:
    courses, left out, overridden, unresolved), the number of courses Moodle listed, and
    whether the categories were read."""

    platform: str
    patterns: list[dict[str, Any]]
    courses: int
    categories_read: bool


def explain_patterns(env: Environment, platform_name: str) -> PatternExplanation:
    """Which courses each course pattern of ``platform_name`` matches today, read from
    Moodle (courses, and categories when a pattern names one: one or two calls after the
    site info; read-only). Raises ``DeclarationErrors``, ``ConfigurationError``, MoodleError."""
    platform = env.platform(platform_name)
    decls = env.declarations()
    desired = build_desired(decls, env.settings, platform_name, env.today, None)
    actual = ActualState()
    if desired.patterns:
        with env.client(platform) as client:
            read_courses(client, client.capabilities(), desired, actual)
    expanded = expand_patterns(desired, actual)
    return PatternExplanation(platform_name, expanded.pattern_report, len(actual.courses),
                              actual.categories is not None)


@dataclass
class ApplyOutcome:
    """What ``apply`` did: the fresh plan it applied, each action's result, and who approved
    the plan when a failsafe tripped."""

    plan: Plan
    result: ApplyResult
    approved_by: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        """What ``reconcile apply`` exits with once it applied (refusals raise before):
        1 an action failed or was skipped, 4 a source unhealthy, 7 the plan incomplete,
        else 0; the most severe wins (``errors.PRECEDENCE``)."""
        codes = self.plan.exit_codes() - {ExitCode.CHANGES, ExitCode.FAILSAFE}
        if not self.result.ok:
            codes.add(ExitCode.ERROR)
        return most_severe(codes)


def apply(
    env: Environment,
    platform_name: str,
    saved: Plan | None = None,
    allow_dirty: bool = False,
    progress: ProgressCallback | None = None,
) -> ApplyOutcome:
    """Plan afresh, check (stale, dirty, failsafes, the token's write functions), then
    apply. Every refusal is raised before the first write, with the note "nothing applied"
    (``StalePlan``, ``FailsafeTripped``, ``ConfigurationError``, ``DeclarationErrors``,
    ``MoodleError`` while reading). The leavers record of the grace periods is saved first,
    whatever follows: a stopped apply must not restart anyone's grace."""
    platform = env.platform(platform_name)
    try:
        planned = plan_with_states(env, platform_name)
        fresh = planned.plan
        env.save_leavers(platform_name)
        if saved is not None:
            if saved.platform != platform_name:
                raise ConfigurationError(f"the plan is for {saved.platform}, not {platform_name}")
            reasons = why_stale(saved, fresh)
            if reasons:
                raise StalePlan(stale_message(saved, fresh, reasons))
        if fresh.dirty and not allow_dirty:
            raise ConfigurationError(
                "cohorts/ has uncommitted changes; commit them or pass --allow-dirty"
            )
        approved_by = None
        if fresh.failsafe_tripped:
            approved_by = find_approval(fresh, env.approvals(), env.now, env.environ)
            if approved_by is None:
                env.recorder(platform_name).refused(fresh)
                raise FailsafeTripped(fresh)
    except ReconcilerError as exc:
        if not exc.multiline:
            exc.add_note("nothing applied")
        raise
    journal = env.journal(platform_name, fresh.commit)
    ledger = _keep_ledger(planned)
    if not fresh.actions:
        result = ApplyResult()
    else:
        with env.client(platform, "write") as client:
            try:
                missing = client.capabilities().missing(required_functions(fresh))
                if missing:
                    raise ConfigurationError(
                        f"the {platform_name} token may not call {', '.join(missing)} (add "
                        "them to the token's web service, or use the write token)"
                    )
            except ReconcilerError as exc:
                exc.add_note("nothing applied")
                raise
            result = apply_plan(fresh, client, journal, progress, ledger=ledger)
    env.recorder(platform_name).applied(
        fresh, result.done, len(result.failed), len(result.skipped), approved_by
    )
    snapshot = env.sources_read
    if snapshot is not None and snapshot.healthy and result.ok:
        record_good_run(snapshot, env.settings, env.now)
    return ApplyOutcome(fresh, result, approved_by)
