"""General cohorts from APOGÉE and the SUPANN directory, with source-health guards.

``read_sources(settings, environ, apogee_conn=None, ldap_conn=None)`` reads both sources
(never raising for a source failure), judges their health against the last good run and
returns a :class:`SourceSnapshot`; ``record_good_run(snap, settings)`` saves the reference
after a healthy run. Modules: ``apogee`` (SQL), ``ldap`` (paged directory read), ``general``
(the cohorts, pure), ``health`` (guards and state file), ``snapshot`` (the orchestration).
The fictional university is ``reconciler.demo.data``; ``reconcile sources`` is
``reconciler.cli.sources``.
"""

from .model import DirectoryEntry, GeneralCohort, IaRow, Person, SourceError, SourceSnapshot
from .snapshot import read_sources, record_good_run

__all__ = [
    "DirectoryEntry",
    "GeneralCohort",
    "IaRow",
    "Person",
    "SourceError",
    "SourceSnapshot",
    "read_sources",
    "record_good_run",
]
