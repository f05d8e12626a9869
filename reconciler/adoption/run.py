"""The two library calls behind ``reconcile import`` and ``reconcile audit``.

Each takes an :class:`~reconciler.applying.runner.Environment` (repository, clock, Moodle
client factory) and does the whole job; the command line only renders the result.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..applying.runner import Environment
from ..declarations.loader import DeclarationSet
from ..errors import DeclarationErrors
from ..planning.desired import build_desired
from ..planning.state import DesiredState
from .audit import AuditReport, add_teachers, build_audit
from .importer import ImportOptions, ImportResult, build_import, write_files
from .inventory import cohort_kind, read_inventory
from .seen import load_seen, save_seen

AUDIT_STATE = ".reconciler/audit-{platform}.json"


def _declared(env: Environment, platform_name: str) -> tuple[DeclarationSet, DesiredState]:
    """The repository's declarations and what they want (general cohorts not computed:
    neither command reads the sources). Raises DeclarationErrors when they have errors, since a
    file with errors declares nothing and everything in it would look undeclared."""
    decls = env.declarations()
    if decls.has_errors:
        raise DeclarationErrors(
            "the declarations have errors (run `reconcile validate`); nothing read"
        )
    return decls, build_desired(decls, env.settings, platform_name, env.today, None)


def run_import(
    env: Environment, platform_name: str, options: ImportOptions, out: Path | None = None
) -> ImportResult:
    """Read the platform once (a read-only token is enough) and write the declaration files
    under ``out`` (default: the repository's ``cohorts/``), ``<platform>/cohorts/`` and
    ``<platform>/syncs/``. Returns what was written, kept and reported.

    Raises ConfigurationError (unknown platform, no token), DeclarationErrors, MoodleError
    (Moodle failed; nothing is written then), OSError (a file could not be written).
    """
    platform = env.platform(platform_name)
    decls, desired = _declared(env, platform_name)

    def members_wanted(cohort: dict[str, Any]) -> bool:
        idnumber = cohort.get("idnumber") or ""
        return (
            options.adopt_outside_prefix
            and cohort_kind(platform, idnumber) == "foreign"
            and fnmatchcase(idnumber, options.cohorts)
        )

    with env.client(platform) as client:
        inventory = read_inventory(client, platform, decls, desired, members_wanted)
    result = build_import(inventory, decls, options, env.today)
    write_files(result, out or env.repo / "cohorts", options.force)
    return result


def run_audit(env: Environment, platform_name: str, state: Path | None = None) -> AuditReport:
    """Read the platform once (a read-only token is enough), report what the repository
    does not declare, and remember first sightings in ``state`` (default
    ``.reconciler/audit-<platform>.json`` in the repository). Never writes to Moodle.

    Raises ConfigurationError, DeclarationErrors, MoodleError (the memory is then left as
    it was), OSError.
    """
    platform = env.platform(platform_name)
    decls, desired = _declared(env, platform_name)
    path = state or env.repo / AUDIT_STATE.format(platform=platform_name)
    site = platform.effective_url(dict(env.environ))
    seen, problem = load_seen(path, platform_name, site, env.today)
    with env.client(platform) as client:
        inventory = read_inventory(client, platform, decls, desired)
        report = build_audit(inventory, seen, env.today)
        add_teachers(report, client, platform)
    if problem:
        report.notes.append(problem)
    save_seen(seen, path)
    return report
