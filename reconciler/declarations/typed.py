"""What YAML 1.1 made of what people typed, in words for schema messages.

YAML 1.1 (PyYAML) turns plain text into other values before the schema sees it: ``0012345``
is the octal number 5349, ``yes`` and ``on`` are true, ``12:30`` is 750 (base 60), ``~`` is
null. A message built from the value would show something nobody wrote; these helpers
describe the value from its :class:`~reconciler.declarations.yamlfile.Scalar` (the text as
typed) and say how to write it so that it stays text.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

from .yamlfile import Scalar, shorten

_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")
_JSON_TYPES = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}
_RESOLVER = yaml.resolver.Resolver()
_TAG_KIND = {
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
}


def quoted(text: str) -> str:
    """``text`` as a quoted YAML scalar that reads back as the same text."""
    if "'" not in text and "\n" not in text:
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def read_as(scalar: Scalar, value: Any) -> str:
    """How YAML read ``scalar`` (a plain int, float, bool or null): ``the number 5349 (YAML
    1.1 reads a leading 0 as octal)``, ``the boolean true``, ``null (no value)``."""
    text = scalar.text
    if value is None:
        return "null (no value)"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, float) and math.isinf(value):
        return "the number infinity" if value > 0 else "the number minus infinity"
    if isinstance(value, float) and math.isnan(value):
        return "not-a-number (.nan)"
    why = ""
    if ":" in text:
        why = " (YAML 1.1 reads digits separated by colons in base 60)"
    elif isinstance(value, int) and _OCTAL.match(text):
        why = " (YAML 1.1 reads a leading 0 as octal)"
    return f"the number {value}{why}"


def not_text(where: str, scalar: Scalar, value: Any) -> str:
    """The message for a plain scalar YAML did not keep as text where text is wanted."""
    if value is None and scalar.text == "":
        return f"{where}: has no value; write the text after the colon"
    text = shorten(scalar.text)
    return (
        f"{where}: {text} is read as {read_as(scalar, value)}, not as text; "
        f"write it in quotes: {quoted(text)}"
    )


def expected(types: str | list[str]) -> str:
    """``an integer``, ``text or a list``… from a JSON Schema ``type``."""
    names = [types] if isinstance(types, str) else list(types)
    words = [_JSON_TYPES.get(t, t) for t in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def got(value: Any, scalar: Scalar | None, types: str | list[str]) -> str:
    """What was there instead, in the words of what was typed."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        shown = f"the text {shorten(value)!r}"
        if scalar is not None and not scalar.plain and _would_be(scalar.text, types):
            shown += " (remove the quotes)"
        return shown
    if scalar is not None and scalar.plain:
        if value is None:
            return "nothing" if scalar.text == "" else f"{shorten(scalar.text)} (null, no value)"
        if isinstance(value, bool) and scalar.text.lower() not in ("true", "false"):
            return f"{shorten(scalar.text)} (the boolean {'true' if value else 'false'})"
        return shorten(scalar.text)
    return "nothing" if value is None else shorten(json.dumps(value))


def _would_be(text: str, types: str | list[str]) -> bool:
    """Would ``text``, unquoted, be read as one of ``types``?"""
    wanted = {types} if isinstance(types, str) else set(types)
    kind = _TAG_KIND.get(_RESOLVER.resolve(yaml.ScalarNode, text, (True, False)))
    return kind is not None and (kind in wanted or (kind == "integer" and "number" in wanted))
