"""The declaration tree under ``cohorts/``: discovery, schema check, typed declarations.

Layout::

    cohorts/platforms.yaml
    cohorts/<platform>/cohorts/<idnumber>.yaml   one manual cohort
    cohorts/<platform>/syncs/<course>.yaml       the syncs of one course

Loading never raises on bad input: every problem becomes a :class:`Diagnostic`, and a
file with errors contributes nothing to the declarations (so it cannot cause removals).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .. import resources
from ..settings import TEMPLATES, Settings, settings_from_document, template_problem
from . import typed
from .diagnostics import Diagnostic, sort_diagnostics
from .suggest import did_you_mean
from .windows import platform_window_diagnostics
from .yamlfile import YamlDocument, load_yaml_file, shorten

PLATFORMS_FILE = "platforms.yaml"
YAML_SUFFIXES = (".yaml", ".yml")
FileKind = Literal["platforms", "cohort", "syncs"]
SCHEMA_OF: dict[FileKind, str] = {
    "platforms": "platforms.schema.json",
    "cohort": "manual-cohort.schema.json",
    "syncs": "course-syncs.schema.json",
}


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


@dataclass
class DeclarationSet:
    """Everything read from the tree, and what was wrong with it."""

    root: Path
    settings: Settings | None = None
    cohorts: list[ManualCohort] = field(default_factory=list)
    syncs: list[SyncDeclaration] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
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
        return [s for s in self.syncs if s.platform == platform]


@cache
def validator(kind: FileKind) -> Draft202012Validator:
    schema = resources.schema(SCHEMA_OF[kind])
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


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
    if error.validator == "required":
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


def classify(relative: Path) -> tuple[str | None, FileKind | None]:
    """(platform, kind) of a path relative to ``cohorts/``; kind None when misplaced."""
    parts = relative.parts
    if parts == (PLATFORMS_FILE,):
        return None, "platforms"
    if len(parts) == 3 and parts[2].endswith(".yaml"):
        if parts[1] == "cohorts":
            return parts[0], "cohort"
        if parts[1] == "syncs":
            return parts[0], "syncs"
    return (parts[0] if len(parts) > 1 else None), None


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
        problems = schema_diagnostics(doc, kind)
        result.diagnostics.extend(problems)
        if problems:
            continue
        if kind == "cohort":
            result.cohorts.append(_manual_cohort(platform, doc))
        else:
            result.syncs.extend(_syncs(platform, doc))
    return result


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
        "not a declaration: use cohorts/<platform>/cohorts/<idnumber>.yaml "
        "or cohorts/<platform>/syncs/<course>.yaml"
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
    )


def _syncs(platform: str, doc: YamlDocument) -> list[SyncDeclaration]:
    data = doc.data
    owners = tuple(data.get("owners", []))
    return [
        SyncDeclaration(
            platform=platform,
            course=data["course"],
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
        )
        for i, item in enumerate(data["syncs"])
    ]
