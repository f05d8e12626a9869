"""Typed Moodle web-service calls used by the reconciler.

Every list-taking call is split so that each request stays within ``max_input_vars`` form
fields (header included): PHP silently drops the fields beyond it (CONTRACT §2.4). Batches
of one call run concurrently on the transport's bounded pool, and results come back in
input order. Reads send ``moodlewssettingraw=1`` so names compare exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from .encoding import Pair, encode, item_suffixes, pack_sizes
from .errors import (
    InvalidParameter,
    InvalidResponse,
    MessageNotSent,
    MoodleError,
    RecordNotFound,
    UnexpectedAnswer,
    maybe_applied,
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
UNRESOLVED = "it may have been applied: a re-read could not tell"

# Smallest request a read is split into to use the concurrent pool (see _batched).
READ_SPLIT_MIN_FIELDS = 100
# Largest request (form fields) of a read whose cost on the server grows with each value:
# a real 4.5 site spends 7-9 ms per user core_user_get_users_by_field finds, and far more on
# a busy host (issue 10). bench_real_moodle.py at 9,288 accounts: 990-value requests outlasted
# the 30 s timeout, were retried whole, and the plan failed; 500 values a request stay well
# inside it, for a few more calls (98 instead of 64 for a 40,000-student no-op plan).
READ_MAX_FIELDS: dict[str, int] = {"core_user_get_users_by_field": 500}


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
        notices: list[str] | None = None,
    ) -> list[tuple[list[int], Any]]:
        """Send ``items`` under ``list_key`` in as few requests as fit; answers per batch.

        On failure the raised MoodleError carries ``committed_items``/``unsent_items`` as
        indices into ``items`` (for reads they only say which batches answered).

        ``recover`` (writes only) is asked, after a failure that may or may not have
        committed (:func:`~.errors.maybe_applied`: lost answer, 5xx, ``invalidresponse``, a
        message failure after the commit), to re-read the batch's items: it answers APPLIED
        with the answer to return, RESEND when sending again is provably harmless, or
        UNKNOWN (the error is raised, noting that it may have been applied). A batch found
        applied after ``Message was not sent.`` adds one line to ``notices``: done, with a
        warning.
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
        if read:
            budget = min(budget, READ_MAX_FIELDS.get(function, budget))
        batches = pack_sizes(list_key, sizes, budget=budget)

        def send(indices: list[int]) -> Any:
            pairs = list(fixed_pairs)
            for n, i in enumerate(indices):
                prefix = f"{list_key}[{n}]"
                pairs.extend((prefix + suffix, value) for suffix, value in encoded[i])
            try:
                return self.transport.call(function, pairs, is_read=read)
            except MoodleError as err:
                if recover is None or not maybe_applied(err):
                    raise
                outcome, answer = self._recover(function, recover, [items[i] for i in indices])
                if outcome == APPLIED:
                    log.warning("moodle %s: %s, but a re-read shows the %d items applied",
                                function, err.errorcode or "no answer", len(indices))
                    if isinstance(err, MessageNotSent) and notices is not None:
                        notices.append(
                            f"{function}: Moodle answered {err.message!r} ({err.errorcode}): "
                            f"the {len(indices)} item(s) are in place (re-read), but the "
                            "message Moodle sends about them (a welcome mail) was not sent")
                    return answer
                if outcome == RESEND and not isinstance(err, MessageNotSent):
                    log.warning("moodle %s: a re-read shows the %d items not applied; "
                                "sending them again", function, len(indices))
                    return self.transport.call(function, pairs, is_read=read)
                err.note = UNRESOLVED
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

    def _created(self, function: str, list_key: str, items: Sequence[Mapping[str, Any]],
                 recover: Recover | None = None) -> list[Any]:
        """A batched create call: its rows, one per item sent, in input order.

        Moodle answers one row per item of each request; another count (a proxy, another
        version) would pair created ids with the wrong items, so it is an UnexpectedAnswer.
        """
        rows: list[Any] = []
        for batch, answer in self._batched(function, list_key, items, recover=recover):
            got = len(answer or [])
            if got != len(batch):
                raise UnexpectedAnswer(
                    f"answer: expected {len(batch)} row(s), one per item sent, got {got}",
                    function,
                )
            rows.extend(answer)
        return rows

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
        return self._created("core_cohort_create_cohorts", "cohorts", items,
                             recover=self._recover_new_cohorts)

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
        return self._created("core_user_create_users", "users", items,
                             recover=self._recover_new_users)

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
        return self._created("core_course_create_categories", "categories", items)

    def get_categories(self, criteria: Mapping[str, str | int] | None = None
                       ) -> list[dict[str, Any]]:
        """``core_course_get_categories`` with criteria such as ``{"idnumber": "CAT-X"}``."""
        crit = [{"key": k, "value": str(v)} for k, v in (criteria or {}).items()]
        params: dict[str, Any] = {"criteria": crit} if crit else {}
        return list(self.call("core_course_get_categories", params) or [])

    def create_courses(self, courses: Sequence[NewCourse]) -> list[dict[str, Any]]:
        items = [c.to_params() for c in courses]
        return self._created("core_course_create_courses", "courses", items)

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

    def get_users_courses(self, userid: int) -> list[dict[str, Any]]:
        """The courses where ``userid`` has an *active* enrolment, by any method
        (``core_enrol_get_users_courses``: Moodle's ``enrol_get_users_courses`` with
        ``onlyactive``), each with ``id`` and ``shortname``; one call."""
        return list(self.call("core_enrol_get_users_courses",
                              {"userid": int(userid), "returnusercount": 0}) or [])

    def get_course_enrolment_methods(self, courseid: int) -> list[dict[str, Any]]:
        """Enabled instances whose plugin has ``get_enrol_info`` (self, guest): never manual
        or cohort ones (CONTRACT §1.1)."""
        return list(self.call("core_enrol_get_course_enrolment_methods",
                              {"courseid": int(courseid)}) or [])

    def manual_enrol(self, enrolments: Sequence[ManualEnrolment]) -> list[str]:
        """``enrol_manual_enrol_users`` (one transaction per request). Returns warnings.

        When the course has a contact, Moodle sends each enrolled user a welcome mail after
        the commit; if mail fails it answers ``Message was not sent.`` although every
        enrolment of the request is in place (issue 10, finding 2). Such an answer, a lost
        one or a 5xx is checked by re-reading the course's participants: found in place
        means done (with a warning for the mail), absent after a lost answer means resent
        (enrolling again is idempotent), anything else raises.
        """
        notices: list[str] = []
        self._batched("enrol_manual_enrol_users", "enrolments",
                      [e.to_params() for e in enrolments], recover=self._recover_manual,
                      notices=notices)
        return notices

    def _recover_manual(self, batch: list[Mapping[str, Any]]) -> tuple[str, Any]:
        wanted: dict[int, list[Mapping[str, Any]]] = {}
        for item in batch:
            wanted.setdefault(int(item["courseid"]), []).append(item)
        found = 0
        for courseid, items in wanted.items():
            everyone = {int(u["id"]): {int(r["roleid"]) for r in u.get("roles") or []}
                        for u in self.get_enrolled_users(courseid, userfields=("id", "roles"))}
            active = {int(u["id"]) for u in self.get_enrolled_users(
                courseid, onlyactive=True, userfields=("id",))}
            now = time.time()
            for item in items:
                userid, roleid = int(item["userid"]), int(item["roleid"])
                if roleid not in everyone.get(userid, set()):
                    continue
                suspend = bool(item.get("suspend"))
                start, end = int(item.get("timestart") or 0), int(item.get("timeend") or 0)
                in_force = (not start or start <= now) and (not end or end > now)
                if (suspend and userid in active) or (not suspend and in_force
                                                      and userid not in active):
                    continue  # the requested status is not Moodle's
                found += 1
        if found == len(batch):
            return APPLIED, None
        return (RESEND, None) if found == 0 else (UNKNOWN, None)

    def manual_unenrol(self, unenrolments: Sequence[ManualUnenrolment]) -> None:
        self._batched("enrol_manual_unenrol_users", "enrolments",
                      [u.to_params() for u in unenrolments])

    # -- groups -----------------------------------------------------------------------------

    def get_course_groups(self, courseid: int) -> list[dict[str, Any]]:
        return list(self.call("core_group_get_course_groups", {"courseid": int(courseid)})
                    or [])

    def create_groups(self, groups: Sequence[NewGroup]) -> list[dict[str, Any]]:
        items = [g.to_params() for g in groups]
        return self._created("core_group_create_groups", "groups", items)

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

    def cohort_sync_instances_by_course(
        self, course_ids: Iterable[int]
    ) -> tuple[list[CohortSyncInstance], dict[int, MoodleError]]:
        """The instances of each course, one call per course on the pool, tolerating courses
        Moodle cannot answer for.

        The fallback when the site-wide read (``courseid=-1``) fails because of one course's
        data: a cohort, course or group name holding markup makes ``get_instances`` answer
        ``invalidresponse`` for that course and for ``-1`` (issue 10, finding 1). Returns the
        instances of the courses that answered, and the error of each course that did not.
        Only ``invalidresponse`` marks a course as unreadable; any other error (the whole
        site's: token, access, transport, maintenance; or an answer of the wrong shape) is
        raised, since reading on would only repeat it or hide it.
        """
        ids = _unique(int(c) for c in course_ids)

        def one(courseid: int) -> list[CohortSyncInstance] | MoodleError:
            try:
                return self.cohort_sync_instances(courseid)
            except InvalidResponse as err:
                return err

        instances: list[CohortSyncInstance] = []
        broken: dict[int, MoodleError] = {}
        for courseid, got in zip(ids, self.transport.map([partial(one, c) for c in ids]),
                                 strict=True):
            if isinstance(got, MoodleError):
                broken[courseid] = got
            else:
                instances.extend(got)
        return instances, broken

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
        disabled with an update. If the add ended without a usable answer
        (:func:`~.errors.maybe_applied`: 5xx, dropped connection, ``invalidresponse``; not a
        timeout, which may still be running), the course's instances are re-read: found
        means done, absent means it is safe to resend (the plugin refuses duplicates); a
        re-read that fails too leaves the error raised, noting it may have been applied.
        """
        params = {"instance": {
            "courseid": int(courseid), "cohortid": int(cohortid), "roleid": int(roleid),
            "groupid": int(groupid) if groupid else None,
            "name": name or None,
            "status": int(status) if status else None,
        }}
        try:
            answer = self.call("local_ws_enrolcohort_add_instance", params)
        except MoodleError as err:
            if not maybe_applied(err):
                raise
            try:
                existing = self._find_sync(courseid, cohortid, roleid)
            except MoodleError as read_err:
                log.warning("moodle add_cohort_sync: could not re-read: %s", read_err)
                err.note = UNRESOLVED
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
        courseid: int | None = None,
    ) -> CohortSyncInstance | None:
        """Change name/status/role/group (not the cohort: delete and add instead). Returns the
        instance as the plugin reports it (None when it reports no change details).

        With ``courseid``, an answer that may hide a commit (:func:`~.errors.maybe_applied`)
        is checked by re-reading the course's instances: the requested values in place
        means done, otherwise the update is sent again (it is idempotent)."""
        params = {"instance": {
            "id": int(instance_id), "name": name, "status": status, "roleid": roleid,
            "groupid": groupid,
        }}
        wanted = {"name": name, "status": status, "roleid": roleid, "groupid": groupid}

        def applied(inst: CohortSyncInstance | None) -> bool:
            return inst is not None and all(
                getattr(inst, key) == value for key, value in wanted.items()
                if value is not None and (key != "groupid" or value != -1))

        return _instance_from_data(self._checked_sync_write(
            "local_ws_enrolcohort_update_instance", params, instance_id, courseid, applied))

    def delete_cohort_sync(self, instance_id: int, *, courseid: int | None = None
                           ) -> CohortSyncInstance | None:
        """Delete an instance: unenrols all its users (destructive, CONTRACT §5.4). With
        ``courseid``, an answer that may hide a commit is checked by re-reading the course's
        instances: gone means done, still there means sent again."""
        answer = self._checked_sync_write(
            "local_ws_enrolcohort_delete_instance", {"instance": {"id": int(instance_id)}},
            instance_id, courseid, lambda inst: inst is None)
        return _instance_from_data(answer)

    def _checked_sync_write(
        self,
        function: str,
        params: Mapping[str, Any],
        instance_id: int,
        courseid: int | None,
        applied: Callable[[CohortSyncInstance | None], bool],
    ) -> Any:
        """One plugin write; after a failure that may hide a commit, re-read the instance in
        its course and return None when ``applied`` says it is done, or resend once."""
        try:
            return self.call(function, params)
        except MoodleError as err:
            if courseid is None or not maybe_applied(err):
                raise
            try:
                found = {i.id: i for i in self.cohort_sync_instances(courseid)}
            except MoodleError as read_err:
                log.warning("moodle %s: could not re-read: %s", function, read_err)
                err.note = UNRESOLVED
                raise err from None
            if applied(found.get(int(instance_id))):
                log.warning("moodle %s: %s, but a re-read shows it applied", function,
                            err.errorcode or "no answer")
                return None
            log.warning("moodle %s: a re-read shows it not applied; sending it again", function)
            return self.call(function, params)


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

