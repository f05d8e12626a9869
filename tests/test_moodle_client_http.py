"""Behaviour of the Moodle client over real HTTP, against a small stdlib server on 127.0.0.1:
batching under max_input_vars, retries only where safe, bounded concurrency over keep-alive
connections, and the token kept out of exceptions and logs."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler.moodle import errors
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.types import ManualEnrolment, NewUser

TOKEN = "s3cr3t-t0ken+/=&value"

Reply = tuple[int, Any, float]  # status, body (JSON-able or str), delay in seconds


@dataclass
class Site:
    """What the fake server saw; ``reply`` decides each answer."""

    reply: Callable[[str, list[tuple[str, str]], int], Reply]
    requests: list[list[tuple[str, str]]] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def count(self, function: str) -> int:
        return sum(1 for r in self.requests if ("wsfunction", function) in r)


def default_reply(function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
    values = [v for k, v in pairs if not k.startswith(("ws", "moodlews"))]
    if function == "core_cohort_get_cohort_members":
        return 200, [{"cohortid": int(v), "userids": [int(v) * 10, int(v) * 10 + 1]}
                     for v in values], 0
    if function == "core_cohort_add_cohort_members":
        return 200, {"warnings": []}, 0
    if function == "core_user_create_users":
        users = [v for k, v in pairs if k.endswith("[username]")]
        return 200, [{"id": 1000 + i, "username": u} for i, u in enumerate(users)], 0
    if function == "core_webservice_get_site_info":
        return 200, {"sitename": "fake", "functions": []}, 0
    return 200, None, 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Apache/nginx in front of PHP
    site: Site

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        pairs = urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)
        function = dict(pairs).get("wsfunction", "")
        site = self.site
        with site.lock:
            site.requests.append(pairs)
            site.peers.add(self.client_address)
            n = site.count(function)
            site.in_flight += 1
            site.max_in_flight = max(site.max_in_flight, site.in_flight)
        try:
            status, body, delay = site.reply(function, pairs, n)
            if delay:
                time.sleep(delay)
        finally:
            with site.lock:
                site.in_flight -= 1
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout tests)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(site: Site, port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    handler = type("BoundHandler", (Handler,), {"site": site})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server, thread


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site(reply=default_reply)
    server, _ = serve(s)
    yield s
    server.shutdown()
    server.server_close()


def client_for(site: Site, **kw: Any) -> MoodleClient:
    kw.setdefault("backoff", 0.01)
    return MoodleClient(site.url, TOKEN, **kw)


def payload(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if not k.startswith(("ws", "moodlews"))]


# ---------------------------------------------------------------------------------------


def test_write_batch_larger_than_max_input_vars_is_split_and_complete(site: Site) -> None:
    members = [(c, u) for c in range(1, 11) for u in range(100, 200)]  # 1,000 pairs
    with client_for(site, max_input_vars=150) as client:
        assert client.add_cohort_members(members) == []
    assert len(site.requests) > 1
    assert all(len(r) <= 150 for r in site.requests)
    received: list[tuple[int, int]] = []
    for request in sorted(site.requests, key=lambda r: _first_member(r)):
        body = payload(request)
        assert len(body) % 4 == 0
        # indices restart at 0 in every request and stay contiguous
        assert body[0][0] == "members[0][cohorttype][type]"
        vals = [int(v) for k, v in body if k.endswith("][value]")]
        received += list(zip(vals[::2], vals[1::2], strict=True))
    assert received == members  # every field arrived, once, in order
    # header (3 fields, no moodlewssettingraw on a write) + 36 members x 4 = 147 <= 150
    assert max(len(r) for r in site.requests) == 147


def _first_member(request: list[tuple[str, str]]) -> tuple[int, int]:
    vals = [int(v) for k, v in payload(request) if k.endswith("][value]")]
    return vals[0], vals[1]


def test_bulk_read_is_split_concurrent_and_in_input_order(site: Site) -> None:
    ids = list(range(2000, 0, -1))
    with client_for(site, max_input_vars=100, concurrency=4) as client:
        members = client.get_cohort_members(ids)
    assert list(members) == ids
    assert members[7] == [70, 71]
    assert all(len(r) <= 100 for r in site.requests)
    assert all(("moodlewssettingraw", "1") in r for r in site.requests)
    assert len(site.requests) == -(-2000 // 96)  # 4 header fields + 96 ids per request


def test_create_users_split_keeps_results_in_input_order(site: Site) -> None:
    users = [NewUser(f"u{i:04d}", "F", "L", f"u{i}@x.example", auth="manual",
                     password="Pw-12345!") for i in range(300)]
    with client_for(site, max_input_vars=200) as client:
        created = client.create_users(users)
    assert [c["username"] for c in created] == [u.username for u in users]
    assert all(len(r) <= 200 for r in site.requests)


def test_read_500_is_retried_and_succeeds(site: Site) -> None:
    def reply(function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
        if n == 1:
            return 500, "<h1>Internal Server Error</h1>", 0
        return default_reply(function, pairs, n)

    site.reply = reply
    with client_for(site) as client:
        assert client.get_cohort_members([5]) == {5: [50, 51]}
    assert site.count("core_cohort_get_cohort_members") == 2


def test_read_timeout_is_retried(site: Site) -> None:
    def reply(function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
        status, body, _ = default_reply(function, pairs, n)
        return status, body, (1.0 if n == 1 else 0)

    site.reply = reply
    with client_for(site, timeout=0.3) as client:
        assert client.get_cohort_members([5]) == {5: [50, 51]}
    assert site.count("core_cohort_get_cohort_members") == 2


def test_read_gives_up_after_read_retries(site: Site) -> None:
    site.reply = lambda f, p, n: (503, "", 0)
    with client_for(site, read_retries=2) as client, pytest.raises(errors.MoodleHTTPError) as i:
        client.get_cohort_members([5])
    assert i.value.status == 503
    assert site.count("core_cohort_get_cohort_members") == 3


def test_write_500_is_not_retried(site: Site) -> None:
    site.reply = lambda f, p, n: (500, "boom", 0)
    with client_for(site) as client:
        for write in (lambda: client.add_cohort_members([(1, 2)]),
                      lambda: client.delete_cohorts([7]),
                      lambda: client.manual_enrol([ManualEnrolment(5, 2, 3, timeend=99)])):
            with pytest.raises(errors.MoodleHTTPError) as info:
                write()
            assert info.value.status == 500
    assert site.count("core_cohort_add_cohort_members") == 1
    assert site.count("core_cohort_delete_cohorts") == 1
    assert site.count("enrol_manual_enrol_users") == 1


class MemberStore:
    """A stateful fake for cohort members, to lose answers after or before committing."""

    def __init__(self, fail_add: str) -> None:
        self.members: set[tuple[int, int]] = set()
        self.fail_add = fail_add  # "after-commit" | "before-commit" | "timeout"

    def __call__(self, function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
        if function == "core_cohort_get_cohort_members":
            ids = [int(v) for k, v in pairs if k.startswith("cohortids")]
            return 200, [{"cohortid": c, "userids": sorted(u for cc, u in self.members
                                                           if cc == c)} for c in ids], 0
        vals = [int(v) for k, v in pairs if k.endswith("][value]")]
        batch = set(zip(vals[::2], vals[1::2], strict=True))
        if n == 1 and self.fail_add == "before-commit":
            return 500, "", 0
        self.members |= batch
        if n == 1 and self.fail_add == "after-commit":
            return 500, "", 0
        if n == 1 and self.fail_add == "timeout":
            return 200, {"warnings": []}, 1.0
        return 200, {"warnings": []}, 0


def test_write_answer_lost_after_commit_is_recognised_by_rereading(site: Site) -> None:
    site.reply = store = MemberStore("after-commit")
    with client_for(site) as client:
        assert client.add_cohort_members([(1, 2), (1, 3)]) == []
    assert site.count("core_cohort_add_cohort_members") == 1  # not resent
    assert site.count("core_cohort_get_cohort_members") == 1
    assert store.members == {(1, 2), (1, 3)}


def test_write_failed_before_commit_is_resent_after_rereading(site: Site) -> None:
    site.reply = store = MemberStore("before-commit")
    with client_for(site) as client:
        assert client.add_cohort_members([(1, 2), (1, 3)]) == []
    assert site.count("core_cohort_add_cohort_members") == 2  # proven absent, then resent
    assert store.members == {(1, 2), (1, 3)}


def test_write_timeout_is_not_retried(site: Site) -> None:
    # The server may still be working after a timeout: no re-read races it, nothing is resent.
    site.reply = MemberStore("timeout")
    with client_for(site, timeout=0.3) as client:
        with pytest.raises(errors.MoodleUnavailable) as info:
            client.add_cohort_members([(1, 2)])
        assert info.value.maybe_applied and info.value.timed_out
        time.sleep(0.8)  # let the slow request finish to be sure no second one comes
    assert len(site.requests) == 1


def test_write_moodle_error_is_not_retried_and_reports_committed_batches(site: Site) -> None:
    def reply(function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
        if n == 3:
            return 200, {"exception": "core\\exception\\invalid_parameter_exception",
                         "errorcode": "invalidparameter", "message": "Invalid"}, 0
        return default_reply(function, pairs, n)

    site.reply = reply
    members = [(1, u) for u in range(10)]  # 2 members per request -> 5 requests
    client = client_for(site, max_input_vars=11, concurrency=1)
    with client, pytest.raises(errors.InvalidParameter) as info:
        client.add_cohort_members(members)
    assert len(site.requests) == 3
    assert info.value.committed_items == [0, 1, 2, 3]
    assert info.value.unsent_items == [6, 7, 8, 9]


def test_write_refused_connection_is_retried_once_the_server_is_up() -> None:
    # Reserve a free port, leave it closed (connection refused), start the server later.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = Site(reply=default_reply)
    started: list[ThreadingHTTPServer] = []
    timer = threading.Timer(0.3, lambda: started.append(serve(site, port)[0]))
    timer.start()
    try:
        with MoodleClient(f"http://127.0.0.1:{port}", TOKEN, backoff=0.25,
                          read_retries=4) as client:
            assert client.add_cohort_members([(1, 2)]) == []
        assert len(site.requests) == 1  # it never reached the server before
    finally:
        timer.join()
        for server in started:
            server.shutdown()
            server.server_close()


def test_write_refused_everywhere_raises_unavailable_not_applied() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = MoodleClient(f"http://127.0.0.1:{port}", TOKEN, backoff=0.01, read_retries=1)
    with client, pytest.raises(errors.MoodleUnavailable) as info:
        client.delete_cohorts([1])
    assert not info.value.maybe_applied
    assert TOKEN not in str(info.value)


def test_concurrency_is_bounded_over_keep_alive_connections(site: Site) -> None:
    def reply(function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
        status, body, _ = default_reply(function, pairs, n)
        return status, body, 0.05

    site.reply = reply
    with client_for(site, max_input_vars=14, concurrency=3) as client:
        result = client.get_cohort_members(range(1, 101))  # 10 ids per request -> 10 requests
        # plus concurrent callers sharing the same client
        threads = [threading.Thread(target=client.get_cohort_members, args=([i],))
                   for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert list(result) == list(range(1, 101))
    assert len(site.requests) == 16
    assert site.max_in_flight == 3  # used, and never exceeded
    assert len(site.peers) <= 3  # connections were reused (one pool of 3)


def test_token_redacted_in_exceptions_and_logs(site: Site, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    quoted = urllib.parse.quote_plus(TOKEN)

    def reply(function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
        token = dict(pairs)["wstoken"]
        if function == "core_webservice_get_site_info":
            return 200, {"exception": "core\\exception\\moodle_exception",
                         "errorcode": "invalidtoken",
                         "message": f"Invalid token {token}",
                         "debuginfo": f"wstoken={quoted}"}, 0
        if function == "core_cohort_get_cohorts":
            return 500, f"Fatal error near wstoken={quoted} and {token}", 0
        return 200, "<html>not json " + token + "</html>", 0

    site.reply = reply
    caplog.set_level(logging.DEBUG)
    with client_for(site, read_retries=1) as client:
        with pytest.raises(errors.InvalidToken) as e1:
            client.site_info()
        with pytest.raises(errors.MoodleHTTPError) as e2:
            client.get_cohorts([1])
        with pytest.raises(errors.MoodleProtocolError) as e3:
            client.get_cohort_members([1])
        text = " ".join([str(e1.value), repr(e1.value), str(e2.value), e2.value.body,
                         str(e3.value), str(e1.value.debuginfo), repr(client)])
    assert "***" in text
    assert TOKEN not in text and quoted not in text
    assert caplog.records, "the client logs its calls"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "core_cohort_get_cohorts" in logged and "fields=" in logged
    assert TOKEN not in logged and quoted not in logged


def test_web_services_disabled_403(site: Site) -> None:
    site.reply = lambda f, p, n: (403, "", 0)
    with client_for(site) as client, pytest.raises(errors.MoodleHTTPError) as info:
        client.site_info()
    assert info.value.status == 403
    assert "disabled" in str(info.value)
    assert site.count("core_webservice_get_site_info") == 1  # 4xx is not retried


def test_nested_concurrent_calls_do_not_deadlock(site: Site) -> None:
    with client_for(site, max_input_vars=14, concurrency=2) as client:
        results = client.run_concurrently(
            [lambda i=i: client.get_cohort_members(range(i * 30 + 1, i * 30 + 31))
             for i in range(4)])
    assert [len(r) for r in results] == [30, 30, 30, 30]
    assert site.max_in_flight <= 2


def test_large_read_is_spread_over_the_pool(site: Site) -> None:
    site.reply = lambda f, p, n: (200, [], 0)
    names = [f"user{i:04d}" for i in range(1000)]
    with client_for(site, concurrency=4) as client:
        client.get_users_by_field("username", names)
    sizes = sorted(len(payload(r)) for r in site.requests)
    assert sizes == [251, 251, 251, 251]  # "field" + 250 values each, in parallel
    site.requests.clear()
    with client_for(site, concurrency=1) as client:  # no pool: as few requests as fit...
        client.get_users_by_field("username", names)
    # ... but user look-ups at most 500 values a request: a real site's cost is per user
    # found, and larger requests outlasted the timeout on a busy host (client.READ_MAX_FIELDS)
    assert sorted(len(payload(r)) for r in site.requests) == [501, 501]
    assert max(len(r) for r in site.requests) <= 1000


def test_values_moodle_refuses_are_isolated_and_skipped(site: Site) -> None:
    def reply(function: str, pairs: list[tuple[str, str]], n: int) -> Reply:
        values = [v for k, v in pairs if k.startswith("values[")]
        if any(" " in v for v in values):
            return 200, {"exception": "core\\exception\\invalid_parameter_exception",
                         "errorcode": "invalidparameter",
                         "message": "Invalid parameter value detected"}, 0
        return 200, [{"id": int(v[1:]), "username": v} for v in values], 0

    site.reply = reply
    names = [f"u{i}" for i in range(1, 41)]
    names.insert(17, "jean dupont")
    with client_for(site, concurrency=1) as client:
        users = client.get_users_by_field("username", names)
        assert [u["username"] for u in users] == [n for n in names if " " not in n]
        assert len(site.requests) <= 1 + 2 * 6  # bisection: a handful of extra calls
        with pytest.raises(errors.InvalidParameter):
            client.get_users_by_field("username", names, skip_invalid=False)
