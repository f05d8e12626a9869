"""``reconcile demo``'s fictional university: takes a seed and a size, gives an APOGÉE
database, a directory and one Moodle emulator per platform (``data``), and runs the nightly
job on them (``run``)."""
