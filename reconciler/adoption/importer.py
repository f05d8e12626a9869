"""``reconcile import``: declarations for what a platform already holds.

From one :func:`~.inventory.read_inventory` pass it writes one manual-cohort file per
selected cohort (members as usernames, ``adopt: true``, ``owners: []`` with a comment asking
for one) and one syncs file per course with its cohort-sync instances (role, group,
``adopt: true``, the instance's Moodle name kept in a comment and in the reason), so that
the first plan after the merge only adopts: it writes the marker into the cohorts'
descriptions and renames the instances. It never writes to Moodle, never guesses, and never
overwrites a file unless told to (``force``).

What it reports instead of writing (one finding each): a cohort whose idnumber is outside
the managed prefix (imported as it is only with ``adopt_outside_prefix``) or empty, that
several cohorts share, that cannot name a file, in a course category's context, whose
members include users without a username Moodle gives or with one the declarations cannot
hold; a disabled, duplicated or unresolvable instance; a sync whose cohort is not imported;
cohort sync where the platform forbids it. General cohorts (the template) only get a note:
they are computed nightly, not declared.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from ..declarations import yamltext
from ..declarations.layout import schema_hint
from ..declarations.lint import USERNAME
from ..declarations.loader import DeclarationSet, SyncDeclaration
from ..paramtext import safe_text
from ..planning.state import COHORT_MARKER
from .inventory import Inventory, PlatformCohort, PlatformSync

# The manual-cohort schema's idnumber (a file name, too).
DECLARABLE_IDNUMBER = re.compile(r"^[A-Za-z0-9._-]{1,100}$")

FindingKind = Literal[
    "general-cohort",
    "outside-prefix",
    "no-idnumber",
    "duplicate-idnumber",
    "bad-idnumber",
    "category-context",
    "context-unknown",
    "member-without-username",
    "undeclarable-username",
    "reconciler-owned",
    "disabled-instance",
    "duplicate-instance",
    "unresolved-instance",
    "cohort-not-imported",
    "cohort-sync-forbidden",
    "bad-course",
    "file-exists",
    "plugin-missing",
]


@dataclass(frozen=True)
class ImportOptions:
    """What to import. Patterns are shell-style, case-sensitive: ``cohorts`` against cohort
    idnumbers, ``courses`` against course shortnames. ``adopt_outside_prefix`` also imports
    cohorts whose idnumber is outside the managed prefix, keeping that idnumber (the file
    says ``adopt: true``; such a cohort is managed only while declared, and never created or
    deleted). ``force`` replaces files that already exist."""

    cohorts: str = "*"
    courses: str = "*"
    adopt_outside_prefix: bool = False
    force: bool = False


@dataclass(frozen=True)
class Finding:
    """Something import saw and did not turn into a declaration: ``target`` is a cohort
    idnumber (or ``#<id>``), a course shortname or an instance; ``message`` one line."""

    kind: FindingKind
    target: str
    message: str


@dataclass(frozen=True)
class DeclarationFile:
    """One file to write: ``path`` relative to the declarations root (``<platform>/...``)."""

    path: Path
    text: str
    kind: Literal["cohort", "syncs"]
    entries: int


@dataclass
class ImportResult:
    """The files to write and everything reported instead; ``written`` and ``kept`` are
    filled in by :func:`write_files` (paths relative to the declarations root)."""

    platform: str
    files: list[DeclarationFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    already_declared: int = 0
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def report(self, kind: FindingKind, target: str, message: str) -> None:
        """Record one finding."""
        self.findings.append(Finding(kind, target, message))

    def counts(self) -> Counter[str]:
        """Findings by kind."""
        return Counter(f.kind for f in self.findings)


def build_import(
    inventory: Inventory,
    decls: DeclarationSet,
    options: ImportOptions,
    today: dt.date,
) -> ImportResult:
    """The declaration files for ``inventory`` (a pure function: no I/O).

    Takes the platform as read and the repository's declarations; returns the files (their
    text) and the findings, in a stable order (cohorts by idnumber, courses by shortname).
    """
    platform = inventory.platform
    result = ImportResult(platform=platform.name)
    if not inventory.plugin_available:
        result.report(
            "plugin-missing",
            platform.name,
            "the token's service cannot list cohort-sync instances "
            "(local_ws_enrolcohort_get_instances): cohort syncs not imported",
        )

    available = {c.idnumber for c in decls.cohorts_of(platform.name)}
    imported: dict[int, PlatformCohort] = {}
    for cohort in sorted(inventory.cohorts, key=lambda c: (c.idnumber, c.id)):
        if not fnmatchcase(cohort.idnumber, options.cohorts):
            continue
        if cohort.declared or (cohort.kind == "general" and cohort.owned):
            result.already_declared += 1  # a file, or the general-cohort template
            continue
        why = _not_importable(cohort, inventory, options)
        if why is not None:
            kind, message = why
            result.report(kind, cohort.idnumber or f"#{cohort.id}", message)
            continue
        imported[cohort.id] = cohort
        result.files.append(_cohort_file(cohort, inventory, today))
    available |= {c.idnumber for c in imported.values()}
    _syncs(inventory, decls, options, today, available, result)
    return result


def _not_importable(
    cohort: PlatformCohort, inventory: Inventory, options: ImportOptions
) -> tuple[FindingKind, str] | None:
    """Why ``cohort`` gets a finding instead of a file, or None when it can be declared."""
    platform = inventory.platform
    prefix = platform.manual_idnumber_prefix
    if cohort.kind == "general":
        return (
            "general-cohort",
            f"matches the general-cohort template {platform.general_cohorts.idnumber_template!r}: "
            "computed nightly from APOGÉE and the directory, not declared",
        )
    if cohort.owned:
        return (
            "reconciler-owned",
            "carries the reconciler's marker but no file declares it: the plan retires it; "
            "restore its file from git history to keep it",
        )
    if not cohort.idnumber:
        return (
            "no-idnumber",
            f"cohort {cohort.name!r} (id {cohort.id}) has no idnumber: give it one in Moodle "
            f"(starting with {prefix!r}), then import again",
        )
    if cohort.kind == "foreign" and not options.adopt_outside_prefix:
        return (
            "outside-prefix",
            f"idnumber outside the managed prefix {prefix!r}: skipped (--adopt-outside-prefix "
            "imports it as it is, or give it the prefix in Moodle)",
        )
    if cohort.idnumber in inventory.duplicate_idnumbers:
        return ("duplicate-idnumber", "several Moodle cohorts share this idnumber: make it unique")
    if not DECLARABLE_IDNUMBER.match(cohort.idnumber):
        return (
            "bad-idnumber",
            "this idnumber cannot name a declaration file (letters, digits, . _ - only, "
            "at most 100): change it in Moodle, then import again",
        )
    if cohort.context == "category":
        return (
            "category-context",
            "lives in a course category's context, which the web services cannot name: "
            "declare it by hand with its category",
        )
    if cohort.context == "unknown":
        return (
            "context-unknown",
            "its context could not be read (the token's service lacks "
            "core_cohort_search_cohorts): not imported",
        )
    assert cohort.members is not None  # selected cohorts have their members read
    unnamed = sorted(u for u in cohort.members if u not in inventory.usernames)
    if unnamed:
        return (
            "member-without-username",
            f"{len(unnamed)} member(s) have no username Moodle gives (user ids "
            f"{', '.join(map(str, unnamed[:10]))}): not imported",
        )
    odd = sorted(
        name for u in cohort.members if not USERNAME.match(name := inventory.usernames[u])
    )
    if odd:
        return (
            "undeclarable-username",
            f"member username(s) the declarations cannot hold ({', '.join(map(repr, odd[:5]))}): "
            "not imported",
        )
    return None


def _cohort_file(cohort: PlatformCohort, inventory: Inventory, today: dt.date) -> DeclarationFile:
    platform = inventory.platform
    assert cohort.members is not None
    members = sorted(inventory.usernames[u] for u in cohort.members)
    head = (
        f"Imported from Moodle ({platform.name}, cohort id {cohort.id}) on {today.isoformat()} "
        "by `reconcile import`.\n"
        "adopt: true takes the cohort over as it is (the reconciler's marker is added to its\n"
        "description); from then on its members follow this file."
    )
    if cohort.kind == "foreign":
        head += (
            f"\nIts idnumber is outside the managed prefix {platform.manual_idnumber_prefix!r}: "
            "the reconciler manages it\nonly while this file declares it with adopt: true, "
            "and never deletes it."
        )
    name = safe_text(cohort.name)
    if name != cohort.name:
        head += (
            f"\nMoodle names it {cohort.name!r}, which its PARAM_TEXT takes for HTML markup "
            "(once synced, such a cohort\nbreaks local_ws_enrolcohort for the whole platform): "
            "declared in its safe form, the plan renames it."
        )
    fields: dict[str, object] = {"idnumber": cohort.idnumber, "name": name}
    description = cohort.description.replace(COHORT_MARKER, "").strip()
    if description:
        fields["description"] = description
    if not cohort.visible:
        fields["visible"] = False
    text = schema_hint("cohort") + "\n" + yamltext.comment(head) + yamltext.mapping(fields)
    text += yamltext.entry(
        "owners", [], "who answers for this cohort? add at least one (told before it expires)"
    )
    text += yamltext.entry("adopt", True)
    text += yamltext.entry("members", members, "Moodle usernames, lower case")
    return DeclarationFile(
        Path(platform.name) / "cohorts" / f"{cohort.idnumber}.yaml", text, "cohort", 1
    )


def _syncs(
    inventory: Inventory,
    decls: DeclarationSet,
    options: ImportOptions,
    today: dt.date,
    available: set[str],
    result: ImportResult,
) -> None:
    platform = inventory.platform
    general = platform.general_cohorts
    keys = Counter(
        (s.instance.courseid, s.instance.cohortid, s.instance.roleid) for s in inventory.syncs
    )
    entries: dict[str, list[PlatformSync]] = defaultdict(list)
    disabled: dict[str, list[PlatformSync]] = defaultdict(list)
    for sync in sorted(inventory.syncs, key=lambda s: (s.course, s.instance.id)):
        inst = sync.instance
        where = f"{sync.course or '#' + str(inst.courseid)}: instance {inst.id}"
        if not sync.course:
            result.report(
                "unresolved-instance", where, "its course is not listed by Moodle: not imported"
            )
            continue
        if not fnmatchcase(sync.course, options.courses) or sync.declared:
            continue
        if sync.owned:
            result.report(
                "reconciler-owned",
                where,
                "a sync the reconciler made that no file declares any more: the plan retires it",
            )
            continue
        what = _describe(sync)
        if not sync.enabled:
            result.report(
                "disabled-instance",
                where,
                f"{what} is disabled in Moodle: not imported (declaring it would enable it)",
            )
            disabled[sync.course].append(sync)
            continue
        if keys[(inst.courseid, inst.cohortid, inst.roleid)] > 1:
            result.report(
                "duplicate-instance",
                where,
                f"{what}: the course has several instances of this cohort and role; "
                "keep one in Moodle, then import again",
            )
            continue
        problem = _sync_problem(sync, available, general.enabled, general.idnumber_regex())
        if problem is not None:
            kind, message = problem
            result.report(kind, where, f"{what}: {message}")
            continue
        if platform.sync_policy.cohort_sync == "forbidden":
            result.report(
                "cohort-sync-forbidden",
                where,
                f"{what}: cohort sync is forbidden on {platform.name}; not declared "
                "(`reconcile audit` lists it)",
            )
            continue
        entries[sync.course].append(sync)

    declared: dict[str, list[SyncDeclaration]] = defaultdict(list)
    for decl in decls.syncs_of(platform.name):
        declared[decl.course].append(decl)
    excluded: dict[str, list[str]] = defaultdict(list)
    for exclusion in decls.exclusions:
        if exclusion.platform == platform.name:
            excluded[exclusion.course].append(exclusion.pattern)
    for course in sorted(entries):
        if not DECLARABLE_COURSE.match(course):
            result.report(
                "bad-course",
                course,
                "this shortname cannot name a declaration file: its syncs are not imported",
            )
            continue
        result.files.append(
            _syncs_file(
                course, entries[course], disabled.get(course, []), declared.get(course, []),
                inventory, today, excluded.get(course, []),
            )
        )


# A course shortname that can be a file name on every system the repository lives on.
DECLARABLE_COURSE = re.compile(r"^[^/\\:*?\"<>|\x00-\x1f]{1,250}$")


def _describe(sync: PlatformSync) -> str:
    inst = sync.instance
    cohort = sync.cohort.idnumber if sync.cohort and sync.cohort.idnumber else f"#{inst.cohortid}"
    role = sync.role or f"role id {inst.roleid}"
    group = f", group {inst.group!r}" if inst.group else ""
    name = f" {inst.name!r}" if inst.name else ""
    return f"sync{name} of {cohort} as {role}{group}"


def _sync_problem(
    sync: PlatformSync, available: set[str], general: bool, pattern: re.Pattern[str]
) -> tuple[FindingKind, str] | None:
    inst = sync.instance
    if sync.cohort is None:
        return "unresolved-instance", "its cohort is not listed by Moodle"
    if sync.role is None:
        return "unresolved-instance", "its role id is not mapped in platforms.yaml (roles:)"
    if inst.groupid and not inst.group:
        return "unresolved-instance", f"Moodle does not name its group (id {inst.groupid})"
    idnumber = sync.cohort.idnumber
    if idnumber in available or (general and idnumber and pattern.match(idnumber)):
        return None
    return (
        "cohort-not-imported",
        f"its cohort {idnumber or '#' + str(sync.cohort.id)!s} is not declared nor imported "
        "(see that cohort's line)",
    )


def _syncs_file(
    course: str,
    syncs: list[PlatformSync],
    disabled: list[PlatformSync],
    declared: list[SyncDeclaration],
    inventory: Inventory,
    today: dt.date,
    excluded: list[str],
) -> DeclarationFile:
    platform = inventory.platform
    head = (
        f"Imported from Moodle ({platform.name}) on {today.isoformat()} by `reconcile import`.\n"
        "adopt: true takes each instance over as it is; the reconciler renames it\n"
        '"reconciler: <cohort> (<role>)" (its Moodle name is kept in the reason). Replace each\n'
        "reason with why the sync exists, and add expires: to a temporary one."
    )
    text = schema_hint("syncs") + "\n" + yamltext.comment(head)
    text += yamltext.entry("course", course)
    owners = sorted({o for d in declared for o in d.owners})
    if owners:
        text += yamltext.entry("owners", owners)
    else:
        text += yamltext.entry(
            "owners", [], "who answers for these syncs? add at least one (told before expiry)"
        )
    if excluded:  # what the file said of the course patterns, kept as it was
        text += yamltext.entry("exclude_patterns", excluded)
    text += "syncs:\n"
    for decl in declared:  # the entries the repository already declares, as declared
        text += yamltext.list_item(_declared_entry(decl))
    for sync in syncs:
        inst = sync.instance
        assert sync.cohort is not None and sync.role is not None
        label = f"instance {inst.id} " + (f'"{inst.name}"' if inst.name else "(unnamed)")
        item: dict[str, object] = {"cohort": sync.cohort.idnumber, "role": sync.role}
        if inst.group:
            # A name PARAM_TEXT would change (markup) is declared in its safe form.
            item["group"] = safe_text(inst.group)
        item["adopt"] = True
        item["reason"] = f"Made in Moodle before the reconciler as {label}; imported on {today}."
        text += yamltext.comment(f"Moodle {label}", 2) + yamltext.list_item(item)
    if disabled:
        lines = ["Disabled in Moodle, not imported (declaring one would enable it):"]
        lines += [f"  instance {s.instance.id}: {_describe(s)}" for s in disabled]
        text += yamltext.comment("\n".join(lines))
    return DeclarationFile(
        Path(platform.name) / "syncs" / f"{course}.yaml", text, "syncs", len(syncs)
    )


def _declared_entry(decl: SyncDeclaration) -> dict[str, object]:
    item: dict[str, object] = {"cohort": decl.cohort, "role": decl.role}
    if decl.group:
        item["group"] = decl.group
    if decl.method != "cohort":
        item["method"] = decl.method
    if decl.expires:
        item["expires"] = decl.expires.isoformat()
    if decl.adopt:
        item["adopt"] = True
    item["reason"] = decl.reason
    return item


def write_files(result: ImportResult, root: Path, force: bool) -> None:
    """Write ``result.files`` under ``root`` (the declarations root, e.g. ``cohorts/``).

    A file that exists is kept, with a ``file-exists`` finding naming what it would have
    added, unless ``force``. Fills ``result.written`` and ``result.kept``. Raises OSError.
    """
    for item in result.files:
        target = root / item.path
        if target.exists() and not force:
            result.kept.append(item.path)
            if item.kind == "cohort":
                why = "exists: not overwritten (--force replaces it with what Moodle has)"
            else:
                why = (
                    f"exists: not overwritten; {item.entries} imported sync(s) would be added "
                    "(--force rewrites it: the syncs it declares plus these, without its "
                    "comments)"
                )
            result.report("file-exists", str(item.path), why)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.text, encoding="utf-8")
        result.written.append(item.path)
