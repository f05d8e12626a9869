"""A fake GitLab that plays the merge-request notes API (REST v4) on 127.0.0.1.

It answers only project ``group/cohorts``, merge request ``!7`` and the token ``note-token``
(anything else is GitLab's 404), pages its answers two notes at a time with ``X-Next-Page``,
and records every request. The ``gitlab`` fixture (conftest) starts one for a test.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PROJECT = "group/cohorts"
MERGE_REQUEST = "7"
TOKEN = "note-token"
NOTES_PATH = "/api/v4/projects/group%2Fcohorts/merge_requests/7/notes"


class FakeGitLab(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.notes: list[dict[str, Any]] = [
            {"id": n, "body": f"a human comment {n}"} for n in range(1, 5)
        ]
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.status: int | None = None  # force an error status
        self.page_size = 2

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v4"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGitLab

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((method, self.path, dict(self.headers), payload))
        if self.server.status:
            self._answer(self.server.status, {"message": "no"})
            return
        if self.headers.get("PRIVATE-TOKEN") != TOKEN or not self.path.startswith(NOTES_PATH):
            self._answer(404, {"message": "404 Not Found"})
            return
        notes = self.server.notes
        if method == "GET":
            page = int(parse_qs(urlsplit(self.path).query)["page"][0])
            size = self.server.page_size
            chunk = notes[(page - 1) * size : page * size]
            more = page * size < len(notes)
            self._answer(200, chunk, {"X-Next-Page": str(page + 1) if more else ""})
        elif method == "POST":
            note = {"id": 100 + len(notes), "body": payload["body"]}
            notes.append(note)
            self._answer(201, note)
        elif method == "PUT":
            note_id = int(self.path.rsplit("/", 1)[1])
            note = next(n for n in notes if n["id"] == note_id)
            note["body"] = payload["body"]
            self._answer(200, note)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


def start() -> FakeGitLab:
    """A running fake GitLab (stop it with ``stop``)."""
    server = FakeGitLab()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: FakeGitLab) -> None:
    server.shutdown()
    server.server_close()
