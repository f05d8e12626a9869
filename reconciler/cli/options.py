"""What several commands share: option types (instants, days, durations), the common
options, and the one loader of saved plans.

The types are click ``ParamType``s, so a bad value is a usage error that names the option
(``Invalid value for '--today': '20/01/2027' is not a date: write YYYY-MM-DD``), never a
traceback.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, ClassVar

import click

from ..applying.runner import Environment
from ..settings import TokenUse


class Instant(click.ParamType):
    """An ISO 8601 date and time (``2026-11-28T02:00:00Z``); without a zone, UTC. Gives a
    timezone-aware ``datetime``."""

    name = "ISO-TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return value
        try:
            moment = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f"{value!r} is not a date and time: write ISO 8601, e.g. 2026-11-28T02:00:00Z",
                param,
                ctx,
            )
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Day(click.ParamType):
    """A calendar day, ``YYYY-MM-DD`` (Europe/Paris days, as expiry dates are)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(text)
            return dt.date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date: write YYYY-MM-DD, e.g. 2027-01-20", param, ctx)


class Days(click.ParamType):
    """A duration in whole days: ``14d``, ``14`` (days) or ``2w`` (weeks). Gives an int."""

    name = "DURATION"
    UNITS: ClassVar[dict[str, int]] = {"": 1, "d": 1, "w": 7}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"(\d{1,5})\s*([dw]?)", str(value).strip().lower())
        if not match:
            self.fail(f"{value!r} is not a duration: write days (14d) or weeks (2w)", param, ctx)
        return int(match.group(1)) * self.UNITS[match.group(2)]


INSTANT = Instant()
DAY = Day()
DAYS = Days()

now_option = click.option(
    "--now",
    type=INSTANT,
    help="Plan as if it were this moment (ISO 8601; previews and tests).",
)
platform_option = click.option(
    "--platform", "-p", "platform", required=True, help="Platform name (ecampus, collegium...)."
)
plan_file_argument = click.argument(
    "plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


def environment(
    ctx: click.Context, now: dt.datetime | None, token_use: TokenUse = "write"
) -> Environment:
    """The real endpoints named by the process environment, for the ``--repo`` folder;
    ``token_use`` says which Moodle token its client presents (``PlatformSettings.token``)."""
    env = Environment(repo=Path(ctx.obj["repo"]), token_use=token_use)
    if now is not None:
        env.now = now
    return env
