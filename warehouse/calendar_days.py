"""Put the working calendar into the warehouse, so SQL counts working days as the stream does.

An approval item's time limit may be in working days (工作日). The application agent computes its
deadline with :class:`schemas.working_time.WorkingCalendar`; ``application_facts`` must give the same
instant, so the sink, the warehouse's only writer, replaces ``calendar_days`` with that calendar at
start-up, in one transaction. Each day carries ``working_upto``, the number of working days up to and
including it, so the Nth working day after a day is one join, not a loop.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb

from schemas import TOWN_TIMEZONE
from schemas.working_time import WorkingCalendar
from warehouse.upsert import transaction

YEARS_BEFORE = 5
YEARS_AFTER = 10
"""How far around the calendar's own years the table reaches: old applications and long deadlines."""


def calendar_rows(calendar: WorkingCalendar, this_year: int) -> list[tuple[date, bool, int]]:
    """(day, working, working_upto) for every day from YEARS_BEFORE before the first year to YEARS_AFTER after the last.

    Years without a notice count Monday to Friday, as the calendar itself does.
    """
    years = calendar.years or frozenset({this_year})
    day, last = date(min(years) - YEARS_BEFORE, 1, 1), date(max(years) + YEARS_AFTER, 12, 31)
    rows: list[tuple[date, bool, int]] = []
    upto = 0
    while day <= last:
        working = calendar.is_working_day(day)
        upto += working
        rows.append((day, working, upto))
        day += timedelta(days=1)
    return rows


def replace_calendar_days(connection: duckdb.DuckDBPyConnection, calendar: WorkingCalendar) -> None:
    """Make ``calendar_days`` hold exactly this calendar's days, in one transaction."""
    rows = calendar_rows(calendar, datetime.now(TOWN_TIMEZONE).year)
    with transaction(connection) as cursor:
        cursor.execute("DELETE FROM calendar_days")
        cursor.executemany("INSERT INTO calendar_days (day, working, working_upto) VALUES (?, ?, ?)", rows)
