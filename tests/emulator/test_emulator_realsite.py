"""What the real Moodle 4.5 site answered (issue 10), reproduced by the emulator exactly.

Each expected body below was recorded on the realmoodle site (debug = DEVELOPER where a
``debuginfo`` is shown): a synced cohort whose name holds markup, a cohort-sync group named
after it, a manual enrolment whose welcome mail cannot be sent, the read-only service.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from reconciler.emulator import EmulatorConfig, MoodleEmulator

TOKEN, READONLY = "T", "RO"
EXPECTING = ' of PHP type "string", the server was expecting "text" type'


def _value(name: str) -> str:
    return f'Invalid external api response: the value is "{name}"{EXPECTING}'


def _path(*keys: str) -> str:
    return "".join(f"{k} => Invalid response value detected: " for k in keys)


def invalid(debuginfo: str) -> dict[str, Any]:
    return {"exception": "core\\exception\\invalid_response_exception",
            "errorcode": "invalidresponse", "message": "Invalid response value detected",
            "debuginfo": debuginfo}


@pytest.fixture
def emu() -> Iterator[MoodleEmulator]:
    config = EmulatorConfig(token=TOKEN, readonly_token=READONLY, debug=True)
    with MoodleEmulator(config) as site:
        site.seed({
            "courses": [{"shortname": "PROBE-X", "fullname": "Probe X"},
                        {"shortname": "FINE", "fullname": "Fine"}],
            "users": [{"username": "teach1", "firstname": "T", "lastname": "Each",
                       "email": "t@example.org"},
                      {"username": "stud1", "firstname": "S", "lastname": "Tud",
                       "email": "s1@example.org"}],
            "cohorts": [{"idnumber": "probe-markup", "name": "L1 <Droit>",
                         "members": ["stud1"]},
                        {"idnumber": "probe-fine", "name": "Fine"}],
        })
        yield site


def ws(emu: MoodleEmulator, function: str, token: str = TOKEN, **params: Any) -> Any:
    pairs = [("wstoken", token), ("wsfunction", function), ("moodlewsrestformat", "json")]

    def flat(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(f"{prefix}[{k}]" if prefix else k, v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                flat(f"{prefix}[{i}]", v)
        else:
            pairs.append((prefix, str(value)))

    flat("", params)
    return requests.post(emu.url + "/webservice/rest/server.php", data=pairs, timeout=10).json()


def _ids(emu: MoodleEmulator) -> tuple[int, int, int]:
    courses = {c["shortname"]: c["id"] for c in ws(emu, "core_course_get_courses")}
    cohorts = {c["idnumber"]: c["id"] for c in ws(emu, "core_cohort_get_cohorts")}
    return courses["PROBE-X"], courses["FINE"], cohorts["probe-markup"]


def test_markup_cohort_name_commits_the_instance_then_breaks_every_instance_read(
    emu: MoodleEmulator,
) -> None:
    course, fine, cohort = _ids(emu)
    answer = ws(emu, "local_ws_enrolcohort_add_instance",
                instance={"courseid": course, "cohortid": cohort, "roleid": 5, "groupid": -1})
    assert answer == invalid(_path("data", "name") + _value("L1 <Droit>"))
    broken = invalid(_path("data", "cohort", "name") + _value("L1 <Droit>"))
    assert ws(emu, "local_ws_enrolcohort_get_instances", course={"id": course}) == broken
    assert ws(emu, "local_ws_enrolcohort_get_instances", course={"id": -1}) == broken
    assert ws(emu, "local_ws_enrolcohort_get_instances", course={"id": fine})["data"] == []
    # committed: the member is enrolled, the cohort group exists
    enrolled = ws(emu, "core_enrol_get_enrolled_users", courseid=course,
                  options=[{"name": "userfields", "value": "id,username"}])
    assert [u["username"] for u in enrolled] == ["stud1"]
    # the group "L1 <Droit> cohort": formatted (tags stripped) normally, refused when raw
    [group] = ws(emu, "core_group_get_course_groups", courseid=course)
    assert group["name"] == "L1  cohort"
    assert ws(emu, "core_group_get_course_groups", courseid=course, moodlewssettingraw=1) == (
        invalid(_path("name") + _value("L1 <Droit> cohort")))


def test_a_name_with_a_spaced_angle_bracket_is_answered(emu: MoodleEmulator) -> None:
    course, _, cohort = _ids(emu)
    ws(emu, "core_cohort_update_cohorts", cohorts=[{
        "id": cohort, "categorytype": {"type": "system", "value": ""}, "name": "a < b",
        "idnumber": "probe-markup"}])
    answer = ws(emu, "local_ws_enrolcohort_add_instance",
                instance={"courseid": course, "cohortid": cohort, "roleid": 5})
    assert answer["code"] == 201


def test_mail_failure_after_a_manual_enrolment_in_a_course_with_a_contact(
    emu: MoodleEmulator,
) -> None:
    course, _, _ = _ids(emu)
    users = {u["username"]: u["id"] for u in ws(emu, "core_user_get_users_by_field",
                                                 field="username", values=["teach1", "stud1"])}
    emu.set_config(mail_fails=True)
    # No contact yet: the teacher's own enrolment owes no welcome mail.
    assert ws(emu, "enrol_manual_enrol_users", enrolments=[
        {"roleid": 3, "userid": users["teach1"], "courseid": course}]) is None
    answer = ws(emu, "enrol_manual_enrol_users", enrolments=[
        {"roleid": 5, "userid": users["stud1"], "courseid": course}])
    assert answer == {"exception": "core\\exception\\moodle_exception",
                      "errorcode": "Message was not sent.",
                      "message": "error/Message was not sent."}
    active = ws(emu, "core_enrol_get_enrolled_users", courseid=course,
                options=[{"name": "onlyactive", "value": 1},
                         {"name": "userfields", "value": "id"}])
    assert {u["id"] for u in active} == set(users.values())  # committed all the same
    emu.set_config(mail_fails=False)
    assert ws(emu, "enrol_manual_enrol_users", enrolments=[
        {"roleid": 5, "userid": users["stud1"], "courseid": course}]) is None


def test_read_only_token_has_the_read_only_service(emu: MoodleEmulator) -> None:
    info = ws(emu, "core_webservice_get_site_info", token=READONLY)
    names = [f["name"] for f in info["functions"]]
    assert len(names) == 16 and "local_ws_enrolcohort_get_instances" in names
    assert not [n for n in names if "create" in n or "delete" in n or "add" in n]
    refused = ws(emu, "core_cohort_create_cohorts", token=READONLY, cohorts=[{
        "categorytype": {"type": "system", "value": ""}, "name": "x", "idnumber": "x"}])
    assert refused["errorcode"] == "accessexception"
    assert ws(emu, "core_cohort_get_cohorts", token=READONLY)
