"""Declaration files written as text: README-shaped YAML with comments for the reviewer.

The files are new, so nothing has to be round-tripped: a plain template places the keys
and the comments, and PyYAML (already the project's YAML library) writes every value, so
quoting and escaping are its job (``'yes'``, ``'2026-01-01'``, ``'a: b'``, control
characters). Multi-line strings become literal blocks when PyYAML can write them so (it
falls back to a quoted scalar for tabs, carriage returns or trailing spaces).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# What YAML does not allow anywhere in a file, comments included (YAML 1.1 "printable").
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


try:  # libyaml's emitter is ~20x faster; the pure-Python one writes the same text
    _Base = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Base = yaml.SafeDumper  # type: ignore[misc]

# Strings written as they are, without asking the emitter (tens of thousands of usernames):
# a letter first, then what a username may hold; no YAML 1.1 boolean or null word.
_PLAIN = re.compile(r"^[a-z][a-z0-9_.@-]*$")
_RESERVED = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})


class _Dumper(_Base):  # type: ignore[valid-type,misc]
    """Block style, literal blocks for multi-line strings, keys in the given order."""


# Line breaks other than \n: a plain, single-quoted or literal scalar would fold them into
# spaces or newlines on reading; only double quotes keep them (as escapes).
_ODD_BREAKS = re.compile("[\r\x85\u2028\u2029]")


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if _ODD_BREAKS.search(data):
        style: str | None = '"'
    else:
        style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: Any) -> str:
    text = yaml.dump(
        data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10**9,
        default_flow_style=False,
    )
    # A document ending in a kept literal block gets an explicit end marker: not needed
    # inside a file that goes on (and harmless to drop at its end).
    return text[: -len("...\n")] if text.endswith("\n...\n") else text


def entry(key: str, value: Any, comment: str = "") -> str:
    """``key: value`` as top-level YAML lines; ``comment`` ends the first line (``# ...``).

    Lists of scalars come out one item a line, indented under the key (the README's
    style); an empty list is ``[]``.
    """
    if isinstance(value, list) and value:
        head = f"{key}:" + (f"  # {comment}" if comment else "")
        return head + "\n" + "".join(_item(v) for v in value)
    if isinstance(value, bool) or value == []:  # written as they are, without the emitter
        text = f"{key}: {'[]' if value == [] else str(value).lower()}\n"
    else:
        text = _dump({key: value})
    if comment:
        first, _, rest = text.partition("\n")
        text = f"{first}  # {comment}\n{rest}"
    return text


def mapping(values: dict[str, Any]) -> str:
    """Several scalar ``key: value`` lines at the top level, in the given order (one call
    to the emitter for all of them)."""
    return _dump(values) if values else ""


def _item(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.match(value) and value not in _RESERVED:
        return f"  - {value}\n"
    return indent(_dump([value]), 2)


def list_item(mapping: dict[str, Any], level: int = 2) -> str:
    """One ``- key: value`` item of a block sequence of mappings, indented by ``level``."""
    return indent(_dump([mapping]), level)


def comment(text: str, level: int = 0) -> str:
    """``text`` as comment lines (``# ...``) at indentation ``level``; characters YAML does
    not allow even in a comment (text from Moodle may hold them) are written as escapes."""
    pad = " " * level
    safe = _NON_PRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)
    return "".join(f"{pad}# {line}".rstrip() + "\n" for line in safe.splitlines())


def indent(text: str, level: int) -> str:
    """``text`` with ``level`` spaces before each non-blank line."""
    pad = " " * level
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))
