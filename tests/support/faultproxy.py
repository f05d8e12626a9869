"""A fault-injecting HTTP proxy in front of a real Moodle, for the fault matrix's cases on
the real site: the same faults the emulator injects, around calls the real site runs.

``FaultProxy(upstream)`` listens on 127.0.0.1 and forwards every web-service request to
``upstream`` unchanged. ``arm(function, nth, mode)`` makes the ``nth`` next call of
``function`` fail:

* ``http500`` / ``drop``: answered 500, or the connection closed, *without* forwarding (the
  call never reached Moodle);
* ``lost-http500`` / ``lost-drop``: forwarded, so Moodle runs and commits it, then its answer
  is replaced by a 500 or the connection is closed (the answer lost after the commit).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import requests

MODES = ("http500", "drop", "lost-http500", "lost-drop")


@dataclass
class _Armed:
    function: str
    remaining: int
    mode: str


class FaultProxy:
    """Forwards ``/webservice/rest/server.php`` to ``upstream``; see the module docstring."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.calls: list[str] = []  # wsfunction of every request, in arrival order
        self.struck: list[tuple[str, str]] = []  # (function, mode) of each fault applied
        self._armed: list[_Armed] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                function = dict(parse_qsl(body.decode("utf-8", "replace"))).get("wsfunction", "")
                mode = proxy._take(function)
                if mode in ("http500", "drop"):
                    self._fail(mode)
                    return
                answer = proxy._session.post(
                    proxy.upstream + self.path, data=body, timeout=300,
                    headers={"Content-Type": self.headers.get("Content-Type", "")})
                if mode is not None:
                    self._fail(mode.removeprefix("lost-"))
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def _fail(self, mode: str) -> None:
                self.close_connection = True
                if mode == "http500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def arm(self, function: str, nth: int, mode: str) -> None:
        """Fail the ``nth`` next call of ``function`` as ``mode`` (``MODES``)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        with self._lock:
            self._armed.append(_Armed(function, nth, mode))

    def _take(self, function: str) -> str | None:
        with self._lock:
            self.calls.append(function)
            for armed in self._armed:
                if armed.function == function:
                    armed.remaining -= 1
                    if armed.remaining == 0:
                        self._armed.remove(armed)
                        self.struck.append((function, armed.mode))
                        return armed.mode
            return None

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
