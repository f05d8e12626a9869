"""Questions to the history (issue 16): a person, a cohort, a course (its syncs and the
cohorts it syncs), a platform, a day; the last run of a platform; sources merged once."""

from __future__ import annotations

import datetime as dt

from reconciler.helpdesk.render import render_history
from reconciler.history.query import Question, changes, last_run, merge


def change(n: int, **kw: object) -> dict:
    base = {"id": f"c{n}", "type": "change", "time": f"2026-11-{n:02d}T02:00:00+00:00",
            "seq": 0, "platform": "ecampus", "kind": "remove_members", "effect": "remove",
            "target": "etp-A-1", "cohort": "etp-A-1", "course": None, "courses": ["C1"],
            "usernames": ["e1"], "commit": "abc", "plan": "sha256:x",
            "reason": {"code": "left-sources", "text": "no IA in force", "source": ""}}
    return {**base, **kw}


ENTRIES = [
    change(1, usernames=["e1", "e2"], effect="add", kind="add_members"),
    change(2, usernames=["e2"]),
    change(3, kind="disable_sync", target="C2/man-x/student", cohort="man-x", course="C2",
           courses=[], usernames=[]),
    change(4, platform="collegium"),
    {"id": "r1", "type": "run", "time": "2026-11-05T02:00:00+00:00", "seq": 9,
     "platform": "ecampus", "outcome": "failsafe-tripped"},
    {"id": "r0", "type": "run", "time": "2026-11-04T02:00:00+00:00", "seq": 0,
     "platform": "ecampus", "outcome": "applied"},
]


def ids(question: Question) -> list[str]:
    return [e["id"] for e in changes(ENTRIES, question)]


def test_questions() -> None:
    assert ids(Question(username="E2")) == ["c1", "c2"]
    assert ids(Question(username="e1", platform="ecampus")) == ["c1"]
    assert ids(Question(cohort="man-x")) == ["c3"]
    assert ids(Question(course="C1")) == ["c1", "c2", "c4"]  # memberships of its cohorts
    assert ids(Question(course="C2")) == ["c3"]  # its own syncs
    assert ids(Question(username="e1", since=dt.date(2026, 11, 2))) == ["c4"]
    assert last_run(ENTRIES, "ecampus")["outcome"] == "failsafe-tripped"
    assert last_run(ENTRIES, "prelude") is None


def test_merge_keeps_each_entry_once_in_order() -> None:
    merged = merge(ENTRIES[:3], ENTRIES[1:], [change(2, seq=5)])
    assert [e["id"] for e in merged] == ["c1", "c2", "c3", "c4", "r0", "r1"]


def test_the_answer_says_when_and_why() -> None:
    text = render_history(changes(ENTRIES, Question(username="e2")), "for e2")
    assert text.splitlines()[0] == "2 recorded change(s) for e2:"
    assert text.splitlines()[-1] == (
        "Last: 2026-11-02T02:00:00+00:00, remove_members etp-A-1 (left) because no IA in force.")
    assert render_history([], "for e9") == "No recorded change for e9."
