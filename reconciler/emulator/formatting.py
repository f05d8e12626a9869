"""Output formatting: format_string/format_text escaping and the XML response body."""

from __future__ import annotations

import re
from typing import Any

from ..paramtext import strip_tags


class _Absent:
    """A declared optional key left unset: absent from JSON, <VALUE null="null"/> in XML."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def strip_absent(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_absent(v) for k, v in value.items() if v is not ABSENT}
    if isinstance(value, list):
        return [strip_absent(v) for v in value]
    return value


_BARE_AMP = re.compile(r"&(?!(?:#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);)")


class Formatter:
    """Per-call output settings (moodlewssettingraw)."""

    def __init__(self, raw: bool) -> None:
        self.raw = raw

    def string(self, text: str | None) -> str | None:
        """format_string with striptags: bare & escaped, tags stripped, < > escaped."""
        if text is None or self.raw:
            return text
        out = strip_tags(_BARE_AMP.sub("&amp;", text))  # formatstringstriptags
        return out.replace("<", "&lt;").replace(">", "&gt;")

    def text(self, text: str | None, fmt: int = 1) -> tuple[str | None, int]:
        """util::format_text: HTML-cleaned text, format becomes HTML (1)."""
        if text is None or self.raw:
            return text, fmt
        return _BARE_AMP.sub("&amp;", text), 1


def _esc(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;"
    )


def _xml_value(value: Any) -> str:
    if isinstance(value, dict):
        keys = "".join(
            f'<KEY name="{_esc(str(k))}">{_xml_value(v)}</KEY>\n' for k, v in value.items()
        )
        return f"<SINGLE>\n{keys}</SINGLE>\n"
    if isinstance(value, list):
        return "<MULTIPLE>\n" + "".join(_xml_value(v) for v in value) + "</MULTIPLE>\n"
    if value is None or value is ABSENT:
        return '<VALUE null="null"/>\n'
    if isinstance(value, bool):
        return f"<VALUE>{1 if value else 0}</VALUE>\n"
    return f"<VALUE>{_esc(str(value))}</VALUE>\n"


def xml_response(result: Any) -> str:
    body = "" if result is None else _xml_value(result)
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n{body}</RESPONSE>\n'


def xml_error(cls: str, errorcode: str | None, message: str, debuginfo: str | None) -> str:
    out = f'<?xml version="1.0" encoding="UTF-8" ?>\n<EXCEPTION class="{_esc(cls)}">\n'
    if errorcode is not None:
        out += f"<ERRORCODE>{_esc(errorcode)}</ERRORCODE>\n"
    out += f"<MESSAGE>{_esc(message)}</MESSAGE>\n"
    if debuginfo is not None:
        out += f"<DEBUGINFO>{_esc(debuginfo)}</DEBUGINFO>\n"
    return out + "</EXCEPTION>\n"
