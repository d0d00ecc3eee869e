"""Working days (工作日): deadlines that skip weekends and public holidays but count 调休 weekends.

Statutory time limits in China are mostly stated in working days, and which days those are
changes every year: the State Council moves a few weekend days to be worked (调休上班) so that
holidays join up. So the calendar is data (``schemas/data/holidays.yaml``, ``GRIDHUB_HOLIDAYS``),
and this module is the one place that counts it. It is pure: no I/O beyond reading the file.

A deadline of N working days from an instant ends with the Nth working day after the instant's
town-local date (the day of the instant itself never counts, as 次日起算 has it): the deadline is
midnight, town time, at the start of the day that follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from foundation import packaged
from foundation.errors import ConfigurationError
from schemas import TOWN_TIMEZONE
from schemas.config_file import load_yaml_model

SATURDAY = 5
"""``date.weekday()`` of Saturday: this and Sunday (6) are rest days unless the notice says otherwise."""


class CalendarError(ConfigurationError):
    """The holiday file is wrong; services must not start on it."""


class _Holiday(BaseModel):
    """One range of days off, as a notice lists it (from and to inclusive)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1)
    first: date = Field(alias="from")
    last: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> _Holiday:
        if self.last < self.first:
            raise ValueError(f"holiday {self.name} ends ({self.last}) before it starts ({self.first})")
        return self


class _Year(BaseModel):
    """One year's notice: its holidays and the weekend days worked instead."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1)
    holidays: list[_Holiday] = Field(min_length=1)
    working_days: list[date] = Field(default_factory=list)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    years: dict[int, _Year] = Field(min_length=1)


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days are worked: Monday to Friday, except ``holidays``, plus ``working_weekends``.

    ``years`` are the years a notice was loaded for; a day of any other year counts Monday to
    Friday (no holidays), which is what a town without the next year's notice can do best.
    """

    holidays: Mapping[date, str]
    """Each day off and the holiday it belongs to (weekend days inside a holiday range included)."""
    working_weekends: frozenset[date]
    """Saturdays and Sundays that are worked (调休上班)."""
    years: frozenset[int]

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is worked: an adjusted weekend day is, a holiday is not, else Monday to Friday."""
        if day in self.working_weekends:
            return True
        return day not in self.holidays and day.weekday() < SATURDAY

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The deadline ``days`` working days after ``start``: midnight after the ``days``-th working day.

        ``start`` must carry a zone (a naive time would be read in the machine's zone, not the town's).
        """
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
            raise ValueError(f"days must be a whole positive number of working days, got {days!r}")
        if start.tzinfo is None:
            raise ValueError("start must carry a time zone")
        day = start.astimezone(TOWN_TIMEZONE).date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            counted += self.is_working_day(day)
        return datetime.combine(day + timedelta(days=1), time(0), TOWN_TIMEZONE)


WEEKDAYS_ONLY = WorkingCalendar(holidays={}, working_weekends=frozenset(), years=frozenset())
"""A calendar with no holidays at all: Monday to Friday. For tests and callers that have no file."""


def load_calendar(path: Path = packaged.HOLIDAYS) -> WorkingCalendar:
    """Read and check the holiday file; every problem is one :class:`CalendarError` naming the file.

    Besides its shape, the checks are those a typo would break silently: a day outside its year,
    a worked day that is not a weekend day (it is a working day anyway: the entry is a mistake),
    and a day both off and worked.
    """
    document = load_yaml_model(path, _File, "the holiday calendar", CalendarError, "check GRIDHUB_HOLIDAYS")
    holidays: dict[date, str] = {}
    working: set[date] = set()
    for year, notice in document.years.items():
        for holiday in notice.holidays:
            for offset in range((holiday.last - holiday.first).days + 1):
                holidays[holiday.first + timedelta(days=offset)] = holiday.name
        working.update(notice.working_days)
        for day in [*notice.working_days, *(h.first for h in notice.holidays), *(h.last for h in notice.holidays)]:
            if day.year != year:
                raise CalendarError(f"{path}: year {year} lists {day}, a day of another year")
    for day in sorted(working):
        if day.weekday() < SATURDAY:
            raise CalendarError(
                f"{path}: {day} is listed as worked (调休上班) but is a weekday; list weekend days only"
            )
    both = sorted(working & holidays.keys())
    if both:
        raise CalendarError(f"{path}: {', '.join(map(str, both))} both off ({holidays[both[0]]}) and worked")
    return WorkingCalendar(holidays=holidays, working_weekends=frozenset(working), years=frozenset(document.years))
