"""The manual-enrolment ledger: its file (one section per site, atomic writes, unreadable
files refused in one line) and the applier's use of it (recorded before the enrolment
call, marked ended only after the end call came back)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_applier import FakeMoodle

from reconciler.applying.applier import END_MARGIN_SECONDS, apply_plan
from reconciler.applying.journal import Journal
from reconciler.applying.ledger_file import LedgerFileError, LedgerStore, load_ledger
from reconciler.moodle.types import ManualEnrolment
from reconciler.planning.actions import Action, EndManual, EnrolManual, Reason, RetireManual
from reconciler.planning.ledger import Ledger, LedgerEntry
from reconciler.planning.plan import Plan

SITE = "https://ecampus.example.org"
TIMEEND = 1803164399  # 2027-02-15 23:59:59 Europe/Paris


def entry(userid: int, state: str = "enrolled", courseid: int = 10) -> LedgerEntry:
    return LedgerEntry(courseid, "C1", "man-x", "student", 5, userid, f"u{userid}", TIMEEND,
                       state)  # type: ignore[arg-type]


def test_a_missing_file_or_section_is_a_ledger_not_found(tmp_path: Path) -> None:
    path = tmp_path / "manual-enrolments-ecampus.json"
    assert load_ledger(path, "ecampus", SITE).found is False
    store = LedgerStore(path, load_ledger(path, "ecampus", SITE))
    store.start(0)
    store.will_enrol([entry(1), entry(2)])
    assert load_ledger(path, "ecampus", "http://test-site.example.org").found is False
    again = load_ledger(path, "ecampus", SITE)
    assert again.found and sorted(e.userid for e in again.enrolled()) == [1, 2]
    assert again.started and again.unrecorded_until == 0


def test_each_site_keeps_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "manual-enrolments-ecampus.json"
    prod = LedgerStore(path, Ledger("ecampus", SITE, found=False))
    prod.start(0)
    prod.will_enrol([entry(1)])
    test = LedgerStore(path, load_ledger(path, "ecampus", "http://test.example.org"))
    test.start(TIMEEND)
    test.will_enrol([entry(7)])
    test.ended([(10, 7)])
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert set(doc["sites"]) == {SITE, "http://test.example.org"}
    assert [e["userid"] for e in doc["sites"][SITE]["entries"]] == [1]
    kept = load_ledger(path, "ecampus", "http://test.example.org")
    assert [(e.userid, e.state) for e in kept.entries.values()] == [(7, "ended")]
    assert kept.unrecorded_until == TIMEEND


@pytest.mark.parametrize("text, why", [
    ("{not json", "not JSON"),
    ("[]", "not a format_version 1 ledger"),
    ('{"format_version": 1, "platform": "collegium", "sites": {}}', "not the ledger of platform"),
    (json.dumps({"format_version": 1, "platform": "ecampus", "sites": {SITE: {
        "started": "x", "unrecorded_until": 0, "entries": [{"userid": "7"}]}}}),
     "an entry must have"),
])
def test_an_unreadable_file_is_refused_in_one_line_naming_it(
    tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / "manual-enrolments-ecampus.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LedgerFileError) as info:
        load_ledger(path, "ecampus", SITE)
    message = str(info.value)
    assert str(path) in message and why in message and "move it aside" in message
    assert "\n" not in message


def test_writes_are_atomic_and_leave_no_temporary_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state" / "manual-enrolments-ecampus.json"
    store = LedgerStore(path, Ledger("ecampus", SITE, found=False))
    store.start(0)
    store.will_enrol([entry(1)])
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(LedgerFileError, match=r"cannot write .*\(No space left on device\)"):
        store.will_enrol([entry(2)])
    assert path.read_bytes() == before  # the previous file, whole
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_pruning_forgets_only_what_can_no_longer_be_ended() -> None:
    ledger = Ledger.of("ecampus", SITE, [entry(1), entry(2, "ended"), entry(3),
                                         entry(4, courseid=11), entry(5, courseid=12)])
    active = {10: {1: frozenset({5}), 2: frozenset({5})}}  # course 12 was not read
    kept = ledger.pruned(active, missing_courses=[11])
    assert sorted(e.userid for e in kept.entries.values()) == [1, 2, 5]


class RecordingMoodle(FakeMoodle):
    """Notes what the ledger file says at the moment each enrolment call arrives."""

    def __init__(self, path: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.path = path
        self.seen: list[dict[int, str]] = []
        self.sent: list[list[ManualEnrolment]] = []

    def manual_enrol(self, enrolments: Sequence[ManualEnrolment]) -> list[str]:
        doc = json.loads(self.path.read_text(encoding="utf-8"))
        [section] = doc["sites"].values()
        self.seen.append({e["userid"]: e["state"] for e in section["entries"]})
        self.sent.append(list(enrolments))
        return super().manual_enrol(enrolments)


def enrol(ids: tuple[int | None, ...]) -> Action:
    return Action.of("C1/man-x/student", EnrolManual(
        "C1", 10, "man-x", "student", 5, TIMEEND, tuple(f"u{i}" for i in ids), ids,
        "2027-02-15"), Reason("declared", "test"))


def end(kind: type[EndManual] | type[RetireManual], ids: tuple[int, ...]) -> Action:
    why = Reason("left-cohort" if kind is EndManual else "undeclared", "test")
    return Action.of("C1/man-x/student",
                     kind("C1", 10, "man-x", "student", 5, tuple(f"u{i}" for i in ids), ids),
                     why)


def apply(actions: list[Action], fake: FakeMoodle, store: LedgerStore | None,
          tmp_path: Path) -> Any:
    journal = Journal(tmp_path / "journal.jsonl", "ecampus", "abc")
    return apply_plan(Plan("ecampus", "2026", actions=actions), fake, journal,
                      ledger=store, clock=lambda: 1796000000.7)


def test_an_enrolment_is_recorded_before_the_call_that_makes_it(tmp_path: Path) -> None:
    path = tmp_path / "manual-enrolments-ecampus.json"
    store = LedgerStore(path, Ledger("ecampus", SITE, found=False))
    store.start(0)
    fake = RecordingMoodle(path, refuse=lambda f, p: True)  # Moodle refuses: no matter
    result = apply([enrol((1, 2))], fake, store, tmp_path)
    assert fake.seen == [{1: "enrolled", 2: "enrolled"}]  # on disk before the call
    assert [(e.userid, e.timeend, e.suspend) for e in fake.sent[0]] == [
        (1, TIMEEND, None), (2, TIMEEND, None)]
    assert len(result.failed) == 1
    # A refused enrolment stays recorded: the next plan sees the user inactive and, if
    # still wanted, enrols again; nothing is ever ended on its strength.
    assert set(load_ledger(path, "ecampus", SITE).entries) == {
        (10, "man-x", "student", 1), (10, "man-x", "student", 2)}


def test_an_unwritable_ledger_fails_the_enrolment_without_calling_moodle(
    tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    store = LedgerStore(blocker / "manual-enrolments-ecampus.json", Ledger("ecampus", SITE))
    fake = FakeMoodle()
    result = apply([enrol((1,))], fake, store, tmp_path)
    assert fake.calls == []
    [(_, why)] = result.failed
    assert why.startswith("not enrolled: ") and "manual-enrolments-ecampus.json" in why


@pytest.mark.parametrize("kind", [EndManual, RetireManual])
def test_an_end_sets_timeend_to_now_and_is_marked_only_once_moodle_answered(
    tmp_path: Path, kind: type[EndManual] | type[RetireManual]
) -> None:
    path = tmp_path / "manual-enrolments-ecampus.json"
    store = LedgerStore(path, Ledger.of("ecampus", SITE, [entry(1), entry(2)]))
    store.save()
    fake = RecordingMoodle(path, refuse=lambda f, p: True)
    result = apply([end(kind, (1,))], fake, store, tmp_path)
    assert len(result.failed) == 1
    assert {e.userid: e.state for e in load_ledger(path, "ecampus", SITE).entries.values()} == {
        1: "enrolled", 2: "enrolled"}  # the next plan still owes it

    fake = RecordingMoodle(path)
    result = apply([end(kind, (1,))], fake, store, tmp_path)
    assert result.ok
    [[sent]] = fake.sent
    assert (sent.userid, sent.courseid, sent.roleid, sent.timeend, sent.suspend) == (
        1, 10, 5, 1796000000 - END_MARGIN_SECONDS, None)
    assert {e.userid: e.state for e in load_ledger(path, "ecampus", SITE).entries.values()} == {
        1: "ended", 2: "enrolled"}


class MailFailing(RecordingMoodle):
    """Moodle's answer when the course has a contact and mail fails (issue 10): done, with
    a warning (the client re-read it and returns the warning)."""

    def manual_enrol(self, enrolments: Sequence[ManualEnrolment]) -> list[str]:
        super().manual_enrol(enrolments)
        return ["enrol_manual_enrol_users: Moodle answered 'Message was not sent.'"]


def test_an_enrolment_or_an_end_whose_mail_failed_is_done_with_a_warning(
    tmp_path: Path
) -> None:
    path = tmp_path / "manual-enrolments-ecampus.json"
    store = LedgerStore(path, Ledger.of("ecampus", SITE, [entry(1)]))
    store.save()
    result = apply([enrol((2,)), end(EndManual, (1,))], MailFailing(path), store, tmp_path)
    assert result.ok and not result.failed
    assert [(a.kind, "Message was not sent." in why) for a, why in result.warnings] == [
        ("enrol_manual", True), ("end_manual", True)]
    assert {e.userid: e.state for e in load_ledger(path, "ecampus", SITE).entries.values()} == {
        1: "ended", 2: "enrolled"}  # the end is recorded: it was done


def test_a_run_stopped_by_a_site_wide_failure_neither_records_nor_ends(tmp_path: Path) -> None:
    """The token revoked at the first manual call: the later actions are not attempted
    (not one call more), nothing unmade is recorded, and the ledger still owes the ends."""
    from reconciler.moodle.errors import InvalidToken

    class Revoked(RecordingMoodle):
        def _call(self, function: str, payload: Any) -> None:
            self.calls.append((function, payload))
            raise InvalidToken("invalidtoken", "Invalid token - token not found", function)

    path = tmp_path / "manual-enrolments-ecampus.json"
    store = LedgerStore(path, Ledger.of("ecampus", SITE, [entry(1), entry(3)]))
    store.save()
    other = Action.of("C2/man-x/student", EndManual(
        "C2", 11, "man-x", "student", 5, ("u3",), (3,)), Reason("left-cohort", "test"))
    fake = Revoked(path)
    result = apply([enrol((2,)), end(EndManual, (1,)), other], fake, store, tmp_path)
    assert [f for f, _ in fake.calls] == ["enrol_manual_enrol_users"]  # then the run stops
    assert result.stopped and "Invalid token" in result.stopped
    assert [a.target for a in result.not_attempted] == ["C1/man-x/student", "C2/man-x/student"]
    assert {e.userid: e.state for e in load_ledger(path, "ecampus", SITE).entries.values()} == {
        1: "enrolled", 2: "enrolled", 3: "enrolled"}
