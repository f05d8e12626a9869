"""The verdict for one person: what the next apply will do for them and why, or what blocks.

It is read off the plan the nightly planner (``planning.planner.compute_plan``) computes on
the platform's desired and actual states restricted to the person: no rule is restated
here. What the restricted plan cannot know is taken from the history: whether the last run
was refused by a failsafe (the whole apply stops then) or found the sources unhealthy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..planning.actions import Action
from ..planning.plan import Plan
from ..planning.state import DesiredSync

# Plan warnings that mean a sync concerning the person cannot do its work yet.
BLOCKING_WARNINGS = ("course-missing", "cohort-missing", "plugin-missing", "unmanaged-lookalike")
COURSE_KINDS = ("create_group", "create_sync", "update_sync", "disable_sync", "delete_sync")


def _line(action: Action, username: str) -> str:
    d: Any = action.details
    if action.kind == "create_user":
        return f"create the Moodle account {username}"
    if action.kind == "add_members":
        return f"add {username} to cohort {d.cohort}"
    if action.kind == "remove_members":
        return f"remove {username} from cohort {d.cohort}"
    if action.kind == "enrol_manual":
        return f"enrol {username} in {d.course} as {d.role} (method: manual) until {d.expires}"
    if action.kind == "suspend_manual":
        return f"suspend the manual enrolment of {username} in {d.course}"
    if action.kind == "delete_cohort":
        return f"delete cohort {d.cohort}, {username} included"
    return f"{d.course}: {d.describe()}"


def _consequences(action: Action, syncs: list[DesiredSync], remaining: set[str]) -> list[str]:
    """What a membership change does in the courses that sync the cohort (cohort syncs;
    a ``method: manual`` sync has its own enrol/suspend action). ``remaining``: the cohorts
    the person is still in after the plan, which may keep them in a course."""
    if action.kind not in ("add_members", "remove_members", "delete_cohort"):
        return []
    cohort = action.details.cohort_idnumber()
    out = []
    for sync in sorted(syncs, key=lambda s: s.key):
        if sync.cohort != cohort or sync.method != "cohort":
            continue
        if action.kind == "add_members":
            out.append(f"enrolled in {sync.course} as {sync.role} by its cohort sync")
            continue
        kept = sorted({s.cohort for s in syncs if s.course == sync.course
                       and s.cohort != cohort and s.cohort in remaining})
        if kept:
            out.append(f"stays in {sync.course} through the sync of {', '.join(kept)}")
        else:
            out.append(f"leaves {sync.course} (cohort sync: unenrolled or suspended, as the "
                       "site's enrol_cohort unenrolaction says)")
    return out


def person_changes(plan: Plan, username: str, member_of: set[str], courses: set[str],
                   syncs: Iterable[DesiredSync]) -> list[dict[str, Any]]:
    """The actions of ``plan`` that concern ``username``: their account, their cohort
    memberships and manual enrolments, the cohort syncs of cohorts they are or will be in
    (``member_of``) or of ``courses``, the deletion of a cohort they are in. Each is
    ``{kind, target, effect, line, reason, courses}``."""
    syncs = list(syncs)
    leaving = {a.details.cohort_idnumber() for a in plan.actions
               if a.kind == "delete_cohort"
               or (a.kind == "remove_members" and username in a.details.usernames)}
    remaining = member_of - leaving
    out = []
    for action in plan.sorted_actions():
        d: Any = action.details
        names = getattr(d, "usernames", None)
        if action.kind == "create_user":
            mine = action.target == username
        elif names is not None:
            mine = username in names
        elif action.kind in COURSE_KINDS:
            mine = getattr(d, "cohort", None) in member_of or d.course_name() in courses
        elif action.kind == "delete_cohort":
            mine = d.cohort in member_of
        else:
            mine = False
        if mine:
            out.append({
                "kind": action.kind,
                "target": action.target,
                "effect": action.effect,
                "line": _line(action, username),
                "reason": action.reason.to_json(),
                "courses": _consequences(action, syncs, remaining),
            })
    return out


def blockers(
    plan: Plan,
    username: str,
    sources: Mapping[str, Any],
    syncs: Iterable[DesiredSync],
    last_run: Mapping[str, Any] | None,
    changes: list[dict[str, Any]],
    general: bool,
) -> list[dict[str, str]]:
    """What stops or holds the person's changes, each ``{code, text}``:
    ``pending-account`` (no Moodle account, none created), ``sources-unread`` (the person's
    sources could not be read now: their general cohorts are not judged), ``sources`` (the
    last run found them unhealthy and the person's changes are general-cohort ones: those
    wait), the plan's warnings on a sync concerning them (course
    or cohort missing, plugin missing, an instance not the reconciler's), ``failsafe`` (the
    last run was refused by a failsafe and not approved since: the whole apply stops).
    ``sources``: the person's sources (``PersonSources.to_json``); ``syncs``: the declared
    syncs that concern them; ``last_run``: the platform's last run entry; ``changes``: the
    person's changes (``person_changes``); ``general``: the platform has general cohorts."""
    out: list[dict[str, str]] = []
    has_changes = bool(changes)
    if username in plan.pending_users:
        out.append({"code": "pending-account", "text": (
            f"{username} has no Moodle account and this platform does not create it "
            "(accounts.create off, or the directory has no usable entry): what concerns "
            "them waits until the account exists (first login through CAS/LDAP)")})
    if general and sources.get("errors"):
        out.append({"code": "sources-unread", "text": (
            "the sources could not be read for this person now ("
            + "; ".join(sources["errors"]) + "): their general cohorts are not judged (a run "
            "failing the same way leaves general cohorts as they are)")})
    general_changes = has_changes and any(
        c.get("reason", {}).get("code") in ("in-sources", "left-sources", "etape-empty")
        for c in changes)
    if general_changes and last_run and not last_run.get("sources", {}).get("healthy", True):
        reasons = "; ".join(last_run["sources"].get("reasons") or []) or "unknown reason"
        out.append({"code": "sources", "text": (
            f"the last run ({last_run['time']}) found the sources unhealthy ({reasons}): "
            "general cohorts were left as they are; their changes wait for healthy sources")})
    sources_of = {s.source for s in syncs}
    for warning in plan.warnings:
        if warning.code in BLOCKING_WARNINGS and warning.target in sources_of:
            out.append({"code": warning.code, "text": warning.message})
    if has_changes and last_run and last_run.get("outcome") == "failsafe-tripped":
        checks = "; ".join(
            f"{c['name']}{'' if c['target'] == '*' else ' [' + c['target'] + ']'}: "
            f"{c['value']:g} > {c['limit']:g}"
            for c in last_run.get("failsafe") or []
        )
        out.append({"code": "failsafe", "text": (
            f"the last apply ({last_run['time']}, commit {str(last_run.get('commit'))[:12]}) "
            f"was refused by a failsafe ({checks}): nothing is applied on this platform "
            f"until someone approves that plan (reconcile approve, digest {last_run['plan']}) "
            "or the plan changes")})
    return out


def summary(changes: Sequence[Mapping[str, Any]], blocking: Sequence[Mapping[str, str]],
            leaving: Sequence[Mapping[str, str]] = ()) -> str:
    """One line: ``nothing: already as declared``, what the next apply will do, that it is
    blocked, that the person is leaving a general cohort after its grace period, and whether
    their general cohorts could not be judged (``sources-unread``)."""
    codes = sorted({b["code"] for b in blocking} - {"sources-unread"})
    tail = [f"leaving {x['cohort']} on {x['on']} (grace period)" for x in leaving]
    if any(b["code"] == "sources-unread" for b in blocking):
        tail.append("general cohorts not judged (sources not read)")
    later = "; ".join(tail)
    if not changes:
        if codes:
            return "nothing will change yet: " + ", ".join(codes) + (f"; {later}" if later else "")
        return f"nothing yet: {later}" if later else "nothing: already as declared"
    head = f"the next apply will make {len(changes)} change(s) for this person"
    if "failsafe" in codes:
        head += ", but it is blocked by a failsafe"
    elif codes:
        head += " (held: " + ", ".join(codes) + ")"
    return head + (f"; {later}" if later else "")
