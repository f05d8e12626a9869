"""The emulator's HTTP protocol, fault injection, latency, counters and max_input_vars."""

from __future__ import annotations

import time

import pytest
import requests
from support.replay_ws import flatten, ws

from reconciler.emulator import EmulatorConfig, MoodleEmulator

ENDPOINT = "/webservice/rest/server.php"
SITE = {"users": [{"username": f"u{i}", "firstname": "F", "lastname": f"L{i}",
                   "email": f"u{i}@example.org"} for i in range(1, 11)],
        "cohorts": [{"idnumber": "K1", "name": "Cohort & <b>co</b>", "members": []}],
        "courses": [{"shortname": "C&1", "fullname": "Course & co", "categoryid": 1}]}


def started(**config: object) -> MoodleEmulator:
    emu = MoodleEmulator(EmulatorConfig(token="T", **config))  # type: ignore[arg-type]
    emu.seed(SITE)
    return emu.start()


def members(n: int, start: int = 1) -> dict[str, object]:
    return {"members": [{"cohorttype": {"type": "idnumber", "value": "K1"},
                         "usertype": {"type": "username", "value": f"u{i}"}}
                        for i in range(start, start + n)]}


def test_protocol_errors() -> None:
    with started() as emu:
        assert ws(emu.url, "core_webservice_get_site_info", token="bad")["errorcode"] == \
            "invalidtoken"
        assert ws(emu.url, "core_nope")["exception"] == "dml_missing_record_exception"
        assert ws(emu.url, "core_badges_get_user_badges")["errorcode"] == "accessexception"
        got = ws(emu.url, "core_cohort_get_cohorts", {"_": "1"})
        assert got == {"exception": "core\\exception\\invalid_parameter_exception",
                       "errorcode": "invalidparameter",
                       "message": "Invalid parameter value detected"}
        emu.set_config(debug=True)
        got = ws(emu.url, "core_cohort_get_cohorts", {"_": "1"})
        assert got["debuginfo"] == "Unexpected keys (_) detected in parameter array."
        bad_bool = ws(emu.url, "core_cohort_create_cohorts", {"cohorts": [
            {"categorytype": {"type": "system", "value": ""}, "name": "x", "idnumber": "x",
             "visible": "true"}]})
        assert bad_bool["errorcode"] == "invalidparameter"
        bad_int = ws(emu.url, "core_cohort_get_cohorts", {"cohortids": ["05"]})
        assert bad_int["errorcode"] == "invalidparameter"


def test_exception_style_41_and_service_functions() -> None:
    with started(exception_style="4.1",
                 functions=["core_webservice_get_site_info", "core_cohort_get_cohorts"]) as emu:
        info = ws(emu.url, "core_webservice_get_site_info")
        assert [f["name"] for f in info["functions"]] == ["core_webservice_get_site_info",
                                                          "core_cohort_get_cohorts"]
        assert ws(emu.url, "core_cohort_get_cohorts", token="x")["exception"] == \
            "moodle_exception"
        denied = ws(emu.url, "core_cohort_create_cohorts")
        assert denied["exception"] == "webservice_access_exception"


def test_plugin_is_optional() -> None:
    with started(plugin=False) as emu:
        names = [f["name"] for f in ws(emu.url, "core_webservice_get_site_info")["functions"]]
        assert not [n for n in names if n.startswith("local_ws_enrolcohort")]
        got = ws(emu.url, "local_ws_enrolcohort_get_instances", {"course": {"id": -1}})
        assert got["errorcode"] == "invalidrecord"


def test_xml_format_and_web_services_disabled() -> None:
    with started() as emu:
        text = ws(emu.url, "core_cohort_get_cohorts", fmt=None)
        assert text.startswith('<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n<MULTIPLE>')
        assert '<KEY name="visible"><VALUE>1</VALUE>' in text
        error = ws(emu.url, "core_webservice_get_site_info", token="bad", fmt=None)
        assert '<EXCEPTION class="core\\exception\\moodle_exception">' in error
        emu.set_config(webservices_enabled=False)
        response = requests.post(emu.url + ENDPOINT, data={"wstoken": "T"}, timeout=5)
        assert (response.status_code, response.content) == (403, b"")


def test_html_escaping_by_function_and_raw_setting() -> None:
    with started() as emu:
        course = ws(emu.url, "core_course_get_courses_by_field",
                    {"field": "shortname", "value": "C&1"})["courses"][0]
        assert (course["fullname"], course["shortname"]) == ("Course &amp; co", "C&amp;1")
        raw = ws(emu.url, "core_course_get_courses_by_field",
                 {"field": "shortname", "value": "C&1"}, moodlewssettingraw="1")["courses"][0]
        assert raw["fullname"] == "Course & co"
        cohort = ws(emu.url, "core_cohort_get_cohorts")[0]
        assert cohort["name"] == "Cohort & <b>co</b>"  # cohort names are never escaped


def test_max_input_vars_truncates_silently() -> None:
    # PHP keeps max_input_vars + 1 pairs (recorded off-by-one). 3 header pairs + 4 pairs per
    # member: a limit of 10 keeps exactly two members, and the call succeeds.
    with started(max_input_vars=10) as emu:
        assert ws(emu.url, "core_cohort_add_cohort_members", members(5)) == {"warnings": []}
        got = ws(emu.url, "core_cohort_get_cohort_members",
                 {"cohortids": [min(emu.state.cohorts)]})
        assert len(got[0]["userids"]) == 2
        emu.set_config(max_input_vars=12)  # the cut now falls inside the third member
        assert ws(emu.url, "core_cohort_add_cohort_members", members(5, 3))["errorcode"] == \
            "invalidparameter"
        assert emu.call_log[-1][1] == 3 + 4 * 5  # pairs sent; PHP kept only 13 of them


def test_fault_injection_kinds() -> None:
    with started() as emu:
        url = emu.url + ENDPOINT
        site_info = {"wstoken": "T", "wsfunction": "core_webservice_get_site_info",
                     "moodlewsrestformat": "json"}
        emu.inject_fault("http500", function="core_webservice_get_site_info")
        assert requests.post(url, data=site_info, timeout=5).status_code == 500
        assert requests.post(url, data=site_info, timeout=5).status_code == 200
        emu.inject_fault("drop")
        with pytest.raises(requests.ConnectionError):
            requests.post(url, data=site_info, timeout=5)
        emu.fault_timeout_s = 1.0
        emu.inject_fault("timeout")
        with pytest.raises(requests.Timeout):
            requests.post(url, data=site_info, timeout=0.3)
        emu.inject_fault("exception", function="core_cohort_add_cohort_members", on_call=2,
                         times=1)
        assert ws(emu.url, "core_cohort_add_cohort_members", members(1)) == {"warnings": []}
        failed = ws(emu.url, "core_cohort_add_cohort_members", members(1, 2))
        assert failed["errorcode"] == "emulatorinjectedfault"
        assert ws(emu.url, "core_cohort_add_cohort_members", members(1, 3)) == {"warnings": []}
        got = ws(emu.url, "core_cohort_get_cohort_members", {"cohortids": [min(emu.state.cohorts)]})
        assert len(got[0]["userids"]) == 2  # the failed call changed nothing


def _members_of_k1(emu: MoodleEmulator) -> int:
    got = ws(emu.url, "core_cohort_get_cohort_members", {"cohortids": [min(emu.state.cohorts)]})
    return len(got[0]["userids"])


@pytest.mark.parametrize("kind", ["http500", "drop", "timeout"])
def test_an_answer_lost_after_the_commit_still_changed_the_site(kind: str) -> None:
    with started() as emu:
        emu.fault_timeout_s = 0.6
        emu.inject_fault(kind, function="core_cohort_add_cohort_members", after_commit=True)
        data = {"wstoken": "T", "wsfunction": "core_cohort_add_cohort_members",
                "moodlewsrestformat": "json", **dict(flatten(members(2)))}
        if kind == "http500":
            response = requests.post(emu.url + ENDPOINT, data=data, timeout=5)
            assert (response.status_code, response.content) == (500, b"")
        else:
            with pytest.raises((requests.ConnectionError, requests.Timeout)):
                requests.post(emu.url + ENDPOINT, data=data, timeout=0.3)
        assert _members_of_k1(emu) == 2  # committed all the same
        assert emu.committed_writes == 1
        with pytest.raises(ValueError, match="cannot strike after the commit"):
            emu.inject_fault("exception", after_commit=True)


def test_a_hook_runs_after_the_nth_committed_write_only() -> None:
    with started() as emu:
        fired: list[int] = []
        emu.after_committed_write(2, lambda: fired.append(_count(emu)))
        assert ws(emu.url, "core_cohort_add_cohort_members", members(1)) == {"warnings": []}
        ws(emu.url, "core_cohort_get_cohorts")  # a read does not count
        emu.inject_fault("exception", function="core_cohort_add_cohort_members")
        assert "exception" in ws(emu.url, "core_cohort_add_cohort_members", members(1, 2))
        assert fired == []  # a refused write does not count either
        assert ws(emu.url, "core_cohort_add_cohort_members", members(1, 3)) == {"warnings": []}
        assert fired == [2]  # ran after the second commit, before the answer went out
        # Revoking the token from a hook: the next call is refused.
        emu.after_committed_write(1, lambda: emu.set_config(token="revoked"))
        ws(emu.url, "core_cohort_add_cohort_members", members(1, 4))
        assert ws(emu.url, "core_cohort_get_cohorts")["errorcode"] == "invalidtoken"


def _count(emu: MoodleEmulator) -> int:
    return sum(len(m) for m in emu.state.cohort_members.values())


def test_latency_counters_and_log() -> None:
    with started(latency_ms=50) as emu:
        started_at = time.perf_counter()
        for _ in range(3):
            ws(emu.url, "core_webservice_get_site_info")
        ws(emu.url, "core_cohort_get_cohorts", {"cohortids": [1]})
        assert time.perf_counter() - started_at >= 0.2
        assert emu.call_counts == {"core_webservice_get_site_info": 3,
                                   "core_cohort_get_cohorts": 1}
        assert emu.call_log[-1][0:2] == ("core_cohort_get_cohorts", 4)
        assert all(duration >= 0.05 for _, _, duration in emu.call_log)
        emu.reset_counters()
        assert not emu.call_counts and not emu.call_log


def test_flatten_encodes_php_brackets() -> None:
    assert flatten({"a": [{"b": 1}, {"b": 2}]}) == [("a[0][b]", "1"), ("a[1][b]", "2")]


def test_every_service_function_is_implemented() -> None:
    """functions=None gives the recorded service, and each of its functions is emulated."""
    from reconciler.emulator.functions import REGISTRY, SERVICE_ORDER

    assert [n for n in SERVICE_ORDER if n not in REGISTRY] == []
    with started() as emu:
        info = ws(emu.url, "core_webservice_get_site_info")
        assert [f["name"] for f in info["functions"]] == SERVICE_ORDER
        users = ws(emu.url, "core_user_get_users", {"criteria": [{"key": "username",
                                                                  "value": "u1"}]})
        assert [u["username"] for u in users["users"]] == ["u1"]
        assert len(ws(emu.url, "core_course_get_courses")) == 2
        course = emu.state.course_by_shortname["C&1"]
        ws(emu.url, "enrol_manual_enrol_users", {"enrolments": [
            {"roleid": 5, "userid": emu.state.user_by_username["u1"], "courseid": course}]})
        mine = ws(emu.url, "core_enrol_get_users_courses",
                  {"userid": emu.state.user_by_username["u1"]})
        assert [c["id"] for c in mine] == [course]


def test_get_and_multipart_requests() -> None:
    with started() as emu:
        query = {"wstoken": "T", "wsfunction": "core_cohort_get_cohorts",
                 "moodlewsrestformat": "json"}
        got = requests.get(emu.url + ENDPOINT, params=query, timeout=5).json()
        assert [c["idnumber"] for c in got] == ["K1"]
        multipart = {k: (None, v) for k, v in query.items()}
        got = requests.post(emu.url + ENDPOINT, files=multipart, timeout=5).json()
        assert [c["idnumber"] for c in got] == ["K1"]
        # A JSON body is ignored by PHP: no token (and no format: XML) reaches the server.
        text = requests.post(emu.url + ENDPOINT, json=query, timeout=5).text
        assert "<ERRORCODE>invalidtoken</ERRORCODE>" in text


def test_xml_lists_unset_optional_keys_as_null() -> None:
    """As recorded for get_site_info: XML walks the return description, JSON drops them."""
    with started() as emu:
        text = ws(emu.url, "core_webservice_get_site_info", fmt=None)
        assert '<KEY name="usersessionscount"><VALUE null="null"/>\n</KEY>' in text
        assert "usersessionscount" not in ws(emu.url, "core_webservice_get_site_info")
        assert ws(emu.url, "core_cohort_delete_cohorts", {"cohortids": [1]}, fmt=None) == (
            '<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n</RESPONSE>\n')


def test_max_input_vars_as_recorded_at_10000() -> None:
    """OBSERVED 6.8: 2600 members (10400 fields) against max_input_vars=10000."""
    site = {"users": [{"username": f"m{i}", "firstname": "F", "lastname": "L",
                       "email": f"m{i}@example.org"} for i in range(2600)],
            "cohorts": [{"idnumber": "BIG", "name": "Big", "members": []}]}
    emu = MoodleEmulator(EmulatorConfig(token="T"))
    emu.seed(site)
    with emu:
        cohort = min(emu.state.cohorts)
        body = flatten({"members": [{"cohorttype": {"type": "id", "value": cohort},
                                     "usertype": {"type": "username", "value": f"m{i}"}}
                                    for i in range(2600)]})
        header = [("wstoken", "T"), ("wsfunction", "core_cohort_add_cohort_members"),
                  ("moodlewsrestformat", "json")]

        def post(data: list[tuple[str, str]], query: list[tuple[str, str]] | None = None):
            return requests.post(emu.url + ENDPOINT, data=data, params=query, timeout=30).json()

        def size() -> int:
            return len(emu.state.cohort_members[cohort])

        assert post(header + body)["errorcode"] == "invalidparameter"  # member 2499 cut
        assert post(body, header)["errorcode"] == "invalidparameter"  # query counted apart
        assert size() == 0
        settings = [("moodlewssettingfilter", "false"), ("moodlewssettingfileurl", "true")]
        assert post(header + settings + body) == {"warnings": []}
        assert size() == 2499  # the last 101 members were silently dropped
