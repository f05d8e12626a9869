"""An undo log: all-or-nothing calls without copying the whole site per call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Journal:
    """Records the inverse of every change made while a call is open."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] | None = None

    def begin(self) -> None:
        self._undo = []

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        undo, self._undo = self._undo, None
        for op in reversed(undo or []):
            op()

    def _record(self, op: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(op)

    # -- journaled primitives ------------------------------------------------------------
    def set_item(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        if key in d:
            old = d[key]
            d[key] = value
            self._record(lambda: d.__setitem__(key, old))
        else:
            d[key] = value
            self._record(lambda: d.pop(key, None))

    def del_item(self, d: dict[Any, Any], key: Any) -> None:
        if key in d:
            old = d.pop(key)
            self._record(lambda: d.__setitem__(key, old))

    def add(self, s: set[Any], value: Any) -> None:
        if value not in s:
            s.add(value)
            self._record(lambda: s.discard(value))

    def discard(self, s: set[Any], value: Any) -> None:
        if value in s:
            s.discard(value)
            self._record(lambda: s.add(value))

    def set_attr(self, obj: Any, name: str, value: Any) -> None:
        old = getattr(obj, name)
        if old is value or (old == value and type(old) is type(value)):
            return
        setattr(obj, name, value)
        self._record(lambda: setattr(obj, name, old))
