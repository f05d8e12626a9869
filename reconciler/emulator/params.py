"""Parameter descriptions and external_api::validate_parameters semantics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..paramtext import clean_text, strip_tags
from .errors import WSError, invalid_parameter

REQUIRED, DEFAULT, OPTIONAL = "required", "default", "optional"


@dataclass
class Value:
    type: str
    required: str = REQUIRED
    default: Any = None


@dataclass
class Single:
    keys: dict[str, Any]
    required: str = REQUIRED
    default: Any = None


@dataclass
class Multiple:
    content: Any
    required: str = REQUIRED
    default: Any = field(default=None)


def opt(spec: Any) -> Any:
    spec.required = OPTIONAL
    return spec


def dflt(spec: Any, default: Any) -> Any:
    spec.required = DEFAULT
    spec.default = default
    return spec


_INT = re.compile(r"^(0|-?[1-9][0-9]*)$")
INSTALLED_LANGS = {"en"}
INSTALLED_THEMES = {"boost", "classic"}


def clean_param(value: str, ptype: str) -> Any:
    """clean_param() for the types the implemented functions use."""
    if ptype == "int":
        return int(value) if _INT.match(value) else _php_int(value)
    if ptype in ("raw",):
        return value
    if ptype == "raw_trimmed":
        return value.strip()
    if ptype == "text":
        return clean_text(value)  # the exact PARAM_TEXT (reconciler.paramtext)
    if ptype == "notags":
        return strip_tags(value)
    if ptype == "alpha":
        return re.sub(r"[^a-zA-Z]", "", value)
    if ptype == "alphanum":
        return re.sub(r"[^a-zA-Z0-9]", "", value)
    if ptype == "alphanumext":
        return re.sub(r"[^a-zA-Z0-9_-]", "", value)
    if ptype == "username":
        return re.sub(r"[^-.@_a-z0-9]", "", value.strip().lower())
    if ptype == "sequence":
        return value if re.fullmatch(r"[0-9,]*", value) else ""
    if ptype == "lang":
        return value if value in INSTALLED_LANGS else ""
    if ptype == "theme":
        return value if value in INSTALLED_THEMES else ""
    if ptype in ("bool", "plugin"):
        return value
    raise ValueError(f"unknown PARAM type {ptype}")


def _php_int(value: str) -> int:
    m = re.match(r"\s*([+-]?[0-9]+)", value)
    return int(m.group(1)) if m else 0


def _check_value(spec: Value, value: Any) -> Any:
    if isinstance(value, dict):
        raise invalid_parameter("Scalar type expected, array or object received.")
    debuginfo = (
        f'Invalid external api parameter: the value is "{value}", '
        f'the server was expecting "{spec.type}" type'
    )
    if spec.type == "bool":
        if value in ("0", "1"):
            return value == "1"
        raise invalid_parameter(debuginfo)
    cleaned = clean_param(value, spec.type)
    if str(cleaned) != value:
        raise invalid_parameter(debuginfo)
    return cleaned


def validate(spec: Any, value: Any) -> Any:
    """Validate one PHP value against its description; raise WSError like Moodle."""
    if isinstance(spec, Value):
        return _check_value(spec, value)
    if isinstance(spec, Single):
        if not isinstance(value, dict):
            raise invalid_parameter(f"Only arrays accepted. The bad value is: '{value}'")
        result: dict[str, Any] = {}
        rest = dict(value)
        for key, sub in spec.keys.items():
            if key not in rest:
                if sub.required == REQUIRED:
                    raise invalid_parameter(f"Missing required key in single structure: {key}")
                if sub.required == DEFAULT:
                    result[key] = sub.default
                continue
            try:
                result[key] = validate(sub, rest.pop(key))
            except WSError as exc:
                raise invalid_parameter(
                    f"{key} => {exc.message}: {exc.debuginfo}"
                ) from None
        if rest:
            raise invalid_parameter(
                f"Unexpected keys ({', '.join(rest)}) detected in parameter array."
            )
        return result
    if isinstance(spec, Multiple):
        if not isinstance(value, dict):
            raise invalid_parameter(f"Only arrays accepted. The bad value is: '{value}'")
        return [validate(spec.content, item) for item in value.values()]
    raise TypeError(spec)


def invalid_response(debuginfo: str) -> WSError:
    """``invalid_response_exception``: Moodle refused the function's own answer."""
    return WSError("invalid_response_exception", "invalidresponse",
                   "Invalid response value detected", debuginfo)


def _php_type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string"}.get(type(value), "array")


def check_return(spec: Any, value: Any) -> None:
    """``external_api::clean_returnvalue`` as far as it can fail: every declared value is
    validated with ``validate_param`` (cleaning must not change it), in the declared key
    order; a missing required key fails; unknown keys are dropped by Moodle (ignored here).
    Raises the ``invalid_response_exception`` Moodle answers, with its ``debuginfo`` path
    ("data => Invalid response value detected: name => ..."). Multiple structures add no
    index to the path."""
    if isinstance(spec, Value):
        if value is None or isinstance(value, bool) or spec.type in ("raw", "bool"):
            return
        text = str(value)
        if spec.type == "int":
            ok = isinstance(value, int) or bool(_INT.match(text))
        else:
            ok = clean_param(text, spec.type) == text
        if not ok:
            raise invalid_response(
                f'Invalid external api response: the value is "{text}" of PHP type '
                f'"{_php_type(value)}", the server was expecting "{spec.type}" type')
        return
    if isinstance(spec, Single):
        if not isinstance(value, dict):
            raise invalid_response(f"Only arrays/objects accepted. The bad value is: '{value}'")
        for key, sub in spec.keys.items():
            if key not in value:
                if sub.required == REQUIRED:
                    raise invalid_response("Error in response - Missing following required "
                                           f"key in a single structure: {key}")
                continue
            try:
                check_return(sub, value[key])
            except WSError as exc:
                raise invalid_response(f"{key} => {exc.message}: {exc.debuginfo}") from None
        return
    if isinstance(spec, Multiple):
        if not isinstance(value, list):
            raise invalid_response(f"Only arrays accepted. The bad value is: '{value}'")
        for item in value:
            check_return(spec.content, item)
        return
    raise TypeError(spec)
