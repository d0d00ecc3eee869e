"""Working days: weekends and public holidays skipped, 调休 weekends worked, the file checked whole."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from schemas import TOWN_TIMEZONE
from schemas.working_time import WEEKDAYS_ONLY, CalendarError, load_calendar

CALENDAR = load_calendar()


def town(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TOWN_TIMEZONE)


def midnight(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=TOWN_TIMEZONE)


def test_the_packaged_calendar_holds_2025_and_2026_as_the_state_council_set_them() -> None:
    assert CALENDAR.years == {2025, 2026}
    assert CALENDAR.holidays[date(2026, 2, 17)] == "春节"
    assert not CALENDAR.is_working_day(date(2026, 10, 7))  # a Wednesday of the National Day week
    assert CALENDAR.is_working_day(date(2026, 2, 14))  # a Saturday worked (调休上班)
    assert CALENDAR.is_working_day(date(2026, 9, 20))  # a Sunday worked
    assert not CALENDAR.is_working_day(date(2026, 11, 28))  # an ordinary Saturday


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (town(2026, 11, 24), 1, midnight(2026, 11, 26)),  # Tuesday: due at the end of Wednesday
        (town(2026, 11, 27), 1, midnight(2026, 12, 1)),  # Friday: the weekend does not count
        (town(2026, 11, 27), 5, midnight(2026, 12, 5)),  # a whole working week, to Friday night
        (town(2026, 2, 13), 1, midnight(2026, 2, 15)),  # Friday: the 调休 Saturday after it is worked
        (town(2026, 2, 13), 2, midnight(2026, 2, 25)),  # ... then the Spring Festival, to Tuesday 24th
        (town(2026, 9, 30), 3, midnight(2026, 10, 11)),  # National Day week off; Thu, Fri, the 调休 Saturday
        (town(2025, 1, 27), 1, midnight(2025, 2, 6)),  # 2025's Spring Festival (Sunday 26th was worked)
        (town(2026, 11, 24, 23), 1, midnight(2026, 11, 26)),  # late in the day: the day itself never counts
    ],
)
def test_adding_working_days(start: datetime, days: int, due: datetime) -> None:
    assert CALENDAR.add_working_days(start, days) == due


def test_an_instant_counts_from_its_town_day_whatever_its_zone() -> None:
    # 2026-11-26 20:00 UTC is already Friday the 27th in town: due at the end of Monday.
    assert CALENDAR.add_working_days(datetime(2026, 11, 26, 20, tzinfo=UTC), 1) == midnight(2026, 12, 1)


def test_a_year_without_a_notice_counts_monday_to_friday() -> None:
    assert CALENDAR.add_working_days(town(2027, 10, 1), 1) == midnight(2027, 10, 5)  # Friday → Monday
    assert WEEKDAYS_ONLY.add_working_days(town(2026, 10, 1), 1) == midnight(2026, 10, 3)


@pytest.mark.parametrize("days", [0, -1, 1.5, True])
def test_only_whole_positive_days(days: object) -> None:
    with pytest.raises(ValueError, match="whole positive"):
        CALENDAR.add_working_days(town(2026, 11, 24), days)  # type: ignore[arg-type]


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="zone"):
        CALENDAR.add_working_days(datetime(2026, 11, 24, 10), 1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("years: {2026: {source: x, holidays: [{name: a, from: 2026-05-01, to: 2026-05-05}], "
         "working_days: [2026-05-06]}}", "is a weekday"),
        ("years: {2026: {source: x, holidays: [{name: a, from: 2026-05-01, to: 2026-05-05}], "
         "working_days: [2025-05-10]}}", "a day of another year"),
        ("years: {2026: {source: x, holidays: [{name: a, from: 2026-05-05, to: 2026-05-01}]}}", "ends"),
        ("years: {2026: {source: x, holidays: [{name: a, from: 2026-05-01, to: 2026-05-03}], "
         "working_days: [2026-05-02]}}", "both off"),
        ("years: {2026: {source: x, holidays: [], working_days: []}}", "holidays"),
        ("years: {2026: {holidays: [{name: a, from: 2026-05-01, to: 2026-05-03}]}}", "source"),
        ("nothing: here", "years"),
    ],
)  # fmt: skip
def test_a_wrong_file_is_refused_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "holidays.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError, match=problem) as refused:
        load_calendar(path)
    assert str(path) in str(refused.value)
