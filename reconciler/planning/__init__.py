"""From what should be to what to do, with no write: takes the declarations, the sources'
snapshot and what Moodle holds (``desired``, ``reader``, ``state``), gives a ``Plan``
checked by the failsafes (``planner``, ``failsafe``, ``plan``) and its renderings (``render``)."""
