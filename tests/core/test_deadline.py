"""Deadline arithmetic: calendar clocks, working days, holidays and time zones."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from models.deadline import is_working_day, local_time_text, parse_duration

WIB = ZoneInfo("Asia/Jakarta")


def test_calendar_hours_ignore_weekends():
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=WIB)
    due = parse_duration("PT24H").add_to(friday_evening, "Asia/Jakarta")
    assert due == datetime(2026, 12, 5, 18, 0, tzinfo=WIB)


def test_seconds_clock_for_tests_and_demos():
    start = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert (parse_duration("PT5S").add_to(start) - start).total_seconds() == 5


def test_months_follow_the_calendar():
    start = datetime(2026, 1, 31, 9, 0, tzinfo=WIB)
    assert parse_duration("P3M").add_to(start, "Asia/Jakarta") == datetime(
        2026, 4, 30, 9, 0, tzinfo=WIB
    )


def test_working_days_skip_the_weekend():
    friday = datetime(2026, 12, 4, 10, 0, tzinfo=WIB)
    due = parse_duration("1 working day").add_to(friday, "Asia/Jakarta")
    assert due == datetime(2026, 12, 7, 10, 0, tzinfo=WIB)  # Monday, same local time


def test_working_days_skip_christmas_and_the_weekend():
    # Thu 24 Dec 2026 -> Fri 25 Dec is a public holiday, then the weekend: Mon 28 Dec, Tue 29 Dec.
    assert not is_working_day(datetime(2026, 12, 25).date())
    start = datetime(2026, 12, 24, 9, 0, tzinfo=WIB)
    due = parse_duration("2 working days").add_to(start, "Asia/Jakarta")
    assert due == datetime(2026, 12, 29, 9, 0, tzinfo=WIB)


def test_working_days_are_counted_in_the_agency_time_zone():
    # 23:30 UTC on Thursday is already Friday 08:30 in Jayapura (WIT, UTC+9) but Friday 06:30 in
    # Jakarta; both count one working day to Monday, at their own local time.
    start = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    jayapura = parse_duration("1 working day").add_to(start, "Asia/Jayapura")
    assert jayapura.astimezone(ZoneInfo("Asia/Jayapura")) == datetime(
        2026, 12, 7, 8, 30, tzinfo=ZoneInfo("Asia/Jayapura")
    )
    # Thursday 22:30 UTC is Friday 05:30 WIB: one working day is Monday 05:30 WIB.
    jakarta = parse_duration("1 working day").add_to(
        datetime(2026, 12, 3, 22, 30, tzinfo=UTC), "Asia/Jakarta"
    )
    assert jakarta.astimezone(WIB) == datetime(2026, 12, 7, 5, 30, tzinfo=WIB)


def test_result_is_utc():
    due = parse_duration("P7D").add_to(datetime(2026, 12, 7, 9, 0, tzinfo=WIB), "Asia/Jakarta")
    assert due.tzinfo == UTC and due.hour == 2


def test_local_time_names_the_zone():
    moment = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert local_time_text(moment, "Asia/Jakarta") == "2026-12-07 09:00 WIB"
    assert local_time_text(moment, "Asia/Makassar") == "2026-12-07 10:00 WITA"
    assert local_time_text(moment, "Asia/Jayapura") == "2026-12-07 11:00 WIT"


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "24h", "P-1D", "0 working days", "five working days", "P1DT"]
)
def test_bad_deadlines_are_refused_with_a_hint(text):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert "PT24H" in str(info.value) or "zero" in str(info.value) or "at least" in str(info.value)


def test_naive_start_is_refused():
    with pytest.raises(ValueError):
        parse_duration("PT1H").add_to(datetime(2026, 12, 7, 9, 0))
