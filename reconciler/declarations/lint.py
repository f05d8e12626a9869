"""Rules that need the whole declaration set (after each file passed its schema).

Each rule is one function ``(decls, today) -> diagnostics`` with its own rule id;
``RULES`` lists them for the README and the tests.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from pathlib import PurePath

from ..paramtext import markup_problem, safe_text
from ..settings import PlatformSettings
from .diagnostics import Diagnostic, Severity
from .loader import DeclarationSet, Location, ManualCohort, SyncDeclaration
from .owners import owner_rules
from .patterns import pattern_rules
from .reviews import review_rules
from .suggest import did_you_mean
from .windows import grace_rules

# Moodle's PARAM_USERNAME without extended characters: lower case, digits, _ - . @
USERNAME = re.compile(r"^[a-z0-9_.@-]+$")

Rule = Callable[[DeclarationSet, dt.date], Iterable[Diagnostic]]

# Characters a course shortname may have and a file name may not (/ on every system, the rest
# on Windows, where people clone this repository too).
UNSAFE_IN_FILE_NAMES = '/ \\ : * ? " < > |'
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f]')


def course_file_stem(shortname: str) -> str:
    """The name (without ``.yaml``) of the sync file of a course: its shortname, each
    character a file name cannot hold written ``_`` (``HIST/L1/MOD-S1`` -> ``HIST_L1_MOD-S1``).
    The file's ``course:`` key stays the real shortname and is what the reconciler uses."""
    return _UNSAFE.sub("_", shortname)


def _diag(
    loc: Location, severity: Severity, rule: str, message: str, line: int | None = None
) -> Diagnostic:
    return Diagnostic(
        loc.file, line or loc.line, loc.column if line is None else 1, severity, rule, message
    )


def _platform(decls: DeclarationSet, name: str) -> PlatformSettings | None:
    return decls.settings.platforms.get(name) if decls.settings else None


def duplicate_idnumbers(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    seen: dict[tuple[str, str], ManualCohort] = {}
    for cohort in sorted(decls.cohorts, key=lambda c: c.location.file):
        key = (cohort.platform, cohort.idnumber)
        first = seen.setdefault(key, cohort)
        if first is not cohort:
            yield _diag(
                cohort.location,
                "error",
                "duplicate-idnumber",
                f"idnumber {cohort.idnumber!r} is already declared in {first.location}",
            )


def file_names(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    for cohort in decls.cohorts:
        stem = PurePath(cohort.location.file).stem
        if stem != cohort.idnumber:
            yield _diag(
                cohort.location,
                "error",
                "file-name",
                f"file name {stem!r} must equal the idnumber {cohort.idnumber!r} "
                f"(a copied file: change its idnumber to {stem!r}; else rename the file to "
                f"{cohort.idnumber}.yaml)",
            )
    reported: set[str] = set()
    for sync in [*decls.syncs, *decls.exclusions]:  # a file may only exclude patterns
        stem = PurePath(sync.location.file).stem
        safe = course_file_stem(sync.course)
        if stem not in (sync.course, safe) and sync.location.file not in reported:
            reported.add(sync.location.file)
            written = "" if safe == sync.course else f", each {UNSAFE_IN_FILE_NAMES} as _"
            yield Diagnostic(
                sync.location.file,
                1,
                1,
                "error",
                "file-name",
                f"file name {stem!r} must be the course {sync.course!r}{written} "
                f"(rename the file to {safe}.yaml)",
            )


def managed_prefix(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    for cohort in decls.cohorts:
        platform = _platform(decls, cohort.platform)
        if platform is None:
            continue
        prefix = platform.manual_idnumber_prefix
        general = platform.general_cohorts
        if not cohort.idnumber.startswith(prefix) and not cohort.adopt:
            yield _diag(
                cohort.location,
                "error",
                "idnumber-prefix",
                f"manual cohort idnumber {cohort.idnumber!r} must start with {prefix!r}, "
                "the managed prefix of this platform (or say adopt: true to take over an "
                "existing cohort with this idnumber as it is)",
            )
        elif general.enabled and general.idnumber_regex().match(cohort.idnumber):
            yield _diag(
                cohort.location,
                "error",
                "idnumber-prefix",
                f"idnumber {cohort.idnumber!r} collides with the general-cohort pattern "
                f"{general.idnumber_template!r}",
            )


def _looks_general(decls: DeclarationSet, idnumber: str) -> bool:
    assert decls.settings is not None
    return any(
        p.general_cohorts.idnumber_regex().match(idnumber)
        for p in decls.settings.platforms.values()
    )


def cohort_references(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    if decls.settings is None:
        return
    declared = {(c.platform, c.idnumber) for c in decls.cohorts}
    for sync in decls.all_syncs():
        platform = _platform(decls, sync.platform)
        if platform is None or (sync.platform, sync.cohort) in declared:
            continue
        general = platform.general_cohorts
        if general.enabled and general.idnumber_regex().match(sync.cohort):
            continue
        if not general.enabled and _looks_general(decls, sync.cohort):
            yield _diag(
                sync.location,
                "error",
                "general-cohort-unavailable",
                f"{sync.cohort!r} is a general cohort, but platform {sync.platform!r} "
                "has no general cohorts",
            )
        else:
            yield _diag(
                sync.location,
                "error",
                "unknown-cohort",
                f"cohort {sync.cohort!r} is neither a manual cohort declared for "
                f"{sync.platform!r} nor a general cohort this platform can have"
                + did_you_mean(
                    sync.cohort,
                    [idnumber for platform, idnumber in declared if platform == sync.platform],
                ),
            )


def roles(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    for sync in decls.all_syncs():
        platform = _platform(decls, sync.platform)
        if platform is not None and sync.role not in platform.roles:
            yield _diag(
                sync.location,
                "error",
                "unknown-role",
                f"unknown role {sync.role!r}{did_you_mean(sync.role, platform.roles)} "
                f"(known: {', '.join(sorted(platform.roles))})",
            )


def expiry(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    items: list[ManualCohort | SyncDeclaration] = [*decls.cohorts, *decls.all_syncs()]
    for item in items:
        if item.expires is not None and today > item.expires:
            yield _diag(
                item.location,
                "warning",
                "expired",
                f"expired on {item.expires.isoformat()}, the next apply removes it; "
                "delete the entry",
            )


def temporary_length(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    for sync in decls.all_syncs():
        platform = _platform(decls, sync.platform)
        if platform is None or sync.expires is None:
            continue
        days = (sync.expires - today).days
        limit = platform.sync_policy.max_temporary_days
        if days > limit:
            yield _diag(
                sync.location,
                "error",
                "sync-too-long",
                f"temporary sync lasts {days} days (until {sync.expires.isoformat()}); "
                f"{sync.platform} allows at most {limit}",
            )


def sync_policy(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    for sync in decls.all_syncs():
        platform = _platform(decls, sync.platform)
        if platform is None:
            continue
        if sync.method == "manual" and sync.expires is None:
            yield _diag(
                sync.location,
                "error",
                "manual-needs-expires",
                "method: manual enrols each member with an end date; give 'expires'",
            )
        if sync.method != "cohort":
            continue
        policy = platform.sync_policy.cohort_sync
        if policy == "forbidden":
            yield _diag(
                sync.location,
                "error",
                "cohort-sync-forbidden",
                f"cohort sync is forbidden on {sync.platform}; use method: manual with expires",
            )
        elif policy == "discouraged":
            yield _diag(
                sync.location,
                "warning",
                "cohort-sync-discouraged",
                f"cohort sync is discouraged on {sync.platform}; prefer method: manual "
                "with an expires date",
            )


def duplicate_members(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    for cohort in decls.cohorts:
        first_line: dict[str, int] = {}
        for member, line in zip(cohort.members, cohort.member_lines, strict=True):
            if member in first_line:
                yield _diag(
                    cohort.location,
                    "error",
                    "duplicate-member",
                    f"member {member!r} is listed twice (first on line {first_line[member]})",
                    line=line,
                )
            else:
                first_line[member] = line


def duplicate_syncs(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    seen: dict[tuple[str, str, str, str], SyncDeclaration] = {}
    for sync in decls.all_syncs():
        key = (sync.platform, sync.course, sync.cohort, sync.role)
        first = seen.setdefault(key, sync)
        if first is not sync:
            yield _diag(
                sync.location,
                "error",
                "duplicate-sync",
                f"course {sync.course!r} already syncs cohort {sync.cohort!r} with role "
                f"{sync.role!r} at {first.location}",
            )


def usernames(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    for cohort in decls.cohorts:
        for member, line in zip(cohort.members, cohort.member_lines, strict=True):
            if not USERNAME.match(member):
                why = (
                    "Moodle usernames are lower case"
                    if member.lower() != member
                    else "allowed characters are a-z 0-9 _ - . @"
                )
                yield _diag(
                    cohort.location,
                    "error",
                    "malformed-username",
                    f"malformed username {member!r}: {why}",
                    line=line,
                )


def markup_in_names(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    """Names Moodle must give back unchanged (its PARAM_TEXT strips what looks like HTML):
    a cohort's name (a synced cohort so named makes local_ws_enrolcohort fail for the whole
    platform, issue 10) and a sync's group name (core_group_create_groups refuses it)."""
    for cohort in decls.cohorts:
        problem = markup_problem(cohort.name)
        if problem:
            yield _at(cohort.name_location or cohort.location, "markup-in-name",
                      f"cohort name {cohort.name!r}: {problem}; once synced into a course it "
                      "would make local_ws_enrolcohort fail for the whole platform. Write it "
                      f"without '<' (for example {safe_text(cohort.name)!r})")
    for sync in decls.all_syncs():  # the course patterns' entries name groups too
        problem = markup_problem(sync.group) if sync.group else None
        if problem:
            yield _at(sync.group_location or sync.location, "markup-in-name",
                      f"group name {sync.group!r}: {problem}; Moodle refuses such a group "
                      f"name. Write it without '<' (for example {safe_text(sync.group or '')!r})")


def _at(loc: Location, rule: str, message: str) -> Diagnostic:
    return Diagnostic(loc.file, loc.line, loc.column, "error", rule, message)


RULES: dict[str, Rule] = {
    "duplicate-idnumber": duplicate_idnumbers,
    "file-name": file_names,
    "idnumber-prefix": managed_prefix,
    "unknown-cohort / general-cohort-unavailable": cohort_references,
    "unknown-role": roles,
    "expired": expiry,
    "sync-too-long": temporary_length,
    "cohort-sync-forbidden / cohort-sync-discouraged / manual-needs-expires": sync_policy,
    "duplicate-member": duplicate_members,
    "duplicate-sync": duplicate_syncs,
    "malformed-username": usernames,
    "markup-in-name": markup_in_names,
    "grace-too-long / grace-not-general / grace-shared": grace_rules,
    "pattern-too-broad / unknown-pattern / exclude-pattern-no-effect": pattern_rules,
    "review-due / review-overdue / reviewed-future / review-with-expires": review_rules,
    "owner-format": owner_rules,
}


# Rules whose breach leaves no well-defined desired state: a role without an id, a manual
# sync without an end date, two files for one cohort or one sync. ``plan`` and ``apply``
# refuse declarations that break them, as ``validate`` does; the other rules are policy
# checked when a change is proposed (some of them against the day: sync-too-long).
PLAN_BLOCKING = frozenset(
    {"unknown-role", "manual-needs-expires", "duplicate-idnumber", "duplicate-sync"}
)


def plan_blocking(decls: DeclarationSet, today: dt.date) -> list[Diagnostic]:
    """The errors of the PLAN_BLOCKING rules in ``decls`` (``[]`` when none): what the
    planner cannot work from."""
    return [d for d in lint(decls, today) if d.rule in PLAN_BLOCKING and d.severity == "error"]


def lint(decls: DeclarationSet, today: dt.date) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for rule in RULES.values():
        out.extend(rule(decls, today))
    return out
