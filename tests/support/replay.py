"""Replays a recorded Moodle web-service session and compares answers.

It implements the comparison rules of the recording's README ("How to compare answers"):
per-kind id tables learned during the replay, numbers inside strings, timestamp values
ignored, volatile site-info fields ignored, and the site URL and theme revision neutralised.
Nothing else is normalised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

TIMESTAMP_KEYS = {"timecreated", "timemodified", "firstaccess", "lastaccess", "lastcourseaccess",
                  "lastlogin", "currentlogin", "timeaccess", "cacherev"}
SITE_INFO_VOLATILE = {"userprivateaccesskey", "usersessionscount", "userpictureurl"}
RECORDED_BASE = "http://127.0.0.1:8088"
_THEME_REV = re.compile(r"/theme/image\.php/boost/core/\d+/")
_NUMBER = re.compile(r"\d+")

KEY_KINDS = {"userid": "user", "userids": "user", "cohortid": "cohort", "cohortids": "cohort",
             "courseid": "course", "categoryid": "category", "groupid": "group",
             "siteid": "course"}
LIST_KINDS = {"courses": "course", "cohorts": "cohort", "groups": "group",
              "enrolledcourses": "course", "contacts": "user", "users": "user",
              "categories": "category"}
PLUGIN_OBJECTS = {"course": "course", "cohort": "cohort", "group": "group", "enrol": "enrol",
                  "params": "enrol"}


def function_id_kind(function: str) -> str | None:
    if function.startswith("core_user_") or function == "core_enrol_get_enrolled_users":
        return "user"
    if function.startswith("core_cohort_"):
        return "cohort"
    if function in ("core_course_create_categories", "core_course_get_categories"):
        return "category"
    if function.startswith("core_course_"):
        return "course"
    if function.startswith("core_group_"):
        return "group"
    if function == "core_enrol_get_course_enrolment_methods":
        return "enrol"
    return None


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@dataclass
class IdTables:
    tables: dict[str, dict[int, int]] = field(default_factory=dict)
    reverse: dict[str, dict[int, int]] = field(default_factory=dict)

    def learn(self, kind: str, recorded: Any, replayed: Any) -> bool:
        """Map recorded -> replayed, or check an earlier mapping. False on conflict."""
        if not isinstance(recorded, int) or not isinstance(replayed, int) \
                or isinstance(recorded, bool) or isinstance(replayed, bool):
            return recorded == replayed and type(recorded) is type(replayed)
        table = self.tables.setdefault(kind, {})
        reverse = self.reverse.setdefault(kind, {})
        if recorded in table:
            return table[recorded] == replayed
        if replayed in reverse:
            return False  # keep each table one-to-one
        table[recorded] = replayed
        reverse[replayed] = recorded
        return True

    def rewrite(self, kind: str, value: str) -> str:
        if not value.lstrip("-").isdigit():
            return value
        return str(self.tables.get(kind, {}).get(int(value), int(value)))

    def number_matches(self, recorded: int, replayed: int) -> bool:
        return recorded == replayed or any(t.get(recorded) == replayed
                                           for t in self.tables.values())


def _neutral_url(text: str, base: str) -> str:
    text = text.replace(RECORDED_BASE, "<SITE>") if base != RECORDED_BASE else text
    text = text.replace(base, "<SITE>")
    return _THEME_REV.sub("/theme/image.php/boost/core/<REV>/", text)


@dataclass
class Comparator:
    ids: IdTables
    function: str
    base: str
    diffs: list[str] = field(default_factory=list)

    def strings(self, rec: str, rep: str, path: str) -> None:
        rec_n, rep_n = _neutral_url(rec, RECORDED_BASE), _neutral_url(rep, self.base)
        if rec_n == rep_n:
            return
        rec_parts, rep_parts = _NUMBER.split(rec_n), _NUMBER.split(rep_n)
        rec_nums, rep_nums = _NUMBER.findall(rec_n), _NUMBER.findall(rep_n)
        if rec_parts == rep_parts and len(rec_nums) == len(rep_nums) and all(
            self.ids.number_matches(int(a), int(b)) for a, b in zip(rec_nums, rep_nums,
                                                                   strict=True)
        ):
            return
        self.diffs.append(f"{path}: {rec!r} != {rep!r}")

    def value(self, rec: Any, rep: Any, path: str, kind: str | None = None,
              list_kind: str | None = None) -> None:
        if type(rec) is not type(rep):
            self.diffs.append(f"{path}: type {type(rec).__name__} != {type(rep).__name__} "
                              f"({rec!r} vs {rep!r})")
            return
        if isinstance(rec, dict):
            self.mapping(rec, rep, path, list_kind)
        elif isinstance(rec, list):
            if len(rec) != len(rep):
                self.diffs.append(f"{path}: {len(rec)} items != {len(rep)}")
                return
            for i, (a, b) in enumerate(zip(rec, rep, strict=True)):
                self.value(a, b, f"{path}[{i}]", kind, list_kind)
        elif isinstance(rec, str):
            self.strings(rec, rep, path)
        elif kind is not None and isinstance(rec, int) and not isinstance(rec, bool):
            if not self.ids.learn(kind, rec, rep):
                self.diffs.append(f"{path}: id {rec} does not map to {rep} ({kind})")
        elif rec != rep:
            self.diffs.append(f"{path}: {rec!r} != {rep!r}")

    def mapping(self, rec: dict[str, Any], rep: dict[str, Any], path: str,
                list_kind: str | None) -> None:
        if list(rec) != list(rep) and set(rec) != set(rep):
            self.diffs.append(f"{path}: keys {sorted(set(rec) ^ set(rep))} differ")
            return
        plugin = self.function.startswith("local_ws_enrolcohort_")
        for key, rec_value in rec.items():
            rep_value = rep[key]
            sub = f"{path}.{key}"
            if key in TIMESTAMP_KEYS:
                continue
            if self.function == "core_webservice_get_site_info" and key in SITE_INFO_VOLATILE:
                continue
            kind = self._kind(key, rec, path, list_kind, plugin)
            self.value(rec_value, rep_value, sub, kind, LIST_KINDS.get(key))

    def _kind(self, key: str, item: dict[str, Any], path: str, list_kind: str | None,
              plugin: bool) -> str | None:
        if key == "id":
            if plugin:
                if path == "$":  # top level: enrol, or the course for get_instances
                    return "course" if self.function.endswith("get_instances") else "enrol"
                return PLUGIN_OBJECTS.get(item.get("object", ""))
            return list_kind or function_id_kind(self.function)
        if key == "parent" and self.function in ("core_course_create_categories",
                                                 "core_course_get_categories"):
            return "category"
        return KEY_KINDS.get(key)


_PARAM_KINDS = {"userid": "user", "cohortid": "cohort", "courseid": "course",
                "categoryid": "category", "groupid": "group", "userids": "user",
                "cohortids": "cohort", "groupids": "group", "parent": "category"}


def rewrite_params(pairs: list[list[str]], ids: IdTables, function: str | None) -> list[
        tuple[str, str]]:
    """Send recorded requests with ids translated through the learned tables."""
    flat = dict((k, v) for k, v in pairs)
    out = []
    for key, value in pairs:
        segments = re.findall(r"[^\[\]]+", key)
        kind = None
        last = segments[-1] if segments else key
        if last in _PARAM_KINDS:
            kind = _PARAM_KINDS[last]
        elif segments[:1] in (["cohortids"], ["userids"], ["groupids"]) and len(segments) == 2:
            kind = _PARAM_KINDS[segments[0]]
        elif last == "value" and len(segments) >= 2 and segments[-2] in (
                "cohorttype", "usertype", "categorytype"):
            type_key = key[: key.rfind("[value]")] + "[type]"
            if flat.get(type_key) == "id":
                kind = {"cohorttype": "cohort", "usertype": "user",
                        "categorytype": "category"}[segments[-2]]
        elif key == "instance[id]":
            kind = "enrol"
        elif key == "course[id]":
            kind = "course"
        elif key.startswith("cohorts[") and last == "id":
            kind = "cohort"
        elif (key.startswith("users[") and last == "id") or (function == "core_user_get_users_by_field" and segments[0] == "values" \
                and flat.get("field") == "id"):
            kind = "user"
        elif function == "core_course_get_courses_by_field" and key == "value":
            field_name = flat.get("field")
            if field_name in ("id", "ids"):
                value = ",".join(ids.rewrite("course", v) for v in value.split(","))
            elif field_name == "category":
                kind = "category"
        if kind is not None:
            value = ids.rewrite(kind, value)
        out.append((key, value))
    return out


@dataclass
class RecordResult:
    seq: int
    function: str | None
    diffs: list[str]


Normaliser = Callable[[Any, Any, IdTables], tuple[Any, Any]]


def replay(records: list[dict[str, Any]], url: str, token: str,
           control: Callable[[dict[str, Any]], None],
           session: requests.Session | None = None,
           artefacts: dict[int, Normaliser] | None = None) -> list[RecordResult]:
    """Send every call in order; compare each answer. Returns one result per call record.

    ``artefacts`` maps a seq to a function that rewrites (recorded, replayed) before the
    comparison; it exists for explicitly documented recording artefacts only.
    """
    ids = IdTables()
    http = session or requests.Session()
    results = []
    endpoint = url.rstrip("/") + "/webservice/rest/server.php"
    for record in records:
        if record.get("meta"):
            continue
        if record.get("control"):
            control(record["control"])
            continue
        function = record["wsfunction"]
        pairs = [(k, token if k == "wstoken" and v == "TOKEN" else v)
                 for k, v in rewrite_params(record["params"], ids, function)]
        response = http.post(endpoint, data=pairs, params=record.get("url_query"), timeout=30)
        diffs: list[str] = []
        if response.status_code != record["status"]:
            diffs.append(f"status {record['status']} != {response.status_code}")
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        recorded = record["response"]
        if artefacts and record["seq"] in artefacts:
            recorded, answer = artefacts[record["seq"]](recorded, answer, ids)
        comparator = Comparator(ids, function or "", url.rstrip("/"))
        comparator.value(recorded, answer, "$")
        diffs += comparator.diffs
        results.append(RecordResult(record["seq"], function, diffs))
    return results
