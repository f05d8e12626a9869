"""Mutated saved plans through ``reconcile apply``, ``approve`` and ``mr-note`` (issue 12):
no traceback, one line, nothing written to Moodle, no case over 5 s.

Cases are a real saved plan mutated as bytes (flips, truncation, insertion, BOM, CRLF, NUL)
or as JSON (a value anywhere replaced by any JSON value, a key dropped or added, the whole
document replaced or nested deep); half of the JSON mutations get their digest recomputed
so that they reach the checks past the file format (stale plan, unknown platform). Moodle
moved after the plan was saved, so no mutation can be a fresh plan: apply must refuse all.

Bounded and seeded in CI (``RECONCILER_FUZZ_PLANS``, default 60 cases, derandomized); run
once with more on demand, e.g. ``RECONCILER_FUZZ_PLANS=400 pytest tests/test_plan_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.cliworld import NOW, TOKEN, CliWorld, cli_world

from reconciler.cli import main
from reconciler.errors import PlanFileError
from reconciler.moodle.client import MoodleClient
from reconciler.planning.plan import Plan

CASES = int(os.environ.get("RECONCILER_FUZZ_PLANS", "60"))
SLOW = 5.0  # seconds: a case slower than this is a hang
TALLY: dict[str, int] = {}


@pytest.fixture(scope="module")
def stale_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CliWorld, dict]]:
    """A world and a plan saved in it, made stale by a change in Moodle."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with cli_world(tmp) as world:
        path = tmp / "plan.json"
        world.run("plan", "-p", "prelude", "--now", NOW, "--out", str(path))
        with MoodleClient(world.emu.url, TOKEN) as client:
            [user] = client.get_users_by_field("username", ["fc-crobert"])
            client.delete_users([int(user["id"])])
        yield world, json.loads(path.read_text(encoding="utf-8"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


def _redigest(doc: Any) -> Any:
    """The same document with the digest its content has (when it still forms a plan)."""
    broken = (PlanFileError, KeyError, TypeError, ValueError, AttributeError, IndexError)
    with contextlib.suppress(*broken):  # not a plan any more: leave its digest as it is
        doc["digest"] = Plan.from_json(doc, verify=False).digest()
    return doc


@st.composite
def mutated(draw: st.DrawFn, plan: dict) -> tuple[str, bytes]:
    text = json.dumps(plan, ensure_ascii=False, indent=2)
    data = text.encode("utf-8")
    how = draw(st.sampled_from(["bytes", "truncate", "insert", "framing", "value", "drop",
                                "add", "whole", "deep"]))  # fmt: skip
    if how == "bytes":
        at = draw(st.integers(0, len(data) - 1))
        return how, data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if how == "truncate":
        return how, data[: draw(st.integers(0, len(data) - 1))]
    if how == "insert":
        at = draw(st.integers(0, len(data)))
        return how, data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if how == "framing":
        frame = draw(st.sampled_from(["bom", "crlf", "nul", "long"]))
        return how, {
            "bom": b"\xef\xbb\xbf" + data,
            "crlf": data.replace(b"\n", b"\r\n"),
            "nul": data.replace(b'"prelude"', b'"pre\\u0000lude"'),
            "long": data.replace(b'"summary": "', b'"summary": "' + b"x" * 200_000),
        }[frame]
    doc = json.loads(text)
    if how == "whole":
        return how, json.dumps(draw(json_values)).encode()
    if how == "deep":
        depth = draw(st.integers(10, 20_000))
        return how, ("[" * depth + "]" * depth * draw(st.integers(0, 1))).encode()
    path = draw(st.sampled_from(_paths(doc)))
    if how == "value":
        doc = _set(doc, path, draw(json_values))
    elif how == "drop" and path and isinstance(doc_at := _get(doc, path[:-1]), dict | list):
        del doc_at[path[-1]]
    elif how == "add":
        target = _get(doc, path)
        if isinstance(target, dict):
            target[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
        elif isinstance(target, list):
            target.append(draw(json_values))
    if draw(st.booleans()):
        doc = _redigest(doc)
    return how, json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _get(doc: Any, path: tuple) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _check(world: CliWorld, args: list[str], allowed: set[int]) -> int:
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["--repo", str(world.repo), *args], env=world.env)
    elapsed = time.perf_counter() - started
    assert elapsed < SLOW, f"{args[0]} took {elapsed:.1f} s"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception
    )
    out = result.output
    assert "Traceback" not in out and "run with --debug" not in out, out
    assert result.exit_code in allowed, (result.exit_code, out)
    if result.exit_code == 1:
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), out
    if result.exit_code == 5:
        assert out.startswith("error: stale plan, nothing applied: "), out
    return result.exit_code


@settings(
    max_examples=CASES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_saved_plans_never_crash_and_never_write(
    stale_world: tuple[CliWorld, dict], tmp_path_factory: pytest.TempPathFactory, data: Any
) -> None:
    world, plan = stale_world
    how, content = data.draw(mutated(plan))
    path = tmp_path_factory.getbasetemp() / "mutated.json"
    path.write_bytes(content)
    writes = world.emu.write_calls()
    approvals = world.repo / ".reconciler" / "approvals.json"
    approvals.unlink(missing_ok=True)

    applied = _check(world, ["apply", str(path), "--now", NOW], {1, 5})
    assert world.emu.write_calls() == writes, how  # nothing written to Moodle
    approved = _check(world, ["approve", str(path), "--by", "fuzz", "--now", NOW], {0, 1})
    assert approvals.exists() == (approved == 0)
    _check(world, ["mr-note", str(path), "--dry-run"], {0, 1})
    TALLY[f"{how}/{applied}"] = TALLY.get(f"{how}/{applied}", 0) + 1


def test_the_fuzz_reached_past_the_file_format() -> None:
    """Some cases must be plans good enough to be refused as stale, or the test above only
    exercised the parser (run after it: pytest keeps file order)."""
    if not TALLY:
        pytest.skip("run with the test above")
    stale = sum(n for key, n in TALLY.items() if key.endswith("/5"))
    refused = sum(n for key, n in TALLY.items() if key.endswith("/1"))
    print(f"\nplan cases: {sum(TALLY.values())}, refused as bad files: {refused}, "
          f"as stale: {stale}; by mutation/exit code: {dict(sorted(TALLY.items()))}")  # fmt: skip
    assert stale > 0 and refused > 0
