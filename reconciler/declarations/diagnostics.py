"""One problem found in a declaration file, and how it is printed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


# A message longer than this is cut: a diagnostic is one readable line.
MAX_MESSAGE = 1000


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem at ``file:line:column`` (1-based), printed on one line.

    ``file`` and ``message`` are made printable on creation: line breaks become spaces,
    characters no terminal can encode (lone surrogates from undecodable file names or
    escapes) become ``\\udcxx`` escapes, and a message is cut at MAX_MESSAGE characters.
    """

    file: str
    line: int
    column: int
    severity: Severity
    rule: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "file", printable(self.file))
        message = printable(self.message)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        object.__setattr__(self, "message", message)

    def text(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.line}:{self.column}: {self.rule}: {tag}{self.message}"


def printable(text: str) -> str:
    """``text`` on one line, encodable as UTF-8 (lone surrogates escaped)."""
    text = " ".join(text.splitlines()) if "\n" in text or "\r" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(set(diags), key=lambda d: (d.file, d.line, d.column, d.rule, d.message))


def render_text(diags: list[Diagnostic], files_checked: int) -> str:
    lines = [d.text() for d in diags]
    errors = sum(d.severity == "error" for d in diags)
    warnings = len(diags) - errors
    lines.append(
        f"{files_checked} file{'s' if files_checked != 1 else ''} checked: "
        f"{errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
    return "\n".join(lines)


def render_json(diags: list[Diagnostic]) -> str:
    return json.dumps([asdict(d) for d in diags], ensure_ascii=False, indent=2)
