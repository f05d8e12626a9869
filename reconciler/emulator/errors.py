"""Exceptions as Moodle's REST server reports them (HTTP 200, exception JSON)."""

from __future__ import annotations

from typing import Any

# Classes that became class_aliases of core\exception\* in 4.5 (MDL-81903).
_CORE_ALIASED = {
    "moodle_exception",
    "invalid_parameter_exception",
    "coding_exception",
    "required_capability_exception",
    "invalid_response_exception",
}


class WSError(Exception):
    """One web-service exception. ``cls`` is the PHP class name in 4.1 spelling."""

    def __init__(
        self,
        cls: str,
        errorcode: str | None,
        message: str,
        debuginfo: str | None = None,
    ) -> None:
        super().__init__(message)
        self.cls = cls
        self.errorcode = errorcode
        self.message = message
        self.debuginfo = debuginfo

    def class_name(self, style: str) -> str:
        if style == "4.5" and self.cls in _CORE_ALIASED:
            return "core\\exception\\" + self.cls
        return self.cls

    def to_dict(self, style: str, debug: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"exception": self.class_name(style)}
        if self.errorcode is not None:
            out["errorcode"] = self.errorcode
        out["message"] = self.message
        if debug and self.debuginfo is not None:
            out["debuginfo"] = self.debuginfo
        return out


def invalid_parameter(debuginfo: str) -> WSError:
    return WSError(
        "invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected",
        debuginfo,
    )


def coding_error(hint: str) -> WSError:
    return WSError(
        "coding_exception",
        "codingerror",
        "Coding error detected, it must be fixed by a programmer: " + hint,
    )


def moodle_error(errorcode: str, message: str, debuginfo: str | None = None) -> WSError:
    return WSError("moodle_exception", errorcode, message, debuginfo)


def _php_export(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def missing_record(table: str, where: str, params: list[Any], fields: str = "*") -> WSError:
    """dml_missing_record_exception with the SQL Moodle puts in debuginfo."""
    code = "invaliduser" if table == "user" else "invalidrecord"
    message = (
        "Invalid user"
        if table == "user"
        else f"Can't find data record in database table {table}."
    )
    exported = "".join(f"  {i} => {_php_export(v)},\n" for i, v in enumerate(params))
    debuginfo = f"SELECT {fields} FROM {{{table}}} WHERE {where}\n[array (\n{exported})]"
    return WSError("dml_missing_record_exception", code, message, debuginfo)


def missing_user(userid: int) -> WSError:
    return missing_record("user", "id = ? AND deleted = ? AND mnethostid = ?", [userid, 0, "1"])


def plugin_error(cls: str, errorcode: str, message: str, debuginfo: str) -> WSError:
    return WSError(f"local_ws_enrolcohort\\exceptions\\{cls}", errorcode, message, debuginfo)


class PhpError(WSError):
    """A PHP ``Error`` leaking through the REST server: no errorcode."""

    def __init__(self, message: str) -> None:
        super().__init__("Error", None, message)
