"""One REST request, as webservice/rest/server.php handles it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .config import EmulatorConfig
from .errors import WSError, invalid_parameter, missing_record
from .formatting import Formatter, strip_absent, xml_error, xml_response
from .functions import REGISTRY, SERVICE_ORDER
from .functions.base import KNOWN_ELSEWHERE, READONLY_SERVICE, Call
from .params import check_return, validate
from .state import State

RESERVED = ("wstoken", "wsfunction", "moodlewsrestformat", "moodlewssettingraw",
            "moodlewssettingfileurl", "moodlewssettingfilter", "moodlewssettinglang",
            "moodlewssettingtimezone")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    failed: bool = False  # an exception answer: the call changed nothing (rolled back)


def allowed_functions(config: EmulatorConfig, readonly: bool = False) -> list[str]:
    """The token's service; the default is the recorded service (plugin functions optional).
    ``readonly``: the read-only token's service (READONLY_SERVICE)."""
    if readonly:
        names = READONLY_SERVICE
    elif config.functions is not None:
        return list(config.functions)
    else:
        names = SERVICE_ORDER
    return [n for n in names if config.plugin or not n.startswith("local_ws_enrolcohort_")]


def _known(name: str, config: EmulatorConfig) -> bool:
    if name.startswith("local_ws_enrolcohort_") and not config.plugin:
        return False  # plugin not installed: no external_functions row
    return name in REGISTRY or name in SERVICE_ORDER or name in KNOWN_ELSEWHERE


def _scalar(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class Dispatcher:
    def __init__(self, state: State, config: EmulatorConfig) -> None:
        self.state = state
        self.config = config

    def handle(self, params: dict[str, Any], siteurl: str,
               injected: WSError | None = None) -> tuple[str | None, int, Response]:
        """Returns (wsfunction, number of function parameters, response)."""
        restformat = "json" if _scalar(params.get("moodlewsrestformat")) == "json" else "xml"
        function = _scalar(params.get("wsfunction"))
        fparams = {k: v for k, v in params.items() if k not in RESERVED}
        try:
            result = self._run(params, function, fparams, siteurl, injected)
        except WSError as exc:
            return function, len(fparams), self._error(exc, restformat)
        if restformat == "json":
            body = json.dumps(strip_absent(result)).encode()
            return function, len(fparams), Response(200, body, "application/json")
        return function, len(fparams), Response(200, xml_response(result).encode(),
                                                 "application/xml; charset=utf-8")

    def _error(self, exc: WSError, restformat: str) -> Response:
        style, debug = self.config.exception_style, self.config.debug
        if restformat == "json":
            body = json.dumps(exc.to_dict(style, debug)).encode()
            return Response(200, body, "application/json", failed=True)
        text = xml_error(exc.class_name(style), exc.errorcode, exc.message,
                         exc.debuginfo if debug else None)
        return Response(200, text.encode(), "application/xml; charset=utf-8", failed=True)

    def _run(self, params: dict[str, Any], function: str | None, fparams: dict[str, Any],
             siteurl: str, injected: WSError | None) -> Any:
        config = self.config
        token = _scalar(params.get("wstoken"))
        readonly = bool(config.readonly_token) and token == config.readonly_token
        if token != config.token and not readonly:
            raise WSError("moodle_exception", "invalidtoken", "Invalid token - token not found")
        if not function:
            raise invalid_parameter("Missing function name")
        if not _known(function, config):
            raise missing_record("external_functions", "name = ?", [function])
        allowed = allowed_functions(config, readonly)
        if function not in allowed:
            raise WSError(
                "webservice_access_exception", "accessexception", "Access control exception",
                f"Access to the function {function}() is not allowed.\n"
                "There could be multiple reasons for this:\n"
                "1. The service linked to the user token does not contain the function.\n"
                "2. The service is user-restricted and the user is not listed.\n"
                "3. The service is IP-restricted and the user IP is not listed.\n"
                "4. The service is time-restricted and the time has expired.\n"
                "5. The token is time-restricted and the time has expired.\n"
                "6. The service requires a specific capability which the user does not have.\n"
                "7. The function is called with username/password (no user token is sent)\n"
                "and none of the services has the function to allow the user.\n"
                "These settings can be found in Administration > Site administration\n"
                "> Server > Web services > External services and Manage tokens.",
            )
        spec = REGISTRY.get(function)
        if spec is None:
            raise WSError("coding_exception", "codingerror",
                          "Coding error detected, it must be fixed by a programmer: "
                          f"{function} is not implemented by the emulator")
        values = validate(spec.params, fparams)
        if injected is not None:
            raise injected
        raw = _scalar(params.get("moodlewssettingraw")) in ("1", "true", "yes", "on")
        call = Call(self.state, config, Formatter(raw), siteurl, allowed)
        journal = self.state.j
        journal.begin()
        try:
            result = spec.handler(call, values)
        except WSError:
            journal.rollback()  # abort_all_db_transactions()
            raise
        except Exception as exc:  # an emulator bug must not leave half a change behind
            journal.rollback()
            raise WSError("Error", None, f"Emulator error: {type(exc).__name__}: {exc}") from exc
        journal.commit()
        if call.after_commit is not None:
            raise call.after_commit
        if spec.returns is not None:
            # After the commit, as in Moodle: a refused answer does not undo the write.
            check_return(spec.returns, result)
        return result
