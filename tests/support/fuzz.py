"""Settings and bookkeeping of the property-based bad-input tests (issue 12).

In CI every property test runs a fixed, small number of examples, derandomized (the same
cases on every run, a few seconds in all). The big campaign runs on demand::

    RECONCILER_FUZZ_EXAMPLES=5000 pytest -s -p no:cacheprovider \\
        tests/test_fuzz_declarations.py tests/test_fuzz_answers.py --hypothesis-seed=12

``RECONCILER_FUZZ_EXAMPLES`` is the number of examples of the main property test (the others
take a stated share of it: the tests through ``reconcile plan`` cost ~50 ms a case); the
campaign draws random cases (``--hypothesis-seed`` makes a run repeatable), fails any case
slower than 5 s (hypothesis' deadline), and prints, per test, the cases run and the slowest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import HealthCheck, settings

CAMPAIGN = int(os.environ.get("RECONCILER_FUZZ_EXAMPLES", "0") or 0)
HANG_SECONDS = 5.0
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large,
               HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]
# test name -> [cases run, slowest seconds]
STATS: dict[str, list[float]] = {}


def fuzz_settings(ci_examples: int, campaign_weight: float = 1.0) -> settings:
    """Hypothesis settings for one property test: ``ci_examples`` seeded cases, or, when
    RECONCILER_FUZZ_EXAMPLES is set, that many random ones times ``campaign_weight`` (slow
    or parametrized tests take a share)."""
    if CAMPAIGN:
        examples = max(ci_examples, round(CAMPAIGN * campaign_weight))
        return settings(max_examples=examples, derandomize=False, database=None,
                        deadline=timedelta(seconds=HANG_SECONDS),
                        suppress_health_check=_SUPPRESSED)
    return settings(max_examples=ci_examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=_SUPPRESSED, print_blob=True)


@contextmanager
def case(test: str) -> Iterator[None]:
    """Time one example of ``test`` into STATS."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        entry = STATS.setdefault(test, [0, 0.0])
        entry[0] += 1
        entry[1] = max(entry[1], elapsed)


def report() -> str:
    """One line per property test: cases run and the slowest, in seconds."""
    return "\n".join(
        f"fuzz {name}: {int(n)} cases, slowest {slowest:.3f} s"
        for name, (n, slowest) in sorted(STATS.items())
    )
