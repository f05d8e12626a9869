"""Reading one declaration file safely, keeping the line and column of every value.

PyYAML alone is not enough for files people edit by hand: it keeps the last of two
duplicate keys silently, expands alias bombs, loses positions, and builds whatever a tag
asks for. Here the file is composed into nodes (libyaml when available), then walked once:
duplicate keys, aliases, tags other than YAML's standard ones and nesting deeper than any
declaration needs are refused; dates stay strings (the schema checks them); each value's
position and, for scalars, the text as typed are recorded so that schema and lint errors
can name ``file:line:column`` and show what was written rather than what YAML 1.1 made of
it (``0012345`` is the octal number 5349, ``yes`` is true, ``12:30`` is 750).

Why a check on the raw scalar rather than a YAML 1.2 loader: YAML 1.2 still reads
``20170412`` or ``0012345`` as numbers, so the message has to come from the text as typed
anyway; and libyaml's composer keeps the positions, duplicate-key and alias checks that the
rest of this module builds on.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .diagnostics import Diagnostic

try:  # libyaml is ~10x faster at composing; the pure-Python parser gives the same nodes.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 1024 * 1024
# The deepest declaration (platforms.yaml) nests 6 levels; a few more leave room to grow.
MAX_DEPTH = 32
# No setting takes a number this long; longer ones cannot even be printed (Python refuses
# to convert integers of more than 4,300 digits to text).
MAX_NUMBER_CHARS = 40
Path_ = tuple[str | int, ...]

YAML_TAG = "tag:yaml.org,2002:"
_STR = YAML_TAG + "str"
_INT = YAML_TAG + "int"
_FLOAT = YAML_TAG + "float"
_BOOL = YAML_TAG + "bool"
_NULL = YAML_TAG + "null"
_TIMESTAMP = YAML_TAG + "timestamp"
_MERGE = YAML_TAG + "merge"
_VALUE = YAML_TAG + "value"  # what PyYAML resolves a lone "=" to: plain text here
_PYTHON = YAML_TAG + "python/"
_TYPED = (_INT, _FLOAT, _BOOL, _NULL)
# Tags people may write (or YAML resolves to) on each kind of node.
_SCALAR_TAGS = frozenset({_STR, *_TYPED, _TIMESTAMP, _VALUE})
_SEQUENCE_TAGS = frozenset({YAML_TAG + "seq"})
_MAPPING_TAGS = frozenset({YAML_TAG + "map"})
_NULL_TEXTS = frozenset({"", "~", "null", "Null", "NULL"})
_scalar_constructor = yaml.constructor.SafeConstructor()


class Scalar(NamedTuple):
    """A scalar as it was written: its text, the tag YAML gave it and its quoting style
    (None or "" for plain, ``'`` or ``"`` for quoted, ``|``/``>`` for blocks)."""

    text: str
    tag: str
    style: str | None

    @property
    def plain(self) -> bool:
        return not self.style  # libyaml says "" where the pure-Python parser says None


@dataclass
class YamlDocument:
    """The data of one file plus where each value (and each mapping key) starts, and how
    each scalar was written."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    first_line: str = ""  # the file's first line as written (the schema hint's place)
    # How the scalars that are not plain text were written (quoted, or typed by YAML).
    scalars: dict[Path_, Scalar] = field(default_factory=dict)

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


def shown_tag(tag: str) -> str:
    """A tag as people write it: ``!!binary``, ``!local``, ``!<tag:example.com,2000:x>``."""
    if tag.startswith(YAML_TAG):
        return "!!" + tag[len(YAML_TAG):]
    return tag if tag.startswith("!") else f"!<{tag}>"


def _refuse_tag(node: yaml.Node) -> None:
    tag = shown_tag(node.tag)
    if node.tag.startswith(_PYTHON):
        raise _Refused(
            "yaml-python-tag",
            f"{tag} asks YAML to build a Python object: declarations hold plain values only; "
            "remove the tag",
            node.start_mark,
        )
    raise _Refused(
        "yaml-tag",
        f"{tag} is not a tag declarations use (text, numbers, true/false, lists and mappings "
        "only); remove the tag",
        node.start_mark,
    )


class _Walker:
    """Builds Python values from nodes; refuses duplicates and aliases (a node seen twice),
    unusual tags and deep nesting."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.seen: set[int] = set()

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        if id(node) in self.seen:
            raise _Refused(
                "yaml-alias",
                "the value anchored here is reused through an alias; anchors and aliases "
                "are not allowed in declarations, write the values out",
                node.start_mark,
            )
        if depth > MAX_DEPTH:
            raise _Refused(
                "yaml-depth",
                f"nested more than {MAX_DEPTH} levels deep; declarations need only a few "
                "levels (is a bracket or an indentation off?)",
                node.start_mark,
            )
        self.seen.add(id(node))
        self.doc.marks[path] = _pos(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            if node.tag not in _MAPPING_TAGS:
                _refuse_tag(node)
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _Refused(
                        "yaml-key", "mapping keys must be plain strings", key_node.start_mark
                    )
                if key_node.tag == _MERGE:
                    raise _Refused(
                        "yaml-alias", "merge keys (<<) are not allowed", key_node.start_mark
                    )
                if key_node.tag not in _SCALAR_TAGS:
                    _refuse_tag(key_node)
                key = key_node.value
                if key in out:
                    first = self.doc.key_marks[(*path, key)][0]
                    raise _Refused(
                        "duplicate-key",
                        f"key {shorten(key)!r} appears twice in this mapping (first on line "
                        f"{first}); YAML would silently keep only the last one",
                        key_node.start_mark,
                    )
                self.doc.key_marks[(*path, key)] = _pos(key_node.start_mark)
                out[key] = self.build(value_node, (*path, key), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            if node.tag not in _SEQUENCE_TAGS:
                _refuse_tag(node)
            return [
                self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
            ]
        if node.tag not in _SCALAR_TAGS:
            _refuse_tag(node)
        if node.tag != _STR or node.style:  # plain text needs no note: it is what was typed
            self.doc.scalars[path] = Scalar(node.value, node.tag, node.style)
        return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    # Dates and other implicit types stay strings: the schema, not YAML, decides what is valid.
    if node.tag not in _TYPED:
        return node.value
    text = node.value
    if node.tag == _INT and len(text) > MAX_NUMBER_CHARS:
        raise _Refused(
            "yaml-number",
            f"{shorten(text, 20)} ({len(text):,} characters) is read as a number too long "
            "for any setting; if it is text, write it in quotes",
            node.start_mark,
        )
    if node.tag == _NULL and text not in _NULL_TEXTS:
        raise _Refused(
            "yaml-value",
            f"!!null {shorten(text)}: {shorten(text)!r} is not null (write ~ or leave it empty)",
            node.start_mark,
        )
    try:
        return _scalar_constructor.construct_object(node, deep=True)
    except (KeyError, ValueError, TypeError, yaml.YAMLError):
        # Only an explicit tag (!!bool maybe) can carry text its type does not accept.
        expected = {_INT: "an integer", _FLOAT: "a number", _BOOL: "a boolean"}[node.tag]
        hint = " (write true or false)" if node.tag == _BOOL else ""
        raise _Refused(
            "yaml-value",
            f"{shown_tag(node.tag)} {shorten(text)}: {shorten(text)!r} is not {expected}{hint}",
            node.start_mark,
        ) from None


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for messages."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _read(path: Path) -> bytes | tuple[str, str]:
    """The bytes of a regular file of at most MAX_FILE_BYTES, or (rule, message).

    Opened without blocking and checked on the open descriptor, so that a FIFO or a device
    (even one swapped in after the folder was listed) is reported, never waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return "unreadable", f"cannot read file: {exc.strerror or exc}"
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return "not-a-file", "a folder named like a declaration; declarations are files"
        if not stat.S_ISREG(info.st_mode):
            return "not-a-file", (
                "not a regular file (a FIFO, socket or device); declarations are plain files"
            )
        if info.st_size > MAX_FILE_BYTES:
            return "file-too-large", (
                f"file is {info.st_size:,} bytes; declarations are limited to "
                f"{MAX_FILE_BYTES:,} bytes"
            )
        try:
            return handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            return "unreadable", f"cannot read file: {exc.strerror or exc}"


def _reader_error_position(text: str, position: int) -> tuple[int, int]:
    """Line and column of a reader error: libyaml counts UTF-8 bytes, PyYAML characters."""
    if _Loader.__name__.startswith("C"):
        before = text.encode("utf-8", errors="surrogatepass")[:position].decode(
            "utf-8", errors="replace"
        )
    else:  # pragma: no cover - depends on how PyYAML was built
        before = text[:position]
    line = before.count("\n") + 1
    return line, len(before) - (before.rfind("\n") + 1) + 1


def load_yaml_file(
    path: Path, display: str, root: Path | None = None
) -> tuple[YamlDocument | None, list[Diagnostic]]:
    """Read and compose one file. Returns the document, or None with the reasons why not
    (each a :class:`Diagnostic` naming ``display`` and the line); never raises on bad input.
    """

    def fail(
        rule: str, message: str, line: int = 1, column: int = 1
    ) -> tuple[None, list[Diagnostic]]:
        return None, [Diagnostic(display, line, column, "error", rule, message)]

    if path.is_symlink() and root is not None:
        try:
            target = path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports a loop this way
            return fail("symlink-loop", _LOOP)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return fail("symlink-loop", _LOOP)
            return fail("unreadable", f"symbolic link to nothing readable: {exc.strerror}")
        if not target.is_relative_to(root.resolve()):
            return fail(
                "symlink-outside",
                f"symbolic link points outside the repository ({target}); refused",
            )
    raw = _read(path)
    if isinstance(raw, tuple):
        return fail(*raw)
    if len(raw) > MAX_FILE_BYTES:  # it grew after it was measured
        return fail("file-too-large", f"declarations are limited to {MAX_FILE_BYTES:,} bytes")

    text, bad = _decode(raw)
    if text is None:
        assert bad is not None
        return fail("encoding", "file is not valid UTF-8 (save it as UTF-8)", *bad)
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        return fail("empty-file", "file is empty; delete it or declare something")
    bom = text.find("\ufeff", 1)
    if bom > 0:
        line = text.count("\n", 0, bom) + 1
        return fail(
            "encoding",
            "a byte order mark (U+FEFF) in the middle of the file (files pasted together?); "
            "remove it",
            line,
            bom - (text.rfind("\n", 0, bom) + 1) + 1,
        )
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
    except yaml.reader.ReaderError as exc:
        character = exc.character
        shown = f"#x{character:04x}" if isinstance(character, int) else repr(character)
        return fail(
            "yaml-syntax",
            f"YAML syntax error: character {shown} is not allowed ({exc.reason})",
            *_reader_error_position(text, exc.position),
        )
    except yaml.YAMLError as exc:
        return fail("yaml-syntax", "YAML syntax error: " + " ".join(str(exc).split()))
    except RecursionError:  # the pure-Python composer recurses once per level
        return fail("yaml-depth", f"nested more than {MAX_DEPTH} levels deep")
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
    return doc, []


_LOOP = "symbolic link loop (the link leads back to itself); replace it with the file"
