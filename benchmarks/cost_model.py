"""Real-Moodle seconds of a web-service call: a cost model fitted on timings of a real site.

Every call is priced ``base + per_item × items sent + per_row × rows answered``, with one
``(base, per_item, per_row)`` per web-service function, fitted by least squares on
``data/real-moodle-timings.jsonl`` (single calls timed end to end against a real Moodle 4.5.5+
on loopback: PHP built-in server, PostgreSQL, 2 vCPU; see the project's notes on the real
site). *Items sent* are the elements of the call's list parameter (usernames, members,
cohort ids…); *rows answered* are the records of the answer (users, member ids, courses…).

How each recorded call is read (``SAMPLES``) and the choices the data forces:

* a function timed at a single size cannot separate its fixed cost from its per-item cost:
  its base is the site's round trip (``get_site_info``) and the rest is per item (or row);
* ``get_users_by_field`` always answered as many users as it was sent: its per-user cost
  is put on the rows answered (the full user record is what Moodle spends its time on,
  ~3.5 ms a user), so a look-up of a missing user costs the base only;
* calls that refused or truncated their input (over ``max_input_vars``), that added members
  already present (nothing inserted), that read every user field (the reconciler asks for
  ``id`` and ``roles`` only) or that ran outside HTTP are left out;
* members added to or removed from a cohort *linked to a course* cost about 2.4 × / 7 × as
  much (Moodle enrols or unenrols each at once); both peers of the benchmark add and remove
  the same members, so this is left out of the model rather than guessed per cohort;
* functions never timed on the real site are priced by analogy (``ASSUMED``): reads at the
  round trip plus the per-row cost of ``get_enrolled_users(userfields=id)``, writes at the
  round trip plus the per-item cost of ``add_cohort_members``. The enrolments a new cohort
  sync makes at once (about 3.2 ms a member, in-process) are not priced.

The fit of the committed recordings (``python benchmarks/cost_model.py`` prints it with how
each line was obtained):

    function                                 base ms  per item ms  per row ms
    core_cohort_add_cohort_members              28.1        2.573      0.0000
    core_cohort_create_cohorts                  30.0        0.000      0.7349
    core_cohort_delete_cohort_members           38.3        1.285      0.0000
    core_cohort_delete_cohorts                  30.0        2.573      0.0000
    core_cohort_get_cohort_members              21.7        0.727      0.0067
    core_cohort_get_cohorts                     24.9        0.000      0.0699
    core_cohort_search_cohorts                  30.0        0.000      0.0000
    core_cohort_update_cohorts                  30.0        2.573      0.0000
    core_course_get_categories                  30.0        0.000      0.5584
    core_course_get_courses_by_field            30.0        0.000      3.2373
    core_enrol_get_enrolled_users               43.2        0.000      0.5584
    core_group_create_groups                    36.6        0.000      6.9943
    core_group_get_course_groups                30.0        0.000      0.3295
    core_user_create_users                      30.0        9.245      0.0000
    core_user_get_users_by_field                31.3        0.056      3.8398
    core_webservice_get_site_info               30.0        0.000      0.0000
    enrol_manual_enrol_users                    30.0        7.028      0.0000
    enrol_manual_unenrol_users                  30.0        6.069      0.0000
    local_ws_enrolcohort_add_instance           30.0        0.000     11.6864
    local_ws_enrolcohort_delete_instance        30.0        2.573      0.0000
    local_ws_enrolcohort_get_instances          30.0        0.000      1.1187
    local_ws_enrolcohort_update_instance        30.0        0.000      9.5487

``local_ws_enrolcohort_add_instance`` was timed on cohorts of 16 members; it enrols each member
at once, so it is underpriced for larger cohorts (first runs only).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
TIMINGS = DATA / "real-moodle-timings.jsonl"
# Recorded by record_real_timings.py: items and rows in every record, and the session's
# round trip, to which the record is rescaled (see load_recorded).
MORE_TIMINGS = DATA / "real-moodle-timings-2.jsonl"
ROUND_TRIP = "core_webservice_get_site_info"
# Lists that tune a call rather than carry its work.
OPTION_LISTS = frozenset({"options", "criteria"})
_INDEXED = re.compile(r"^([^\[]+)\[(\d+)\]")


def count_items(pairs: Sequence[tuple[str, str]]) -> int:
    """Items sent in one call: the elements of its list parameters (``values[3]``,
    ``members[12][usertype][value]``…), from the call's form pairs (header excluded)."""
    return len({m.groups() for key, _ in pairs
                if (m := _INDEXED.match(key)) and m.group(1) not in OPTION_LISTS})


def count_rows(answer: Any) -> int:
    """Rows answered by one call: records of a list answer (member ids for
    ``get_cohort_members``), or the records of the lists a mapping answer holds
    (``courses``, ``data``, ``cohorts``…); an exception answers none."""
    if isinstance(answer, list):
        if answer and all(isinstance(e, dict) and "userids" in e for e in answer):
            return sum(len(e.get("userids") or []) for e in answer)
        return len(answer)
    if isinstance(answer, dict) and "exception" not in answer:
        return sum(len(v) for v in answer.values() if isinstance(v, list))
    return 0

# label of a recorded call -> (items sent, rows answered), or the reason it is left out.
SAMPLES: dict[str, tuple[int, int] | str] = {
    "get_site_info (baseline round trip)": (0, 0),
    "core_user_create_users x100": (100, 100),
    "add_cohort_members x1": (1, 0),
    "add_cohort_members x100": (100, 0),
    "add_cohort_members x500 (new cohort)": (500, 0),
    "add_cohort_members x1000": (1000, 0),
    "add_cohort_members x1000 all already present (1000 warnings)":
        "members already present: nothing inserted",
    "add_cohort_members x1000 into cohort linked to a course (enrols each)":
        "cohort linked to a course: enrols each member",
    "add_cohort_members x1000 into cohort linked to a course (cohort sync enrols each)":
        "cohort linked to a course: enrols each member",
    "add_cohort_members x2600 over max_input_vars (body)": "refused: over max_input_vars",
    "add_cohort_members x2600 over max_input_vars (query-string header)":
        "refused: over max_input_vars",
    "add_cohort_members x2600 over max_input_vars (silently truncated to 2499)":
        "truncated by max_input_vars",
    "delete_cohort_members x100": (100, 0),
    "delete_cohort_members x1000": (1000, 0),
    "delete_cohort_members x1000 from cohort linked to a course (unenrols each)":
        "cohort linked to a course: unenrols each member",
    "delete_cohort_members x1000 from cohort linked to a course (cohort sync unenrols each)":
        "cohort linked to a course: unenrols each member",
    "enrol_manual_enrol_users x100 (with timeend)": (100, 0),
    "enrol_manual_unenrol_users x100": (100, 0),
    "get_cohort_members 500": (1, 500),
    "get_cohort_members 1 cohort x1000 members": (1, 1000),
    "get_cohort_members 3 cohorts x1000 members in one call": (3, 3000),
    "get_enrolled_users ~1000 users userfields=id": (0, 1000),
    "get_enrolled_users ~1000 users all fields": "every user field (the reconciler asks for id)",
    "get_users_by_field username x1": (1, 1),
    "get_users_by_field username x100": (100, 100),
    "get_users_by_field username x1000": (1000, 1000),
    "get_users_by_field idnumber x1000": (1000, 1000),
    "PHP add_instance(enrol_cohort) for a cohort of 1000 members (in-process, no HTTP)":
        "in-process, no web-service call",
}

# Functions never timed on the real site: priced like the closest measured one.
READ_ANALOGY = ("core_enrol_get_enrolled_users", "per_row")
WRITE_ANALOGY = ("core_cohort_add_cohort_members", "per_item")
ASSUMED: dict[str, tuple[str, str]] = {
    "core_cohort_get_cohorts": READ_ANALOGY,
    "core_cohort_search_cohorts": READ_ANALOGY,
    "core_course_get_courses_by_field": READ_ANALOGY,
    "core_course_get_categories": READ_ANALOGY,  # course patterns naming a category
    "core_group_get_course_groups": READ_ANALOGY,
    "local_ws_enrolcohort_get_instances": READ_ANALOGY,
    "core_cohort_create_cohorts": WRITE_ANALOGY,
    "core_cohort_update_cohorts": WRITE_ANALOGY,
    "core_cohort_delete_cohorts": WRITE_ANALOGY,
    "core_group_create_groups": WRITE_ANALOGY,
    "local_ws_enrolcohort_add_instance": WRITE_ANALOGY,
    "local_ws_enrolcohort_update_instance": WRITE_ANALOGY,
    "local_ws_enrolcohort_delete_instance": WRITE_ANALOGY,
}


@dataclass(frozen=True)
class Sample:
    function: str
    items: int
    rows: int
    seconds: float


@dataclass(frozen=True)
class Cost:
    """Seconds of one call: ``base + per_item × items + per_row × rows``."""

    base: float
    per_item: float
    per_row: float
    basis: str  # how the figures were obtained

    def seconds(self, items: int, rows: int) -> float:
        return self.base + self.per_item * items + self.per_row * rows


def load_recorded(path: Path = MORE_TIMINGS, reference_round_trip: float | None = None
                  ) -> list[Sample]:
    """Records of ``record_real_timings.py`` as ``Sample``. Each is rescaled by
    ``reference_round_trip / round_trip_s`` (its session's round trip) so that a recording
    made on a busier machine prices calls on the first recording's scale."""
    if not path.exists():
        return []
    samples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        scale = (reference_round_trip / record["round_trip_s"]) if reference_round_trip else 1.0
        if record["wsfunction"] == ROUND_TRIP:
            continue  # the session's round trip only sets the scale
        samples.append(Sample(record["wsfunction"], int(record["items"]), int(record["rows"]),
                              float(record["seconds"]) * scale))
    return samples


def load_samples(path: Path = TIMINGS) -> list[Sample]:
    """The recorded calls ``SAMPLES`` keeps, as ``Sample``; an unknown label is an error
    (every recorded call is either read or left out for a stated reason)."""
    samples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        size = SAMPLES.get(record["label"])
        if size is None:
            raise ValueError(f"{path.name}: no reading for the label {record['label']!r}")
        if isinstance(size, tuple):
            samples.append(Sample(record["wsfunction"], size[0], size[1],
                                  float(record["seconds"])))
    return samples


def _least_squares(rows: list[list[float]], y: list[float], seconds: list[float]
                   ) -> list[float]:
    """Least squares of the error relative to each call's ``seconds`` (rows weighted by
    1/seconds), so that one-item calls fit as well as 1,000-item ones; normal equations,
    Gaussian elimination."""
    rows = [[v / t for v in r] for r, t in zip(rows, seconds, strict=True)]
    y = [v / t for v, t in zip(y, seconds, strict=True)]
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    b = [sum(r[i] * v for r, v in zip(rows, y, strict=True)) for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda k: abs(a[k][col]))
        a[col], a[pivot] = a[pivot], a[col]
        b[col], b[pivot] = b[pivot], b[col]
        for k in range(col + 1, n):
            f = a[k][col] / a[col][col]
            a[k] = [x - f * p for x, p in zip(a[k], a[col], strict=True)]
            b[k] -= f * b[col]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (b[i] - sum(a[i][j] * x[j] for j in range(i + 1, n))) / a[i][i]
    return x


def _fit_one(samples: list[Sample], round_trip: float) -> Cost:
    items = {s.items for s in samples}
    rows = {s.rows for s in samples}
    # Which size varies independently: items, rows, or both.
    use_items = len(items) > 1
    use_rows = len(rows) > 1 and any(s.items != s.rows for s in samples)
    if len(rows) > 1 and not use_rows and use_items:
        use_items, use_rows = False, True  # items == rows: the rows answered carry the cost
    if not use_items and not use_rows:
        # One size only: the base is the site's round trip, the rest per item (or row).
        mean = statistics.fmean(s.seconds for s in samples)
        n_items, n_rows = next(iter(items)), next(iter(rows))
        if n_items == 0 and n_rows == 0:
            return Cost(mean, 0.0, 0.0, f"mean of {len(samples)}")
        extra = max(mean - round_trip, 0.0)
        if n_rows > n_items:
            return Cost(round_trip, 0.0, extra / n_rows,
                        f"one size, {len(samples)} calls; base: round trip")
        return Cost(round_trip, extra / n_items, 0.0,
                    f"one size, {len(samples)} calls; base: round trip")
    columns = ["items"] * use_items + ["rows"] * use_rows
    y = [s.seconds for s in samples]
    coef = _least_squares([[1.0] + [float(getattr(s, c)) for c in columns] for s in samples], y,
                          y)
    base, fitted = coef[0], dict(zip(columns, coef[1:], strict=True))
    basis = f"fit on {len(samples)} calls"
    if min(coef) < 0:
        # A negative cost is noise between too few sizes: fix the base at the round trip
        # and fit what is left through the origin, dropping any column still negative.
        base, basis = round_trip, basis + "; base: round trip"
        rest = [t - round_trip for t in y]
        while columns:
            coef = _least_squares([[float(getattr(s, c)) for c in columns] for s in samples],
                                  rest, y)
            fitted = dict(zip(columns, coef, strict=True))
            if min(coef) >= 0:
                break
            columns = [c for c in columns if fitted[c] >= 0]
            fitted = {}
    return Cost(base, fitted.get("items", 0.0), fitted.get("rows", 0.0), basis)


class CostModel:
    """Per-function costs fitted on the recorded timings, plus the documented analogies."""

    def __init__(self, samples: Iterable[Sample] | None = None) -> None:
        if samples is None:
            first = load_samples()
            reference = statistics.fmean(s.seconds for s in first if s.function == ROUND_TRIP)
            samples = first + load_recorded(reference_round_trip=reference)
        by_function: dict[str, list[Sample]] = {}
        for s in samples:
            by_function.setdefault(s.function, []).append(s)
        round_trip = statistics.fmean(s.seconds for s in by_function[ROUND_TRIP])
        self.round_trip = round_trip
        self.costs: dict[str, Cost] = {
            f: _fit_one(group, round_trip) for f, group in sorted(by_function.items())
        }
        for function, (like, part) in ASSUMED.items():
            if function in self.costs:
                continue  # measured after all
            ref = self.costs[like]
            self.costs[function] = Cost(
                round_trip,
                ref.per_item if part == "per_item" else 0.0,
                ref.per_row if part == "per_row" else 0.0,
                f"not timed: {part} as {like.split('_', 1)[1]}",
            )

    def cost(self, function: str) -> Cost:
        """The cost of ``function``; an unknown function is priced as a bare round trip."""
        return self.costs.get(function) or Cost(self.round_trip, 0.0, 0.0, "round trip only")

    def seconds(self, function: str, items: int, rows: int) -> float:
        return self.cost(function).seconds(items, rows)

    def table(self) -> str:
        """The model as a Markdown table (milliseconds)."""
        lines = ["| function | base ms | per item ms | per row ms | basis |",
                 "|---|---|---|---|---|"]
        for function, c in sorted(self.costs.items()):
            lines.append(f"| {function} | {c.base * 1e3:.1f} | {c.per_item * 1e3:.3f} | "
                         f"{c.per_row * 1e3:.4f} | {c.basis} |")
        return "\n".join(lines)


if __name__ == "__main__":
    print(CostModel().table())
