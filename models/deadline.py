"""Deadline arithmetic: ISO 8601 durations and working days in an agency's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta

_ISO = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_WORKING = re.compile(r"^(?P<n>\d+) working days?$")

ZONE_ABBREVIATIONS = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}


@dataclass(frozen=True)
class Duration:
    """A clock: calendar time (ISO 8601, e.g. PT24H, P7D, P3M) or a count of working days."""

    text: str
    delta: relativedelta | None = None
    working_days: int | None = None

    def __str__(self) -> str:
        return self.text

    def add_to(self, start: datetime, tz: str = "Asia/Jakarta") -> datetime:
        """The moment this clock runs out when started at `start` (aware), in UTC."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if self.working_days is not None:
            return add_working_days(start, self.working_days, tz)
        assert self.delta is not None
        # Calendar months and years are counted on the local calendar, hours on the clock.
        local = start.astimezone(ZoneInfo(tz))
        return (local + self.delta).astimezone(UTC)

    def subtract_from(self, moment: datetime) -> datetime:
        """The moment this (calendar) clock before `moment`; working days count as 24 h each."""
        if self.working_days is not None:
            return moment - timedelta(days=self.working_days)
        assert self.delta is not None
        return moment - self.delta


def parse_duration(text: str) -> Duration:
    """Parse "PT24H", "P7D", "P3M", "PT5S" or "5 working days"; raise ValueError otherwise."""
    cleaned = text.strip()
    if match := _WORKING.match(cleaned):
        n = int(match["n"])
        if n < 1:
            raise ValueError(f"'{text}': a working-day clock needs at least 1 day")
        return Duration(text=cleaned, working_days=n)
    match = _ISO.match(cleaned)
    if not match:
        raise ValueError(
            f"'{text}' is not a deadline: use an ISO 8601 duration such as PT24H, P7D or P3M, "
            "or a count of working days such as '5 working days'"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    delta = relativedelta(**parts)
    if not any(parts.values()):
        raise ValueError(f"'{text}' is a zero duration")
    return Duration(text=cleaned, delta=delta)


@lru_cache(maxsize=64)
def _indonesian_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("ID", years=year)


def is_working_day(day: date) -> bool:
    """True for Monday to Friday that is not an Indonesian public holiday."""
    return day.weekday() < 5 and day not in _indonesian_holidays(day.year)


def add_working_days(start: datetime, n: int, tz: str) -> datetime:
    """`n` working days after `start`, at the same local time, counted in time zone `tz`."""
    local = start.astimezone(ZoneInfo(tz))
    day = local.date()
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    due_local = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=ZoneInfo(tz))
    return due_local.astimezone(UTC)


def zone_abbreviation(tz: str) -> str:
    """WIB, WITA or WIT for Indonesian zones, else the zone's own name."""
    return ZONE_ABBREVIATIONS.get(tz, tz)


def local_time_text(moment: datetime, tz: str) -> str:
    """A moment as the agency reads it: '2026-12-01 14:00 WIB'."""
    return f"{moment.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M} {zone_abbreviation(tz)}"


def duration_text(seconds: float) -> str:
    """'2 d 3 h', '5 h 20 min' or '40 s': how long a step has been overdue."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
