"""The manual-enrolment ledger: which users the reconciler enrolled with ``enrol_manual``,
for which ``method: manual`` sync, on one platform's site.

Moodle's web services show neither an enrolment's method nor its ``timeend``
(``core_enrol_get_enrolled_users`` lists users and roles, nothing else), so a manual
enrolment the reconciler made looks exactly like one a teacher made. The ledger is the
reconciler's own record of what it made: the planner ends only what the ledger names (and
Moodle still shows active with the recorded role), never an enrolment it did not make. It
is kept by the runner in ``.reconciler/`` (``applying.ledger_file``), written *before* each
enrolment call, so that a run killed between the call and the record loses nothing.

A lost ledger never causes a removal: what it no longer names is simply not ended early,
and Moodle ends it at its ``timeend`` (the sync's last day). The plan says so.

This module holds the value and its pure queries; reading and writing the file is
``applying.ledger_file``'s job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

EntryState = Literal["enrolled", "ended"]


@dataclass(frozen=True)
class LedgerEntry:
    """One user the reconciler enrolled for one sync.

    ``state`` is ``enrolled`` from just before the ``enrol_manual_enrol_users`` call on,
    ``ended`` once a call that set its ``timeend`` to the run's time came back. ``timeend``
    is the Unix time the enrolment call sent (the sync's last second, Europe/Paris), ``at``
    the UTC time (ISO 8601) of the last change. ``course`` is the course shortname when it
    was enrolled (a course renamed in Moodle keeps its id).
    """

    courseid: int
    course: str
    cohort: str
    role: str
    roleid: int
    userid: int
    username: str
    timeend: int
    state: EntryState = "enrolled"
    at: str = ""

    @property
    def key(self) -> tuple[int, str, str, int]:
        """The entry's identity: its sync (course id, cohort idnumber, role shortname) and
        its user id (one entry per pair)."""
        return (self.courseid, self.cohort, self.role, self.userid)


@dataclass
class Ledger:
    """The entries of one platform at one site (ids mean nothing on another site).

    ``found`` is False when no record existed for this platform and site (a first run, or a
    lost ``.reconciler/`` folder: the CI cache). ``unrecorded_until`` (Unix time, 0: none)
    is set when a record had to start while enrolments made before it could still be active:
    until then, the plan warns that those are not ended early.
    """

    platform: str
    site: str
    entries: dict[tuple[int, str, str, int], LedgerEntry] = field(default_factory=dict)
    found: bool = True
    started: str = ""
    unrecorded_until: int = 0
    _by_user: dict[tuple[int, int], list[LedgerEntry]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def of(cls, platform: str, site: str, entries: Iterable[LedgerEntry] = (),
           **kw: object) -> Ledger:
        """A ledger holding ``entries`` (the last one wins for a repeated key)."""
        return cls(platform, site, {e.key: e for e in entries}, **kw)  # type: ignore[arg-type]

    def courses(self) -> list[int]:
        """Every course id an entry names, sorted (the reader reads their enrolments)."""
        return sorted({e.courseid for e in self.entries.values()})

    def of_user(self, courseid: int, userid: int) -> list[LedgerEntry]:
        """The entries (any state) of one user in one course, sorted by sync."""
        if self._by_user is None:  # built once: entries are only replaced, never mutated
            index: dict[tuple[int, int], list[LedgerEntry]] = {}
            for e in sorted(self.entries.values(), key=lambda e: e.key):
                index.setdefault((e.courseid, e.userid), []).append(e)
            self._by_user = index
        return list(self._by_user.get((courseid, userid), ()))

    def owns(self, courseid: int, userid: int) -> bool:
        """Whether the course's manual enrolment of this user is one the reconciler made."""
        return bool(self.of_user(courseid, userid))

    def enrolled(self) -> list[LedgerEntry]:
        """The entries still in state ``enrolled``, sorted."""
        return sorted((e for e in self.entries.values() if e.state == "enrolled"),
                      key=lambda e: e.key)

    def with_entries(self, entries: Iterable[LedgerEntry]) -> Ledger:
        """A copy with ``entries`` added or replaced (by key)."""
        merged = dict(self.entries)
        merged.update({e.key: e for e in entries})
        return dataclasses.replace(self, entries=merged)

    def ended(self, pairs: Iterable[tuple[int, int]], at: str) -> Ledger:
        """A copy where every entry of each (course id, user id) pair is ``ended`` at ``at``."""
        done = set(pairs)
        return dataclasses.replace(self, entries={
            k: dataclasses.replace(e, state="ended", at=at) if (e.courseid, e.userid) in done else e
            for k, e in self.entries.items()
        })

    def pruned(self, active: Mapping[int, Mapping[int, frozenset[int]]],
               missing_courses: Iterable[int]) -> Ledger:
        """A copy without what can no longer be ended: entries of courses Moodle no longer
        has (``missing_courses``), and of users with no active enrolment in their course
        (``active``: course id -> user id -> role ids, as the reader saw them; a course it
        does not hold is kept as it is). Forgetting never removes anything in Moodle."""
        gone = set(missing_courses)
        return dataclasses.replace(self, entries={
            k: e for k, e in self.entries.items()
            if e.courseid not in gone
            and (e.courseid not in active or e.userid in active[e.courseid])
        })
