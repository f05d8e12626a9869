"""Form bodies as PHP fills $_POST: bracket nesting, max_input_vars truncation."""

from __future__ import annotations

import re
from email.parser import BytesParser
from email.policy import default
from typing import Any
from urllib.parse import parse_qsl

_SEGMENT = re.compile(r"\[([^\]]*)\]")


def parse_pairs(body: str) -> list[tuple[str, str]]:
    return parse_qsl(body, keep_blank_values=True)


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """multipart/form-data fields (PHP fills $_POST from those too); files are ignored."""
    message = BytesParser(policy=default).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    pairs = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True) or b""
        pairs.append((str(name), payload.decode(part.get_content_charset() or "utf-8",
                                                "replace")))
    return pairs


def truncate(pairs: list[tuple[str, str]], max_input_vars: int) -> list[tuple[str, str]]:
    """PHP drops the variables beyond the limit with only a warning. As recorded (OBSERVED
    6.8) it keeps ``max_input_vars + 1`` of them (off by one), per request part."""
    keep = max_input_vars + 1
    return pairs[:keep] if len(pairs) > keep else pairs


def _split(key: str) -> list[str] | None:
    """``a[0][b]`` -> ['a', '0', 'b']; keys PHP would mangle are kept whole."""
    first = key.find("[")
    if first <= 0:
        return [key]
    base, rest = key[:first], key[first:]
    parts = [base]
    pos = 0
    while pos < len(rest):
        m = _SEGMENT.match(rest, pos)
        if not m:
            break  # PHP ignores trailing garbage after the last complete bracket
        parts.append(m.group(1))
        pos = m.end()
    return parts


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Build PHP arrays (ordered dicts, string keys) from flat pairs; last value wins."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _split(key)
        if not parts:
            continue
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "" and i > 0:
                part = str(_next_index(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return root


def _next_index(node: dict[str, Any]) -> int:
    ints = [int(k) for k in node if k.lstrip("-").isdigit()]
    return max(ints) + 1 if ints else 0
