"""The one place that turns what a command raised into one line and an exit code.

* a ``ReconcilerError`` (every error the reconciler raises on purpose) prints
  ``error: <message>`` (its notes, such as "nothing applied", after it on the same line)
  and exits with the code its class carries;
* a file the system refused (``OSError``: a permission, a full disk) is one line, exit 1;
* click's usage errors (a bad option value) keep click's message and exit 1, not click's 2,
  which ``reconcile plan`` uses for "changes pending";
* anything else is a bug: one line, "run with --debug for details", exit 1.

With ``reconcile --debug`` the traceback is printed first.
"""

from __future__ import annotations

import sys
import traceback

import click

from ..errors import ExitCode, ReconcilerError

DEBUG_HINT = "run with --debug for details"


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (whitespace runs become one space), at most ``limit`` chars."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe(exc: BaseException) -> tuple[str, int]:
    """(what to print after ``error: ``, exit code) for an exception a command raised."""
    if isinstance(exc, ReconcilerError):
        notes = [one_line(n) for n in getattr(exc, "__notes__", [])]
        text = str(exc) if exc.multiline else one_line(str(exc))
        return "; ".join([text, *notes]), int(exc.exit_code)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return one_line(f"{where}{exc.strerror or exc}"), int(ExitCode.ERROR)
    what = one_line(f"unexpected {type(exc).__name__}: {exc}", 300)
    return f"{what} ({DEBUG_HINT})", int(ExitCode.ERROR)


def report(exc: BaseException, debug: bool) -> int:
    """Print ``exc`` as ``describe`` says (the traceback first with ``debug``); its code."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    message, code = describe(exc)
    click.echo(f"error: {message}", err=True)
    return code


class ReconcileGroup(click.Group):
    """The ``reconcile`` group: every subcommand's errors go through ``report``."""

    def make_context(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = int(ExitCode.ERROR)
            raise

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = int(ExitCode.ERROR)
            raise
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # the one place: see the module docstring
            debug = bool((ctx.obj or {}).get("debug"))
            ctx.exit(report(exc, debug))
