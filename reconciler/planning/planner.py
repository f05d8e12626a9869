"""The planner: a pure function of (desired, actual, settings, today) -> plan.

No I/O. As in peribolos, each kind of resource is compared with plain set operations, the
risky parts are decided here (ownership, what a removal does, failsafes), and everything
shows up in the plan before anything is written.

``compute_plan`` runs four phases in order, each a function that returns what the next one
needs, in the open (no shared mutable state):

* ``plan_accounts`` -> :class:`Accounts`: the accounts this plan creates (``creating``);
* ``plan_cohorts(…, creating)`` -> :class:`Cohorts`: cohort and member actions, and the
  cohorts it creates (``created``);
* ``plan_syncs(…, creating, cohorts, ledger)`` (``syncs``, ``manual``) -> ``Findings``: groups,
  cohort syncs, the instances no longer declared, and the ``method: manual`` enrolments: what
  is owed derived from Moodle's state and the manual-enrolment ledger (``ledger``);
* ``plan_notices`` -> :class:`Notices`: expiring syncs and the run's general warnings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..settings import PlatformSettings
from .actions import (
    Action,
    AddMembers,
    CreateCohort,
    CreateUser,
    DeleteCohort,
    EndManual,
    Reason,
    RemoveMembers,
    RetireManual,
    UpdateCohort,
)
from .failsafe import check_failsafes
from .findings import (
    Accounts,
    Cohorts,
    Notices,
    cohort_description,
    instance_name,
    member_reason,
    resolve,
    vet_of,
)
from .ledger import Ledger
from .patterns import expand_patterns
from .plan import Plan, Warning
from .state import (
    COHORT_MARKER,
    ActualCohort,
    ActualState,
    DesiredCohort,
    DesiredState,
    DesiredSync,
)
from .syncs import plan_syncs

__all__ = ["cohort_description", "compute_plan", "general_moves", "instance_name"]


# -- accounts ------------------------------------------------------------------------------


def plan_accounts(
    desired: DesiredState, actual: ActualState, platform: PlatformSettings
) -> Accounts:
    """Accounts for members Moodle lacks and the directory knows, when the platform creates
    accounts (``accounts.create``); the others stay pending."""
    out = Accounts()
    if not platform.accounts.create:
        return out
    wanted = set().union(*(c.members for c in desired.cohorts.values()))
    missing = {u for u in wanted if u not in actual.users and u in desired.accounts}
    first_cohort: dict[str, DesiredCohort] = {}  # why each account is needed
    for idnumber in sorted(desired.cohorts):
        for username in desired.cohorts[idnumber].members & missing:
            first_cohort.setdefault(username, desired.cohorts[idnumber])
    creating = set()
    for username in sorted(missing):
        account = desired.accounts[username]
        creating.add(username)
        cohort = first_cohort[username]
        out.add(
            username,
            CreateUser(
                username=username,
                firstname=account.firstname,
                lastname=account.lastname,
                email=account.email,
                auth=platform.accounts.auth,
            ),
            Reason(
                "account-needed",
                f"wanted in cohort {cohort.idnumber} ({cohort.source}); the directory knows "
                "the student and accounts.create is on",
                cohort.source,
            ),
        )
    out.creating = frozenset(creating)
    return out


# -- cohorts -------------------------------------------------------------------------------


def plan_cohorts(
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
    creating: frozenset[str],
) -> Cohorts:
    """Each desired cohort created, brought back to its declaration, or reported as an
    unmanaged look-alike; each managed cohort no longer desired retired (see
    ``_retire_cohort``)."""
    out = Cohorts()
    created: set[str] = set()
    for idnumber in sorted(desired.cohorts):
        want = desired.cohorts[idnumber]
        have = actual.cohorts.get(idnumber)
        written = desired.unsafe_names.get(("cohort", idnumber, want.name))
        if written is not None and (have is None or have.name != want.name):
            out.warn(
                "name-made-safe",
                f"cohort {idnumber}: the name {written!r} ({want.source}) holds what Moodle's "
                "PARAM_TEXT takes for HTML markup (a synced cohort so named breaks "
                f"local_ws_enrolcohort for the whole platform); it is named {want.name!r}",
                idnumber,
            )
        if have is None and want.adopt and not platform.is_managed_idnumber(idnumber):
            # Outside the managed prefix, adopt: true takes over an existing cohort as it
            # is; it never creates one the prefix would not cover.
            out.warn(
                "adopt-missing",
                f"cohort {idnumber} is declared with adopt: true outside the managed prefix "
                f"{platform.manual_idnumber_prefix!r}, but Moodle has no such cohort; "
                "nothing created (give the idnumber the prefix to create it)",
                want.source,
            )
        elif have is None:
            created.add(idnumber)
            _create_cohort(out, want, actual, creating)
        elif have.owned or want.adopt or (want.kind == "general" and desired.adopt_general):
            _update_cohort(out, want, have, actual, creating)
        else:
            out.unmanaged.append(
                {
                    "kind": "cohort",
                    "idnumber": idnumber,
                    "id": have.id,
                    "reason": "exists in Moodle without the reconciler's marker",
                }
            )
            if want.kind == "general":
                # No file declares a general cohort, so adopt: true cannot be the way out.
                out.warn(
                    "general-lookalike",
                    f"general cohort {idnumber} exists in Moodle but was not created by the "
                    "reconciler (by hand or by an older script); left alone, so it does not "
                    "follow APOGÉE: to hand it over, add the line "
                    f"{COHORT_MARKER} to its description in Moodle",
                    idnumber,
                )
            else:
                out.warn(
                    "unmanaged-lookalike",
                    f"cohort {idnumber} exists in Moodle but was not created by the "
                    "reconciler; left alone (declare adopt: true to take it over)",
                    idnumber,
                )
    for idnumber in sorted(actual.cohorts):
        if idnumber not in desired.cohorts:
            _retire_cohort(out, actual.cohorts[idnumber], desired, actual, platform)
    out.created = frozenset(created)
    return out


def _create_cohort(
    out: Cohorts, want: DesiredCohort, actual: ActualState, creating: frozenset[str]
) -> None:
    out.add(
        want.idnumber,
        CreateCohort(
            idnumber=want.idnumber,
            name=want.name,
            description=cohort_description(want),
            visible=want.visible,
            category=want.category,
            cohort_kind=want.kind,
        ),
        _cohort_reason(want),
    )
    names, ids, pending = resolve(want.members, actual, creating)
    out.pending |= pending
    if names:
        out.add(
            want.idnumber,
            AddMembers(
                cohort=want.idnumber,
                cohortid=None,
                usernames=tuple(names),
                userids=tuple(ids),
                size_before=0,
            ),
            member_reason(want, adding=True),
        )


def _cohort_reason(want: DesiredCohort) -> Reason:
    if want.kind == "general":
        return Reason(
            "in-sources",
            f"inscriptions administratives in force in {vet_of(want)}",
            want.source,
        )
    return Reason("declared", f"declared in {want.source}", want.source)


def _update_cohort(
    out: Cohorts,
    want: DesiredCohort,
    have: ActualCohort,
    actual: ActualState,
    creating: frozenset[str],
) -> None:
    description = cohort_description(want)
    changes: dict[str, tuple[Any, Any]] = {}
    if have.name != want.name:
        changes["name"] = (have.name, want.name)
    if have.description != description:
        changes["description"] = (have.description, description)
    if have.visible != want.visible:
        changes["visible"] = (have.visible, want.visible)
    if changes:
        out.add(
            want.idnumber,
            UpdateCohort(
                cohortid=have.id,
                idnumber=want.idnumber,
                name=want.name,
                description=description,
                visible=want.visible,
                category=want.category,
                changes=changes,
                adopt=not have.owned,
            ),
            Reason("adopt", f"taken over as declared in {want.source}", want.source)
            if not have.owned
            else Reason(
                "drift",
                f"Moodle's {', '.join(changes)} differ from {want.source}",
                want.source,
            ),
        )
    names, ids, pending = resolve(want.members, actual, creating)
    out.pending |= pending
    to_add = [(n, i) for n, i in zip(names, ids, strict=True) if i is None or i not in have.members]
    if to_add:
        out.add(
            want.idnumber,
            AddMembers(
                cohort=want.idnumber,
                cohortid=have.id,
                usernames=tuple(n for n, _ in to_add),
                userids=tuple(i for _, i in to_add),
                size_before=len(have.members),
            ),
            member_reason(want, adding=True),
        )
    keep = want.members | want.uncertain | want.kept  # kept: leavers in their grace period
    _remove_members(out, want.idnumber, have, actual, keep, member_reason(want, adding=False))


def _remove_members(
    out: Cohorts,
    idnumber: str,
    have: ActualCohort,
    actual: ActualState,
    keep: frozenset[str],
    reason: Reason,
) -> None:
    # A member Moodle did not name (a lookup that came back short) is never removed on
    # the strength of a missing answer: only known usernames absent from ``keep`` go.
    unknown = sorted(uid for uid in have.members if uid not in actual.usernames)
    if unknown:
        out.warn(
            "unidentified-members",
            f"cohort {idnumber}: {len(unknown)} member(s) could not be identified in Moodle "
            f"(user ids {', '.join(map(str, unknown[:10]))}); left as they are",
            idnumber,
        )
    gone = tuple(
        sorted(
            (name, uid)
            for uid in have.members
            if (name := actual.usernames.get(uid)) is not None and name not in keep
        )
    )
    if gone:
        out.add(
            idnumber,
            RemoveMembers(
                cohort=idnumber,
                cohortid=have.id,
                usernames=tuple(n for n, _ in gone),
                userids=tuple(u for _, u in gone),
                size_before=len(have.members),
            ),
            reason,
        )


def _is_general(platform: PlatformSettings, idnumber: str) -> bool:
    general = platform.general_cohorts
    return general.enabled and bool(general.idnumber_regex().match(idnumber))


def _retire_cohort(
    out: Cohorts,
    have: ActualCohort,
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
) -> None:
    """A managed cohort no longer declared (or expired): delete it when nothing needs it."""
    general = _is_general(platform, have.idnumber)
    if general and desired.general_frozen:
        return
    if not have.owned:
        out.unmanaged.append(
            {
                "kind": "cohort",
                "idnumber": have.idnumber,
                "id": have.id,
                "reason": "matches a managed pattern but was not created by the reconciler",
            }
        )
        return
    users = [i for i in actual.instances if i.cohortid == have.id]
    declared_elsewhere = any(s.cohort == have.idnumber for s in desired.syncs)
    why = "has expired" if have.idnumber in desired.expired_cohorts else "is no longer declared"
    if general and (users or declared_elsewhere or not actual.plugin_available):
        # The étape has no current IA any more but courses still use its cohort (or may:
        # without the plugin no instance can be seen): its students drop out (through the
        # failsafes) and the cohort stays for the syncs.
        out.warn(
            "etape-empty",
            f"general cohort {have.idnumber} has no current inscription administrative; "
            "its members are removed, the cohort is kept for the syncs that use it",
            have.idnumber,
        )
        empty = Reason(
            "etape-empty",
            f"general cohort {have.idnumber}: its étape has no inscription administrative in "
            "force any more",
        )
        _remove_members(out, have.idnumber, have, actual, frozenset(), empty)
        return
    if not actual.plugin_available:
        # No instance can be read, so "no sync uses it" is unknown, not true; deleting the
        # cohort would delete whatever instances use it and unenrol their users.
        out.warn(
            "plugin-missing",
            f"cohort {have.idnumber} {why} but is kept: without the local_ws_enrolcohort "
            "plugin the reconciler cannot see which cohort syncs use it (deleting it would "
            "delete them and unenrol their users)",
            have.idnumber,
        )
        return
    foreign = [i for i in users if not i.owned]
    if foreign:
        out.warn(
            "cohort-kept",
            f"cohort {have.idnumber} {why} but is kept: cohort sync instance(s) "
            f"{', '.join(str(i.id) for i in foreign)} that the reconciler does not own still "
            "use it (deleting it would unenrol their users)",
            have.idnumber,
        )
        return
    if actual.unreadable_courses:
        out.warn(
            "cohort-kept",
            f"cohort {have.idnumber} {why} but is kept this run: some courses' cohort-sync "
            "instances cannot be read, and one of them might use it",
            have.idnumber,
        )
        return
    if users and (platform.sync_policy.on_removal == "disable" or declared_elsewhere):
        out.warn(
            "cohort-kept",
            f"cohort {have.idnumber} {why} but is kept: the reconciler's own "
            "(disabled) sync instances still use it, and deleting the cohort would delete them "
            "and unenrol their users; remove those instances in Moodle, or set "
            "sync_policy.on_removal: delete",
            have.idnumber,
        )
        return
    if general:
        reason = Reason(
            "etape-empty",
            f"general cohort {have.idnumber}: its étape has no inscription administrative in "
            "force any more and no course uses the cohort",
        )
    elif have.idnumber in desired.expired_cohorts:
        reason = Reason(
            "expired", f"cohort {have.idnumber} has expired (its declared expires date passed)"
        )
    else:
        reason = Reason(
            "undeclared", f"cohort {have.idnumber} is no longer declared and nothing uses it"
        )
    out.add(
        have.idnumber,
        DeleteCohort(cohort=have.idnumber, cohortid=have.id, members=len(have.members)),
        reason,
    )


# -- notices -------------------------------------------------------------------------------


def plan_notices(desired: DesiredState, platform: PlatformSettings, today: dt.date) -> Notices:
    """Syncs expiring within the platform's window (``expiry_warning_days``), expired ones,
    unhealthy sources, and the desired side's own notices (grace periods)."""
    notices = Notices(expiring=[], warnings=[])
    window = platform.sync_policy.expiry_warning_days
    for sync in _once_per_pattern_entry(desired):
        if sync.expires and 0 <= (sync.expires - today).days <= window:
            days = (sync.expires - today).days
            notices.expiring.append(
                {
                    "course": sync.course,
                    "cohort": sync.cohort,
                    "role": sync.role,
                    "method": sync.method,
                    "expires": sync.expires.isoformat(),
                    "days_left": days,
                    "within_days": window,
                    "owners": list(sync.owners),
                    "source": sync.source,
                }
            )
            notices.warnings.append(
                Warning(
                    "expiring",
                    f"{sync.course}: sync of {sync.cohort} ({sync.role}) expires "
                    f"on {sync.expires.isoformat()} ({days} days left)",
                    sync.source,
                )
            )
    for sync in desired.expired_syncs:
        notices.warnings.append(
            Warning(
                "expired",
                f"{sync.course}: sync of {sync.cohort} ({sync.role}) expired on "
                f"{sync.expires.isoformat() if sync.expires else '?'}; it is removed "
                "(delete the entry)",
                sync.source,
            )
        )
    if desired.general_frozen:
        reasons = "; ".join(desired.frozen_reasons) or "unknown reason"
        notices.warnings.append(
            Warning(
                "sources-unhealthy",
                f"general cohorts are left unchanged: sources are unhealthy ({reasons})",
            )
        )
    notices.warnings.extend(Warning(code, message) for code, message in desired.notices)
    for review in desired.reviews:
        days = review["days_left"]
        when = (f"due on {review['due']} ({days} days left)" if days > 0 else
                f"due since {review['due']}" + (f" ({-days} days overdue)" if days else ""))
        notices.warnings.append(Warning(
            "review-due",
            f"cohort {review['cohort']}: review of the members {when}; owners "
            f"{', '.join(review['owners']) or 'none'} check them and move reviewed: in a "
            "merge request",
            review["source"]))
    return notices


def _once_per_pattern_entry(desired: DesiredState) -> list[DesiredSync]:
    """The syncs in force, a course pattern's entry once (under the pattern's label) rather
    than once per course it matches: what the expiry notices speak of."""
    out = [s for s in desired.syncs if s.pattern is None]
    if desired.patterns_expanded:
        out += [s for p in desired.patterns for s in p.syncs]
    return out


def compute_plan(
    desired: DesiredState,
    actual: ActualState,
    platform: PlatformSettings,
    today: dt.date,
    academic_year: str,
    ledger: Ledger | None = None,
) -> Plan:
    """Everything that turns ``actual`` into ``desired`` on ``platform`` as of ``today``
    (a Europe/Paris date: expiry), with warnings and failsafe checks. Pure: no I/O, the same
    inputs give the same plan. ``academic_year`` is the ``COD_ANU`` the sources followed.
    ``ledger`` is what the reconciler recorded of its own ``method: manual`` enrolments
    (``planning.ledger``); without one, nothing of theirs is ended (as with an empty one)."""
    if ledger is None:
        ledger = Ledger(platform.name, "")
    desired = expand_patterns(desired, actual)  # already done by the runner (idempotent)
    accounts = plan_accounts(desired, actual, platform)
    cohorts = plan_cohorts(desired, actual, platform, accounts.creating)
    syncs = plan_syncs(desired, actual, platform, accounts.creating, cohorts, ledger, today)
    notices = plan_notices(desired, platform, today)
    found = (accounts, cohorts, syncs)
    plan = Plan(
        platform=platform.name,
        academic_year=academic_year,
        actions=[a for f in found for a in f.actions],
        warnings=[w for f in found for w in f.warnings] + notices.warnings,
        pending_users=sorted(set().union(*(f.pending for f in found))),
        unmanaged=[u for f in found for u in f.unmanaged],
        expiring=notices.expiring,
        sources=dict(desired.source_stats),
        general=dict(desired.general_report),
        reviews=list(desired.reviews),
        source_digest=desired.source_digest,
        moodle_fingerprint=actual.fingerprint(),
    )
    plan.patterns = pattern_outcome(desired.pattern_report, plan.actions)
    rollover = plan.sources.get("rollover")
    if rollover is not None:
        moves = general_moves(plan.actions, lambda idnumber: _is_general(platform, idnumber))
        plan.sources["rollover"] = {**rollover, "moves": moves}
    plan.failsafe = check_failsafes(plan, platform.failsafes)
    return plan


def pattern_outcome(report: list[dict[str, Any]], actions: list[Action]) -> list[dict[str, Any]]:
    """Each course pattern's report (``expand_patterns``) with what this plan does about
    it: ``gaining``, the matched courses where it creates or re-enables one of the pattern's
    syncs; ``losing``, the courses it does not match where a sync of one of the pattern's
    cohorts and roles is retired (the courses that stopped matching)."""
    out = []
    for entry in report:
        matched = set(entry["courses"])
        pairs = {(s["cohort"], s["role"]) for s in entry["syncs"]}
        overridden = {(o["course"], o["cohort"], o["role"]) for o in entry["overridden"]}
        gaining, losing = set(), set()
        for action in actions:
            d = action.details
            cohort, role, course = d.cohort_idnumber(), getattr(d, "role", None), d.course_name()
            if (cohort, role) not in pairs or course is None:
                continue
            if course in matched and (course, cohort, role) not in overridden and (
                    action.kind in ("create_sync", "enrol_manual")
                    or (action.kind == "update_sync" and "status" in d.changes)):
                gaining.add(course)
            elif course not in matched and action.effect == "remove":
                losing.add(course)
        out.append({**entry, "gaining": sorted(gaining), "losing": sorted(losing)})
    return out


def general_moves(actions: list[Action], is_general: Callable[[str], bool]) -> dict[str, int]:
    """What ``actions`` do to the general cohorts (those ``is_general`` says of an idnumber):
    ``cohorts_created``, ``cohorts_emptied`` (every member removed, none added),
    ``cohorts_deleted``, ``memberships_added``, ``memberships_removed`` (deletions included)
    and ``enrolments_ended`` (``method: manual`` enrolments of a general cohort's syncs
    ended). On a rollover that is what the change of academic year moves, shown in the
    plan's first lines."""
    moves = dict.fromkeys(
        ("cohorts_created", "cohorts_emptied", "cohorts_deleted", "memberships_added",
         "memberships_removed", "enrolments_ended"), 0)  # fmt: skip
    gaining: set[str] = set()
    emptied: set[str] = set()
    for action in actions:
        d = action.details
        idnumber = d.cohort_idnumber()
        if not idnumber or not is_general(idnumber):
            continue
        if isinstance(d, CreateCohort):
            moves["cohorts_created"] += 1
        elif isinstance(d, AddMembers):
            moves["memberships_added"] += len(d.usernames)
            gaining.add(idnumber)
        elif isinstance(d, RemoveMembers):
            moves["memberships_removed"] += len(d.usernames)
            if len(d.usernames) >= d.size_before:
                emptied.add(idnumber)
        elif isinstance(d, DeleteCohort):
            moves["cohorts_deleted"] += 1
            moves["memberships_removed"] += d.members
        elif isinstance(d, EndManual | RetireManual):
            moves["enrolments_ended"] += len(d.usernames)
    moves["cohorts_emptied"] = len(emptied - gaining)
    return moves
