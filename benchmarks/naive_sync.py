"""The peer the reconciler is measured against: a naive per-item nightly cohort sync.

This is the kind of cron script universities typically run, as measured on a real Moodle 4.5
(``naive_sync.py`` of the project's notes on the real site): one item per web-service call,
no batching, no concurrency, no retries. For every desired cohort, in idnumber order:

1. ``core_cohort_search_cohorts`` (query = the idnumber, system context, ``includes=self``),
   keeping the exact idnumber match; ``core_cohort_create_cohorts`` with that one cohort
   when it is missing;
2. ``core_cohort_get_cohort_members`` for that one cohort (it answers user ids only);
3. for every desired username, ``core_user_get_users_by_field`` with that ONE username; a
   missing user is skipped (``users_missing``); a user not yet a member is added by
   ``core_cohort_add_cohort_members`` with that ONE member;
4. for every current member id no desired username resolved to,
   ``core_cohort_delete_cohort_members`` with that ONE member, unless a look-up of this
   cohort failed (an error never removes anyone).

Cohorts that exist in Moodle but are not desired are left alone. So a no-op night costs
``2 × cohorts + memberships`` calls: the script resolves every member every night.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests


class NaiveError(Exception):
    """A web-service call answered an exception (the script counts it and goes on)."""


@dataclass
class NaiveSummary:
    """What the script prints at the end (``calls`` by web-service function)."""

    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    cohorts: int = 0
    cohorts_created: int = 0
    members_added: int = 0
    members_removed: int = 0
    users_missing: int = 0
    errors: int = 0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class NaiveSync:
    """One REST endpoint, one ``requests.Session``, one item per call."""

    def __init__(self, base_url: str, token: str) -> None:
        self.url = base_url.rstrip("/") + "/webservice/rest/server.php"
        self.token = token
        self.session = requests.Session()
        self.summary = NaiveSummary()

    def call(self, function: str, params: Iterable[tuple[str, str]]) -> Any:
        body = [("wstoken", self.token), ("wsfunction", function),
                ("moodlewsrestformat", "json"), *params]
        self.summary.calls[function] += 1
        answer = self.session.post(self.url, data=body, timeout=60).json()
        if isinstance(answer, dict) and "exception" in answer:
            self.summary.errors += 1
            raise NaiveError(f"{function}: {answer.get('errorcode')}")
        return answer

    def find_cohort(self, idnumber: str) -> int | None:
        answer = self.call("core_cohort_search_cohorts", [
            ("query", idnumber), ("context[contextid]", "1"), ("includes", "self"),
            ("limitfrom", "0"), ("limitnum", "0")])
        for cohort in answer.get("cohorts") or []:
            if cohort.get("idnumber") == idnumber:
                return int(cohort["id"])
        return None

    def sync_cohort(self, idnumber: str, name: str, usernames: list[str]) -> None:
        self.summary.cohorts += 1
        cohortid = self.find_cohort(idnumber)
        if cohortid is None:
            created = self.call("core_cohort_create_cohorts", [
                ("cohorts[0][categorytype][type]", "system"),
                ("cohorts[0][categorytype][value]", ""),
                ("cohorts[0][name]", name), ("cohorts[0][idnumber]", idnumber)])
            cohortid = int(created[0]["id"])
            self.summary.cohorts_created += 1
        answer = self.call("core_cohort_get_cohort_members", [("cohortids[0]", str(cohortid))])
        current = {int(u) for entry in answer for u in entry.get("userids") or []}
        resolved: set[int] = set()
        lookup_failed = False
        for username in usernames:
            try:
                users = self.call("core_user_get_users_by_field", [
                    ("field", "username"), ("values[0]", username)])
            except NaiveError:
                lookup_failed = True
                continue
            if not users:
                self.summary.users_missing += 1
                continue
            userid = int(users[0]["id"])
            resolved.add(userid)
            if userid not in current:
                try:
                    self.call("core_cohort_add_cohort_members", [
                        ("members[0][cohorttype][type]", "id"),
                        ("members[0][cohorttype][value]", str(cohortid)),
                        ("members[0][usertype][type]", "id"),
                        ("members[0][usertype][value]", str(userid))])
                    self.summary.members_added += 1
                except NaiveError:
                    pass
        if lookup_failed:
            return
        for userid in sorted(current - resolved):
            try:
                self.call("core_cohort_delete_cohort_members", [
                    ("members[0][cohortid]", str(cohortid)),
                    ("members[0][userid]", str(userid))])
                self.summary.members_removed += 1
            except NaiveError:
                pass

    def run(self, cohorts: Iterable[tuple[str, str, list[str]]]) -> NaiveSummary:
        """Sync every ``(idnumber, name, usernames)`` cohort, in idnumber order."""
        for idnumber, name, usernames in sorted(cohorts):
            self.sync_cohort(idnumber, name, usernames)
        self.session.close()
        return self.summary
