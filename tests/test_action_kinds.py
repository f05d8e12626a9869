"""One table of action kinds holds the planner, applier, renderers, failsafes and plan schema
together (issue 11, step 1), and the client and the emulator agree on what reads and writes."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler.applying.applier import HANDLERS
from reconciler.emulator.functions import REGISTRY
from reconciler.emulator.functions.services import FUNCTION_TYPES
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.functions import IS_READ
from reconciler.planning.actions import KINDS, REASONS, Action, Details, Reason

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json").read_text()
)


def _sample(tp: Any) -> Any:
    """A value of type ``tp`` (a non-None one where the type allows None)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return _sample(next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        return args[0]
    if origin is tuple:
        return (_sample(args[0]),) if args[-1] is Ellipsis else tuple(map(_sample, args))
    if origin in (dict, typing.Mapping) or tp is typing.Mapping:
        return {"name": ("old", "new")}
    if origin is not None and origin.__name__ == "Mapping":
        return {"name": ("old", "new")}
    return {str: "x", int: 7, bool: True}[tp]


def sample(kind: str) -> Details:
    cls = KINDS[kind].details
    hints = typing.get_type_hints(cls)
    values = {f.name: _sample(hints[f.name]) for f in dataclasses.fields(cls)}
    if "expires" in values:
        values["expires"] = "2027-01-31"
    return cls(**values)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_details_a_line_a_handler_and_a_schema_shape(kind: str) -> None:
    entry = KINDS[kind]
    cls = entry.details
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert kind == cls.KIND and issubclass(cls, Details)
    assert entry.effect in ("add", "change", "remove") and entry.summary
    assert kind in HANDLERS, f"the applier has no handler for {kind}"

    details = sample(kind)
    assert entry.reasons and set(entry.reasons) <= set(REASONS), entry.reasons
    why = Reason(entry.reasons[0], "why", "file.yaml:3")
    symbol, line = Action.of("target", details, why).line()
    assert symbol == {"add": "+", "change": "~", "remove": "-"}[entry.effect]
    assert line and isinstance(line, str)

    shape = SCHEMA["$defs"].get(kind)
    assert shape is not None, f"plan.schema.json has no $defs/{kind}"
    fields = [f.name for f in dataclasses.fields(cls)]
    assert list(shape["properties"]) == fields and shape["required"] == fields
    assert shape["additionalProperties"] is False
    action = Action.of("target", details, why)
    doc = action.to_json()
    Draft202012Validator(SCHEMA["$defs"][kind]).validate(doc["details"])
    assert Action.from_json(json.loads(json.dumps(doc))) == action


def test_the_schema_lists_exactly_the_table_kinds_each_with_its_details_shape() -> None:
    items = SCHEMA["properties"]["actions"]["items"]
    assert set(items["properties"]["kind"]["enum"]) == set(KINDS)
    wired = {rule["if"]["properties"]["kind"]["const"]: rule["then"] for rule in items["allOf"]}
    assert wired == {k: {"properties": {"details": {"$ref": f"#/$defs/{k}"}}} for k in KINDS}
    shared = {"warning"}  # the shape of a plan warning, used by warnings and incomplete
    assert set(SCHEMA["$defs"]) - shared == set(KINDS)


def test_the_table_runs_adds_before_removes() -> None:
    phases = [k.phase for k in KINDS.values()]
    assert phases == sorted(phases)
    last_add = max(k.phase for k in KINDS.values() if k.effect != "remove")
    assert all(k.phase > last_add for k in KINDS.values() if k.effect == "remove")
    assert list(HANDLERS) == list(KINDS)


def test_every_write_function_of_the_table_is_a_write_the_client_knows() -> None:
    for entry in KINDS.values():
        for function in entry.writes:
            assert IS_READ.get(function) is False, (entry.name, function)


def test_every_client_function_exists_in_the_emulator_with_the_same_nature() -> None:
    for function, is_read in IS_READ.items():
        assert function in REGISTRY, f"the emulator lacks {function}"
        assert FUNCTION_TYPES[function] == ("read" if is_read else "write"), function
    assert set(FUNCTION_TYPES) == set(REGISTRY)


def test_every_function_the_client_calls_is_in_its_read_write_table() -> None:
    """A function missing from ``IS_READ`` would be treated as a write (never retried):
    safe, but the table would lie; the client's source names each one it calls."""
    import inspect

    source = inspect.getsource(MoodleClient)
    called = set(re.findall(r'"((?:core|enrol|local_ws_enrolcohort)_[a-z_]+)"', source))
    assert called and called <= set(IS_READ), sorted(called - set(IS_READ))


def test_the_schema_lists_exactly_the_reason_codes_and_actions_need_one() -> None:
    items = SCHEMA["properties"]["actions"]["items"]
    assert "reason" in items["required"]
    shape = items["properties"]["reason"]
    assert shape["properties"]["code"]["enum"] == list(REASONS)
    assert shape["required"] == ["code", "text", "source"]
    assert all(f"{code}:" in shape["properties"]["code"]["description"] for code in REASONS)


def test_an_action_refuses_a_reason_its_kind_does_not_allow() -> None:
    details = sample("delete_cohort")
    with pytest.raises(ValueError, match="cannot carry the reason 'declared'"):
        Action.of("x", details, Reason("declared", "why"))
    with pytest.raises(ValueError, match="unknown reason code"):
        Reason("because", "why")
