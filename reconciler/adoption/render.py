"""Text, Markdown and JSON renderings of the import result and of the audit report."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from .audit import AuditedCohort, AuditedSync, AuditReport
from .importer import Finding, ImportResult

AUDIT_FORMAT_VERSION = 1
SHOWN_FINDINGS = 20
KIND_NAMES = {"general": "general cohort", "manual": "manual cohort", "foreign": "foreign cohort"}

FINDING_TITLES = {
    "general-cohort": "General cohorts: computed nightly, not declared",
    "outside-prefix": "Outside the managed prefix (--adopt-outside-prefix imports them as is)",
    "no-idnumber": "Cohorts without an idnumber",
    "duplicate-idnumber": "Idnumbers several cohorts share",
    "bad-idnumber": "Idnumbers that cannot name a file",
    "category-context": "Cohorts in a course category's context",
    "context-unknown": "Cohorts whose context could not be read",
    "member-without-username": "Cohorts with members Moodle gives no username for",
    "undeclarable-username": "Cohorts with usernames the declarations cannot hold",
    "reconciler-owned": "The reconciler's own, no longer declared (the plan retires them)",
    "disabled-instance": "Disabled instances",
    "duplicate-instance": "Duplicated instances (same course, cohort and role)",
    "unresolved-instance": "Instances Moodle does not fully describe",
    "cohort-not-imported": "Syncs of a cohort that is not declared nor imported",
    "cohort-sync-forbidden": "Cohort syncs where the platform forbids them",
    "bad-course": "Courses whose shortname cannot name a file",
    "file-exists": "Files that exist already (kept)",
    "plugin-missing": "Cohort-sync instances not readable",
}


# -- import --------------------------------------------------------------------------------


def import_summary(result: ImportResult) -> str:
    """One line: files written and kept, cohorts already declared, findings."""
    cohorts = sum(1 for p in result.written if p.parts[1] == "cohorts")
    syncs = len(result.written) - cohorts
    return (
        f"Import from {result.platform}: {cohorts} cohort file(s) and {syncs} syncs file(s) "
        f"written, {len(result.kept)} kept, {result.already_declared} cohort(s) already "
        f"declared, {len(result.findings)} finding(s) reported."
    )


def _abbreviated(items: list[str], shown: int = SHOWN_FINDINGS) -> str:
    head = ", ".join(items[:shown])
    more = len(items) - shown
    return head if more <= 0 else f"{head} … and {more} more (--format json lists all)"


def render_import_text(result: ImportResult) -> str:
    """The summary, the files written, then the findings grouped by kind (long lists cut;
    ``render_import_json`` has everything)."""
    out = [import_summary(result)]
    if result.written:
        out += ["", f"Written ({len(result.written)}):"]
        out += [f"  {p}" for p in result.written[:SHOWN_FINDINGS]]
        if len(result.written) > SHOWN_FINDINGS:
            out.append(f"  … and {len(result.written) - SHOWN_FINDINGS} more")
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in result.findings:
        grouped[finding.kind].append(finding)
    if grouped:
        out += ["", "Reported, not imported:"]
    for kind, items in grouped.items():
        out.append(f"  {FINDING_TITLES.get(kind, kind)} ({len(items)}):")
        messages = {f.message for f in items}
        if len(messages) == 1 and len(items) > 1:  # one explanation, many targets
            out.append(f"    {messages.pop()}:")
            out.append(f"    {_abbreviated([f.target for f in items])}")
            continue
        out += [f"    {f.target}: {f.message}" for f in items[:SHOWN_FINDINGS]]
        if len(items) > SHOWN_FINDINGS:
            out.append(f"    … and {len(items) - SHOWN_FINDINGS} more (--format json lists all)")
    if result.written:
        out += [
            "",
            "Next: run `reconcile validate`, then `reconcile plan`: it should only adopt "
            "(marker written on cohorts, instances renamed). Review and merge.",
        ]
    return "\n".join(out)


def render_import_json(result: ImportResult) -> str:
    """``{platform, written, kept, already_declared, findings: [{kind, target, message}]}``;
    paths are relative to the declarations root."""
    return json.dumps(
        {
            "platform": result.platform,
            "written": [str(p) for p in result.written],
            "kept": [str(p) for p in result.kept],
            "already_declared": result.already_declared,
            "findings": [asdict(f) for f in result.findings],
        },
        ensure_ascii=False,
        indent=2,
    )


# -- audit ---------------------------------------------------------------------------------


def audit_summary(report: AuditReport) -> str:
    """One line: undeclared instances (enabled, over the limit) and cohorts."""
    enabled = sum(1 for s in report.syncs if s.enabled)
    cohorts = sum(1 for c in report.cohorts if not c.declared)
    return (
        f"Audit of {report.platform} on {report.today.isoformat()}: {len(report.syncs)} "
        f"undeclared cohort-sync instance(s) ({enabled} enabled, {len(report.over_limit)} over "
        f"the limit), {cohorts} undeclared cohort(s)."
    )


def _policy(report: AuditReport) -> str:
    if report.cohort_sync_policy == "forbidden":
        return (
            f"Policy: cohort sync is forbidden on {report.platform}: every enabled undeclared "
            "sync is over the limit."
        )
    extra = " and discouraged (prefer method: manual)" if report.cohort_sync_policy == (
        "discouraged"
    ) else ""
    return (
        f"Policy: an undeclared cohort sync is temporary at most{extra}: over the limit after "
        f"{report.max_temporary_days} days (max_temporary_days)."
    )


def _tracking(report: AuditReport) -> str:
    return (
        f"Ages count from the first audit, on {report.tracking_since.isoformat()}: what was "
        "there that night is \"present before\" it."
    )


def _users(s: AuditedSync) -> str:
    if s.users is None:
        return "users unknown"
    return f"{s.users} user{'s' * (s.users != 1)}" if s.enabled else "0 active users"


def _teachers(s: AuditedSync) -> str:
    if s.teachers is None:
        return "teachers unknown"
    if not s.teachers:
        return "no editing teacher"
    return "teachers: " + ", ".join(
        f"{t.fullname} <{t.email}>" if t.email else t.fullname for t in s.teachers
    )


def _sync_line(s: AuditedSync, course: bool = True) -> str:
    where = f"{s.course}: " if course else ""
    name = f" {s.name!r}" if s.name else ""
    group = f", group {s.group!r}" if s.group else ""
    kind = KIND_NAMES.get(s.cohort_kind, s.cohort_kind)
    status = "enabled" if s.enabled else "disabled"
    return (
        f"{where}instance {s.id}{name}: {s.cohort} ({kind}) as {s.role}{group}; {status}, "
        f"{_users(s)}, {s.age.describe()}"
    )


def _cohort_line(c: AuditedCohort) -> str:
    kind = KIND_NAMES.get(c.kind, c.kind)
    if c.declared:
        return f"{c.idnumber} {c.name!r} ({kind}, the repository's)"
    marker = ", no marker" if c.look_alike else ""
    members = "members unknown" if c.members is None else f"{c.members} members"
    age = f", {c.age.describe()}" if c.age else ""
    ident = c.idnumber or f"(no idnumber, id {c.id})"
    return f"{ident} {c.name!r} ({kind}{marker}, {c.context} context): {members}{age}"


def render_audit_text(report: AuditReport) -> str:
    """Summary, policy, notes, then the syncs over the limit, by course, by cohort."""
    out = [audit_summary(report), _policy(report), _tracking(report)]
    out += [f"note: {n}" for n in report.notes]
    over = report.over_limit
    if over:
        out += ["", f"Over the limit ({len(over)}):"]
        for s in over:
            out.append(f"  {_sync_line(s)}")
            out.append(f"    {s.why}; {_teachers(s)}")
    by_course: dict[str, list[AuditedSync]] = defaultdict(list)
    for s in report.syncs:
        by_course[s.course].append(s)
    if by_course:
        out += ["", "By course:"]
        for course, syncs in sorted(by_course.items()):
            out.append(f"  {course}")
            out += [f"    {'!' if s.over_limit else '-'} {_sync_line(s, False)}" for s in syncs]
    if report.cohorts:
        out += ["", "By cohort:"]
        syncs_by_id = {s.id: s for s in report.syncs}
        for c in report.cohorts:
            out.append(f"  {_cohort_line(c)}")
            for i in c.used_by:
                s = syncs_by_id[i]
                out.append(f"    synced in {s.course} (instance {i}, {s.role})")
    if not report.syncs and not report.cohorts:
        out += ["", "Everything on the platform is declared."]
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_audit_markdown(report: AuditReport) -> str:
    """The text report's sections as Markdown tables (the nightly artifact)."""
    out = [f"### {_md(audit_summary(report))}", "", _policy(report), "", _tracking(report)]
    out += ["", *[f"> note: {_md(n)}" for n in report.notes]] if report.notes else []
    over = report.over_limit
    if over:
        out += [
            "",
            f"#### Over the limit ({len(over)})",
            "",
            "| course | instance | cohort | role | group | users | seen | why | teachers |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in over:
            out.append(
                f"| {_md(s.course)} | {s.id} {_md(repr(s.name)) if s.name else ''} | "
                f"{_md(s.cohort)} ({KIND_NAMES.get(s.cohort_kind, s.cohort_kind)}) | {s.role} | "
                f"{_md(s.group)} | {_users(s)} | {s.age.describe()} | {_md(s.why)} | "
                f"{_md(_teachers(s))} |"
            )
    if report.syncs:
        out += [
            "",
            "#### By course",
            "",
            "| course | instance | cohort | role | group | status | users | seen |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in report.syncs:
            status = "enabled" if s.enabled else "disabled"
            flag = " **over the limit**" if s.over_limit else ""
            out.append(
                f"| {_md(s.course)} | {s.id} {_md(repr(s.name)) if s.name else ''} | "
                f"{_md(s.cohort)} ({KIND_NAMES.get(s.cohort_kind, s.cohort_kind)}) | {s.role} | "
                f"{_md(s.group)} | {status}{flag} | {_users(s)} | {s.age.describe()} |"
            )
    if report.cohorts:
        out += [
            "",
            "#### By cohort",
            "",
            "| cohort | name | kind | context | members | seen | synced in |",
            "|---|---|---|---|---|---|---|",
        ]
        syncs_by_id = {s.id: s for s in report.syncs}
        for c in report.cohorts:
            kind = KIND_NAMES.get(c.kind, c.kind) + (
                " (the repository's)" if c.declared else " (no marker)" if c.look_alike else ""
            )
            members = "?" if c.members is None else str(c.members)
            seen = c.age.describe() if c.age else ""
            used = ", ".join(f"{_md(syncs_by_id[i].course)} ({i})" for i in c.used_by)
            out.append(
                f"| {_md(c.idnumber) or f'(none, id {c.id})'} | {_md(c.name)} | {kind} | "
                f"{c.context} | {members} | {seen} | {used} |"
            )
    if not report.syncs and not report.cohorts:
        out += ["", "Everything on the platform is declared."]
    return "\n".join(out)


def _age(age: Any) -> dict[str, Any] | None:
    if age is None:
        return None
    return {
        "first_seen": age.first_seen.isoformat(),
        "present_before": age.present_before,
        "days": age.days,
    }


def render_audit_json(report: AuditReport) -> str:
    """Everything, for machines: ``format_version``, ``platform``, ``today``,
    ``tracking_since``, ``policy``, ``summary``, ``notes``, ``over_limit`` (instance ids, the
    oldest first), ``instances`` and ``cohorts`` (each with ``age``: ``first_seen``,
    ``present_before``, ``days``; dates ISO, days in Europe/Paris)."""
    def sync(s: AuditedSync) -> dict[str, Any]:
        d = asdict(s)
        d["age"] = _age(s.age)
        return d

    def cohort(c: AuditedCohort) -> dict[str, Any]:
        d = asdict(c)
        d["age"] = _age(c.age)
        return d

    doc = {
        "format_version": AUDIT_FORMAT_VERSION,
        "platform": report.platform,
        "today": report.today.isoformat(),
        "tracking_since": report.tracking_since.isoformat(),
        "policy": {
            "cohort_sync": report.cohort_sync_policy,
            "max_temporary_days": report.max_temporary_days,
        },
        "summary": {
            "instances": len(report.syncs),
            "enabled": sum(1 for s in report.syncs if s.enabled),
            "over_limit": len(report.over_limit),
            "cohorts": sum(1 for c in report.cohorts if not c.declared),
        },
        "notes": report.notes,
        "over_limit": [s.id for s in report.over_limit],
        "instances": [sync(s) for s in report.syncs],
        "cohorts": [cohort(c) for c in report.cohorts],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)
