"""``python -m reconciler.cli``: the same as the ``reconcile`` command."""

from . import main

main()
