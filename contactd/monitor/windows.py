"""The time windows metrics are computed over: the live ones (last 15 min, last 60 min,
today in the configured timezone) and report buckets (hour, day, whole range)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from contactd.monitor.definitions import Window

LiveWindow = Literal["15m", "60m", "today"]
LIVE_WINDOWS: tuple[LiveWindow, ...] = ("15m", "60m", "today")
Grouping = Literal["hour", "day", "total"]


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def day_start(now_ms: int, tz: ZoneInfo) -> int:
    local = datetime.fromtimestamp(now_ms / 1000, tz)
    return _ms(datetime.combine(local.date(), time(), tz))


def live_windows(now_ms: int, tz: ZoneInfo) -> dict[LiveWindow, Window]:
    """Each window ends just after ``now`` (events stamped now are in)."""
    end = now_ms + 1
    return {
        "15m": Window(now_ms - 15 * 60_000, end),
        "60m": Window(now_ms - 60 * 60_000, end),
        "today": Window(day_start(now_ms, tz), end),
    }


def report_buckets(first: date, last: date, tz: ZoneInfo, group: Grouping) -> list[Window]:
    """Local days ``first``..``last`` (inclusive) cut into hours, days or one range. Hours
    follow the wall clock: a DST day has 23 or 25 of them."""
    start = _ms(datetime.combine(first, time(), tz))
    end = _ms(datetime.combine(last + timedelta(days=1), time(), tz))
    if group == "total":
        return [Window(start, end)]
    out = []
    if group == "day":
        d = first
        while d <= last:
            nxt = d + timedelta(days=1)
            out.append(
                Window(_ms(datetime.combine(d, time(), tz)), _ms(datetime.combine(nxt, time(), tz)))
            )
            d = nxt
        return out
    at = start
    while at < end:
        out.append(Window(at, at + 3_600_000))  # an hour is an hour in UTC, whatever the zone
        at += 3_600_000
    return out


def label(ms: int, tz: ZoneInfo, group: Grouping) -> str:
    local = datetime.fromtimestamp(ms / 1000, tz)
    if group == "hour":
        return local.isoformat(timespec="minutes")
    return local.date().isoformat()
