"""Dates as the university lives them: expiry dates are days in Europe/Paris."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def today_in_paris(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Europe/Paris (``now`` must be timezone-aware when given)."""
    moment = now or dt.datetime.now(dt.UTC)
    return moment.astimezone(PARIS).date()


def is_expired(expires: dt.date | None, today: dt.date) -> bool:
    """``expires`` is the last day in force: a sync expiring on D is removed from D+1 on."""
    return expires is not None and today > expires


def end_of_day_timestamp(day: dt.date) -> int:
    """Unix time of the last second of ``day`` in Paris (a manual enrolment's timeend)."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=PARIS)
    return int(end.timestamp()) - 1
