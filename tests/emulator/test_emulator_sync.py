"""enrol_cohort side effects, plugin behaviour and transactions of the emulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from support.replay_ws import ws

from reconciler.emulator import EmulatorConfig, MoodleEmulator

T0 = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
DAY = 86400

SITE = {
    "categories": [{"name": "Lettres", "idnumber": "CAT-LET", "parent": 0}],
    "courses": [{"shortname": "C1", "fullname": "Course 1", "category_idnumber": "CAT-LET"},
                {"shortname": "C2", "fullname": "Course 2", "categoryid": 1}],
    "users": [{"username": f"u{i}", "firstname": f"F{i}", "lastname": f"L{i}",
               "email": f"u{i}@example.org"} for i in range(1, 7)],
    "cohorts": [{"idnumber": "K1", "name": "Cohort 1", "members": ["u1", "u2"]},
                {"idnumber": "K2", "name": "Cohort 2", "category_idnumber": "CAT-LET",
                 "members": ["u3"]}],
    "cohort_syncs": [{"course": "C1", "cohort": "K1", "roleid": 5, "group": "G1"}],
}


def make(**config: Any) -> MoodleEmulator:
    emu = MoodleEmulator(EmulatorConfig(token="T", now=T0, **config))
    emu.seed(SITE)
    return emu.start()


@pytest.fixture
def emu() -> Iterator[MoodleEmulator]:
    emulator = make()
    yield emulator
    emulator.stop()


def uid(emu: MoodleEmulator, username: str) -> int:
    return emu.state.user_by_username[username]


def cid(emu: MoodleEmulator, shortname: str) -> int:
    return emu.state.course_by_shortname[shortname]


def kid(emu: MoodleEmulator, idnumber: str) -> int:
    return min(emu.state.cohorts_by_idnumber[idnumber])


def enrolled(emu: MoodleEmulator, course: str, **options: str) -> dict[int, list[int]]:
    opts = [{"name": k, "value": v} for k, v in options.items()]
    users = ws(emu.url, "core_enrol_get_enrolled_users",
               {"courseid": cid(emu, course), "options": opts} if opts else
               {"courseid": cid(emu, course)})
    return {u["id"]: [r["roleid"] for r in u["roles"]] for u in users}


def group_members(emu: MoodleEmulator, course: str) -> set[int]:
    groups = ws(emu.url, "core_group_get_course_groups", {"courseid": cid(emu, course)})
    members = ws(emu.url, "core_group_get_group_members", {"groupids": [groups[0]["id"]]})
    return set(members[0]["userids"])


def add_member(emu: MoodleEmulator, cohort: str, username: str) -> Any:
    return ws(emu.url, "core_cohort_add_cohort_members", {"members": [
        {"cohorttype": {"type": "idnumber", "value": cohort},
         "usertype": {"type": "username", "value": username}}]})


def remove_member(emu: MoodleEmulator, cohort: str, username: str) -> Any:
    return ws(emu.url, "core_cohort_delete_cohort_members", {"members": [
        {"cohortid": kid(emu, cohort), "userid": uid(emu, username)}]})


def test_seeded_sync_enrolled_members_into_group(emu: MoodleEmulator) -> None:
    assert enrolled(emu, "C1") == {uid(emu, "u1"): [5], uid(emu, "u2"): [5]}
    assert group_members(emu, "C1") == {uid(emu, "u1"), uid(emu, "u2")}


def test_member_add_and_remove_with_unenrol(emu: MoodleEmulator) -> None:
    assert add_member(emu, "K1", "u4") == {"warnings": []}
    assert enrolled(emu, "C1")[uid(emu, "u4")] == [5]
    assert uid(emu, "u4") in group_members(emu, "C1")
    assert remove_member(emu, "K1", "u1") is None
    assert uid(emu, "u1") not in enrolled(emu, "C1")
    assert uid(emu, "u1") not in group_members(emu, "C1")


@pytest.mark.parametrize(("action", "roles_kept"), [(2, [5]), (3, [])])
def test_member_remove_with_suspend(action: int, roles_kept: list[int]) -> None:
    with make(unenrolaction=action) as emu:
        remove_member(emu, "K1", "u1")
        u1 = uid(emu, "u1")
        assert enrolled(emu, "C1")[u1] == roles_kept
        assert u1 in enrolled(emu, "C1", onlysuspended="1")
        assert u1 not in enrolled(emu, "C1", onlyactive="1")
        add_member(emu, "K1", "u1")  # re-adding reactivates and reassigns the role
        assert enrolled(emu, "C1", onlyactive="1")[u1] == [5]


def test_manual_enrolment_is_kept_when_leaving_the_cohort(emu: MoodleEmulator) -> None:
    ws(emu.url, "enrol_manual_enrol_users", {"enrolments": [
        {"roleid": 5, "userid": uid(emu, "u1"), "courseid": cid(emu, "C1")}]})
    assert enrolled(emu, "C1")[uid(emu, "u1")] == [5, 5]  # one per role assignment
    remove_member(emu, "K1", "u1")
    assert enrolled(emu, "C1")[uid(emu, "u1")] == [5]


def test_cohort_delete_unenrols_and_deletes_instances(emu: MoodleEmulator) -> None:
    assert ws(emu.url, "core_cohort_delete_cohorts", {"cohortids": [kid(emu, "K1")]}) is None
    assert enrolled(emu, "C1") == {}
    got = ws(emu.url, "local_ws_enrolcohort_get_instances", {"course": {"id": cid(emu, "C1")}})
    assert got["data"] == []


def test_cohort_delete_with_suspend_disables_instances() -> None:
    with make(unenrolaction=3) as emu:
        ws(emu.url, "core_cohort_delete_cohorts", {"cohortids": [kid(emu, "K1")]})
        assert enrolled(emu, "C1") == {uid(emu, "u1"): [], uid(emu, "u2"): []}
        assert enrolled(emu, "C1", onlyactive="1") == {}


def test_instance_delete_unenrols(emu: MoodleEmulator) -> None:
    got = ws(emu.url, "local_ws_enrolcohort_get_instances", {"course": {"id": cid(emu, "C1")}})
    instance = got["data"][0]["id"]
    deleted = ws(emu.url, "local_ws_enrolcohort_delete_instance", {"instance": {"id": instance}})
    assert deleted["code"] == 200
    assert enrolled(emu, "C1") == {}


def test_disable_then_enable_instance(emu: MoodleEmulator) -> None:
    got = ws(emu.url, "local_ws_enrolcohort_get_instances", {"course": {"id": cid(emu, "C1")}})
    instance = got["data"][0]["id"]
    ws(emu.url, "local_ws_enrolcohort_update_instance", {"instance": {"id": instance,
                                                                      "status": 1}})
    assert enrolled(emu, "C1", onlyactive="1") == {}
    assert enrolled(emu, "C1") == {uid(emu, "u1"): [], uid(emu, "u2"): []}
    add_member(emu, "K1", "u5")  # not enrolled while disabled
    assert uid(emu, "u5") not in enrolled(emu, "C1")
    ws(emu.url, "local_ws_enrolcohort_update_instance", {"instance": {"id": instance,
                                                                      "status": 0}})
    assert set(enrolled(emu, "C1", onlyactive="1")) == {uid(emu, u) for u in ("u1", "u2", "u5")}


def test_add_instance_quirk_and_fixed_status() -> None:
    params = {"instance": {"courseid": 0, "cohortid": 0, "roleid": 5, "status": 1}}
    for quirks, expected_status in ((True, 0), (False, 1)):
        with make(plugin_quirks=quirks) as emu:
            params["instance"].update(courseid=cid(emu, "C2"), cohortid=kid(emu, "K1"))
            added = ws(emu.url, "local_ws_enrolcohort_add_instance", params)
            assert added["code"] == 201
            assert added["data"][-1]["status"] == expected_status
            assert bool(enrolled(emu, "C2")) is (expected_status == 0)


def test_category_cohort_is_unavailable_outside_its_category(emu: MoodleEmulator) -> None:
    got = ws(emu.url, "local_ws_enrolcohort_add_instance", {"instance": {
        "courseid": cid(emu, "C2"), "cohortid": kid(emu, "K2"), "roleid": 5}})
    assert got["errorcode"] == "unavailableatcontext"


def test_manual_times_follow_the_clock(emu: MoodleEmulator) -> None:
    now = int(T0.timestamp())
    ws(emu.url, "enrol_manual_enrol_users", {"enrolments": [
        {"roleid": 5, "userid": uid(emu, "u6"), "courseid": cid(emu, "C2"),
         "timestart": now + 10 * DAY, "timeend": now + 20 * DAY}]})
    assert enrolled(emu, "C2", onlyactive="1") == {}
    emu.set_now(T0 + dt.timedelta(days=11))
    assert uid(emu, "u6") in enrolled(emu, "C2", onlyactive="1")
    emu.set_now(T0 + dt.timedelta(days=21))
    assert enrolled(emu, "C2", onlyactive="1") == {}


def test_failed_batch_rolls_back_everything_including_side_effects(emu: MoodleEmulator) -> None:
    before = ws(emu.url, "core_cohort_get_cohorts")
    error = ws(emu.url, "core_cohort_create_cohorts", {"cohorts": [
        {"categorytype": {"type": "system", "value": ""}, "name": "ok", "idnumber": "NEW"},
        {"categorytype": {"type": "system", "value": ""}, "name": "dup", "idnumber": "K1"}]})
    assert error["errorcode"] == "invalidparameter"
    assert ws(emu.url, "core_cohort_get_cohorts") == before
    error = ws(emu.url, "core_cohort_delete_cohort_members", {"members": [
        {"cohortid": kid(emu, "K1"), "userid": uid(emu, "u1")},
        {"cohortid": kid(emu, "K1"), "userid": 999999}]})
    assert error["errorcode"] == "invaliduser"
    assert uid(emu, "u1") in enrolled(emu, "C1")  # the unenrolment was rolled back too
    assert uid(emu, "u1") in group_members(emu, "C1")


def test_add_members_warnings_do_not_roll_back(emu: MoodleEmulator) -> None:
    got = ws(emu.url, "core_cohort_add_cohort_members", {"members": [
        {"cohorttype": {"type": "idnumber", "value": "K1"},
         "usertype": {"type": "username", "value": "u5"}},
        {"cohorttype": {"type": "idnumber", "value": "K1"},
         "usertype": {"type": "username", "value": "nobody"}}]})
    assert got == {"warnings": [{"warningcode": "2", "message": "user username=nobody not exists"}]}
    assert uid(emu, "u5") in enrolled(emu, "C1")


def test_run_sync_task_fixes_drift(emu: MoodleEmulator) -> None:
    k1, u6 = kid(emu, "K1"), uid(emu, "u6")
    emu.state.add_cohort_member(k1, u6)  # behind the observers' back
    emu.state.remove_cohort_member(k1, uid(emu, "u2"))
    assert u6 not in enrolled(emu, "C1")
    emu.run_sync_task()
    assert enrolled(emu, "C1") == {uid(emu, "u1"): [5], u6: [5]}
    assert group_members(emu, "C1") == {uid(emu, "u1"), u6}
