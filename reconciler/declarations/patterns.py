"""Course patterns (``cohorts/<platform>/patterns/<name>.yaml``): what can be said of them
without Moodle, and their lint rules.

Which courses a pattern matches depends on Moodle's courses and categories, so the match
itself is made at each plan (``planning.patterns``) with :func:`glob_matches` and
:func:`is_excluded`, the shortname tests both share. Here, statically:

* ``pattern-too-broad`` (error): a shortname pattern with no literal character and no
  category would match every course of the platform;
* ``unknown-pattern`` (error): a course's ``exclude_patterns`` names no pattern of its platform;
* ``exclude-pattern-no-effect`` (warning): the course does not match that pattern anyway (said
  only of shortname-only patterns, whose match needs no Moodle).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic

if TYPE_CHECKING:
    from .loader import CoursePattern, DeclarationSet

# What fnmatch treats as a wildcard: *, ? and a bracketed class such as [A-Z] or [!X].
_WILDCARDS = re.compile(r"\*|\?|\[!?\]?[^\]]*\]")


def glob_matches(glob: str | None, shortname: str) -> bool:
    """Whether ``shortname`` matches a pattern's shortname glob (any shortname when it has
    none): whole shortname, case-sensitive (``fnmatchcase``)."""
    return glob is None or fnmatchcase(shortname, glob)


def is_excluded(exclude: Sequence[str], shortname: str) -> bool:
    """Whether one of a pattern's ``exclude`` globs leaves ``shortname`` out."""
    return any(fnmatchcase(shortname, glob) for glob in exclude)


def shortname_selected(pattern: CoursePattern, shortname: str) -> bool:
    """Whether ``shortname`` passes the pattern's shortname glob and none of its ``exclude``
    globs (its category, if any, is Moodle's to tell)."""
    return glob_matches(pattern.shortname, shortname) and not is_excluded(
        pattern.exclude, shortname)


def is_too_broad(glob: str) -> bool:
    """Whether a shortname glob has no literal character left once its wildcards are gone
    (``*``, ``?*``, ``[A-Z]*``): it matches (nearly) every course."""
    return not _WILDCARDS.sub("", glob)


def pattern_rules(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    """``pattern-too-broad``, ``unknown-pattern`` and ``exclude-pattern-no-effect``."""
    known: dict[tuple[str, str], CoursePattern] = {}
    for pattern in decls.patterns:
        known[(pattern.platform, pattern.name)] = pattern
        if pattern.category is None and pattern.shortname and is_too_broad(pattern.shortname):
            loc = pattern.location
            yield Diagnostic(loc.file, loc.line, loc.column, "error", "pattern-too-broad",
                             f"courses.shortname {pattern.shortname!r} matches every course "
                             "of the platform; give a literal part (FOAD2-*) or a category")
    for exclusion in decls.exclusions:
        loc = exclusion.location
        found = known.get((exclusion.platform, exclusion.pattern))
        if found is None:
            names = sorted(n for p, n in known if p == exclusion.platform)
            yield Diagnostic(loc.file, loc.line, loc.column, "error", "unknown-pattern",
                             f"exclude_patterns: no course pattern {exclusion.pattern!r} on "
                             f"{exclusion.platform} (known: {', '.join(names) or 'none'})")
        elif found.category is None and not shortname_selected(found, exclusion.course):
            yield Diagnostic(loc.file, loc.line, loc.column, "warning",
                             "exclude-pattern-no-effect",
                             f"course {exclusion.course} does not match pattern "
                             f"{exclusion.pattern} ({found.rule}); the exclusion has no effect")
