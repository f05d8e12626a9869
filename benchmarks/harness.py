"""What the benchmarks share: a metered emulator, and each peer's night in a child process.

``MeteredEmulator`` records, for every web-service call, the function, the items it was sent
and the rows it answered (what ``cost_model.py`` prices). ``product_night`` runs one
``reconcile apply`` (or ``plan``) in a fresh process (``in_child``), so that its CPU seconds
and peak RSS are the reconciler's own, not the emulator's nor the world generator's; with
``profile`` it also writes a cProfile of that night, the client's thread pool run inline so
that every call's client work shows in it.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import multiprocessing
import pickle
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cost_model import CostModel, count_items, count_rows
from naive_sync import NaiveSync
from world import NIGHT, PLATFORM, SITEURL, World, moodle_seed

from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.functions import is_read

TOKEN = "bench-token"
HEADER = frozenset({"wstoken", "wsfunction", "moodlewsrestformat", "moodlewssettingraw",
                    "moodlewssettingfilter", "moodlewssettingfileurl"})


# -- metering -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    function: str
    items: int
    rows: int


class MeteredEmulator(MoodleEmulator):
    """The project's emulator, recording for every call its function, the items it was sent
    and the rows it answered (what the cost model prices)."""

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(config)
        self.calls: list[Call] = []
        self._meter_lock = threading.Lock()

    def process(self, query: list[tuple[str, str]], form: list[tuple[str, str]]) -> Any:
        outcome = super().process(query, form)
        pairs = [*query, *form]
        function = next((v for k, v in pairs if k == "wsfunction"), "")
        rows = 0
        if outcome.response is not None and outcome.response.status == 200:
            try:
                rows = count_rows(json.loads(outcome.response.body or b"null"))
            except ValueError:
                rows = 0
        call = Call(function, count_items([p for p in pairs if p[0] not in HEADER]), rows)
        with self._meter_lock:
            self.calls.append(call)
        return outcome

    def take(self) -> list[Call]:
        with self._meter_lock:
            calls, self.calls = self.calls, []
        return calls


def new_emulator(world: World, converged: bool, latency_ms: float = 0.0,
                 site: dict[str, Any] | None = None) -> MeteredEmulator:
    """An emulator holding ``world``'s Moodle (see ``world.moodle_seed``), or ``site`` (a seed
    built from it and extended, e.g. with course categories), started."""
    emu = MeteredEmulator(EmulatorConfig(token=TOKEN, latency_ms=latency_ms, now=NIGHT,
                                        siteurl=SITEURL))
    emu.start()
    emu.seed(site if site is not None else moodle_seed(world, converged=converged))
    return emu


@dataclass
class Priced:
    """Calls of one night, by function, with their real-Moodle seconds."""

    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: collections.Counter[str] = field(default_factory=collections.Counter)

    @classmethod
    def of(cls, calls: list[Call], model: CostModel) -> Priced:
        priced = cls()
        for c in calls:
            priced.calls[c.function] += 1
            priced.seconds[c.function] += model.seconds(c.function, c.items, c.rows)
        return priced

    def __add__(self, other: Priced) -> Priced:
        return Priced(self.calls + other.calls, self.seconds + other.seconds)

    def only(self, reads: bool) -> Priced:
        keep = {f for f in self.calls if is_read(f) == reads}
        return Priced(collections.Counter({f: n for f, n in self.calls.items() if f in keep}),
                      collections.Counter({f: s for f, s in self.seconds.items() if f in keep}))

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def breakdown(self) -> str:
        by_cost = sorted(self.calls.items(), key=lambda kv: -self.seconds[kv[0]])
        return ", ".join(f"{f.removeprefix('core_')} {n} ({self.seconds[f]:.1f} s)"
                         for f, n in by_cost)


# -- the two peers, each night in a child process ---------------------------------------------

def product_night(job: dict[str, Any]) -> dict[str, Any]:
    """One ``reconcile apply`` (``mode`` "apply") or ``plan`` in this fresh process.

    ``job``: ``snapshot`` (pickled SourceSnapshot), ``root`` (the repository), ``url``,
    ``now`` (ISO), ``map_dir`` (where the user-id map lives), ``environ``, optional
    ``profile`` (a pstats file to write). Returns the plan's summary and digest, CPU seconds
    (user + system) and wall seconds of the night, and the process's peak RSS in MB.
    """
    import gc

    from reconciler.applying.runner import Environment, apply, make_plan
    from reconciler.moodle.client import MoodleClient
    from reconciler.planning.failsafe import FailsafeTripped

    snapshot = pickle.loads(Path(job["snapshot"]).read_bytes())
    env = Environment(
        repo=Path(job["root"]), environ=job["environ"], now=dt.datetime.fromisoformat(job["now"]),
        client_factory=lambda p: MoodleClient(job["url"], TOKEN),
        sources_reader=lambda s, names, today=None: snapshot,
        # A reconciler from before the user-id map (a before/after comparison) has no such
        # field: it then runs as it always did.
        **({"user_map_dir": Path(job["map_dir"])}
           if "user_map_dir" in Environment.__dataclass_fields__ else {}),
    )
    env.declarations()  # the YAML files are not the client's nor the planner's work
    gc.collect()
    profiler = None
    if job.get("profile"):
        import cProfile

        from reconciler.moodle.transport import Transport

        # Every request on this thread, so the profile holds the client's whole work.
        Transport.map = lambda self, tasks, stop_on_error=True: self._map_inline(tasks)
        profiler = cProfile.Profile()
        profiler.enable()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    tripped = False
    if job["mode"] == "apply":
        try:
            outcome = apply(env, PLATFORM)
            plan, ok = outcome.plan, outcome.result.ok
        except FailsafeTripped as exc:
            plan, ok, tripped = exc.plan, False, True
    else:
        plan, ok = make_plan(env, PLATFORM), True
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(job["profile"])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "summary": plan.summary(), "digest": plan.digest(), "actions": len(plan.actions),
        "tripped": tripped or plan.failsafe_tripped, "ok": ok, "cpu_s": cpu, "wall_s": wall,
        "rss_mb": peak_rss_mb(), "user_map": plan.to_json().get("user_map"),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set since it started, in MB.

    Linux's VmHWM, not ``getrusage``: ``ru_maxrss`` survives exec, so a child spawned from a
    large parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def naive_night(job: dict[str, Any]) -> dict[str, Any]:
    """One run of the naive script over ``job["cohorts"]`` (a pickle of desired cohorts)."""
    cohorts = pickle.loads(Path(job["cohorts"]).read_bytes())
    started = time.perf_counter()
    summary = NaiveSync(job["url"], TOKEN).run(cohorts)
    return {"calls": dict(summary.calls), "wall_s": time.perf_counter() - started,
            "added": summary.members_added, "removed": summary.members_removed,
            "missing": summary.users_missing, "errors": summary.errors}


def in_child(target: Any, job: dict[str, Any]) -> dict[str, Any]:
    """``target(job)`` in a freshly spawned interpreter (nothing inherited from this one)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(target, (job,))


