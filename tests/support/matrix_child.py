"""``reconcile`` in a child process with the fault matrix's client options (its timeout and
small batches), so that a child counts the same write calls as the in-process runs.

Run as ``python tests/support/matrix_child.py <reconcile arguments>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.matrix import client_factory

from reconciler.applying import runner
from reconciler.cli import main

if __name__ == "__main__":
    runner._default_client = client_factory  # type: ignore[assignment]
    main(sys.argv[1:], prog_name="reconcile")
