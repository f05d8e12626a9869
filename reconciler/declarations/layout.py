"""Where each kind of declaration lives under ``cohorts/``, which schema checks it, and the
schema hint its first line carries for editors.

Layout::

    cohorts/platforms.yaml
    cohorts/<platform>/cohorts/<idnumber>.yaml   one manual cohort
    cohorts/<platform>/syncs/<course>.yaml       the syncs of one course
    cohorts/<platform>/patterns/<name>.yaml      the same syncs for many courses

Every file starts with ``# yaml-language-server: $schema=<path>`` (the YAML language server's
modeline, read by VS Code and GitLab's Web IDE) naming its schema relative to the file, so
that editors check it as it is typed. The schemas sit in ``schemas/`` next to ``cohorts/``.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

PLATFORMS_FILE = "platforms.yaml"
FileKind = Literal["platforms", "cohort", "syncs", "pattern"]
SCHEMA_OF: dict[FileKind, str] = {
    "platforms": "platforms.schema.json",
    "cohort": "manual-cohort.schema.json",
    "syncs": "course-syncs.schema.json",
    "pattern": "course-pattern.schema.json",
}
# The folder under cohorts/<platform>/ holding each kind, and the kind of each folder.
FOLDER_OF: dict[FileKind, str] = {"cohort": "cohorts", "syncs": "syncs", "pattern": "patterns"}
KIND_OF_FOLDER: dict[str, FileKind] = {folder: kind for kind, folder in FOLDER_OF.items()}

HINT_PREFIX = "# yaml-language-server: $schema="


def classify(relative: PurePosixPath | tuple[str, ...]) -> tuple[str | None, FileKind | None]:
    """(platform, kind) of a path relative to ``cohorts/``; kind None when misplaced."""
    parts = relative if isinstance(relative, tuple) else relative.parts
    if parts == (PLATFORMS_FILE,):
        return None, "platforms"
    if len(parts) == 3 and parts[2].endswith(".yaml") and parts[1] in KIND_OF_FOLDER:
        return parts[0], KIND_OF_FOLDER[parts[1]]
    return (parts[0] if len(parts) > 1 else None), None


def relative_path(platform: str, kind: FileKind, name: str) -> str:
    """``cohorts/<platform>/<folder>/<name>.yaml`` (POSIX, relative to the repository root)."""
    if kind == "platforms":
        return f"cohorts/{PLATFORMS_FILE}"
    return f"cohorts/{platform}/{FOLDER_OF[kind]}/{name}.yaml"


def schema_hint(kind: FileKind) -> str:
    """The first line a file of ``kind`` carries: the modeline naming its schema, relative
    to the file (``cohorts/platforms.yaml`` is one folder below the root, the others
    three)."""
    up = "../" if kind == "platforms" else "../../../"
    return f"{HINT_PREFIX}{up}schemas/{SCHEMA_OF[kind]}"


def hint_problem(kind: FileKind, first_line: str) -> str | None:
    """Why ``first_line`` is not the schema hint of a ``kind`` file, or None when it is."""
    expected = schema_hint(kind)
    line = first_line.rstrip("\r\n").strip()
    if line == expected:
        return None
    if line.startswith(HINT_PREFIX):
        return (f"the schema hint names {line[len(HINT_PREFIX):]!r}; this file's schema is "
                f"{expected[len(HINT_PREFIX):]!r}, relative to the file (write `{expected}`)")
    return (f"the first line should be `{expected}`, so that editors (VS Code, GitLab's Web "
            "IDE) check the file against its schema as it is typed")
