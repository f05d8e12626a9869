"""Faults of the sources, injected where production code meets its drivers.

Each helper takes pytest's ``monkeypatch`` (so the fault ends with the test) and works in
process, through the CLI as well (``CliRunner``):

* ``ldap_search_fails(monkeypatch, exc, page=N)``: the N-th search (page N of the paged
  read) raises ``exc``, whatever its type (an ldap3 error, ``OSError``, ``struct.error``...);
* ``ldap_open_fails(monkeypatch, exc)``: opening the connection raises ``exc``;
* ``apogee_fails(monkeypatch, exc, at="connect" | "execute" | "fetch")``: the APOGÉE
  connection, the query, or the second batch of rows raises ``exc``;
* ``hanging_server()``: a TCP server that accepts and never answers (a directory that hangs),
  yielding its ``ldap://`` URL.

Outages that need no injection are made with the real parts: a closed port (``free_port``),
a wrong password, a missing sqlite file, rows deleted from the sqlite APOGÉE.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ldap3
import pytest
from ldap3.strategy.base import BaseStrategy

from reconciler.sources import apogee


def ldap_search_fails(monkeypatch: pytest.MonkeyPatch, exc: BaseException, page: int = 1) -> None:
    """The ``page``-th search of every ldap3 connection from now on raises ``exc``."""
    real = ldap3.Connection.search
    counts: dict[int, int] = {}

    def search(self: ldap3.Connection, *args: Any, **kwargs: Any) -> Any:
        counts[id(self)] = counts.get(id(self), 0) + 1
        if counts[id(self)] == page:
            raise exc
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ldap3.Connection, "search", search)


def ldap_open_fails(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Opening the socket of any ldap3 connection raises ``exc`` (ldap3's strategies share
    ``BaseStrategy.open``, which ``Connection.open`` is bound to)."""

    def open_(self: BaseStrategy, *args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(BaseStrategy, "open", open_)


class _FaultyCursor:
    def __init__(self, cursor: Any, exc: BaseException, at: str) -> None:
        self._cursor, self._exc, self._at = cursor, exc, at
        self._batches = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._cursor, name, value)

    def execute(self, *args: Any) -> Any:
        if self._at == "execute":
            raise self._exc
        return self._cursor.execute(*args)

    def fetchmany(self, *args: Any) -> Any:
        self._batches += 1
        if self._at == "fetch" and self._batches == 2:
            raise self._exc
        return self._cursor.fetchmany(*args)


class _FaultyConnection:
    """A DB-API connection whose cursors fail as asked; the rest is the real connection."""

    def __init__(self, conn: Any, exc: BaseException, at: str) -> None:
        self._conn, self._exc, self._at = conn, exc, at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def cursor(self) -> _FaultyCursor:
        return _FaultyCursor(self._conn.cursor(), self._exc, self._at)


def apogee_fails(monkeypatch: pytest.MonkeyPatch, exc: BaseException,
                 at: str = "execute") -> None:
    """APOGÉE connections opened from now on fail ``at`` connect, execute or (2nd) fetch.

    ``fetch`` needs more rows than ``sources.apogee.arraysize`` to reach a second batch.
    """
    if at not in ("connect", "execute", "fetch"):
        raise ValueError(f"at must be connect, execute or fetch, not {at!r}")
    real = apogee.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        if at == "connect":
            raise exc
        return _FaultyConnection(real(*args, **kwargs), exc, at)

    monkeypatch.setattr(apogee, "connect", connect)


@contextmanager
def hanging_server() -> Iterator[str]:
    """An ``ldap://127.0.0.1:PORT/`` that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"ldap://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        listener.close()
