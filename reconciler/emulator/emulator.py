"""MoodleEmulator: the Python API tests and benchmarks code against."""

from __future__ import annotations

import collections
import copy
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import sync
from .config import EmulatorConfig
from .dispatcher import Dispatcher, Response
from .errors import WSError
from .functions.services import is_write
from .phpform import nest, truncate
from .seed import seed_state
from .server import Outcome, make_server
from .state import State

FAULT_KINDS = ("http500", "timeout", "drop", "exception")
# Faults that may also strike after the call committed (its answer is lost): see inject_fault.
AFTER_COMMIT_KINDS = ("http500", "timeout", "drop")


def _timestamp(moment: dt.datetime | None) -> float | None:
    """Naive datetimes are taken as UTC (the recording's clock is UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


@dataclass
class _Fault:
    kind: str
    function: str | None
    skip: int
    times: int
    after_commit: bool = False


@dataclass
class _WriteHook:
    """``callback`` runs once, after the ``remaining``-th next committed write."""

    remaining: int
    callback: Callable[[], None]


class MoodleEmulator:
    """A Moodle 4.5 web-service site in memory, served over HTTP on 127.0.0.1."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._now: float | None = _timestamp(self.config.now)
        self.state = State(clock=self._clock)
        self.dispatcher = Dispatcher(self.state, self.config)
        self.call_counts: collections.Counter[str] = collections.Counter()
        self.call_log: list[tuple[str, int, float]] = []
        self.fault_timeout_s = 30.0  # "timeout" faults sleep this long, past client timeouts
        self._faults: list[_Fault] = []
        self._write_hooks: list[_WriteHook] = []
        self.committed_writes = 0  # write calls that committed (answered or not)
        self._lock = threading.RLock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- clock ---------------------------------------------------------------------------
    def _clock(self) -> float:
        return self._now if self._now is not None else time.time()

    def set_now(self, moment: dt.datetime | None) -> None:
        """Fix the clock (timezone-aware datetime), or None for real time."""
        self._now = _timestamp(moment)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> MoodleEmulator:
        self._server = make_server(self.config.host, self.config.port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="moodle-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MoodleEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def siteurl(self) -> str:
        return self.config.siteurl or self.url

    # -- test hooks ----------------------------------------------------------------------
    def reset_counters(self) -> None:
        with self._lock:
            self.call_counts.clear()
            self.call_log.clear()

    def write_calls(self) -> dict[str, int]:
        """Calls received by each write function (``db/services.php`` type ``write``), even
        refused ones: a test that must change nothing asserts this is empty."""
        with self._lock:
            return {f: n for f, n in self.call_counts.items() if n and is_write(f)}

    def inject_fault(self, kind: str, function: str | None = None, on_call: int = 1,
                     times: int = 1, *, after_commit: bool = False) -> None:
        """Fail the ``on_call``-th next matching call, and ``times`` calls from there.

        By default the call fails before it runs (nothing changes). With ``after_commit``
        (``http500``, ``timeout``, ``drop`` only) the call runs and commits, then its answer
        is lost that way: what a client sees when PHP dies after the commit, a proxy times
        out, or the connection drops on the way back.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if after_commit and kind not in AFTER_COMMIT_KINDS:
            raise ValueError(f"{kind!r} cannot strike after the commit; expected one of "
                             f"{AFTER_COMMIT_KINDS}")
        with self._lock:
            self._faults.append(_Fault(kind, function, max(on_call, 1) - 1, times,
                                       after_commit))

    def after_committed_write(self, n: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, right after the ``n``-th next write call commits and before
        its answer is sent: e.g. kill the client process (SIGKILL after the N-th write) or
        revoke the token mid-run (``set_config(token=...)``). Write calls that fail (an
        exception answer, an injected fault before the commit) do not count."""
        if n < 1:
            raise ValueError("n counts from 1")
        with self._lock:
            self._write_hooks.append(_WriteHook(n, callback))

    def _committed_write(self) -> None:
        self.committed_writes += 1
        due = []
        for hook in self._write_hooks:
            hook.remaining -= 1
            if hook.remaining == 0:
                due.append(hook)
        self._write_hooks = [h for h in self._write_hooks if h.remaining > 0]
        for hook in due:
            hook.callback()

    def snapshot(self) -> State:
        """A deep copy of the site's tables, for ``restore`` (tests that replay one moment
        of a site many times, such as the fault matrix)."""
        with self._lock:
            return copy.deepcopy(self.state, {id(self): self})

    def restore(self, snapshot: State) -> None:
        """Put back the tables of ``snapshot`` (copied again, so it can be restored many
        times) and disarm every fault and write hook; counters and config are kept."""
        with self._lock:
            self.state = copy.deepcopy(snapshot, {id(self): self})
            self.dispatcher.state = self.state
            self._faults.clear()
            self._write_hooks.clear()

    def run_sync_task(self) -> None:
        """The hourly \\enrol_cohort\\task\\enrol_cohort_sync over every course."""
        with self._lock:
            sync.sync_course(self.state, None, self.config.unenrolaction)

    def seed(self, data: dict[str, Any]) -> None:
        with self._lock:
            seed_state(self.state, data)

    def set_config(self, **changes: Any) -> None:
        """Site changes made outside web services (debug, unenrolaction, ...)."""
        with self._lock:
            for name, value in changes.items():
                if not hasattr(self.config, name):
                    raise AttributeError(name)
                setattr(self.config, name, value)

    # -- serving -------------------------------------------------------------------------
    def _take_fault(self, function: str | None) -> _Fault | None:
        for fault in self._faults:
            if fault.function is not None and fault.function != function:
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            if fault.times > 0:
                fault.times -= 1
                return fault
        self._faults = [f for f in self._faults if f.times > 0]
        return None

    def process(self, query: list[tuple[str, str]], form: list[tuple[str, str]]) -> Outcome:
        """Serve one HTTP request (GET pairs, POST pairs); called by the server threads."""
        started = time.perf_counter()
        if not self.config.webservices_enabled:
            return Outcome("response", Response(403, b"", "text/html"))
        # PHP applies max_input_vars to each of $_GET and $_POST; POST wins on merge.
        limit = self.config.max_input_vars
        params = nest(truncate(query, limit))
        params.update(nest(truncate(form, limit)))
        function = params.get("wsfunction") if isinstance(params.get("wsfunction"), str) else None
        with self._lock:
            fault = self._take_fault(function)
            injected = None
            if fault is not None and fault.kind == "exception":
                injected = WSError("moodle_exception", "emulatorinjectedfault",
                                   "Injected fault (emulator)")
            response = None
            if fault is None or fault.kind == "exception" or fault.after_commit:
                response = self.dispatcher.handle(params, self.siteurl, injected)[2]
                if function and is_write(function) and not response.failed:
                    self._committed_write()
            self.call_counts[function or ""] += 1
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000.0)
        with self._lock:
            # params_count: the key=value pairs sent, what max_input_vars counts.
            npairs = len(query) + len(form)
            self.call_log.append((function or "", npairs, time.perf_counter() - started))
        if fault is not None and fault.kind == "http500":
            return Outcome("response", Response(500, b"", "text/html"))
        if fault is not None and fault.kind == "drop":
            return Outcome("drop")
        if fault is not None and fault.kind == "timeout":
            return Outcome("timeout", sleep_s=self.fault_timeout_s)
        return Outcome("response", response)
