"""HTTP transport for Moodle's REST server: one keep-alive session, bounded concurrency,
timeouts, and retries only where they are safe.

* Reads are retried (with exponential backoff) on connection errors, timeouts and 5xx.
* Writes are retried only when the request provably never reached the server: connection
  refused or connect timeout. A write that got a 5xx or a read timeout may have committed,
  so it is raised, never resent blindly (callers may re-read and decide).
* The token lives in a :class:`Secret` and is redacted from every message this module builds,
  including the text of ``requests`` exceptions.
* Every JSON answer is checked against the shape its function declares (``returns``): a
  mismatch is an :class:`UnexpectedAnswer` naming the function and the field.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt

from .encoding import Pair
from .errors import (
    InvalidParameter,
    MoodleError,
    MoodleHTTPError,
    MoodleProtocolError,
    MoodleUnavailable,
    UnexpectedAnswer,
    from_response,
)
from .returns import describe, find_mismatch

log = logging.getLogger("reconciler.moodle")

ENDPOINT = "/webservice/rest/server.php"
T = TypeVar("T")
# An ``invalidparameter`` answer to a request this large mentions max_input_vars.
TRUNCATION_HINT_FIELDS = 20


class Secret:
    """A string that never shows itself in ``repr``/``str`` (logs, tracebacks, pytest)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


# Shorter "tokens" are not Moodle's (32 hex characters): masking every occurrence of one or
# two letters would garble the message (a test token "x" turned "exceeded" into "e***ceeded").
MIN_REDACTED_LENGTH = 6


def redact(text: str, secret: str) -> str:
    """Replace the secret, raw or URL-encoded in any form, by ``***`` (secrets shorter than
    ``MIN_REDACTED_LENGTH`` characters are left: they cannot be real tokens)."""
    if len(secret) < MIN_REDACTED_LENGTH:
        return text
    for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
        text = text.replace(form, "***")
    return text


def _error_fields(body: dict[str, Any], secret: str) -> dict[str, str | None]:
    """The fields of an error body the client reads, as redacted one-line text.

    Only these are kept: an error body of any other shape (a nested ``message``, a number)
    must not cost more than its printable summary.
    """
    out: dict[str, str | None] = {}
    for key in ("exception", "errorcode", "message", "debuginfo"):
        value = body.get(key)
        if value is None:
            out[key] = None
        else:
            out[key] = redact(value if isinstance(value, str) else describe(value, 200), secret)
    return out


@dataclass(frozen=True)
class RetryPolicy:
    read_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0

    def delay(self, attempt: int) -> float:
        base: float = min(self.max_backoff, self.backoff * 2.0**attempt)
        # A little jitter so concurrent retries do not hit a recovering server together.
        return base * (0.8 + 0.4 * random.random())


def _never_sent(exc: requests.RequestException) -> bool:
    """True when ``requests`` failed before any byte of the request left this host."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        # urllib3 wraps "connection refused"/DNS failures as NewConnectionError (a
        # ConnectTimeoutError subclass in urllib3 2.x, but check the name to be version-proof).
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        chain = [reason, getattr(reason, "__cause__", None)]
        return any(type(r).__name__ in ("NewConnectionError", "NameResolutionError")
                   for r in chain if r is not None)
    return False


class Transport:
    """Posts form-encoded calls to ``<base_url>/webservice/rest/server.php``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        concurrency: int = 4,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith(ENDPOINT):  # accept the endpoint URL as well as the site root
            self.base_url = self.base_url[: -len(ENDPOINT)]
        self.url = self.base_url + ENDPOINT
        self._token = Secret(token)
        self.concurrency = concurrency
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.session = session or requests.Session()
        # One pool of keep-alive connections sized to the concurrency; urllib3's own retries
        # are off because this class decides what is safe to resend.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, max_retries=0,
                              pool_block=True)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency,
                                        thread_name_prefix="moodle-ws")
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        self.calls = 0
        self.http_requests = 0

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r}, token=***, concurrency={self.concurrency})"

    # -- single call -------------------------------------------------------------------

    def header(self, function: str, *, raw: bool) -> list[Pair]:
        """Reserved fields, in the transcripts' order; they count against max_input_vars.
        ``body`` sends them with ``wsfunction`` moved to the end."""
        pairs: list[Pair] = [
            ("wstoken", self._token.reveal()),
            ("wsfunction", function),
            ("moodlewsrestformat", "json"),
        ]
        if raw:
            pairs.append(("moodlewssettingraw", "1"))
        return pairs

    def body(self, function: str, params: Sequence[Pair], *, raw: bool) -> list[Pair]:
        """The form fields of one call: the reserved ones, the parameters, and ``wsfunction``
        *last*. PHP keeps only the first ``max_input_vars`` fields and drops the rest
        silently (CONTRACT §2.4), so a site whose limit is below what a request carries
        would run the call on a cut list: a partial write, or a partial read taken for the
        whole. With the function name last, any cut drops it first and Moodle refuses the
        whole request (``invalidparameter``, before anything runs)."""
        head = self.header(function, raw=raw)
        name = head.pop(1)
        return [*head, *params, name]

    def header_size(self, *, raw: bool) -> int:
        return 4 if raw else 3

    def reveal_token(self) -> str:
        return self._token.reveal()

    def redact(self, text: str) -> str:
        return redact(text, self._token.reveal())

    def call(self, function: str, params: Sequence[Pair], *, is_read: bool) -> Any:
        """Send one request (retrying where safe) and return the decoded JSON answer."""
        body = self.body(function, params, raw=is_read)
        with self._stats_lock:
            self.calls += 1
        # tenacity runs the loop; what may be resent is decided here (_retryable), and the
        # last failure is what the caller gets once the retries are spent.
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.read_retries + 1),
            retry=retry_if_result(partial(_retryable, is_read=is_read)),
            wait=lambda state: self.retry.delay(state.attempt_number - 1),
            sleep=self._sleep,
            before_sleep=partial(self._log_retry, function),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        outcome = retrying(self._attempt, function, body, is_read=is_read)
        if isinstance(outcome, _Failure):
            raise outcome.error
        return outcome

    def _log_retry(self, function: str, state: RetryCallState) -> None:
        failure = state.outcome.result() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        message = failure.error.message if isinstance(failure, _Failure) else "?"
        log.warning("moodle %s: %s; retry %d/%d in %.2fs", function, message,
                    state.attempt_number, self.retry.read_retries, delay)

    def _attempt(self, function: str, body: list[Pair], *, is_read: bool) -> Any:
        fields = len(body)
        started = time.perf_counter()
        error: _Failure | None = None
        response: requests.Response | None = None
        with self._slots:
            with self._stats_lock:
                self.http_requests += 1
            try:
                response = self.session.post(self.url, data=body, timeout=self.timeout)
                # JSON is UTF-8; decoding ourselves avoids requests' charset sniffing, which
                # is slow on large answers that come without a charset parameter.
                text = response.content.decode("utf-8", errors="replace")
            except requests.RequestException as exc:
                # Build the error outside this block so the original exception (whose
                # request object holds the body, token included) is not chained.
                error = _Failure(
                    MoodleUnavailable(
                        self.redact(f"{type(exc).__name__}: {exc}"), function,
                        maybe_applied=not _never_sent(exc),
                        timed_out=isinstance(exc, requests.exceptions.ReadTimeout),
                    ),
                    transient=True,
                    never_sent=_never_sent(exc),
                )
        elapsed = time.perf_counter() - started
        if error is not None:
            log.info("moodle %s fields=%d failed after %.3fs: %s", function, fields, elapsed,
                     error.error.message)
            return error
        assert response is not None
        log.debug("moodle %s fields=%d status=%d %.3fs", function, fields,
                  response.status_code, elapsed)
        if response.status_code != 200:
            return _Failure(
                MoodleHTTPError(response.status_code, self.redact(text), function),
                transient=response.status_code >= 500,
            )
        empty = not text.strip()
        try:
            data = None if empty else json.loads(text)
        except ValueError:
            return _Failure(
                MoodleProtocolError(
                    self.redact(f"answer is not JSON: {text.strip()[:200]!r}"), function),
                transient=False,
            )
        except RecursionError:
            return _Failure(
                MoodleProtocolError("answer is JSON nested too deeply to read", function),
                transient=False,
            )
        if isinstance(data, dict) and "exception" in data:
            err = from_response(_error_fields(data, self._token.reveal()), function)
            if isinstance(err, InvalidParameter) and fields >= TRUNCATION_HINT_FIELDS:
                # The same answer as a cut request (see ``body``): say what may cause it.
                err = type(err)(
                    err.errorcode,
                    f"{err.message} (the request carried {fields} form fields; a PHP "
                    "max_input_vars below that cuts it, and Moodle refuses the call)",
                    err.function, err.debuginfo, exception=err.exception)
            log.info("moodle %s fields=%d error %s", function, fields, err.errorcode or
                     err.exception)
            return _Failure(err, transient=False)
        # Checked here, once for every call: callers may rely on the declared shape.
        mismatch = find_mismatch(function, data)
        if mismatch is not None:
            text = (f"{mismatch.path}: expected {mismatch.expected}, got an empty body"
                    if empty else mismatch.text())
            log.info("moodle %s fields=%d answer of the wrong shape: %s", function, fields,
                     text)
            return _Failure(UnexpectedAnswer(self.redact(text), function), transient=False)
        return data

    # -- many calls ------------------------------------------------------------------

    def map(self, tasks: Sequence[Callable[[], T]], *, stop_on_error: bool = True) -> list[T]:
        """Run tasks on the bounded pool; results in input order.

        On the first failure the tasks not yet started are cancelled, the running ones are
        awaited, and the error is raised with ``committed_items``/``unsent_items`` set to
        the *task* indices that succeeded / never ran (callers translate to item indices).
        """
        if len(tasks) == 1 or getattr(self._local, "in_pool", False):
            # Already on a pool thread (a task that itself maps): waiting on the pool from
            # inside it could deadlock, so run inline; the semaphore still bounds requests.
            return self._map_inline(tasks)
        failed = threading.Event()

        def guarded(task: Callable[[], T]) -> T:
            # A queued task that starts after a failure is skipped: for writes, nothing
            # more may be sent once one batch failed.
            if stop_on_error and failed.is_set():
                raise _Skipped
            self._local.in_pool = True
            try:
                return task()
            except BaseException:
                failed.set()
                raise
            finally:
                self._local.in_pool = False

        futures: list[Future[T]] = [self._pool.submit(guarded, task) for task in tasks]
        if stop_on_error:
            wait(futures, return_when=FIRST_EXCEPTION)
            if failed.is_set():
                for f in futures:
                    f.cancel()
        wait(futures)
        first: BaseException | None = None
        ok: list[int] = []
        unsent: list[int] = []
        for i, f in enumerate(futures):
            exc = None if f.cancelled() else f.exception()
            if f.cancelled() or isinstance(exc, _Skipped):
                unsent.append(i)
            elif exc is None:
                ok.append(i)
            elif first is None:
                first = exc
        if first is not None:
            if isinstance(first, MoodleError):
                first.committed_items = ok
                first.unsent_items = unsent
            raise first
        return [f.result() for f in futures]

    def _map_inline(self, tasks: Sequence[Callable[[], T]]) -> list[T]:
        results: list[T] = []
        for i, task in enumerate(tasks):
            try:
                results.append(task())
            except MoodleError as err:
                if len(tasks) > 1:
                    err.committed_items = list(range(i))
                    err.unsent_items = list(range(i + 1, len(tasks)))
                raise
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.session.close()


def _retryable(outcome: Any, *, is_read: bool) -> bool:
    """Resend only what provably never left this host, and reads that failed transiently
    (connection errors, timeouts, 5xx); a write that may have committed is never resent."""
    return isinstance(outcome, _Failure) and (
        outcome.never_sent or (is_read and outcome.transient)
    )


class _Skipped(Exception):
    """A batch not sent because an earlier one of the same call failed."""


@dataclass
class _Failure:
    error: MoodleError
    transient: bool
    never_sent: bool = False
