"""General cohorts from APOGÉE and the SUPANN directory, with source-health guards."""

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
