"""A bare web-service caller for emulator tests: PHP bracket encoding, JSON answers."""

from __future__ import annotations

from typing import Any

import requests


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """{"a": [{"b": 1}]} -> [("a[0][b]", "1")], the encoding Moodle's REST server reads."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return [(prefix, str(value))]
    out: list[tuple[str, str]] = []
    for key, sub in items:
        out += flatten(sub, f"{prefix}[{key}]" if prefix else str(key))
    return out


def ws(url: str, function: str, params: dict[str, Any] | None = None, token: str = "T",
       fmt: str | None = "json", timeout: float = 10, **extra: str) -> Any:
    pairs = [("wstoken", token), ("wsfunction", function)]
    if fmt:
        pairs.append(("moodlewsrestformat", fmt))
    pairs += flatten(params or {}) + list(extra.items())
    response = requests.post(url + "/webservice/rest/server.php", data=pairs, timeout=timeout)
    response.raise_for_status()
    return response.json() if fmt == "json" else response.text
