"""The write side: takes a ``Plan`` (fresh or saved, approved through the failsafes when it
must be), applies it to one Moodle in phases and journals every call (``runner`` joins the
stages into ``make_plan`` and ``apply``; ``applier``, ``approvals``, ``journal``)."""
