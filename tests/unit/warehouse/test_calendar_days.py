"""Working-day time limits of approval items: the stream and the warehouse count the same deadline."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from schemas import TOWN_TIMEZONE
from schemas.approvals import CatalogueError, load_catalogue
from schemas.working_time import load_calendar
from warehouse.approvals import replace_approval_items
from warehouse.calendar_days import calendar_rows, replace_calendar_days

WAREHOUSE = Path(__file__).resolve().parents[3] / "warehouse"
CATALOGUE = """
time_limit_unit: working_days
departments: {market: 市场监管局}
items:
  - {code: W-5, name: 五个工作日, level: municipal, department: market, fully_online: false, time_limit_days: 5}
  - {code: C-5, name: 五个自然日, level: municipal, department: market, fully_online: false, time_limit_days: 5,
     time_limit_unit: calendar_days}
"""


def catalogue_file(tmp_path: Path, text: str = CATALOGUE) -> Path:
    path = tmp_path / "items.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_unit_is_the_files_unless_an_item_names_its_own(tmp_path: Path) -> None:
    items = load_catalogue(catalogue_file(tmp_path)).items
    assert (items["W-5"].time_limit_unit, items["C-5"].time_limit_unit) == ("working_days", "calendar_days")
    assert load_catalogue().items["320411-XK-001"].time_limit_unit == "calendar_days"  # the shipped file's default


def test_an_unknown_unit_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="time_limit_unit 'hours'"):
        load_catalogue(catalogue_file(tmp_path, CATALOGUE.replace("unit: working_days", "unit: hours")))


def test_the_working_upto_count_steps_only_on_working_days() -> None:
    rows = {day: (working, upto) for day, working, upto in calendar_rows(load_calendar(), 2026)}
    friday, saturday, monday = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 30)
    assert rows[saturday] == (False, rows[friday][1])
    assert rows[monday] == (True, rows[friday][1] + 1)
    assert rows[date(2026, 10, 1)][0] is False  # National Day
    assert min(rows).year <= 2021 and max(rows).year >= 2036


@pytest.mark.parametrize(
    "submitted",
    [
        datetime(2026, 11, 25, 9, 0, tzinfo=TOWN_TIMEZONE),  # a Wednesday: Thu Fri Mon Tue Wed
        datetime(2026, 9, 29, 23, 30, tzinfo=TOWN_TIMEZONE),  # just before the National Day holidays
        datetime(2026, 2, 13, 8, 0, tzinfo=TOWN_TIMEZONE),  # before the Spring Festival
    ],
)
def test_the_warehouse_and_the_stream_give_the_same_deadline(tmp_path: Path, submitted: datetime) -> None:
    calendar = load_calendar()
    catalogue = load_catalogue(catalogue_file(tmp_path))
    connection = duckdb.connect()
    for schema in (WAREHOUSE / "schema.sql", WAREHOUSE / "approvals.sql"):
        connection.execute(schema.read_text())
    replace_approval_items(connection, catalogue)
    replace_calendar_days(connection, calendar)
    for code in ("W-5", "C-5"):
        connection.execute(
            "INSERT INTO applications (application_id, item_code, applicant_uscc, status, submitted_at, updated_at) "
            "VALUES (?, ?, '91350100M000100Y43', 'submitted', ?, ?)",
            [code, code, submitted, submitted],
        )
    due = dict(connection.execute("SELECT application_id, due_at FROM application_facts").fetchall())
    for code in ("W-5", "C-5"):
        assert due[code] == catalogue.items[code].due_at(submitted, calendar), code
    assert due["W-5"] > due["C-5"]  # weekends and holidays push the working-day deadline later
    if submitted.month == 11:
        assert due["W-5"] == datetime(2026, 12, 3, tzinfo=TOWN_TIMEZONE)  # midnight after Wednesday 2 December
