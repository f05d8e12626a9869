"""Bringing a platform as it is under the repository: ``reconcile import`` writes
declarations for what Moodle already holds, ``reconcile audit`` reports what the repository
does not declare. Both read Moodle through the plan's own reader and never write to it."""

from .audit import AuditReport, build_audit
from .importer import ImportOptions, ImportResult, build_import
from .inventory import Inventory, read_inventory
from .run import run_audit, run_import

__all__ = [
    "AuditReport",
    "ImportOptions",
    "ImportResult",
    "Inventory",
    "build_audit",
    "build_import",
    "read_inventory",
    "run_audit",
    "run_import",
]
