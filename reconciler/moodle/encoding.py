"""PHP bracket form encoding of web-service parameters, as Moodle's REST server reads them.

PHP builds ``$_POST`` from ``a[0][b]=x`` keys; Moodle then validates the nested arrays
strictly (PARAM_BOOL accepts only ``0``/``1``, PARAM_INT only plain digits, unknown keys
fail). So: booleans become ``"1"``/``"0"``, ``None`` values are left out entirely (an empty
string would be a *value*, and a stray key an error), and key order follows the mapping's
insertion order, which the callers build in the order of the recorded transcripts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Pair = tuple[str, str]


def scalar(value: Any) -> str:
    """Render one leaf the way Moodle's ``validate_param`` accepts it."""
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        # PARAM_INT rejects "5.0"; an integral float is almost always a timestamp.
        return str(int(value))
    raise TypeError(f"cannot form-encode {type(value).__name__} value {value!r}")


def _walk(prefix: str, value: Any) -> Iterator[Pair]:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _walk(f"{prefix}[{key}]" if prefix else str(key), sub)
        return
    if isinstance(value, (list, tuple)):
        if not prefix:
            raise TypeError("a top-level list needs a parameter name")
        for index, sub in enumerate(value):
            yield from _walk(f"{prefix}[{index}]", sub)
        return
    if not prefix:
        raise TypeError("a top-level scalar needs a parameter name")
    yield prefix, scalar(value)


def encode(params: Mapping[str, Any]) -> list[Pair]:
    """Flatten nested parameters into ordered ``(key, value)`` pairs.

    ``{"cohortids": [3, 7]}`` gives ``[("cohortids[0]", "3"), ("cohortids[1]", "7")]``.
    Empty lists and dicts give no pair at all: Moodle has no way to receive them, so a caller
    that must send "nothing" has to skip the call (see CONTRACT §2.1).
    """
    return list(_walk("", params))


def encode_item(list_key: str, index: int, item: Mapping[str, Any]) -> list[Pair]:
    """Pairs of one element of a list parameter, e.g. ``members[4][cohortid]``."""
    return list(_walk(f"{list_key}[{index}]", item))


def item_suffixes(item: Any) -> list[Pair]:
    """One element of a list parameter encoded once, without its position: pairs of (key
    after ``name[i]``, value), e.g. ``("[usertype][value]", "12")``, or ``("", "alice")``
    for a scalar. ``name[i]`` + suffix gives the element's keys at any position, so a
    caller sizes batches and sends them from one encoding."""
    if item is None:
        return []
    if not isinstance(item, (Mapping, list, tuple)):
        return [("", scalar(item))]
    # "#" stands for the position; the key always starts with it.
    return [(key[1:], value) for key, value in _walk("#", item)]


def count_fields(params: Mapping[str, Any]) -> int:
    """Number of ``key=value`` pairs PHP will count against ``max_input_vars``."""
    return sum(1 for _ in _walk("", params))


def pack_batches(
    list_key: str,
    items: Sequence[Mapping[str, Any]],
    *,
    budget: int,
) -> list[list[int]]:
    """Split item indices into batches whose encoded pairs fit in ``budget`` fields.

    ``budget`` is what is left of ``max_input_vars`` once the header and the call's fixed
    parameters are counted. Items keep their order; a single item larger than the budget is
    an error rather than a silent truncation on the server.
    """
    return pack_sizes(list_key, [len(item_suffixes(item)) for item in items], budget=budget)


def pack_sizes(list_key: str, sizes: Sequence[int], *, budget: int) -> list[list[int]]:
    """:func:`pack_batches` on the items' field counts (``sizes[i]`` pairs for item i)."""
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if size > budget:
            raise ValueError(
                f"one {list_key} item needs {size} form fields, more than the {budget} "
                "left under max_input_vars"
            )
        if current and used + size > budget:
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        batches.append(current)
    return batches
