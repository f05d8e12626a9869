"""Typed Moodle web-service calls used by the reconciler.

Every list-taking call is split so that each request stays within ``max_input_vars`` form
fields (header included): PHP silently drops the fields beyond it (CONTRACT §2.4). Batches
of one call run concurrently on the transport's bounded pool, and results come back in
input order. Reads send ``moodlewssettingraw=1`` so names compare exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from .encoding import Pair, encode, item_suffixes, pack_sizes
from .errors import (
    InvalidParameter,
    MoodleError,
    MoodleHTTPError,
    MoodleUnavailable,
    RecordNotFound,
)
from .functions import CORE_FUNCTIONS, IS_READ, is_read
from .transport import RetryPolicy, Transport
from .types import (
    Capabilities,
    CohortSyncInstance,
    ManualEnrolment,
    ManualUnenrolment,
    NewCategory,
    NewCohort,
    NewCourse,
    NewGroup,
    NewUser,
)

log = logging.getLogger("reconciler.moodle")
T = TypeVar("T")

_USER_FIELDS = ("id", "idnumber", "username", "email")

__all__ = ["CORE_FUNCTIONS", "IS_READ", "MoodleClient", "is_read"]

# Outcomes of a re-read after a write failed ambiguously (see MoodleClient._batched).
APPLIED, RESEND, UNKNOWN = "applied", "resend", "unknown"
Recover = Callable[[list[Mapping[str, Any]]], tuple[str, Any]]

# Smallest request a read is split into to use the concurrent pool (see _batched).
READ_SPLIT_MIN_FIELDS = 100


class MoodleClient:
    """Typed, batched, concurrent calls to one Moodle site's REST web services.

    One client holds one keep-alive ``requests.Session`` (pool sized to ``concurrency``) and
    one bounded thread pool; use it as a context manager or ``close()`` it.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        max_input_vars: int = 1000,
        concurrency: int = 4,
        timeout: float = 30.0,
        read_retries: int = 3,
        backoff: float = 0.5,
        session: Any = None,
    ) -> None:
        if max_input_vars < 8:
            raise ValueError("max_input_vars is too small to send any call")
        self.max_input_vars = max_input_vars
        self._options = {"max_input_vars": max_input_vars, "concurrency": concurrency,
                         "timeout": timeout, "read_retries": read_retries, "backoff": backoff}
        self.transport = Transport(
            base_url, token, concurrency=concurrency, timeout=timeout,
            retry=RetryPolicy(read_retries=read_retries, backoff=backoff), session=session,
        )

    def __repr__(self) -> str:
        return (f"MoodleClient({self.transport.base_url!r}, token=***, "
                f"max_input_vars={self.max_input_vars}, "
                f"concurrency={self.transport.concurrency})")

    def clone(self, **overrides: Any) -> MoodleClient:
        """A new client for the same site and token with some options changed (e.g. a
        smaller ``max_input_vars``); it has its own session and pool."""
        options = {**self._options, **overrides}
        return MoodleClient(self.transport.base_url, self.transport.reveal_token(), **options)

    def __enter__(self) -> MoodleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    # -- plumbing -----------------------------------------------------------------------

    def run_concurrently(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run independent client calls on the bounded pool; results in input order."""
        return self.transport.map(list(calls))

    def call(self, function: str, params: Mapping[str, Any] | None = None) -> Any:
        """One raw call. Raises if the params do not fit in ``max_input_vars``."""
        pairs = encode(params or {})
        self._check_size(function, pairs)
        return self.transport.call(function, pairs, is_read=is_read(function))

    def _check_size(self, function: str, pairs: Sequence[Pair]) -> None:
        total = len(pairs) + self.transport.header_size(raw=is_read(function))
        if total > self.max_input_vars:
            raise ValueError(f"{function} needs {total} form fields, more than "
                             f"max_input_vars={self.max_input_vars}")

    def _batched(
        self,
        function: str,
        list_key: str,
        items: Sequence[Mapping[str, Any]],
        fixed: Mapping[str, Any] | None = None,
        recover: Recover | None = None,
    ) -> list[tuple[list[int], Any]]:
        """Send ``items`` under ``list_key`` in as few requests as fit; answers per batch.

        On failure the raised MoodleError carries ``committed_items``/``unsent_items`` as
        indices into ``items`` (for reads they only say which batches answered).

        ``recover`` (writes only) is asked, after a failure that may or may not have
        committed (lost answer, 5xx), to re-read the batch's items: it answers APPLIED with
        the answer to return, RESEND when sending again is provably harmless, or UNKNOWN.
        """
        if not items:
            return []
        read = is_read(function)
        fixed_pairs = encode(fixed or {})
        budget = self.max_input_vars - self.transport.header_size(raw=read) - len(fixed_pairs)
        # Each item is encoded once, without its position: the sizes pack the batches, and
        # "list_key[n]" + suffix gives its keys where the batch puts it.
        encoded = [item_suffixes(item) for item in items]
        sizes = [len(pairs) for pairs in encoded]
        if read and self.transport.concurrency > 1:
            # Spread a read over the pool: one 1,000-value request costs a real Moodle ~3.5 s
            # where four parallel 250-value ones take ~1 s (OBSERVED §6). Never below
            # READ_SPLIT_MIN_FIELDS per request, never above max_input_vars.
            share = -(-sum(sizes) // self.transport.concurrency)
            budget = min(budget, max(share, READ_SPLIT_MIN_FIELDS))
        batches = pack_sizes(list_key, sizes, budget=budget)

        def send(indices: list[int]) -> Any:
            pairs = list(fixed_pairs)
            for n, i in enumerate(indices):
                prefix = f"{list_key}[{n}]"
                pairs.extend((prefix + suffix, value) for suffix, value in encoded[i])
            try:
                return self.transport.call(function, pairs, is_read=read)
            except (MoodleUnavailable, MoodleHTTPError) as err:
                if recover is None or not _ambiguous(err):
                    raise
                outcome, answer = self._recover(function, recover, [items[i] for i in indices])
                if outcome == APPLIED:
                    log.warning("moodle %s: answer lost, but a re-read shows the %d items "
                                "applied", function, len(indices))
                    return answer
                if outcome == RESEND:
                    log.warning("moodle %s: a re-read shows the %d items not applied; "
                                "sending them again", function, len(indices))
                    return self.transport.call(function, pairs, is_read=read)
                raise

        if len(batches) > 1:
            log.debug("moodle %s: %d items in %d requests", function, len(items), len(batches))
        try:
            answers = self.transport.map([partial(send, b) for b in batches])
        except MoodleError as err:
            if err.committed_items is not None:
                err.committed_items = [i for b in err.committed_items for i in batches[b]]
                err.unsent_items = [i for b in err.unsent_items or [] for i in batches[b]]
            else:
                err.committed_items, err.unsent_items = [], []
            raise
        return list(zip(batches, answers, strict=True))

    def _recover(self, function: str, recover: Recover, batch: list[Mapping[str, Any]]
                 ) -> tuple[str, Any]:
        try:
            return recover(batch)
        except MoodleError as err:
            log.warning("moodle %s: could not re-read to check a failed write: %s",
                        function, err)
            return UNKNOWN, None

    def _batched_tolerant(
        self,
        function: str,
        list_key: str,
        items: Sequence[Any],
        skip: tuple[type[MoodleError], ...],
        fixed: Mapping[str, Any] | None = None,
    ) -> tuple[list[Any], list[Any]]:
        """A batched *read* that drops the items Moodle rejects as a whole-request error.

        Moodle fails a whole request for one bad value (an unknown cohort id, a username that
        cleaning would change…). A failing request is bisected, sequentially, until the bad
        values are isolated: a few extra calls, only when something is wrong. Returns the
        answers (flattened) and the dropped items.
        """
        try:
            return self._flat(self._batched(function, list_key, items, fixed)), []
        except skip:
            if len(items) == 1:
                return [], list(items)
        # Sequential on purpose: nested waits on the shared pool are avoided.
        mid = len(items) // 2
        left, bad_left = self._batched_tolerant(function, list_key, items[:mid], skip, fixed)
        right, bad_right = self._batched_tolerant(function, list_key, items[mid:], skip, fixed)
        return left + right, bad_left + bad_right

    def _flat(self, answers: list[tuple[list[int], Any]]) -> list[Any]:
        out: list[Any] = []
        for _, answer in answers:
            out.extend(answer or [])
        return out

    # -- site -----------------------------------------------------------------------------

    def site_info(self) -> dict[str, Any]:
        return dict(self.call("core_webservice_get_site_info"))

    def capabilities(self) -> Capabilities:
        info = self.site_info()
        names = frozenset(str(f.get("name")) for f in info.get("functions") or [])
        return Capabilities(functions=names, release=info.get("release"),
                            version=info.get("version"), siteurl=info.get("siteurl"))

    # -- cohorts ----------------------------------------------------------------------------

    def get_cohorts(self, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Cohorts by id (unknown ids omitted), in the order of ``ids``.

        ``None`` reads every cohort of the site in one call (``cohortids`` omitted means all,
        CONTRACT §3.1 / OBSERVED §4). An empty iterable returns ``[]`` without a call.
        """
        if ids is None:
            return list(self.call("core_cohort_get_cohorts") or [])
        wanted = _unique(int(i) for i in ids)
        answers = self._batched("core_cohort_get_cohorts", "cohortids", wanted)
        found = {int(c["id"]): c for c in self._flat(answers)}
        return [found[i] for i in wanted if i in found]

    def search_cohorts(
        self,
        query: str = "",
        context: int | Mapping[str, Any] = 1,
        includes: str = "parents",
        *,
        limitfrom: int = 0,
        limitnum: int = 0,
    ) -> list[dict[str, Any]]:
        """``core_cohort_search_cohorts``. ``context`` is a context id or a mapping such as
        ``{"contextlevel": "coursecat", "instanceid": 4}``. ``limitnum=0`` means no limit;
        note that ``limitfrom`` is a *page number* for ``self``/``all`` (CONTRACT §3.1)."""
        ctx = {"contextid": context} if isinstance(context, int) else dict(context)
        answer = self.call("core_cohort_search_cohorts", {
            "query": query, "context": ctx, "includes": includes,
            "limitfrom": limitfrom, "limitnum": limitnum,
        })
        return list((answer or {}).get("cohorts") or [])

    def create_cohorts(self, cohorts: Sequence[NewCohort]) -> list[dict[str, Any]]:
        """Created cohorts (id, name, idnumber…) in input order. Each request is atomic."""
        items = [c.to_params() for c in cohorts]
        return self._flat(self._batched("core_cohort_create_cohorts", "cohorts", items,
                                        recover=self._recover_new_cohorts))

    def _recover_new_cohorts(self, batch: list[Mapping[str, Any]]) -> tuple[str, Any]:
        # A batch is atomic: all its idnumbers now exist with the requested names (applied)
        # or none does (not applied). Empty idnumbers cannot be told apart.
        wanted = [(str(c["idnumber"]), str(c["name"])) for c in batch]
        if any(not idnumber for idnumber, _ in wanted):
            return UNKNOWN, None
        present = {(str(c["idnumber"]), str(c["name"])): c for c in self.get_cohorts()}
        idnumbers = {idnumber for idnumber, _ in present}
        if all(w in present for w in wanted):
            keys = ("id", "name", "idnumber", "description", "descriptionformat", "visible",
                    "theme")
            return APPLIED, [{k: present[w][k] for k in keys if k in present[w]}
                             for w in wanted]
        if not any(idnumber in idnumbers for idnumber, _ in wanted):
            return RESEND, None
        return UNKNOWN, None

    def update_cohorts(self, cohorts: Sequence[Mapping[str, Any]]) -> None:
        """Full rewrite of each cohort: ``id``, ``categorytype`` ({type, value}), ``name`` and
        ``idnumber`` are required by Moodle; optional keys left out stay unchanged."""
        order = ("id", "categorytype", "name", "idnumber", "description", "descriptionformat",
                 "visible", "theme", "customfields")
        items = []
        for cohort in cohorts:
            item = {k: cohort[k] for k in order if k in cohort}
            item.update({k: v for k, v in cohort.items() if k not in item})
            items.append(item)
        self._batched("core_cohort_update_cohorts", "cohorts", items)

    def delete_cohorts(self, ids: Iterable[int]) -> None:
        """Deletes members too; enrol_cohort reacts at once (CONTRACT §5.4)."""
        self._batched("core_cohort_delete_cohorts", "cohortids", _unique(int(i) for i in ids))

    def add_cohort_members(self, members: Iterable[tuple[int, int]]) -> list[dict[str, Any]]:
        """Add (cohort id, user id) pairs; returns Moodle's warnings (unknown cohort/user,
        already a member…), which do not stop the rest of the batch."""
        items = [
            {"cohorttype": {"type": "id", "value": str(int(c))},
             "usertype": {"type": "id", "value": str(int(u))}}
            for c, u in members
        ]
        warnings: list[dict[str, Any]] = []
        answers = self._batched("core_cohort_add_cohort_members", "members", items,
                                recover=partial(self._recover_members, adding=True))
        for _, answer in answers:
            warnings.extend((answer or {}).get("warnings") or [])
        return warnings

    def delete_cohort_members(self, members: Iterable[tuple[int, int]]) -> None:
        """Remove (cohort id, user id) pairs; a non-member is not an error."""
        items = [{"cohortid": int(c), "userid": int(u)} for c, u in members]
        self._batched("core_cohort_delete_cohort_members", "members", items,
                      recover=partial(self._recover_members, adding=False))

    def _recover_members(self, batch: list[Mapping[str, Any]], *, adding: bool
                         ) -> tuple[str, Any]:
        # Re-adding a member only yields a warning and deleting a non-member is a no-op,
        # so resending is harmless; the re-read just avoids it when the batch went through.
        pairs = [(int(m["cohorttype"]["value"]), int(m["usertype"]["value"])) if adding
                 else (int(m["cohortid"]), int(m["userid"])) for m in batch]
        current = self.get_cohort_members({c for c, _ in pairs}, ignore_missing=True)
        done = all((u in current.get(c, ())) == adding for c, u in pairs)
        if done:
            return APPLIED, ({"warnings": []} if adding else None)
        return RESEND, None

    def get_cohort_members(
        self, cohort_ids: Iterable[int], *, ignore_missing: bool = False
    ) -> dict[int, list[int]]:
        """Member user ids per cohort, many cohorts per request, keys in input order.

        One unknown cohort fails its whole request in Moodle; with ``ignore_missing`` the
        failing batch is bisected to drop the unknown ids (absent from the result).
        """
        wanted = _unique(int(i) for i in cohort_ids)
        if ignore_missing:
            entries, dropped = self._batched_tolerant(
                "core_cohort_get_cohort_members", "cohortids", wanted, (RecordNotFound,))
            if dropped:
                log.info("moodle get_cohort_members: unknown cohorts skipped: %s", dropped)
        else:
            entries = self._flat(
                self._batched("core_cohort_get_cohort_members", "cohortids", wanted))
        found = {int(e["cohortid"]): [int(u) for u in e.get("userids") or []] for e in entries}
        return {i: found[i] for i in wanted if i in found}

    # -- users ------------------------------------------------------------------------------

    def get_users_by_field(
        self, field: str, values: Iterable[str | int], *, skip_invalid: bool = True
    ) -> list[dict[str, Any]]:
        """Users whose ``field`` (id, idnumber, username, email) is in ``values``; unknown
        values are omitted. Results follow the order of ``values``.

        Usernames are lower-cased and e-mails trimmed first: Moodle stores usernames
        lower-case and fails the *whole* call when cleaning would change a value
        (CONTRACT §3.2). Values it still rejects (e.g. characters a username cannot hold) are
        isolated and skipped with ``skip_invalid`` (logged), else the error is raised.
        """
        if field not in _USER_FIELDS:
            raise ValueError(f"field must be one of {', '.join(_USER_FIELDS)}")
        wanted = _unique(_clean_user_value(field, v) for v in values)
        if field == "idnumber":
            wanted = [v for v in wanted if v != ""]  # '' matches nobody (OBSERVED §4)
        skip = (InvalidParameter,) if skip_invalid and field != "id" else ()
        users, dropped = self._batched_tolerant(
            "core_user_get_users_by_field", "values", wanted, skip, fixed={"field": field})
        if dropped:
            log.warning("moodle get_users_by_field: %d %s value(s) refused by Moodle and "
                        "skipped: %s", len(dropped), field, dropped[:20])
        position = {str(v): n for n, v in enumerate(wanted)}
        users.sort(key=lambda u: position.get(
            _clean_user_value(field, u.get(field, "")) if field != "id" else str(u.get("id")),
            len(position)))
        return users

    def create_users(self, users: Sequence[NewUser]) -> list[dict[str, Any]]:
        """Created users ``[{id, username}]`` in input order."""
        items = [u.to_params() for u in users]
        return self._flat(self._batched("core_user_create_users", "users", items,
                                        recover=self._recover_new_users))

    def _recover_new_users(self, batch: list[Mapping[str, Any]]) -> tuple[str, Any]:
        names = [str(u["username"]) for u in batch]
        found = {str(u.get("username")): int(u["id"])
                 for u in self.get_users_by_field("username", names, skip_invalid=False)}
        if all(n in found for n in names):
            return APPLIED, [{"id": found[n], "username": n} for n in names]
        if not found:
            return RESEND, None
        return UNKNOWN, None

    def delete_users(self, ids: Iterable[int]) -> None:
        self._batched("core_user_delete_users", "userids", _unique(int(i) for i in ids))

    # -- categories and courses -------------------------------------------------------------

    def create_categories(self, categories: Sequence[NewCategory]) -> list[dict[str, Any]]:
        items = [c.to_params() for c in categories]
        return self._flat(self._batched("core_course_create_categories", "categories", items))

    def get_categories(self, criteria: Mapping[str, str | int] | None = None
                       ) -> list[dict[str, Any]]:
        """``core_course_get_categories`` with criteria such as ``{"idnumber": "CAT-X"}``."""
        crit = [{"key": k, "value": str(v)} for k, v in (criteria or {}).items()]
        params: dict[str, Any] = {"criteria": crit} if crit else {}
        return list(self.call("core_course_get_categories", params) or [])

    def create_courses(self, courses: Sequence[NewCourse]) -> list[dict[str, Any]]:
        items = [c.to_params() for c in courses]
        return self._flat(self._batched("core_course_create_courses", "courses", items))

    def get_courses_by_field(self, field: str = "", value: str | int | Iterable[int] = ""
                             ) -> list[dict[str, Any]]:
        """Courses by ``id``, ``ids`` (comma list or iterable), ``shortname``, ``idnumber``,
        ``category``; no field = all courses including the site course (id 1).

        Moodle 4.5 crashes on ``ids`` with an unknown id (a PHP Error, transcript seq 31);
        the client then falls back to one ``id`` request per course, concurrently.
        """
        if field == "ids" and not isinstance(value, (str, int)):
            value = ",".join(str(int(v)) for v in value)
        params: dict[str, Any] = {}
        if field:
            params = {"field": field, "value": str(value)}
        try:
            answer = self.call("core_course_get_courses_by_field", params)
        except MoodleError as err:
            if field != "ids" or err.errorcode:
                raise
            ids = [int(v) for v in str(value).split(",") if v.strip()]
            per_id = self.transport.map([
                partial(self.get_courses_by_field, "id", i) for i in ids])
            return [c for found in per_id for c in found]
        for warning in (answer or {}).get("warnings") or []:
            log.info("moodle core_course_get_courses_by_field warning: %s",
                     warning.get("message"))
        return list((answer or {}).get("courses") or [])

    # -- enrolments -------------------------------------------------------------------------

    def get_enrolled_users(
        self,
        courseid: int,
        *,
        onlyactive: bool = False,
        withcapability: str | None = None,
        groupid: int | None = None,
        userfields: str | Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Users enrolled in a course by any method. ``userfields=("id",)`` is the cheap form.
        Without ``onlyactive`` suspended/expired enrolments are included."""
        options: list[dict[str, Any]] = []
        if withcapability:
            options.append({"name": "withcapability", "value": withcapability})
        if groupid is not None:
            options.append({"name": "groupid", "value": int(groupid)})
        if onlyactive:
            options.append({"name": "onlyactive", "value": 1})
        if userfields is not None:
            fields = userfields if isinstance(userfields, str) else ",".join(userfields)
            options.append({"name": "userfields", "value": fields})
        params: dict[str, Any] = {"courseid": int(courseid)}
        if options:
            params["options"] = options
        return list(self.call("core_enrol_get_enrolled_users", params) or [])

    def get_course_enrolment_methods(self, courseid: int) -> list[dict[str, Any]]:
        """Enabled instances whose plugin has ``get_enrol_info`` (self, guest): never manual
        or cohort ones (CONTRACT §1.1)."""
        return list(self.call("core_enrol_get_course_enrolment_methods",
                              {"courseid": int(courseid)}) or [])

    def manual_enrol(self, enrolments: Sequence[ManualEnrolment]) -> None:
        self._batched("enrol_manual_enrol_users", "enrolments",
                      [e.to_params() for e in enrolments])

    def manual_unenrol(self, unenrolments: Sequence[ManualUnenrolment]) -> None:
        self._batched("enrol_manual_unenrol_users", "enrolments",
                      [u.to_params() for u in unenrolments])

    # -- groups -----------------------------------------------------------------------------

    def get_course_groups(self, courseid: int) -> list[dict[str, Any]]:
        return list(self.call("core_group_get_course_groups", {"courseid": int(courseid)})
                    or [])

    def create_groups(self, groups: Sequence[NewGroup]) -> list[dict[str, Any]]:
        items = [g.to_params() for g in groups]
        return self._flat(self._batched("core_group_create_groups", "groups", items))

    def add_group_members(self, members: Iterable[tuple[int, int]]) -> None:
        """(group id, user id) pairs; users must be enrolled in the group's course."""
        items = [{"groupid": int(g), "userid": int(u)} for g, u in members]
        self._batched("core_group_add_group_members", "members", items)

    def delete_group_members(self, members: Iterable[tuple[int, int]]) -> None:
        """Cohort-synced memberships refuse removal (``errorremovenotpermitted``)."""
        items = [{"groupid": int(g), "userid": int(u)} for g, u in members]
        self._batched("core_group_delete_group_members", "members", items)

    def get_group_members(self, group_ids: Iterable[int]) -> dict[int, list[int]]:
        wanted = _unique(int(i) for i in group_ids)
        answers = self._batched("core_group_get_group_members", "groupids", wanted)
        found = {int(e["groupid"]): [int(u) for u in e.get("userids") or []]
                 for e in self._flat(answers)}
        return {i: found[i] for i in wanted if i in found}

    def delete_groups(self, ids: Iterable[int]) -> None:
        self._batched("core_group_delete_groups", "groupids", _unique(int(i) for i in ids))

    # -- cohort-sync instances (local_ws_enrolcohort) -----------------------------------------

    def cohort_sync_instances(self, courseid: int = -1) -> list[CohortSyncInstance]:
        """All cohort-sync instances of a course, or of the whole site with ``-1`` (one call)."""
        answer = self.call("local_ws_enrolcohort_get_instances", {"course": {"id": courseid}})
        return [CohortSyncInstance.from_enrol_item(item)
                for item in (answer or {}).get("data") or []
                if isinstance(item, Mapping) and item.get("object", "enrol") == "enrol"]

    def add_cohort_sync(
        self,
        courseid: int,
        cohortid: int,
        roleid: int,
        *,
        groupid: int = 0,
        name: str = "",
        status: int = 0,
    ) -> int:
        """Create an instance (enrols the cohort's members at once) and return its id.

        ``groupid`` 0 = none, -1 = create "<cohort> cohort". The original plugin ignores
        ``status`` on add (OBSERVED, seq 131), so a disabled instance is created and then
        disabled with an update. If the add ended without an answer (5xx, dropped connection;
        not a timeout, which may still be running), the course's instances are re-read:
        found means done, absent means it is safe to resend (the plugin refuses duplicates).
        """
        params = {"instance": {
            "courseid": int(courseid), "cohortid": int(cohortid), "roleid": int(roleid),
            "groupid": int(groupid) if groupid else None,
            "name": name or None,
            "status": int(status) if status else None,
        }}
        try:
            answer = self.call("local_ws_enrolcohort_add_instance", params)
        except (MoodleUnavailable, MoodleHTTPError) as err:
            if not _ambiguous(err):
                raise
            try:
                existing = self._find_sync(courseid, cohortid, roleid)
            except MoodleError as read_err:
                log.warning("moodle add_cohort_sync: could not re-read: %s", read_err)
                raise err from None
            if existing is not None:
                log.warning("moodle add_cohort_sync: answer lost but instance %d exists",
                            existing.id)
                instance_id, got_status = existing.id, existing.status
            else:
                log.warning("moodle add_cohort_sync: re-read shows nothing added; resending")
                answer = self.call("local_ws_enrolcohort_add_instance", params)
                instance_id, got_status = _added(answer)
        else:
            instance_id, got_status = _added(answer)
        if status and got_status != status:
            self.update_cohort_sync(instance_id, status=status)
        return instance_id

    def _find_sync(self, courseid: int, cohortid: int, roleid: int) -> CohortSyncInstance | None:
        for inst in self.cohort_sync_instances(courseid):
            if inst.cohortid == cohortid and inst.roleid == roleid:
                return inst
        return None

    def update_cohort_sync(
        self,
        instance_id: int,
        *,
        name: str | None = None,
        roleid: int | None = None,
        groupid: int | None = None,
        status: int | None = None,
    ) -> CohortSyncInstance | None:
        """Change name/status/role/group (not the cohort: delete and add instead). Returns the
        instance as the plugin reports it (None when it reports no change details)."""
        answer = self.call("local_ws_enrolcohort_update_instance", {"instance": {
            "id": int(instance_id), "name": name, "status": status, "roleid": roleid,
            "groupid": groupid,
        }})
        return _instance_from_data(answer)

    def delete_cohort_sync(self, instance_id: int) -> CohortSyncInstance | None:
        """Delete an instance: unenrols all its users (destructive, CONTRACT §5.4)."""
        answer = self.call("local_ws_enrolcohort_delete_instance",
                           {"instance": {"id": int(instance_id)}})
        return _instance_from_data(answer)


def _ambiguous(err: MoodleError) -> bool:
    """Did the request reach Moodle and end without an answer, so that a re-read now tells
    whether it committed? Not after a timeout or a 504: PHP may still be running it (a
    re-read could race the commit), so those stay unresolved."""
    if isinstance(err, MoodleUnavailable):
        return err.maybe_applied and not err.timed_out
    return isinstance(err, MoodleHTTPError) and err.status in (500, 502, 503)


def _added(answer: Any) -> tuple[int, int]:
    inst = _instance_from_data(answer)
    if inst is not None:
        return inst.id, inst.status
    return int((answer or {})["id"]), 0


def _instance_from_data(answer: Any) -> CohortSyncInstance | None:
    data = (answer or {}).get("data") or []
    for item in data:
        if isinstance(item, Mapping) and item.get("object") == "enrol":
            return CohortSyncInstance.from_enrol_item(item, data)
    return None


def _clean_user_value(field: str, value: Any) -> str:
    if field == "id":
        return str(int(value))
    text = str(value)
    if field == "username":
        return text.strip().lower()
    if field == "email":
        return text.strip()
    return text


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))

