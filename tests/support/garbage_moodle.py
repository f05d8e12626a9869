"""An HTTP server in front of a Moodle emulator that answers one function with garbage.

Every other call is forwarded to the emulator untouched, so a ``reconcile plan`` or
``reconcile apply`` pointed at :attr:`GarbageProxy.url` runs exactly as against the emulator
until it meets the doctored function. ``forward=True`` sends the doctored call upstream
first (a write that committed and then answered nonsense); by default it never reaches the
emulator.
"""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import requests


class GarbageProxy:
    """Forwards to ``upstream``; answers ``function`` with ``body`` (text, HTTP 200)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.function: str | None = None
        self.body = ""
        self.forward = False
        self.doctored = 0  # how many answers were replaced
        self.seen: list[str] = []  # every wsfunction received, in order
        self._session = requests.Session()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave in two writes

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                status, text = proxy._answer(self.path, raw, self.headers.get("Content-Type"))
                data = text.encode("utf-8", errors="surrogatepass")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def doctor(self, function: str | None, body: str, *, forward: bool = False) -> None:
        """From now on answer ``function`` with ``body`` (None: forward everything)."""
        with self._lock:
            self.function, self.body, self.forward = function, body, forward
            self.doctored = 0

    def _answer(self, path: str, raw: bytes, content_type: str | None) -> tuple[int, str]:
        pairs = urllib.parse.parse_qs(raw.decode("utf-8", errors="replace"))
        function = (pairs.get("wsfunction") or [""])[0]
        with self._lock:
            self.seen.append(function)
            doctored = function == self.function
            forward, body = self.forward, self.body
            if doctored:
                self.doctored += 1
        if not doctored or forward:
            headers = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
            upstream = self._session.post(self.upstream + path, data=raw, headers=headers,
                                          timeout=60)
            if not doctored:
                return upstream.status_code, upstream.content.decode("utf-8")
        return 200, body

    def __enter__(self) -> GarbageProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()
