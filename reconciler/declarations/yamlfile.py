"""Reading one declaration file safely, keeping the line and column of every value.

PyYAML alone is not enough for files people edit by hand: it keeps the last of two
duplicate keys silently, expands alias bombs, and loses positions. Here the file is
composed into nodes (libyaml when available), then walked once: duplicate keys and
aliases are refused, dates stay strings (the schema checks them), and each value's
position is recorded so that schema and lint errors can name ``file:line:column``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic

try:  # libyaml is ~10x faster at composing; the pure-Python parser gives the same nodes.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 1024 * 1024
Path_ = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_scalar_constructor = yaml.constructor.SafeConstructor()


@dataclass
class YamlDocument:
    """The data of one file plus where each value (and each mapping key) starts."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    first_line: str = ""  # the file's first line as written (the schema hint's place)

    def locate(self, path: Path_) -> tuple[int, int]:
        """Line and column (1-based) of the value at ``path``, or of its nearest parent."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))

    def locate_key(self, path: Path_) -> tuple[int, int]:
        """Position of the mapping key that leads to ``path`` (falls back to the value)."""
        return self.key_marks.get(tuple(path)) or self.locate(path)


class _Refused(Exception):
    def __init__(self, rule: str, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.rule, self.message = rule, message
        self.line = mark.line + 1 if mark else 1
        self.column = mark.column + 1 if mark else 1


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Walker:
    """Builds Python values from nodes; refuses duplicates and aliases (a node seen twice)."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.seen: set[int] = set()

    def build(self, node: yaml.Node, path: Path_) -> Any:
        if id(node) in self.seen:
            raise _Refused(
                "yaml-alias",
                "the value anchored here is reused through an alias; anchors and aliases "
                "are not allowed in declarations, write the values out",
                node.start_mark,
            )
        self.seen.add(id(node))
        self.doc.marks[path] = _pos(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _Refused(
                        "yaml-key", "mapping keys must be plain strings", key_node.start_mark
                    )
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Refused(
                        "yaml-alias", "merge keys (<<) are not allowed", key_node.start_mark
                    )
                key = key_node.value
                if key in out:
                    first = self.doc.key_marks[(*path, key)][0]
                    raise _Refused(
                        "duplicate-key",
                        f"key {key!r} appears twice in this mapping (first on line {first}); "
                        "YAML would silently keep only the last one",
                        key_node.start_mark,
                    )
                self.doc.key_marks[(*path, key)] = _pos(key_node.start_mark)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    # Dates and other implicit types stay strings: the schema, not YAML, decides what is valid.
    if node.tag in (_INT, _FLOAT, _BOOL, _NULL):
        return _scalar_constructor.construct_object(node, deep=True)
    return node.value


def _tab_indent(text: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip() and not line.lstrip().startswith("#"):
            return number
    return None


def _decode(raw: bytes) -> tuple[str | None, tuple[int, int] | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, (line, column)


def load_yaml_file(
    path: Path, display: str, root: Path | None = None
) -> tuple[YamlDocument | None, list[Diagnostic]]:
    """Read and compose one file. Returns the document, or None with the reasons why not."""

    def fail(
        rule: str, message: str, line: int = 1, column: int = 1
    ) -> tuple[None, list[Diagnostic]]:
        return None, [Diagnostic(display, line, column, "error", rule, message)]

    if path.is_symlink() and root is not None:
        target = path.resolve()
        if not target.is_relative_to(root.resolve()):
            return fail(
                "symlink-outside",
                f"symbolic link points outside the repository ({target}); refused",
            )
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return fail(
                "file-too-large",
                f"file is {size:,} bytes; declarations are limited to {MAX_FILE_BYTES:,} bytes",
            )
        raw = path.read_bytes()
    except OSError as exc:
        return fail("unreadable", f"cannot read file: {exc.strerror or exc}")

    text, bad = _decode(raw)
    if text is None:
        assert bad is not None
        return fail("encoding", "file is not valid UTF-8 (save it as UTF-8)", *bad)
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        return fail("empty-file", "file is empty; delete it or declare something")
    tab_line = _tab_indent(text)
    if tab_line is not None:
        return fail(
            "yaml-tab", "tab character in indentation; YAML indents with spaces only", tab_line
        )

    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "syntax error"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        line, column = _pos(mark) if mark else (1, 1)
        return fail("yaml-syntax", f"YAML syntax error: {problem}", line, column)
    except yaml.YAMLError as exc:
        return fail("yaml-syntax", f"YAML syntax error: {exc}")
    if node is None:
        return fail("empty-file", "file is empty; delete it or declare something")
    if not isinstance(node, yaml.MappingNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
        line, column = _pos(node.start_mark)
        return fail(
            "not-a-mapping",
            f"the file must be a mapping of keys to values, not {kind}",
            line,
            column,
        )

    doc = YamlDocument(file=display, data=None, first_line=text.split("\n", 1)[0])
    try:
        doc.data = _Walker(doc).build(node, ())
    except _Refused as exc:
        return fail(exc.rule, exc.message, exc.line, exc.column)
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # e.g. an unreadable scalar
        return fail("yaml-value", f"value cannot be read: {exc}")
    return doc, []
