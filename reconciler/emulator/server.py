"""The HTTP side: a threaded server on 127.0.0.1 with latency and fault injection."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import urlsplit

from .dispatcher import Response
from .phpform import parse_multipart, parse_pairs

ENDPOINT = "/webservice/rest/server.php"


@dataclass
class Outcome:
    """What the server does with one request: send ``response``, close the connection at
    once (``"drop"``), or wait ``sleep_s`` seconds and close it unanswered (``"timeout"``)."""

    kind: str  # "response" | "drop" | "timeout"
    response: Response | None = None
    sleep_s: float = 0.0


class RequestProcessor(Protocol):
    """What the server needs of the emulator (``MoodleEmulator`` is one); a Protocol rather
    than an import so that the emulator and its server do not import each other."""

    def process(self, query: list[tuple[str, str]], form: list[tuple[str, str]]) -> Outcome:
        """Serve one request from its query-string pairs and form pairs, in arrival order;
        called from several server threads at once."""
        ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: RequestProcessor) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body leave in one segment (no Nagle/delayed-ACK stall)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests and benchmarks make thousands of calls

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length else b"")

    def _serve(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path != ENDPOINT:
            self._send(404, b"", "text/plain")
            return
        ctype = self.headers.get("Content-Type", "")
        # PHP fills $_POST only from form bodies; a JSON body is ignored.
        if "application/x-www-form-urlencoded" in ctype:
            form = parse_pairs(body.decode("utf-8", "replace"))
        elif "multipart/form-data" in ctype:
            form = parse_multipart(body, ctype)
        else:
            form = []
        outcome = self.server.emulator.process(parse_pairs(url.query), form)
        if outcome.kind == "drop":
            self.close_connection = True
            return
        if outcome.kind == "timeout":
            time.sleep(outcome.sleep_s)
            self.close_connection = True
            return
        response = outcome.response
        assert response is not None
        self._send(response.status, response.body, response.content_type)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cache-Control", "private, must-revalidate, pre-check=0, "
                             "post-check=0, max-age=0")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def make_server(host: str, port: int, emulator: RequestProcessor) -> _Server:
    return _Server((host, port), emulator)
