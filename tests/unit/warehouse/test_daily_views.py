"""The daily views (warehouse/daily.sql): hand-counted answers from a few rows, and their masked copies.

The warehouse is built by the writer as the sink builds it (every schema file, then the masked
views), so the views are tested as an analyst and the commander meet them. Times that the views
judge against now() (age, overdue) are set relative to now; the days are fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from warehouse.masking import MASKED_SCHEMA, use_schema
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import connect

TOWN = ZoneInfo("Asia/Shanghai")
NOW = datetime.now(UTC)
G1, G2 = "320411101001001", "320411101002001"
DAILY_VIEWS = (
    "daily_cases_by_category_grid",
    "daily_open_cases_by_department_age",
    "daily_population_by_community",
    "daily_enterprises_by_type_place",
    "daily_approvals_by_item_window",
)


def town(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOWN)


def insert(connection: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        columns = ", ".join(f'"{name}"' for name in row)
        connection.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
        )


def case(case_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "category": "0101",
        "category_name": "暴露垃圾",
        "department": "env",
        "grid_code": G1,
        "community": "孟城社区",
        "reporter_id": "GW001",
        "status": status,
        "reported_at": town("2026-11-25 09:00"),
        **fields,
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path / "warehouse.duckdb", Resolver(ResolutionRules.load()))
    yield connection
    connection.close()


def rows(connection: duckdb.DuckDBPyConnection, sql: str, schema: str = "main") -> list[tuple[Any, ...]]:
    cursor = connection.cursor()
    try:
        use_schema(cursor, schema)
        return cursor.execute(sql).fetchall()
    finally:
        cursor.close()


def test_cases_by_category_and_grid_count_each_case_once_on_its_reporting_day(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    late = town("2026-11-25 18:00")
    insert(
        warehouse,
        "cases",
        [
            # On the 25th, 0101 in G1: closed on time, closed late, open and overdue, parked; reported 4.
            case("C1", "closed", due_at=late, closed_at=town("2026-11-25 17:00")),
            case("C2", "closed", due_at=late, closed_at=town("2026-11-26 10:00")),
            case("C3", "dispatched", due_at=late),
            case("C4", "parked", due_at=NOW + timedelta(days=30)),
            # 0102 in G2 the same day: rejected and cancelled, neither open nor closed.
            case("C5", "rejected", category="0102", category_name="占道经营", grid_code=G2, community="万绥社区"),
            case("C6", "cancelled", category="0102", category_name="占道经营", grid_code=G2, community="万绥社区"),
            # Reported at 23:30 town time on the 24th (15:30 UTC): the 24th, open, not yet due.
            case("C7", "reported", reported_at=town("2026-11-24 23:30"), due_at=NOW + timedelta(days=1)),
        ],
    )
    found = rows(
        warehouse,
        "SELECT day, category, category_name, grid_code, community, reported, open, parked, overdue, closed, "
        "closed_on_time, rejected, cancelled FROM daily_cases_by_category_grid ORDER BY day, category",
    )
    assert found == [
        (date(2026, 11, 24), "0101", "暴露垃圾", G1, "孟城社区", 1, 1, 0, 0, 0, 0, 0, 0),
        (date(2026, 11, 25), "0101", "暴露垃圾", G1, "孟城社区", 4, 2, 1, 1, 2, 1, 0, 0),
        (date(2026, 11, 25), "0102", "占道经营", G2, "万绥社区", 2, 0, 0, 0, 0, 0, 1, 1),
    ]


def test_open_cases_by_department_fill_every_age_band_as_of_now(warehouse: duckdb.DuckDBPyConnection) -> None:
    ago = lambda hours: NOW - timedelta(hours=hours)  # noqa: E731
    insert(
        warehouse,
        "cases",
        [
            case("E1", "reported", reported_at=ago(2), due_at=NOW + timedelta(hours=22)),
            case("E2", "dispatched", reported_at=ago(47), due_at=ago(1), escalation_level=1),
            case("E3", "in_handling", reported_at=ago(100), due_at=ago(30), escalation_level=2),
            case("E4", "parked", reported_at=ago(24 * 10), due_at=NOW + timedelta(days=5), escalation_level=2),
            case("E5", "closed", reported_at=ago(24 * 20), closed_at=ago(24 * 19)),  # ended: not open
            case("W1", "accepted", department="water", reported_at=ago(30)),
            case("N1", "reported", department=None, reported_at=ago(200)),  # not routed yet
        ],
    )
    found = rows(
        warehouse,
        "SELECT department, band_no, age_band, open_cases, parked, overdue, escalated "
        "FROM daily_open_cases_by_department_age ORDER BY department NULLS LAST, band_no",
    )
    assert found == [
        ("env", 1, "< 1 day", 1, 0, 0, 0),
        ("env", 2, "1-3 days", 1, 0, 1, 0),
        ("env", 3, "3-7 days", 1, 0, 1, 1),
        ("env", 4, "> 7 days", 1, 1, 0, 0),
        ("water", 1, "< 1 day", 0, 0, 0, 0),
        ("water", 2, "1-3 days", 1, 0, 0, 0),
        ("water", 3, "3-7 days", 0, 0, 0, 0),
        ("water", 4, "> 7 days", 0, 0, 0, 0),
        (None, 1, "< 1 day", 0, 0, 0, 0),
        (None, 2, "1-3 days", 0, 0, 0, 0),
        (None, 3, "3-7 days", 0, 0, 0, 0),
        (None, 4, "> 7 days", 1, 0, 0, 0),
    ]
    oldest = rows(warehouse, "SELECT oldest_reported_at FROM daily_open_cases_by_department_age WHERE band_no = 4")
    assert sorted(value for (value,) in oldest if value is not None) == [ago(24 * 10), ago(200)]


def base_data(connection: duckdb.DuckDBPyConnection) -> None:
    """Two cells of two communities, a house in each, four people and two organisations."""
    insert(
        connection,
        "grid_cells",
        [
            {
                "code": G1,
                "name": "通江路",
                "kind": "basic",
                "squad": "mengcheng",
                "community": "孟城社区",
                "workers": ["GW001"],
            },
            {
                "code": G2,
                "name": "万绥街",
                "kind": "basic",
                "squad": "wansui",
                "community": "万绥社区",
                "workers": ["GW002"],
            },
        ],
    )
    insert(
        connection,
        "places",
        [
            {"place_key": f"{G1}|通江路1号", "place_id": "H1", "address_norm": "孟河镇通江路1号", "grid_code": G1},
            {"place_key": f"{G2}|万绥街8号", "place_id": "H2", "address_norm": "孟河镇万绥街8号", "grid_code": G2},
        ],
    )
    this_year = datetime.now(TOWN).year
    insert(
        connection,
        "people",
        [
            {
                "person_key": "320411195001010011",
                "id_number": "320411195001010011",
                "name": "王建国",
                "gender": "M",
                "birth_date": date(1950, 1, 1),
                "address_norm": "孟河镇通江路1号",
                "employer_uscc": None,
            },
            {
                "person_key": f"3204112{this_year - 10}01010020"[:18],
                "id_number": None,
                "name": "王小红",
                "gender": "F",
                "birth_date": date(this_year - 10, 1, 1),
                "address_norm": "孟河镇通江路1号",
            },
            {
                "person_key": "320411199001010031",
                "id_number": "320411199001010031",
                "name": "李强",
                "gender": "M",
                "birth_date": date(1990, 1, 1),
                "address_norm": "孟河镇万绥街8号",
                "employer_uscc": "91320411MA1X00001A",
            },
            {
                "person_key": "320411199201010041",
                "id_number": "320411199201010041",
                "name": "赵敏",
                "gender": "F",
                "birth_date": None,
                "address_norm": "外地某路9号",
                "employer_uscc": "91320411MA1X00001A",
            },
        ],
    )
    insert(
        connection,
        "organisations",
        [
            {
                "organisation_key": "91320411MA1X00001A",
                "uscc": "91320411MA1X00001A",
                "name": "常州孟河汽配有限公司",
                "legal_representative": "李强",
                "legal_representative_id": "320411199001010031",
                "address_norm": "孟河镇万绥街8号",
            },
            {
                "organisation_key": "92320411MA1X00002B",
                "uscc": "92320411MA1X00002B",
                "name": "孟河小吃店",
                "address_norm": "外地某路9号",
            },
            {"organisation_key": "~register:7", "uscc": None, "name": "无码商户"},
        ],
    )


def test_population_by_community_counts_each_resident_where_their_home_lies(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    base_data(warehouse)
    found = rows(
        warehouse,
        "SELECT community, population, male, female, aged_0_17, aged_18_59, aged_60_plus, age_unknown "
        "FROM daily_population_by_community ORDER BY community NULLS LAST",
    )
    assert found == [
        ("万绥社区", 1, 1, 0, 0, 1, 0, 0),
        ("孟城社区", 2, 1, 1, 1, 0, 1, 0),
        (None, 1, 0, 1, 0, 0, 0, 1),
    ]


def test_enterprises_by_type_and_registered_place(warehouse: duckdb.DuckDBPyConnection) -> None:
    base_data(warehouse)
    found = rows(
        warehouse,
        "SELECT type_code, organisation_type, registration_division, community, organisations, with_employees, "
        "employees FROM daily_enterprises_by_type_place ORDER BY type_code NULLS LAST",
    )
    assert found == [
        ("91", "企业", "320411", "万绥社区", 1, 1, 2),
        ("92", "个体工商户", "320411", None, 1, 0, 0),
        (None, None, None, None, 1, 0, 0),
    ]


def applications(connection: duckdb.DuckDBPyConnection) -> None:
    """One approval item at window 3 and four applications of it, at the window and online."""
    insert(
        connection,
        "approval_items",
        [
            {
                "code": "A01",
                "name": "营业执照",
                "level": "city",
                "department": "market",
                "fully_online": False,
                "time_limit_days": 3,
            },
        ],
    )
    insert(
        connection,
        "service_windows",
        [{"window_no": 3, "department": "market", "department_name": "市场监管", "all_items": True}],
    )
    day = town("2026-11-25 10:00")
    insert(
        connection,
        "applications",
        [
            # At window 3 on the 25th: one finished on the 26th in time, one finished the same day.
            {
                "application_id": "X1",
                "item_code": "A01",
                "status": "approved",
                "submitted_at": day,
                "updated_at": day + timedelta(days=1),
                "window_no": 3,
                "channel": "window",
            },
            {
                "application_id": "X2",
                "item_code": "A01",
                "status": "refused",
                "submitted_at": day,
                "updated_at": day + timedelta(hours=2),
                "window_no": 3,
                "channel": "window",
            },
            # Online on the 25th, still in progress and past its 3 days.
            {
                "application_id": "X3",
                "item_code": "A01",
                "status": "accepted",
                "submitted_at": day,
                "updated_at": day,
                "channel": "online",
            },
            # Online on the 20th, finished late on the 25th.
            {
                "application_id": "X4",
                "item_code": "A01",
                "status": "approved",
                "submitted_at": day - timedelta(days=5),
                "updated_at": day + timedelta(hours=1),
                "channel": "online",
            },
        ],
    )


def test_approvals_by_item_and_window_count_receipts_and_finishes_on_their_own_days(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    applications(warehouse)
    found = rows(
        warehouse,
        "SELECT day, item_code, item_name, window_no, window_department, channel, received, received_online, "
        "in_progress, overdue_in_progress, finished, finished_on_time FROM daily_approvals_by_item_window "
        "ORDER BY day, window_no NULLS LAST",
    )
    assert found == [
        (date(2026, 11, 20), "A01", "营业执照", None, None, "online", 1, 1, 0, 0, 0, 0),
        (date(2026, 11, 25), "A01", "营业执照", 3, "market", "window", 2, 0, 0, 0, 1, 1),
        (date(2026, 11, 25), "A01", "营业执照", None, None, "online", 1, 1, 1, 1, 1, 0),
        (date(2026, 11, 26), "A01", "营业执照", 3, "market", "window", 0, 0, 0, 0, 1, 1),
    ]


def test_an_analyst_reads_every_daily_view_masked_and_no_name_id_or_address_leaks(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    base_data(warehouse)
    applications(warehouse)
    insert(warehouse, "cases", [case("C1", "reported", reporter_id="320411195001010011")])
    warehouse.execute("UPDATE applications SET applicant_id_number = '320411199001010031'")
    personal = (
        "王建国",
        "王小红",
        "李强",
        "赵敏",
        "320411195001010011",
        "320411199001010031",
        "通江路1号",
        "万绥街8号",
    )
    for view in DAILY_VIEWS:
        masked = rows(warehouse, f"SELECT * FROM {view} ORDER BY ALL", MASKED_SCHEMA)
        whole = rows(warehouse, f"SELECT * FROM {view} ORDER BY ALL")
        assert masked, view
        assert masked == whole, f"{view} holds only counts and public codes: its masked copy is the same"
        text = repr(masked)
        assert not [value for value in personal if value in text], view
