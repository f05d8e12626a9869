"""Property: no declaration file, however mangled, makes ``reconcile validate`` (or ``plan``,
which loads the same files) print a traceback. Every case ends in lines
``file:line:column: rule: message`` and a summary, or in one ``error:`` line for ``plan``.

Cases are valid declarations mutated one to three times: byte flips, truncation, unicode
(lone surrogates included), NUL and control characters, byte order marks, CRLF, deep
nesting, huge numbers, tags, anchors and aliases, very long lines, values YAML 1.1 reads
as something else, and lines duplicated, dropped or re-indented. See ``support/fuzz.py``
for the CI bounds and the on-demand campaign.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import CAMPAIGN, case, fuzz_settings, report
from test_moodle_answers import FILES as WORLD_FILES
from test_moodle_answers import NOW, World, world_at
from test_moodle_answers import PLATFORMS as WORLD_PLATFORMS
from test_validate import PLATFORMS, TODAY

from reconciler.cli import main
from reconciler.cli.errors import DEBUG_HINT

COHORT = """\
# A manual cohort with every key.
idnumber: man-a
name: "Tuteurs L2 — pharmacie"
description: >
  Étudiants de 5e année
  qui encadrent le tutorat.
category: CAT-SANTE
visible: true
adopt: false
expires: 2027-01-31
owners:
  - someone@example.org
members:              # usernames
  - alice
  - 'e20170412'
  - bob.martin
"""
SYNCS = """\
course: C1
owners: [someone@example.org]
syncs:
  - cohort: man-a
    role: student
    group: Groupe A
    reason: the tutors follow the course
  - {cohort: etp-L1HIS-101, role: teacher, method: manual, expires: 2027-01-15, reason: "x y"}
"""
BASES = {
    "ecampus/cohorts/man-a.yaml": COHORT,
    "ecampus/syncs/C1.yaml": SYNCS,
    "platforms.yaml": PLATFORMS,
}
DIAGNOSTIC = re.compile(r"^cohorts/\S+:\d+:\d+: [a-z-]+: (warning: )?\S.*$")
SUMMARY = re.compile(r"^\d+ files? checked: \d+ errors?, \d+ warnings?$")

# -- mutations ---------------------------------------------------------------------------

Mutation = Callable[[st.DataObject, bytes], bytes]
TAGS = ["!!python/object/apply:os.system", "!!python/module:os", "!!binary", "!!set",
        "!!omap", "!!bool", "!!int", "!!float", "!!null", "!!str", "!!timestamp", "!!seq",
        "!!map", "!local", "!<tag:x.org,2000:y>", "!!merge", "!!value"]
TYPED = ["0012345", "yes", "no", "on", "off", "20170412", "12:30", "1:2:3", "~", "null", "",
         ".inf", "-.inf", ".nan", "1e3", "1.5e+3", "0x1F", "0b101", "0o17", "2027-01-31",
         "2027-01-31 10:00:00", "true", "=", "<<", "- ", "? ", "|", ">", "'", '"', "[", "{",
         "&", "*", "%YAML 1.2", "---", "...", "#", "@", "`"]
CONTROLS = [b"\x00", b"\x07", b"\x1b", b"\x7f", b"\xc2\x85", "\u2028".encode(), b"\t", b"\r",
            b"\xef\xbb\xbf", b"\xff", b"\xed\xa0\x80"]


def _position(data: st.DataObject, raw: bytes) -> int:
    return data.draw(st.integers(0, len(raw)), label="position")


def _value_start(data: st.DataObject, raw: bytes) -> int:
    """Where a value starts (after ': ' or '- '), or anywhere."""
    starts = [m.end() for m in re.finditer(rb": |- ", raw)]
    if not starts:
        return _position(data, raw)
    return data.draw(st.sampled_from(starts), label="value start")


def _replace_value(data: st.DataObject, raw: bytes, value: bytes) -> bytes:
    start = _value_start(data, raw)
    end = raw.find(b"\n", start)
    end = len(raw) if end < 0 else end
    return raw[:start] + value + raw[end:]


def flip(data: st.DataObject, raw: bytes) -> bytes:
    if not raw:
        return raw
    at = data.draw(st.integers(0, len(raw) - 1))
    return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:]


def truncate(data: st.DataObject, raw: bytes) -> bytes:
    return raw[: _position(data, raw)]


def unicode(data: st.DataObject, raw: bytes) -> bytes:
    text = data.draw(st.text(st.characters(exclude_categories=()), min_size=1, max_size=8))
    at = _position(data, raw)
    return raw[:at] + text.encode("utf-8", errors="surrogatepass") + raw[at:]


def control(data: st.DataObject, raw: bytes) -> bytes:
    at = _position(data, raw)
    return raw[:at] + data.draw(st.sampled_from(CONTROLS)) + raw[at:]


def line_ends(data: st.DataObject, raw: bytes) -> bytes:
    return raw.replace(b"\n", data.draw(st.sampled_from([b"\r\n", b"\r", b"\n\n", b"\x85"])))


def nesting(data: st.DataObject, raw: bytes) -> bytes:
    depth = data.draw(st.one_of(st.integers(1, 40), st.integers(400, 1100)), label="depth")
    kind = data.draw(st.sampled_from(["list", "map", "block", "open"]))
    if kind == "list":
        value = b"[" * depth + b"]" * depth
    elif kind == "map":
        value = b"{a: " * depth + b"1" + b"}" * depth
    elif kind == "open":
        value = b"[" * depth
    else:
        value = b"".join(b"\n" + b"  " * i + b"- " for i in range(min(depth, 300))) + b"x"
    return _replace_value(data, raw, value)


def huge_number(data: st.DataObject, raw: bytes) -> bytes:
    digits = data.draw(st.integers(15, 6000), label="digits")
    prefix = data.draw(st.sampled_from([b"", b"-", b"0x", b"0b", b"0o", b"1:"]))
    body = b"1" * digits if prefix in (b"0b",) else b"7" * digits
    return _replace_value(data, raw, prefix + body)


def tag(data: st.DataObject, raw: bytes) -> bytes:
    start = _value_start(data, raw)
    return raw[:start] + data.draw(st.sampled_from(TAGS)).encode() + b" " + raw[start:]


def anchors(data: st.DataObject, raw: bytes) -> bytes:
    first = _value_start(data, raw)
    raw = raw[:first] + b"&a " + raw[first:]
    alias = data.draw(st.sampled_from([b"*a", b"*nowhere", b"<<: *a", b"&a x"]))
    return _replace_value(data, raw, alias)


def long_line(data: st.DataObject, raw: bytes) -> bytes:
    size = data.draw(st.integers(1_000, 1_100_000), label="length")
    return _replace_value(data, raw, b"x" * size)


def typed(data: st.DataObject, raw: bytes) -> bytes:
    return _replace_value(data, raw, data.draw(st.sampled_from(TYPED)).encode())


def lines(data: st.DataObject, raw: bytes) -> bytes:
    parts = raw.split(b"\n")
    at = data.draw(st.integers(0, len(parts) - 1))
    how = data.draw(st.sampled_from(["duplicate", "drop", "indent", "dedent", "swap"]))
    if how == "duplicate":
        parts.insert(at, parts[at])
    elif how == "drop":
        del parts[at]
    elif how == "indent":
        parts[at] = b" " * data.draw(st.integers(1, 9)) + parts[at]
    elif how == "dedent":
        parts[at] = parts[at].lstrip(b" ")
    elif at + 1 < len(parts):
        parts[at], parts[at + 1] = parts[at + 1], parts[at]
    return b"\n".join(parts)


MUTATIONS: list[Mutation] = [flip, truncate, unicode, control, line_ends, nesting, huge_number,
                             tag, anchors, long_line, typed, lines]


def mutated(data: st.DataObject, bases: dict[str, str]) -> dict[str, bytes]:
    """The files of ``bases`` with one of them mutated one to three times."""
    files = {name: textwrap.dedent(text).encode() for name, text in bases.items()}
    target = data.draw(st.sampled_from(sorted(files)), label="file")
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
        files[target] = mutation(data, files[target])
    return files


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        path = root / "cohorts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def check_report(result: Result, fmt: str) -> None:
    """What every validate run must look like, whatever the input."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code in (0, 1), result.output
    assert DEBUG_HINT not in result.output, result.output[-2000:]
    if fmt == "json":
        diags = json.loads(result.output)
        for d in diags:
            assert d["line"] >= 1 and d["column"] >= 1 and d["file"].startswith("cohorts/"), d
            assert "\n" not in d["message"] and len(d["message"]) <= 1000, d
        assert (result.exit_code == 1) == any(d["severity"] == "error" for d in diags)
        return
    out = result.output.splitlines()
    assert out and SUMMARY.match(out[-1]), result.output[-500:]
    for line in out[:-1]:
        assert DIAGNOSTIC.match(line) and len(line) < 1200, line[:300]
    if result.exit_code == 1:
        assert any(not line.split(": ", 2)[2].startswith("warning: ") for line in out[:-1])


@pytest.fixture(scope="module", autouse=True)
def _campaign_report() -> Iterator[None]:
    yield
    if CAMPAIGN:
        print("\n" + report())


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository for every case: each case rewrites the same three files."""
    return tmp_path_factory.mktemp("fuzz-validate")


@fuzz_settings(200)
@given(data=st.data(), fmt=st.sampled_from(["text", "json"]))
def test_mutated_declarations_give_diagnostic_lines_never_a_traceback(
    repo_dir: Path, data: st.DataObject, fmt: str
) -> None:
    files = mutated(data, BASES)
    with case("validate"):
        write_tree(repo_dir, files)
        result = CliRunner().invoke(
            main, ["--repo", str(repo_dir), "validate", "--today", TODAY, "--format", fmt]
        )
    check_report(result, fmt)


@pytest.fixture(scope="module")
def plan_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world_at(tmp_path_factory.mktemp("fuzz-plan")) as world:
        yield world


@fuzz_settings(25, campaign_weight=0.1)
@given(data=st.data())
def test_plan_with_mutated_declarations_is_a_plan_or_one_error_line(
    plan_world: World, data: st.DataObject
) -> None:
    bases = {**WORLD_FILES, "platforms.yaml": WORLD_PLATFORMS}
    files = mutated(data, bases)
    write_tree(plan_world.repo, files)
    with case("plan (declarations)"):
        code, out, exc = plan_world.run("plan", "-p", "prelude", "--now", NOW)
    assert exc is None, f"{type(exc).__name__}: {exc}"
    assert code in (0, 1, 2, 3, 7), out  # 7: declarations naming what Moodle lacks
    if code == 1:
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), out[-2000:]
    assert plan_world.writes() == []
