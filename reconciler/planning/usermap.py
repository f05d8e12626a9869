"""The verified username ↔ user-id map kept between runs, and the user look-ups of one plan.

Moodle answers cohort members as user ids while the sources speak usernames, so without
help every plan would look every desired member up (``core_user_get_users_by_field``, about
3.8 ms a user found on a real Moodle: two minutes at 35,000 members). The map remembers
what earlier runs were told, in ``.reconciler/user-map-<platform>.json`` next to the
source-health state (CI caches that folder per platform). It is an optimisation only
(DESIGN §4), under three rules:

* it is trusted only to conclude "nothing to do": every user a write of the plan concerns
  (added, removed, enrolled, suspended) is looked up afresh before the plan is final
  (:func:`final_plan`), so the plan people review and the apply act on what Moodle says
  now, never on the map;
* a slice of it is re-verified every night: every entry verified ``VERIFY_DAYS`` days ago or
  more, and at least ``1/VERIFY_DAYS`` of the entries (the longest unverified first), so a
  stale entry (a renamed account, one deleted and re-created with a new id) is corrected
  within a week; what was corrected is reported in the plan;
* a missing, unreadable, truncated or foreign map (another platform, or another Moodle
  site by the ``siteurl`` of ``core_webservice_get_site_info``) means a full look-up, never
  an error and never a removal.

A member id whose user no look-up finds stays unidentified, exactly as without the map:
the planner never removes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .actions import AddMembers, EnrolManual, RemoveMembers, SuspendManual
from .plan import Plan, Warning
from .state import ActualState

log = logging.getLogger("reconciler.usermap")

FORMAT = "cohort-reconciler user-id map"
VERSION = 1
VERIFY_DAYS = 7
# Corrections listed in the plan (all are counted).
SHOWN_CORRECTIONS = 100
# Actions whose users are written: added/enrolled by username, removed/suspended by id.
ADDS_BY_USERNAME = (AddMembers, EnrolManual)
REMOVES_BY_ID = (RemoveMembers, SuspendManual)


class UserLookups(Protocol):
    """The one client call the look-ups need (``MoodleClient.get_users_by_field``)."""

    def get_users_by_field(self, field: str, values: Any) -> list[dict[str, Any]]: ...


def map_file(state_dir: Path, platform: str) -> Path:
    """Where the map of ``platform`` lives: ``<state_dir>/user-map-<platform>.json``."""
    return state_dir / f"user-map-{platform}.json"


def _same_site(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def _checksum(verified: Mapping[str, Mapping[str, int]]) -> str:
    """Digest of the entries in their order in the file (JSON keeps it): one line each."""
    digest = hashlib.sha256()
    for day, users in verified.items():
        digest.update("".join(f"{day}\t{u}\t{i}\n" for u, i in users.items()).encode())
    return "sha256:" + digest.hexdigest()


@dataclass(slots=True)
class Entry:
    """One map entry: the user id Moodle gave a username, and the day (Europe/Paris) it
    last said so."""

    userid: int
    verified: dt.date


def load_map(path: Path, platform: str, siteurl: str | None
             ) -> tuple[dict[str, Entry], str | None]:
    """The entries of the map at ``path`` (username -> :class:`Entry`), or ``({}, why)`` when
    it cannot be used: missing, unreadable, truncated, edited, another platform's, another
    site's, or the site's identity unknown. Never raises."""
    if not siteurl:
        return {}, "the site did not say its URL (core_webservice_get_site_info)"
    if not path.exists():
        return {}, "no map yet"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}, f"{path.name} is not a user-id map"
        if data.get("version") != VERSION:
            return {}, f"{path.name} has version {data.get('version')!r}, not {VERSION}"
        if data.get("platform") != platform:
            return {}, f"{path.name} is the map of platform {data.get('platform')!r}"
        if not _same_site(str(data.get("siteurl") or ""), siteurl):
            return {}, (f"{path.name} was made on another Moodle site ({data.get('siteurl')}, "
                        f"this one is {siteurl})")
        verified = data["verified"]
        if _checksum(verified) != data.get("checksum"):
            return {}, f"{path.name} does not match its checksum (truncated or edited)"
        entries: dict[str, Entry] = {}
        ids: set[int] = set()
        for day, users in verified.items():
            date = dt.date.fromisoformat(day)
            for username, userid in users.items():
                if not isinstance(userid, int) or isinstance(userid, bool) or userid <= 0:
                    raise ValueError(f"user id {userid!r} of {username!r}")
                if username in entries or userid in ids:
                    raise ValueError(f"{username!r} or id {userid} appears twice")
                entries[username] = Entry(userid, date)
                ids.add(userid)
        if len(entries) != data.get("count"):
            return {}, f"{path.name} holds {len(entries)} entries, not {data.get('count')}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return {}, f"{path.name} is unreadable ({type(exc).__name__}: {exc})"
    return entries, None


def save_map(path: Path, platform: str, siteurl: str, entries: Mapping[str, Entry],
             saved_at: dt.datetime) -> None:
    """Write the map atomically (a run cut in the middle leaves the old file or the new one).

    Raises OSError when the folder cannot be written (callers log it and go on)."""
    verified: dict[str, dict[str, int]] = {}
    for username, entry in sorted(entries.items(), key=lambda kv: (kv[1].verified, kv[0])):
        verified.setdefault(entry.verified.isoformat(), {})[username] = entry.userid
    data = {
        "format": FORMAT, "version": VERSION, "platform": platform, "siteurl": siteurl,
        "saved_at": saved_at.isoformat(timespec="seconds"), "count": len(entries),
        "checksum": _checksum(verified), "verified": verified,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def due_for_verification(entries: Mapping[str, Entry], today: dt.date) -> set[str]:
    """Tonight's slice: every entry verified ``VERIFY_DAYS`` days ago or more, and at least
    ``ceil(n / VERIFY_DAYS)`` entries, the longest unverified first (ties in a fixed
    pseudo-random order, so a map made in one night spreads over the week)."""
    quota = math.ceil(len(entries) / VERIFY_DAYS)
    horizon = today - dt.timedelta(days=VERIFY_DAYS)
    by_day: dict[dt.date, list[str]] = {}
    for username, entry in entries.items():
        by_day.setdefault(entry.verified, []).append(username)
    due: set[str] = set()
    for day in sorted(by_day):
        names, room = by_day[day], quota - len(due)
        if day <= horizon or len(names) <= room:
            due.update(names)
        elif room > 0:
            due.update(sorted(names, key=lambda u: zlib.crc32(u.encode()))[:room])
        else:
            break
    return due


@dataclass
class UserResolver:
    """The user look-ups of one plan, through the map where it may be trusted.

    ``resolve`` (called by the reader) fills ``ActualState.users`` (username -> id) and
    ``ActualState.usernames`` (id -> username); ``recheck`` (called before the plan is
    final) looks up afresh the users a write concerns; ``save`` writes the map back.
    ``path`` None means no map at all (every user is looked up, nothing is saved).
    """

    path: Path | None = None
    platform: str = ""
    today: dt.date = dt.date(1970, 1, 1)
    entries: dict[str, Entry] = field(default_factory=dict)
    siteurl: str | None = None
    ignored: str | None = None  # why the map on disk was not used
    fresh_names: set[str] = field(default_factory=set)  # looked up tonight
    fresh_ids: set[int] = field(default_factory=set)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    trusted: int = 0
    verified: int = 0
    rechecked: int = 0
    looked_up: int = 0
    _wanted: frozenset[str] = frozenset()
    _members: frozenset[int] = frozenset()
    _by_id: dict[int, str] = field(default_factory=dict)  # the entries, id -> username

    # -- the reader's hook ------------------------------------------------------------------

    def resolve(self, client: UserLookups, actual: ActualState, siteurl: str | None,
                wanted: Iterable[str], member_ids: Iterable[int]) -> None:
        """Know the id of every ``wanted`` username and the username of every member id.

        Trusted map entries are used without a call; tonight's slice of the map, the
        usernames it lacks and the member ids it does not name are looked up (in bulk).
        """
        self.siteurl = siteurl
        self._wanted, self._members = frozenset(wanted), frozenset(member_ids)
        if self.path is not None:
            self.entries, self.ignored = load_map(self.path, self.platform, siteurl)
        self._by_id = {e.userid: u for u, e in self.entries.items()}
        due = due_for_verification(self.entries, self.today) if self.entries else set()
        self.verified = len(due)
        for username in self._wanted:
            entry = self.entries.get(username)
            if entry is not None and username not in due:
                actual.users[username] = entry.userid
                actual.usernames[entry.userid] = username
        for userid in self._members:
            username = self._by_id.get(userid)
            if username is not None and username not in due:
                actual.usernames[userid] = username
        self.trusted = len(set(actual.users) | set(actual.usernames.values()))
        self._look_up(client, actual, (self._wanted - set(actual.users)) | due, set())
        self._look_up(client, actual, set(),
                      {i for i in self._members if i not in actual.usernames})

    def _look_up(self, client: UserLookups, actual: ActualState, names: set[str],
                 ids: set[int]) -> None:
        """Ask Moodle about ``names`` and ``ids``, then about whatever their answers showed
        stale (an id now named otherwise, a username now on another id), until settled."""
        names -= self.fresh_names
        ids -= self.fresh_ids
        while names or ids:
            found_names = (
                {u["username"]: int(u["id"])
                 for u in client.get_users_by_field("username", sorted(names))}
                if names else {})
            found_ids = (
                {int(u["id"]): u["username"] for u in client.get_users_by_field("id", sorted(ids))}
                if ids else {})
            self.looked_up += len(names) + len(ids)
            self.fresh_names |= names
            self.fresh_ids |= ids
            again_names: set[str] = set()
            again_ids: set[int] = set()
            for username in sorted(names):
                self._learn(actual, username, found_names.get(username), again_names, again_ids)
            for userid in sorted(ids):
                username = found_ids.get(userid)
                if username is not None:
                    self._learn(actual, username, userid, again_names, again_ids)
                    self.fresh_names.add(username)
                else:
                    self._forget_id(actual, userid, again_names)
            # Members no trusted entry names, and whatever the answers made doubtful.
            again_ids |= {i for i in self._members if i not in actual.usernames}
            names = again_names - self.fresh_names
            ids = again_ids - self.fresh_ids

    def _learn(self, actual: ActualState, username: str, userid: int | None,
               again_names: set[str], again_ids: set[int]) -> None:
        """Moodle said ``username`` has ``userid`` (None: no such user) just now."""
        old = actual.users.get(username)
        if old is not None and old != userid and actual.usernames.get(old) == username:
            del actual.usernames[old]  # that id is someone else now, or no one
            if old in self._members:
                again_ids.add(old)
        if userid is None:
            actual.users.pop(username, None)
            self._drop(username)
            return
        self.fresh_ids.add(userid)
        previous = actual.usernames.get(userid)
        if previous is not None and previous != username and actual.users.get(previous) == userid:
            # The id was known under another username (renamed): ask about that name too.
            del actual.users[previous]
            again_names.add(previous)
        if username in self._wanted:
            actual.users[username] = userid
        if username in self._wanted or userid in self._members:
            actual.usernames[userid] = username
        self._set(username, userid)

    def _forget_id(self, actual: ActualState, userid: int, again_names: set[str]) -> None:
        """Moodle knows no user ``userid`` (deleted): the member stays unidentified."""
        names = {actual.usernames.pop(userid, None), self._by_id.get(userid)} - {None}
        for name in names:
            assert name is not None
            if actual.users.get(name) == userid:
                del actual.users[name]
                again_names.add(name)
            if self._by_id.get(userid) == name:
                self._drop(name)

    def _set(self, username: str, userid: int) -> None:
        """Record a fact Moodle gave tonight, correcting the entries it contradicts."""
        entry = self.entries.get(username)
        if entry is not None and entry.userid != userid:
            self._corrected(username, entry.userid, userid)
            self._by_id.pop(entry.userid, None)
        other = self._by_id.get(userid)
        if other is not None and other != username:
            self._drop(other)
        self.entries[username] = Entry(userid, self.today)
        self._by_id[userid] = username

    def _drop(self, username: str) -> None:
        """Forget ``username``'s entry (Moodle contradicted it), as a correction."""
        entry = self.entries.pop(username, None)
        if entry is not None:
            self._corrected(username, entry.userid, None)
            if self._by_id.get(entry.userid) == username:
                del self._by_id[entry.userid]

    def _corrected(self, username: str, was: int, now: int | None) -> None:
        self.corrections.append({"username": username, "was": was, "now": now})

    # -- before the plan is final -------------------------------------------------------------

    def unconfirmed(self, plan: Plan) -> tuple[set[str], set[int]]:
        """Users the plan writes that only the map vouches for: usernames it adds or enrols,
        ids it removes or suspends, not looked up tonight."""
        names: set[str] = set()
        ids: set[int] = set()
        for action in plan.actions:
            d = action.details
            if isinstance(d, ADDS_BY_USERNAME):
                names.update(u for u in d.usernames if u not in self.fresh_names)
            elif isinstance(d, REMOVES_BY_ID):
                ids.update(i for i in d.userids if i is not None and i not in self.fresh_ids)
        return names, ids

    def recheck(self, client: UserLookups, actual: ActualState, plan: Plan) -> bool:
        """Look up afresh every user ``plan`` writes on the map's word alone. True when
        Moodle contradicted the map about any of them (the plan must then be computed again
        on what Moodle said); False when there was nothing to check or all was confirmed."""
        names, ids = self.unconfirmed(plan)
        if not names and not ids:
            return False
        self.rechecked += len(names) + len(ids)
        before = (dict(actual.users), dict(actual.usernames))
        self._look_up(client, actual, names, ids)
        return (actual.users, actual.usernames) != before

    # -- after ------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """What the plan says about the map (plan JSON ``user_map``)."""
        return {
            "used": self.ignored is None and self.path is not None,
            "ignored": self.ignored,
            "trusted": self.trusted,
            "verified": self.verified,
            "looked_up": self.looked_up,
            "rechecked": self.rechecked,
            "corrected": self.corrections[:SHOWN_CORRECTIONS],
            "corrections": len(self.corrections),
        }

    def warnings(self) -> list[Warning]:
        """Plan warnings: ``user-map-ignored`` (a map was there but could not be used; a
        missing map is not worth one) and ``user-map-corrected`` (stale entries found)."""
        out = []
        if self.ignored is not None and self.ignored != "no map yet" and self.path is not None:
            out.append(Warning("user-map-ignored",
                               f"the user-id map was not used ({self.ignored}); every user was "
                               "looked up in Moodle"))
        if self.corrections:
            shown = ", ".join(
                f"{c['username']} (id {c['was']} → {c['now'] if c['now'] is not None else 'none'})"
                for c in self.corrections[:5])
            more = len(self.corrections) - 5
            out.append(Warning("user-map-corrected",
                               f"{len(self.corrections)} stale user-id map entr"
                               f"{'ies' if len(self.corrections) != 1 else 'y'} corrected from "
                               f"Moodle (renamed, deleted or re-created accounts): {shown}"
                               + (f" … and {more} more" if more > 0 else "")))
        return out

    def save(self, actual: ActualState, now: dt.datetime) -> None:
        """Keep the entries the next night can use (users the plan knew); never raises."""
        if self.path is None or not self.siteurl:
            return
        keep = {u: e for u, e in self.entries.items()
                if u in actual.users or actual.usernames.get(e.userid) == u}
        try:
            save_map(self.path, self.platform, self.siteurl, keep, now)
        except OSError as exc:
            log.warning("could not save the user-id map %s: %s", self.path, exc)


def final_plan(compute: Callable[[], Plan], users: UserResolver, client: UserLookups,
               actual: ActualState) -> Plan:
    """Compute the plan, look up afresh the users its writes concern on the map's word, and
    compute it again whenever Moodle said otherwise, until every written user was confirmed
    by Moodle tonight. Adds the ``user_map`` report and its warnings to the plan."""
    plan = compute()
    while users.recheck(client, actual, plan):
        plan = compute()
    plan.user_map = users.report()
    plan.warnings.extend(users.warnings())
    return plan
