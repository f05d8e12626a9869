"""Typed exceptions for Moodle web-service failures.

Moodle answers errors with HTTP 200 and a JSON body carrying ``exception``, ``errorcode``,
``message`` and (only when the site debugs) ``debuginfo``. The ``exception`` class name moved
to ``core\\exception\\…`` in 4.5, so the mapping keys on ``errorcode``; the class name is only
a fallback for bodies without one (a PHP ``Error`` leak has none).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ReconcilerError


class MoodleError(ReconcilerError):
    """Any failure of a Moodle web-service call. Never carries the token."""

    def __init__(
        self,
        errorcode: str,
        message: str,
        function: str | None = None,
        debuginfo: str | None = None,
        *,
        exception: str | None = None,
    ) -> None:
        self.errorcode = errorcode
        self.message = message
        self.function = function
        self.debuginfo = debuginfo
        self.exception = exception
        # Filled in by multi-batch writes: indices of the input items whose batch committed
        # before this error, and of those never sent. None for single-request calls.
        self.committed_items: list[int] | None = None
        self.unsent_items: list[int] | None = None
        # Set by the client when a write failed in a way that may have committed and a
        # re-read could not tell (shown after the message).
        self.note: str | None = None
        super().__init__(self._text())

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.note})" if self.note else text

    def _text(self) -> str:
        where = f"{self.function}: " if self.function else ""
        code = f"[{self.errorcode}] " if self.errorcode else ""
        extra = f" ({self.debuginfo})" if self.debuginfo else ""
        return f"{where}{code}{self.message}{extra}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep pickling (e.g. across processes) working despite the keyword-only argument.
        return (
            _rebuild,
            (type(self), self.errorcode, self.message, self.function, self.debuginfo,
             self.exception),
        )


def _rebuild(cls: type[MoodleError], *args: Any) -> MoodleError:
    err = cls.__new__(cls)
    MoodleError.__init__(err, *args[:4], exception=args[4])
    return err


class InvalidToken(MoodleError):
    """``invalidtoken``: the token is missing, unknown or empty."""


class AccessDenied(MoodleError):
    """The token's user or service may not do this (access/capability/context checks)."""


class InvalidParameter(MoodleError):
    """``invalidparameter`` and friends: Moodle refused the request's parameters."""


class CodingError(MoodleError):
    """``codingerror``: a parameter value the function does not support (a client bug)."""


class RecordNotFound(MoodleError):
    """A referenced record does not exist (``invalidrecord``, ``invaliduser``, plugin
    ``objectnotfound``…)."""


class AlreadyExists(MoodleError):
    """The object to create already exists (``idnumbertaken``, plugin
    ``enrolcohortalreadysyncedwithrole``…)."""


class DuplicateParameter(AlreadyExists, InvalidParameter):
    """``invalidparameter`` whose debuginfo says "already exists" (only visible at debug >=
    NORMAL): both a parameter error and a duplicate."""


class InvalidResponse(MoodleError):
    """``invalidresponse``: the function ran to its end, then its *answer* failed Moodle's
    check against the declared return structure (``external_api::clean_returnvalue``), e.g.
    a ``PARAM_TEXT`` name holding markup. A write that answers this may have committed."""


class MessageNotSent(MoodleError):
    """``Message was not sent.``: a ``moodle_exception`` thrown by the message manager when a
    notification (e.g. ``enrol_manual``'s course welcome mail) could not be sent. Moodle sends
    buffered messages once the transaction has committed, so the write itself took effect
    (``core\\message\\manager::send_message_to_processors``)."""


class SiteMaintenance(MoodleError):
    """``sitemaintenance``: the site is in maintenance mode."""


class MissingFunctions(MoodleError):
    """The token's service lacks web-service functions the caller needs."""

    def __init__(self, message: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__("missingfunctions", message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.missing))


class MoodleHTTPError(MoodleError):
    """A non-200 answer. 403 with an empty body means web services or REST are disabled."""

    def __init__(self, status: int, body: str, function: str | None = None) -> None:
        self.status = status
        self.body = body
        if status == 403 and not body.strip():
            message = "HTTP 403 with an empty body: web services or the REST protocol are disabled"
        else:
            snippet = body.strip().replace("\n", " ")[:200]
            message = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        super().__init__(f"http{status}", message, function)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.body, self.function))


class MoodleUnavailable(MoodleError):
    """The site could not be reached or did not answer in time.

    ``maybe_applied`` is False only when the request provably never reached the server
    (connection refused or connect timeout); a write failing with True may have committed.
    ``timed_out`` means no answer came in time: the server may *still* be working on it.
    """

    def __init__(self, message: str, function: str | None = None, *,
                 maybe_applied: bool = True, timed_out: bool = False) -> None:
        self.maybe_applied = maybe_applied
        self.timed_out = timed_out
        super().__init__("unavailable", message, function)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_unavailable,
                (self.message, self.function, self.maybe_applied, self.timed_out))


def _rebuild_unavailable(message: str, function: str | None, maybe: bool,
                         timed_out: bool = False) -> MoodleUnavailable:
    return MoodleUnavailable(message, function, maybe_applied=maybe, timed_out=timed_out)


class MoodleProtocolError(MoodleError):
    """A 200 answer that is not the expected JSON (XML, HTML, a truncated body…)."""

    def __init__(self, message: str, function: str | None = None) -> None:
        super().__init__("protocolerror", message, function)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.function))


class UnexpectedAnswer(MoodleProtocolError):
    """A JSON answer whose shape is not what the function declares (``42`` where a list of
    cohorts is due, a row whose ``id`` is a string…): see :mod:`reconciler.moodle.returns`.

    ``str()`` is one line naming the function and the field, e.g.
    ``core_cohort_get_cohorts: answer[3].id: expected an integer, got "x"``.
    """

    def _text(self) -> str:
        where = f"{self.function}: " if self.function else ""
        return f"{where}{self.message}"


ERRORCODES: dict[str, type[MoodleError]] = {
    "invalidtoken": InvalidToken,
    # access: token/service restrictions, capabilities, context restrictions, account state
    "accessexception": AccessDenied,
    "nopermissions": AccessDenied,
    "requireloginerror": AccessDenied,
    "restrictedcontextexception": AccessDenied,
    "wsaccessusersuspended": AccessDenied,
    "wsaccessusernologin": AccessDenied,
    "wsaccessuserdeleted": AccessDenied,
    "wsaccessuserunconfirmed": AccessDenied,
    "wsaccessuserexpired": AccessDenied,
    "usernotconfirmed": AccessDenied,
    "passwordisexpired": AccessDenied,
    "wsusercannotassign": AccessDenied,
    "errorremovenotpermitted": AccessDenied,
    # parameters
    "invalidparameter": InvalidParameter,
    "errorinvalidparam": InvalidParameter,
    "invalidstatus": InvalidParameter,
    "invalidcourse": InvalidParameter,
    "formatnotsupported": InvalidParameter,
    "codingerror": CodingError,
    # not found
    "invalidrecord": RecordNotFound,
    "invalidrecordunknown": RecordNotFound,
    "invaliduser": RecordNotFound,
    "invalidcourseid": RecordNotFound,
    "objectnotfound": RecordNotFound,
    # duplicates
    "idnumbertaken": AlreadyExists,
    "shortnametaken": AlreadyExists,
    "categoryidnumbertaken": AlreadyExists,
    "enrolcohortalreadysyncedwithrole": AlreadyExists,
    "sitemaintenance": SiteMaintenance,
    # answers that say nothing about whether a write took effect
    "invalidresponse": InvalidResponse,
    "Message was not sent.": MessageNotSent,
}

# Fallback when a body has no errorcode: the class name's last segment (4.1 bare names and
# 4.5 ``core\exception\…`` names end the same way).
_CLASS_SUFFIXES: dict[str, type[MoodleError]] = {
    "invalid_parameter_exception": InvalidParameter,
    "required_capability_exception": AccessDenied,
    "webservice_access_exception": AccessDenied,
    "restricted_context_exception": AccessDenied,
    "dml_missing_record_exception": RecordNotFound,
    "coding_exception": CodingError,
    "invalid_response_exception": InvalidResponse,
}

_DUPLICATE = re.compile(r"already exists", re.IGNORECASE)


def from_response(body: dict[str, Any], function: str | None) -> MoodleError:
    """Build the typed exception for an error body (one that has an ``exception`` key)."""
    errorcode = str(body.get("errorcode") or "")
    message = str(body.get("message") or "")
    debuginfo = body.get("debuginfo")
    debuginfo = str(debuginfo) if debuginfo is not None else None
    exception = str(body.get("exception") or "")
    cls = ERRORCODES.get(errorcode)
    if cls is None and not errorcode:
        cls = _CLASS_SUFFIXES.get(exception.rsplit("\\", 1)[-1])
    if cls is InvalidParameter and debuginfo and _DUPLICATE.search(debuginfo):
        cls = DuplicateParameter
    cls = cls or MoodleError
    return cls(errorcode, message, function, debuginfo, exception=exception or None)


def maybe_applied(err: MoodleError) -> bool:
    """Did a *write* end in a way that says nothing about whether it committed, so that a
    re-read must decide? True for a request that reached Moodle and got no usable answer
    (dropped connection, HTTP 500/502/503), an answer Moodle itself rejected
    (``invalidresponse``) and a message failure after the commit (``Message was not
    sent.``). False after a timeout or a 504: PHP may still be running the request, so a
    re-read could race its commit. False for every ordinary refusal (the write did nothing).
    """
    if isinstance(err, MoodleUnavailable):
        return err.maybe_applied and not err.timed_out
    if isinstance(err, MoodleHTTPError):
        return err.status in (500, 502, 503)
    return isinstance(err, (InvalidResponse, MessageNotSent))

