"""The declaration tree under ``cohorts/``: discovery, schema check, typed declarations.

Layout (``layout``)::

    cohorts/platforms.yaml
    cohorts/<platform>/cohorts/<idnumber>.yaml   one manual cohort
    cohorts/<platform>/syncs/<course>.yaml       the syncs of one course
    cohorts/<platform>/patterns/<name>.yaml      the same syncs for many courses

Loading never raises on bad input: every problem becomes a :class:`Diagnostic`, and a
file with errors contributes nothing to the declarations (so it cannot cause removals).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from .. import resources
from ..settings import TEMPLATES, Settings, settings_from_document, template_problem
from . import typed
from .diagnostics import Diagnostic, sort_diagnostics
from .layout import PLATFORMS_FILE, SCHEMA_OF, FileKind, classify, hint_problem
from .suggest import did_you_mean
from .windows import platform_window_diagnostics
from .yamlfile import YamlDocument, load_yaml_file, shorten

__all__ = ["PLATFORMS_FILE", "SCHEMA_OF", "FileKind", "classify"]

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ManualCohort:
    platform: str
    idnumber: str
    name: str
    owners: tuple[str, ...]
    members: tuple[str, ...]
    location: Location
    description: str = ""
    category: str | None = None
    visible: bool = True
    expires: dt.date | None = None
    adopt: bool = False
    member_lines: tuple[int, ...] = ()
    name_location: Location | None = None  # where ``name`` is written
    review_every: int | None = None  # days between two reviews of the members
    reviewed: dt.date | None = None  # the last review (a Paris day)
    reviewed_line: int = 0  # where ``reviewed`` is written (the line a review moves)

    @property
    def review_due(self) -> dt.date | None:
        """The day the next review of the members is due, or None (no ``review_every``)."""
        if self.review_every is None or self.reviewed is None:
            return None
        return self.reviewed + dt.timedelta(days=self.review_every)


@dataclass(frozen=True)
class SyncDeclaration:
    platform: str
    course: str
    cohort: str
    role: str
    reason: str
    location: Location
    method: Literal["cohort", "manual"] = "cohort"
    group: str | None = None
    expires: dt.date | None = None
    adopt: bool = False
    owners: tuple[str, ...] = ()
    group_location: Location | None = None  # where ``group`` is written
    grace_days: int | None = None  # general cohorts: days a leaver stays, for this course
    # The course pattern this entry belongs to (its ``course`` is then the pattern's label).
    pattern: str | None = None


@dataclass(frozen=True)
class CoursePattern:
    """``cohorts/<platform>/patterns/<name>.yaml``: the same syncs for every course whose
    shortname matches ``shortname`` (shell-style, case-sensitive) and/or that sits in the
    category whose idnumber is ``category`` (with its subcategories when ``subcategories``),
    except the shortnames matching ``exclude``. Which courses that is depends on Moodle:
    ``planning.patterns`` decides it at each plan."""

    platform: str
    name: str
    owners: tuple[str, ...]
    location: Location
    syncs: tuple[SyncDeclaration, ...]
    shortname: str | None = None
    category: str | None = None
    subcategories: bool = False
    exclude: tuple[str, ...] = ()
    description: str = ""

    @property
    def rule(self) -> str:
        """The courses it matches, in words: ``FOAD2-*``, ``category CAT-X (and subs)``."""
        parts = []
        if self.shortname is not None:
            parts.append(self.shortname)
        if self.category is not None:
            subs = " and its subcategories" if self.subcategories else ""
            parts.append(f"in category {self.category}{subs}")
        rule = " ".join(parts)
        if self.exclude:
            rule += f" except {', '.join(self.exclude)}"
        return rule


@dataclass(frozen=True)
class PatternExclusion:
    """A course's own file leaving a course pattern out (``exclude_patterns``)."""

    platform: str
    course: str
    pattern: str
    location: Location


@dataclass(frozen=True)
class FileOwners:
    """The ``owners:`` of one declaration file and the line they are written on."""

    owners: tuple[str, ...]
    line: int


@dataclass
class DeclarationSet:
    """Everything read from the tree, and what was wrong with it."""

    root: Path
    settings: Settings | None = None
    cohorts: list[ManualCohort] = field(default_factory=list)
    syncs: list[SyncDeclaration] = field(default_factory=list)
    patterns: list[CoursePattern] = field(default_factory=list)
    exclusions: list[PatternExclusion] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # ``schema-hint`` warnings: files whose first line is not their schema's modeline.
    # Reported for the files a merge request changes (``validate --changed-since``).
    hint_problems: list[Diagnostic] = field(default_factory=list)
    # Each loaded file's owners (CODEOWNERS), platforms.yaml's included; files without errors.
    file_owners: dict[str, FileOwners] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    unknown_platform_files: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def error_summary(self, more: Iterable[Diagnostic] = ()) -> str:
        """The first error (file order) of the loader's diagnostics and ``more`` (lint's)
        as one ``file:line:column: rule: message`` line, with how many more there are;
        ``""`` when there is none."""
        errors = sort_diagnostics(
            d for d in (*self.diagnostics, *more) if d.severity == "error"
        )
        if not errors:
            return ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return errors[0].text() + more

    def cohorts_of(self, platform: str) -> list[ManualCohort]:
        return [c for c in self.cohorts if c.platform == platform]

    def syncs_of(self, platform: str) -> list[SyncDeclaration]:
        """The syncs the course files of ``platform`` declare (not the patterns')."""
        return [s for s in self.syncs if s.platform == platform]

    def patterns_of(self, platform: str) -> list[CoursePattern]:
        return [p for p in self.patterns if p.platform == platform]

    def all_syncs(self) -> list[SyncDeclaration]:
        """Every sync entry, the course files' and the patterns' (whose ``course`` is the
        pattern's label): what the rules on a single entry check."""
        return [*self.syncs, *(s for p in self.patterns for s in p.syncs)]


@cache
def _registry() -> Registry:
    """Every declaration schema under its ``$id``: a pattern's sync entries are the course
    files' (``course-syncs.schema.json#/$defs/sync``), written once."""
    resources_ = [Resource.from_contents(resources.schema(name)) for name in SCHEMA_OF.values()]
    return Registry().with_resources((r.id(), r) for r in resources_)  # type: ignore[misc]


@cache
def validator(kind: FileKind) -> Draft202012Validator:
    schema = resources.schema(SCHEMA_OF[kind])
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def schema_diagnostics(doc: YamlDocument, kind: FileKind) -> list[Diagnostic]:
    """All schema violations of one document, each at the line of the offending value."""
    out: list[Diagnostic] = []
    errors = list(validator(kind).iter_errors(doc.data))
    # A bad date fails both its pattern and its format: one message per value is enough.
    bad_pattern = {tuple(e.absolute_path) for e in errors if e.validator == "pattern"}
    for error in errors:
        if error.validator == "format" and tuple(error.absolute_path) in bad_pattern:
            continue
        out.extend(_describe(doc, error))
    return out


def _where(path: tuple[Any, ...]) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{shorten(str(p))}" for p in path]
    return "".join(parts).lstrip(".") or "top level"


def _describe(doc: YamlDocument, error: ValidationError) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    where = _where(path)
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = [k for k in instance if k not in allowed]
        listed = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return [
            Diagnostic(
                doc.file,
                *doc.locate_key((*path, key)),
                "error",
                "schema",
                f"unknown key {shorten(key)!r} in {where}{did_you_mean(key, allowed)}{listed}",
            )
            for key in extra
        ]
    if error.validator == "anyOf" and all("required" in alt for alt in error.validator_value):
        keys = " or ".join(repr(k) for alt in error.validator_value for k in alt["required"])
        message = f"{where}: give {keys}"
    elif error.validator == "dependentRequired" and isinstance(instance, dict):
        needs = [f"{key!r} needs {dep!r} as well"
                 for key, deps in error.validator_value.items() if key in instance
                 for dep in deps if dep not in instance]
        message = f"{where}: {'; '.join(needs) or shorten(error.message, 200)}"
    elif error.validator == "required":
        message = f"{where}: missing required key {error.message.split(' is a required')[0]}"
    elif error.validator in ("pattern", "format") and isinstance(instance, str):
        if error.schema.get("format") == "date":
            wanted = "a valid date written YYYY-MM-DD"
        else:
            wanted = f"matching {error.validator_value}"
        message = f"{where}: {shorten(instance)!r} is not {wanted}"
    elif error.validator == "enum":
        choices = [str(c) for c in error.validator_value]
        shown = (
            repr(shorten(instance))
            if isinstance(instance, str)
            else typed.got(instance, doc.scalars.get(path), "string")
        )
        message = f"{where}: {shown} is not one of {', '.join(choices)}"
        if isinstance(instance, str):
            message += did_you_mean(instance, choices)
    elif error.validator == "type":
        scalar = doc.scalars.get(path)
        types = error.validator_value
        wants_text = types == "string" or (isinstance(types, list) and "string" in types)
        if wants_text and scalar is not None and scalar.plain and not isinstance(instance, str):
            message = typed.not_text(where, scalar, instance)
        else:
            message = (
                f"{where}: expected {typed.expected(types)}, "
                f"got {typed.got(instance, scalar, types)}"
            )
    else:
        message = f"{where}: {shorten(error.message, 200)}"
    return [Diagnostic(doc.file, *doc.locate(path), "error", "schema", message)]


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


@dataclass
class Listing:
    """What is under ``cohorts/``: the files to read (regular files and symbolic links,
    sorted) and what cannot be a declaration at all, as (path, rule, message)."""

    files: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str, str]] = field(default_factory=list)


def discover(cohorts_dir: Path) -> Listing:
    """Walk ``cohorts/`` without following links to folders.

    A folder that cannot be listed is a problem, never an empty folder: its declarations
    would otherwise vanish from the plan and read as removals. Symbolic links are listed
    so that the reader can refuse loops and targets outside the repository; FIFOs, sockets,
    devices and folders named like declarations are reported, never opened.
    """
    listing = Listing()

    def visit(folder: Path) -> None:
        try:
            with os.scandir(folder) as entries:
                found = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            listing.problems.append(
                (folder, "unreadable", f"cannot list this folder: {exc.strerror or exc}")
            )
            return
        for entry in found:
            path = folder / entry.name
            try:
                link = entry.is_symlink()
                folder_entry = not link and entry.is_dir(follow_symlinks=False)
                regular = not link and entry.is_file(follow_symlinks=False)
            except OSError as exc:
                listing.problems.append((path, "unreadable", f"cannot read: {exc.strerror}"))
                continue
            if link or regular:
                listing.files.append(path)
            elif folder_entry and entry.name.endswith(YAML_SUFFIXES):
                listing.problems.append(
                    (path, "not-a-file", "a folder named like a declaration; declarations "
                     "are files")
                )
            elif folder_entry:
                visit(path)
            else:
                listing.problems.append(
                    (path, "not-a-file", "not a regular file (a FIFO, socket or device); "
                     "declarations are plain files")
                )

    visit(cohorts_dir)
    listing.files.sort()
    return listing


def load_platforms(
    path: Path, shown: str, repo_root: Path
) -> tuple[Settings | None, list[Diagnostic]]:
    """Settings from platforms.yaml, or None with the diagnostics that prevent them."""
    if not path.exists() and not path.is_symlink():
        return None, [
            Diagnostic(
                shown, 1, 1, "error", "missing-platforms", "cohorts/platforms.yaml is missing"
            )
        ]
    doc, diags = load_yaml_file(path, shown, repo_root)
    if doc is None:
        return None, diags
    problems = schema_diagnostics(doc, "platforms")
    if problems:
        return None, diags + problems
    settings = settings_from_document(doc.data, root=repo_root)
    return settings, diags + _template_diagnostics(doc) + platform_window_diagnostics(doc)


def load_declarations(cohorts_dir: Path, repo_root: Path | None = None) -> DeclarationSet:
    """Read and schema-check the whole tree. Lint rules run separately (see ``lint``)."""
    cohorts_dir = cohorts_dir.resolve()
    repo_root = (repo_root or cohorts_dir.parent).resolve()
    result = DeclarationSet(root=cohorts_dir)

    def display(path: Path) -> str:
        try:
            return str(path.relative_to(repo_root))
        except ValueError:
            return str(path)

    platforms_path = cohorts_dir / PLATFORMS_FILE
    shown = display(platforms_path)
    result.files.append(shown)
    result.settings, diags = load_platforms(platforms_path, shown, repo_root)
    result.diagnostics.extend(diags)
    if result.settings is not None:
        doc, _ = load_yaml_file(platforms_path, shown, repo_root)
        assert doc is not None  # the settings were read from it
        result.hint_problems.extend(_hint_diagnostics(doc, "platforms"))
        if result.settings.owners:
            line = doc.locate_key(("owners",))[0]
            result.file_owners[shown] = FileOwners(result.settings.owners, line)

    known = set(result.settings.platforms) if result.settings else None
    listing = discover(cohorts_dir)
    for path, rule, message in listing.problems:
        shown = display(path)
        result.files.append(shown)
        result.diagnostics.append(Diagnostic(shown, 1, 1, "error", rule, message))
    for path in listing.files:
        relative = path.relative_to(cohorts_dir)
        platform, kind = classify(relative)
        if kind == "platforms":
            continue
        shown = display(path)
        result.files.append(shown)
        if kind is None:
            result.diagnostics.append(
                Diagnostic(shown, 1, 1, "error", "unknown-file", _misplaced(relative))
            )
            continue
        assert platform is not None
        if known is not None and platform not in known:
            result.diagnostics.append(
                Diagnostic(
                    shown,
                    1,
                    1,
                    "error",
                    "unknown-platform",
                    f"platform folder {platform!r} is not declared in cohorts/platforms.yaml"
                    f"{did_you_mean(platform, known)} (known: {', '.join(sorted(known))})",
                )
            )
            result.unknown_platform_files.append(shown)
            continue
        doc, diags = load_yaml_file(path, shown, repo_root)
        result.diagnostics.extend(diags)
        if doc is None:
            continue
        result.hint_problems.extend(_hint_diagnostics(doc, kind))
        problems = schema_diagnostics(doc, kind)
        result.diagnostics.extend(problems)
        if problems:
            continue
        if "owners" in doc.data:
            line = doc.locate_key(("owners",))[0]
            result.file_owners[shown] = FileOwners(tuple(doc.data["owners"]), line)
        if kind == "cohort":
            result.cohorts.append(_manual_cohort(platform, doc))
        elif kind == "pattern":
            result.patterns.append(_pattern(platform, path.stem, doc))
        else:
            result.syncs.extend(_syncs(platform, doc))
            result.exclusions.extend(_exclusions(platform, doc))
    return result


def _hint_diagnostics(doc: YamlDocument, kind: FileKind) -> list[Diagnostic]:
    """``schema-hint`` (warning): the file does not start with its schema's modeline."""
    problem = hint_problem(kind, doc.first_line)
    return [Diagnostic(doc.file, 1, 1, "warning", "schema-hint", problem)] if problem else []


def _misplaced(relative: Path) -> str:
    parts = relative.parts
    if len(parts) > 3 and parts[1] == "syncs" and relative.suffix == ".yaml":
        # A course shortname with "/" made folders: the file goes directly in syncs/.
        flat = "_".join(parts[2:])
        return (
            f"sync files go directly in cohorts/{parts[0]}/syncs/: for a course shortname "
            f"with '/', name the file {flat} ('/' written '_') and keep the real shortname "
            "in its course: key"
        )
    return (
        "not a declaration: use cohorts/<platform>/cohorts/<idnumber>.yaml, "
        "cohorts/<platform>/syncs/<course>.yaml or cohorts/<platform>/patterns/<name>.yaml"
    )


def _template_diagnostics(doc: YamlDocument) -> list[Diagnostic]:
    """Templates may only use the fields the general-cohort builder provides (one list)."""
    out = []
    for name, platform in doc.data.get("platforms", {}).items():
        general = platform.get("general_cohorts") or {}
        for key in TEMPLATES:
            template = general.get(key)
            if template is None:
                continue
            problem = template_problem(key, template)
            if problem:
                path = ("platforms", name, "general_cohorts", key)
                out.append(
                    Diagnostic(doc.file, *doc.locate(path), "error", "bad-template", problem)
                )
    return out


def _manual_cohort(platform: str, doc: YamlDocument) -> ManualCohort:
    data = doc.data
    members = tuple(data.get("members", []))
    return ManualCohort(
        platform=platform,
        idnumber=data["idnumber"],
        name=data["name"],
        owners=tuple(data["owners"]),
        members=members,
        location=Location(doc.file, *doc.locate_key(("idnumber",))),
        description=data.get("description", ""),
        category=data.get("category"),
        visible=data.get("visible", True),
        expires=_date(data.get("expires")),
        adopt=data.get("adopt", False),
        member_lines=tuple(doc.locate(("members", i))[0] for i in range(len(members))),
        name_location=Location(doc.file, *doc.locate(("name",))),
        review_every=_period_days(data.get("review_every")),
        reviewed=_date(data.get("reviewed")),
        reviewed_line=doc.locate_key(("reviewed",))[0] if "reviewed" in data else 0,
    )


_PERIOD = re.compile(r"^(\d+)([dw])$")


def _period_days(text: str | None) -> int | None:
    """``180d`` -> 180, ``26w`` -> 182 (the schema checked the form)."""
    if text is None:
        return None
    match = _PERIOD.match(text)
    assert match is not None
    return int(match[1]) * (7 if match[2] == "w" else 1)


def _sync_entries(platform: str, doc: YamlDocument, course: str, owners: tuple[str, ...],
                  pattern: str | None = None) -> list[SyncDeclaration]:
    return [
        SyncDeclaration(
            platform=platform,
            course=course,
            cohort=item["cohort"],
            role=item["role"],
            reason=item["reason"],
            location=Location(doc.file, *doc.locate(("syncs", i))),
            method=item.get("method", "cohort"),
            group=item.get("group"),
            expires=_date(item.get("expires")),
            adopt=item.get("adopt", False),
            owners=owners,
            group_location=Location(doc.file, *doc.locate(("syncs", i, "group")))
            if item.get("group") else None,
            grace_days=item.get("grace_days"),
            pattern=pattern,
        )
        for i, item in enumerate(doc.data.get("syncs", []))
    ]


def _syncs(platform: str, doc: YamlDocument) -> list[SyncDeclaration]:
    data = doc.data
    return _sync_entries(platform, doc, data["course"], tuple(data.get("owners", [])))


def _exclusions(platform: str, doc: YamlDocument) -> list[PatternExclusion]:
    names = doc.data.get("exclude_patterns", [])
    return [
        PatternExclusion(platform, doc.data["course"], name,
                         Location(doc.file, *doc.locate(("exclude_patterns", i))))
        for i, name in enumerate(names)
    ]


def _pattern(platform: str, name: str, doc: YamlDocument) -> CoursePattern:
    data = doc.data
    courses = data["courses"]
    owners = tuple(data["owners"])
    pattern = CoursePattern(
        platform=platform,
        name=name,
        owners=owners,
        location=Location(doc.file, *doc.locate_key(("courses",))),
        syncs=(),
        shortname=courses.get("shortname"),
        category=courses.get("category"),
        subcategories=courses.get("subcategories", False),
        exclude=tuple(courses.get("exclude", [])),
        description=data.get("description", ""),
    )
    label = f"{pattern.rule} (pattern {name})"
    return replace(pattern, syncs=tuple(_sync_entries(platform, doc, label, owners, name)))
