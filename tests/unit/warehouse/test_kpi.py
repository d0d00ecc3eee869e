"""KPI views and queries: denominators (§3.6), groupings, days, months and trends, patrol compliance (per
worker and per squad against the roster), the service centre's applications, time zones.

Every expected number below is worked out by hand from the fixture rows (see the comments), not by
running the same SQL another way.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
from shapely.geometry import box

from schemas.grid import Grid, GridCell
from schemas.personal import pseudonym
from warehouse.grid_cells import replace_grid_cells
from warehouse.kpi import (
    GROUPINGS,
    TREND_MAX_DAYS,
    approvals_kpi_sql,
    kpi_sql,
    kpi_trend_sql,
    patrol_sql,
)
from warehouse.masking import MASKED_SCHEMA, relations_of, use_schema
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.sql_guard import check_query
from warehouse.upsert import upsert_rows
from warehouse.writer import ENTITY_TABLES
from warehouse.writer import connect as connect_file

WAREHOUSE = Path(__file__).resolve().parents[3] / "warehouse"
TOWN = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 25)

G1, G2, G3, G4 = "320411101001001", "320411101001002", "320411101002001", "320411101003001"


def town(text: str) -> datetime:
    """A town-time instant, e.g. town('2026-11-25 09:00')."""
    return datetime.fromisoformat(text).replace(tzinfo=TOWN)


def connect(session_zone: str = "UTC") -> duckdb.DuckDBPyConnection:
    """A fresh warehouse. The session zone is deliberately not the town's, so a KPI that took the
    day from the session instead of Asia/Shanghai would put cases on the wrong day."""
    connection = duckdb.connect()
    connection.execute(f"SET TimeZone = '{session_zone}'")
    connection.execute((WAREHOUSE / "schema.sql").read_text())
    connection.execute((WAREHOUSE / "cases.sql").read_text())
    connection.execute((WAREHOUSE / "approvals.sql").read_text())
    return connection


def insert(connection: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        columns = ", ".join(f'"{name}"' for name in row)
        marks = ", ".join("?" for _ in row)
        connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


def case(
    case_id: str,
    squad: str,
    department: str,
    grid: str,
    worker: str,
    status: str,
    *,
    due: str | None,
    closed: str | None = None,
    hours: float | None = None,
    reported: str | None = None,
) -> dict[str, Any]:
    """A case row; a closed case's reported_at is `hours` before closing, so time to close is exact."""
    closed_at = town(closed) if closed else None
    if reported is not None:
        reported_at = town(reported)
    elif closed_at is not None and hours is not None:
        reported_at = closed_at - timedelta(hours=hours)
    else:
        reported_at = town("2026-11-24 08:00")
    return {
        "case_id": case_id,
        "category": "0101",
        "department": department,
        "squad": squad,
        "grid_code": grid,
        "reporter_id": worker,
        "status": status,
        "reported_at": reported_at,
        "due_at": town(due) if due else None,
        "closed_at": closed_at,
        "report_count": 1,
        "source": "test",
        "source_record_id": case_id,
        "record_uid": f"uid-{case_id}",
    }


# Ten cases in the period 2026-11-25 (C01-C10) and three elsewhere (C11-C13).
#   closed: C01-C07 (7); on time: C01-C05 (5; C04 closes exactly at its deadline);
#   late: C06 (due the day before, closed on the 25th, so it belongs to the 25th), C07.
#   rejected: C08, excluded from the denominator although it has a due_at, a closed_at and a rework.
#   open, due on the 25th: C09 (overdue), C10.
#   hours to close of C01..C07: 2, 4, 6, 8, 10, 20, 30.
CASES = [
    case("C01", "wansui", "env", G1, "W1", "closed", due="2026-11-25 18:00", closed="2026-11-25 09:00", hours=2),
    case("C02", "wansui", "env", G1, "W1", "closed", due="2026-11-25 18:00", closed="2026-11-25 10:00", hours=4),
    case("C03", "wansui", "market", G2, "W2", "closed", due="2026-11-25 18:00", closed="2026-11-25 11:00", hours=6),
    case("C04", "mengcheng", "market", G2, "W2", "closed", due="2026-11-25 12:00", closed="2026-11-25 12:00", hours=8),
    case("C05", "mengcheng", "env", G3, "W3", "closed", due="2026-11-25 23:45", closed="2026-11-25 23:30", hours=10),
    case("C06", "mengcheng", "land", G3, "W3", "closed", due="2026-11-24 17:00", closed="2026-11-25 14:00", hours=20),
    case("C07", "xiaohe", "land", G4, "W4", "closed", due="2026-11-25 08:00", closed="2026-11-25 15:00", hours=30),
    case("C08", "xiaohe", "env", G4, "W4", "rejected", due="2026-11-25 18:00", closed="2026-11-25 13:00", hours=3),
    case("C09", "xiaohe", "land", G4, "W1", "in_handling", due="2026-11-25 17:00"),
    case("C10", "wansui", "market", G1, "W2", "dispatched", due="2026-11-25 20:00"),
    # Other days: C11 closed on time on the 24th (1 hour), C12 open and due on the 27th, C13 open
    # with no deadline yet (due in no period).
    case("C11", "wansui", "env", G1, "W1", "closed", due="2026-11-24 18:00", closed="2026-11-24 16:00", hours=1),
    case("C12", "mengcheng", "env", G3, "W3", "dispatched", due="2026-11-27 10:00"),
    case("C13", "xiaohe", "land", G4, "W4", "reported", due=None),
]


def transition(case_id: str, seq: int, from_status: str | None, to_status: str, action: str) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "seq": seq,
        "from_status": from_status,
        "to_status": to_status,
        "action": action,
        "actor": "someone",
        "at": town("2026-11-25 08:00") + timedelta(minutes=seq),
    }


FLOW = [
    ("reported", "accepted", "accept"),
    ("accepted", "dispatched", "dispatch"),
    ("dispatched", "in_handling", "start"),
    ("in_handling", "handled", "handle"),
]
TRANSITIONS = [
    # C02: one failed verification (handled -> returned), then handled again and closed: 1 rework.
    *[transition("C02", i, *step) for i, step in enumerate(FLOW)],
    transition("C02", 4, "handled", "returned", "rework"),
    transition("C02", 5, "returned", "in_handling", "restart"),
    transition("C02", 6, "in_handling", "handled", "handle"),
    transition("C02", 7, "handled", "verified", "verify"),
    transition("C02", 8, "verified", "closed", "close"),
    # C06: the department declined it first (dispatched -> returned, 回退): not a rework.
    transition("C06", 0, "accepted", "dispatched", "dispatch"),
    transition("C06", 1, "dispatched", "returned", "decline"),
    transition("C06", 2, "returned", "dispatched", "redispatch"),
    # C08: reworked, then rejected: its rework must not leak into the numerator either.
    transition("C08", 0, "in_handling", "handled", "handle"),
    transition("C08", 1, "handled", "returned", "rework"),
    transition("C08", 2, "returned", "rejected", "reject"),
]


@pytest.fixture
def warehouse() -> duckdb.DuckDBPyConnection:
    connection = connect()
    insert(connection, "cases", CASES)
    insert(connection, "case_transitions", TRANSITIONS)
    return connection


def kpis(connection: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = connection.execute(sql)
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def expected(
    due: int, closed: int, on_time: int, reworks: int, median: float | None, p90: float | None
) -> dict[str, Any]:
    """The KPI row for hand-counted totals; ratios are the hand counts divided, to 4 places."""
    return {
        "cases_due": due,
        "closed": closed,
        "closed_on_time": on_time,
        "closure_rate": pytest.approx(round(closed / due, 4), abs=1e-12),
        "on_time_rate": pytest.approx(round(on_time / due, 4), abs=1e-12),
        "rework_rate": pytest.approx(round(reworks / due, 4), abs=1e-12),
        "median_hours_to_close": pytest.approx(median, abs=1e-9),
        "p90_hours_to_close": pytest.approx(p90, abs=1e-9),
        "parked": 0,
        "escalated": 0,
        "escalation_rate": pytest.approx(0.0, abs=1e-12),
    }


# Case KPIs ---------------------------------------------------------------------------------------


def test_the_day_totals_use_the_fixed_denominator(warehouse: duckdb.DuckDBPyConnection) -> None:
    # Due: C01-C07, C09, C10 = 9 (C08 rejected). Closed 7, on time 5, reworks 1 (C02).
    # Hours 2,4,6,8,10,20,30: median 8; p90 at position 0.9*(7-1) = 5.4 -> 20 + 0.4*(30-20) = 24.
    [row] = kpis(warehouse, kpi_sql(day=DAY))
    assert row == expected(9, 7, 5, 1, 8.0, 24.0)
    assert (row["closure_rate"], row["on_time_rate"], row["rework_rate"]) == (
        pytest.approx(0.7778),
        pytest.approx(0.5556),
        pytest.approx(0.1111),
    )


def test_rejected_case_is_outside_every_count(warehouse: duckdb.DuckDBPyConnection) -> None:
    facts = dict(warehouse.execute("SELECT case_id, is_due FROM kpi_case_facts").fetchall())
    assert facts["C08"] is False
    warehouse.execute("UPDATE cases SET status = 'closed' WHERE case_id = 'C08'")
    # Once C08 counts: due 10, closed 8, on time 6 (13:00 <= 18:00), reworks 2, hours + 3.
    # Hours 2,3,4,6,8,10,20,30: median (6+8)/2 = 7; p90 position 6.3 -> 20 + 0.3*10 = 23.
    [row] = kpis(warehouse, kpi_sql(day=DAY))
    assert row == expected(10, 8, 6, 2, 7.0, 23.0)


def test_decline_is_not_rework(warehouse: duckdb.DuckDBPyConnection) -> None:
    reworks = dict(warehouse.execute("SELECT case_id, rework_count FROM kpi_case_facts").fetchall())
    assert reworks["C02"] == 1
    assert reworks["C06"] == 0


def test_all_days_count_each_case_once(warehouse: duckdb.DuckDBPyConnection) -> None:
    # The 9 of the 25th + C11 + C12 = 11 due; C13 (no deadline, open) is due nowhere.
    # Closed 8, on time 6, reworks 1. Hours 1,2,4,6,8,10,20,30: median 7; p90 position 6.3 -> 23.
    [row] = kpis(warehouse, kpi_sql())
    assert row == expected(11, 8, 6, 1, 7.0, 23.0)


def test_late_case_counts_on_its_closing_day_not_its_due_day(warehouse: duckdb.DuckDBPyConnection) -> None:
    # The 24th: only C11. C06 was due on the 24th but closed on the 25th, so it is counted there.
    [row] = kpis(warehouse, kpi_sql(day=date(2026, 11, 24)))
    assert row == expected(1, 1, 1, 0, 1.0, 1.0)


def test_open_case_counts_on_its_due_day(warehouse: duckdb.DuckDBPyConnection) -> None:
    [row] = kpis(warehouse, kpi_sql(day=date(2026, 11, 27)))
    assert (row["cases_due"], row["closed"], row["closure_rate"]) == (1, 0, 0.0)
    assert row["median_hours_to_close"] is None


def test_nothing_due_gives_nulls_not_zero_rates(warehouse: duckdb.DuckDBPyConnection) -> None:
    [row] = kpis(warehouse, kpi_sql(day=date(2026, 11, 30)))
    assert row == {
        "cases_due": 0,
        "closed": 0,
        "closed_on_time": 0,
        "closure_rate": None,
        "on_time_rate": None,
        "rework_rate": None,
        "median_hours_to_close": None,
        "p90_hours_to_close": None,
        "parked": 0,
        "escalated": 0,
        "escalation_rate": None,
    }
    assert kpis(warehouse, kpi_sql(by="squad", day=date(2026, 11, 30))) == []


# Per group on the 25th, counted by hand from CASES (C08 rejected, so absent everywhere).
# p90 of two values a<b: a + 0.9*(b-a); of three a<b<c: b + 0.8*(c-b).
BY_GROUP: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "squad": [
        # C04 C05 C06: closed 3, on time C04 C05; hours 8,10,20 -> median 10, p90 10+0.8*10 = 18.
        ("mengcheng", expected(3, 3, 2, 0, 10.0, 18.0)),
        # C01 C02 C03 C10: closed 3, all on time, C02 reworked; hours 2,4,6 -> 4, 4+0.8*2 = 5.6.
        ("wansui", expected(4, 3, 3, 1, 4.0, 5.6)),
        # C07 C09: closed 1 (late); hours 30.
        ("xiaohe", expected(2, 1, 0, 0, 30.0, 30.0)),
    ],
    "department": [
        # C01 C02 C05: hours 2,4,10 -> 4, 4+0.8*6 = 8.8.
        ("env", expected(3, 3, 3, 1, 4.0, 8.8)),
        # C06 C07 C09: hours 20,30 -> 25, 20+0.9*10 = 29.
        ("land", expected(3, 2, 0, 0, 25.0, 29.0)),
        # C03 C04 C10: hours 6,8 -> 7, 6+0.9*2 = 7.8.
        ("market", expected(3, 2, 2, 0, 7.0, 7.8)),
    ],
    "grid_code": [
        ("320411101001001", expected(3, 2, 2, 1, 3.0, 3.8)),  # C01 C02 C10: hours 2,4
        ("320411101001002", expected(2, 2, 2, 0, 7.0, 7.8)),  # C03 C04: hours 6,8
        ("320411101002001", expected(2, 2, 1, 0, 15.0, 19.0)),  # C05 C06: hours 10,20
        ("320411101003001", expected(2, 1, 0, 0, 30.0, 30.0)),  # C07 C09: hours 30
    ],
    "worker": [
        ("W1", expected(3, 2, 2, 1, 3.0, 3.8)),  # C01 C02 C09 (C11 is another day)
        ("W2", expected(3, 2, 2, 0, 7.0, 7.8)),  # C03 C04 C10
        ("W3", expected(2, 2, 1, 0, 15.0, 19.0)),  # C05 C06
        ("W4", expected(1, 1, 0, 0, 30.0, 30.0)),  # C07 (C08 rejected)
    ],
}
COLUMN_OF = {"squad": "squad", "department": "department", "grid": "grid_code", "worker": "worker"}


@pytest.mark.parametrize("by", GROUPINGS)
def test_grouping(warehouse: duckdb.DuckDBPyConnection, by: str) -> None:
    column = COLUMN_OF[by]
    rows = kpis(warehouse, kpi_sql(by=by, day=DAY))  # type: ignore[arg-type]
    assert [row[column] for row in rows] == [key for key, _ in BY_GROUP[column]]
    for row, (_, want) in zip(rows, BY_GROUP[column], strict=True):
        assert {name: value for name, value in row.items() if name != column} == want


def test_groupings_cover_the_literal() -> None:
    assert set(GROUPINGS) == set(COLUMN_OF) == {"squad", "department", "grid", "worker"}


def test_grouping_without_day_spans_all_days(warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = {row["worker"]: row for row in kpis(warehouse, kpi_sql(by="worker"))}
    # W1 gains C11 (closed on time, 1 h): due 4, closed 3, on time 3; hours 1,2,4 -> 2, 2+0.8*2 = 3.6.
    assert rows["W1"] == {"worker": "W1", **expected(4, 3, 3, 1, 2.0, 3.6)}
    # W3 gains C12 (open): due 3.
    assert rows["W3"]["cases_due"] == 3


def test_unknown_grouping_is_refused_not_interpolated() -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        kpi_sql(by="squad; DROP TABLE cases")  # type: ignore[arg-type]


@pytest.mark.parametrize("day", ["2026-11-25", "2026-11-25'; DROP TABLE cases; --", datetime(2026, 11, 25, 23, 0)])
def test_day_must_be_a_date(day: object) -> None:
    with pytest.raises(TypeError):
        kpi_sql(day=day)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        patrol_sql(day=day)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kpi_sql(month=day)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kpi_trend_sql(day)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        approvals_kpi_sql(month=day)  # type: ignore[arg-type]


# Time zone -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("session_zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_day_is_the_town_day_whatever_the_session_zone(session_zone: str) -> None:
    # Late: 23:30 in town is 15:30Z (the 25th) but 00:30 on the 26th in Tokyo.
    # Early: 00:30 in town on the 26th is 16:30Z on the 25th.
    connection = connect(session_zone)
    insert(
        connection,
        "cases",
        [
            case(
                "LATE", "wansui", "env", G1, "W1", "closed", due="2026-11-26 12:00", closed="2026-11-25 23:30", hours=1
            ),
            case(
                "EARLY", "wansui", "env", G1, "W1", "closed", due="2026-11-26 12:00", closed="2026-11-26 00:30", hours=1
            ),
        ],
    )
    days = dict(connection.execute("SELECT case_id, period_date FROM kpi_case_facts").fetchall())
    assert days == {"LATE": date(2026, 11, 25), "EARLY": date(2026, 11, 26)}
    assert kpis(connection, kpi_sql(day=date(2026, 11, 25)))[0]["cases_due"] == 1


# Schema ----------------------------------------------------------------------------------------------


def test_ddl_is_idempotent_and_keeps_rows(warehouse: duckdb.DuckDBPyConnection) -> None:
    warehouse.execute((WAREHOUSE / "schema.sql").read_text())
    warehouse.execute((WAREHOUSE / "cases.sql").read_text())
    assert warehouse.execute("SELECT count(*) FROM cases").fetchone() == (13,)


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("cases", case("C01", "xiaohe", "env", G1, "W1", "verified", due="2026-11-25 18:00")),
        ("case_transitions", transition("C02", 4, "handled", "verified", "verify")),
        ("patrol_tracks", {"worker_id": "W1", "recorded_at": town("2026-11-25 08:00"), "lat": 31.9, "lon": 119.8}),
    ],
)
def test_tables_are_keyed_for_the_writer_upsert(table: str, row: dict[str, Any]) -> None:
    """A replayed batch replaces the rows it wrote before, by the key the writer upserts on."""
    connection = connect()
    key = next(key for name, key in ENTITY_TABLES.values() if name == table)
    insert(connection, table, [row])
    upsert_rows(connection, table, key, [row, row])
    upsert_rows(connection, table, key, [row])
    assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


# Patrol compliance ---------------------------------------------------------------------------------


def track(worker: str, start: str, minutes: int, step: int = 5) -> list[dict[str, Any]]:
    """Points every `step` minutes from `start` (town time) for `minutes` minutes, both ends included."""
    first = town(start)
    return [
        {
            "worker_id": worker,
            "recorded_at": first + timedelta(minutes=offset),
            "lat": 31.9,
            "lon": 119.8,
            "grid_code": G1,
        }
        for offset in range(0, minutes + 1, step)
    ]


@pytest.fixture
def patrols() -> duckdb.DuckDBPyConnection:
    connection = connect()
    insert(
        connection,
        "patrol_tracks",
        [
            # P1: two ~60-minute patrols. The first starts 07:00 in town = 23:00Z the day before,
            # so a UTC day would cut it in two and leave neither long enough.
            *track("P1", "2026-11-25 07:00", 60),
            *track("P1", "2026-11-25 15:00", 65),
            # P2: one 65-minute session only.
            *track("P2", "2026-11-25 08:00", 65),
            # P3: two 30-minute sessions.
            *track("P3", "2026-11-25 08:00", 30),
            *track("P3", "2026-11-25 14:00", 30),
            # P4: 08:00-08:30, a 25-minute gap, 08:55-09:25: two sessions of 30 minutes.
            *track("P4", "2026-11-25 08:00", 30),
            *track("P4", "2026-11-25 08:55", 30),
            # P5: 08:00-08:30, a 15-minute gap, 08:45-09:15: one 75-minute session.
            *track("P5", "2026-11-25 08:00", 30),
            *track("P5", "2026-11-25 08:45", 30),
            # P6: the limits: a gap of exactly 20 minutes does not split (08:00-08:20, 08:40-09:00
            # = 60 min); exactly 50 minutes is a patrol (14:00-14:50).
            *track("P6", "2026-11-25 08:00", 20),
            *track("P6", "2026-11-25 08:40", 20),
            *track("P6", "2026-11-25 14:00", 50),
            # P7: 49 minutes is not a patrol, twice.
            *track("P7", "2026-11-25 08:00", 49, step=7),
            *track("P7", "2026-11-25 14:00", 49, step=7),
            # P8: two patrols on the 24th, none on the 25th: the 24th is compliant on its own.
            *track("P8", "2026-11-24 08:00", 60),
            *track("P8", "2026-11-24 15:00", 60),
        ],
    )
    return connection


def test_patrol_compliance_for_the_day(patrols: duckdb.DuckDBPyConnection) -> None:
    rows = patrols.execute(patrol_sql(day=DAY)).fetchall()
    assert {row[5:] for row in rows} == {(None, None, None)}  # no roster installed: no squad, cell or coverage
    assert [row[:5] for row in rows] == [
        ("P1", DAY, 2, 125.0, True),  # 60 + 65 minutes
        ("P2", DAY, 1, 65.0, False),
        ("P3", DAY, 0, 60.0, False),
        ("P4", DAY, 0, 60.0, False),  # the 25-minute gap split it: 30 + 30
        ("P5", DAY, 1, 75.0, False),  # the 15-minute gap did not: one session 08:00-09:15
        ("P6", DAY, 2, 110.0, True),  # 60 (20-minute gap kept) + 50 (exactly the minimum)
        ("P7", DAY, 0, 98.0, False),  # 49 + 49
    ]


def test_sessions_split_on_gaps_longer_than_twenty_minutes(patrols: duckdb.DuckDBPyConnection) -> None:
    sessions = dict(
        patrols.execute(
            "SELECT worker_id, list(minutes ORDER BY started_at) FROM patrol_sessions WHERE day = ? GROUP BY worker_id",
            [DAY],
        ).fetchall()
    )
    assert sessions["P4"] == [30.0, 30.0]
    assert sessions["P5"] == [75.0]
    assert sessions["P6"] == [60.0, 50.0]
    assert sessions["P1"] == [60.0, 65.0]


def test_patrol_without_day_lists_every_worker_day(patrols: duckdb.DuckDBPyConnection) -> None:
    rows = patrols.execute(patrol_sql()).fetchall()
    assert rows[0][:5] == ("P8", date(2026, 11, 24), 2, 120.0, True)
    assert [(worker, day) for worker, day, *_ in rows[1:]] == [(f"P{n}", DAY) for n in range(1, 8)]


def test_a_session_never_spans_midnight_in_town() -> None:
    # 23:40-00:20 in town is one run of points 5 minutes apart, but two days: 23:40-23:55 and 00:00-00:20.
    connection = connect()
    insert(connection, "patrol_tracks", track("P9", "2026-11-25 23:40", 40))
    rows = connection.execute("SELECT day, minutes FROM patrol_sessions ORDER BY day").fetchall()
    assert rows == [(date(2026, 11, 25), 15.0), (date(2026, 11, 26), 20.0)]


def test_rule_numbers_live_in_one_view() -> None:
    connection = connect()
    assert connection.execute("SELECT * FROM patrol_rules").fetchall() == [(20, 50, 2)]


# Months and trends ---------------------------------------------------------------------------------

NOVEMBER = date(2026, 11, 18)  # any day of the month names it


def days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.fixture
def months(warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The cases above plus two at the month's edges in town time, which a UTC day would misplace:
    EDGE-IN closes 1 November 00:10 in town (31 October 16:10Z): November, on time, 5 hours.
    EDGE-OUT closes 1 December 00:30 in town (30 November 16:30Z): December."""
    insert(
        warehouse,
        "cases",
        [
            case(
                "EDGE-IN",
                "wansui",
                "env",
                G1,
                "W1",
                "closed",
                due="2026-11-02 12:00",
                closed="2026-11-01 00:10",
                hours=5,
            ),
            case(
                "EDGE-OUT",
                "xiaohe",
                "env",
                G4,
                "W4",
                "closed",
                due="2026-12-02 12:00",
                closed="2026-12-01 00:30",
                hours=2,
            ),
        ],
    )
    return warehouse


COUNTS = ("cases_due", "closed", "closed_on_time")


def test_a_month_is_the_sum_of_its_days(months: duckdb.DuckDBPyConnection) -> None:
    [month] = kpis(months, kpi_sql(month=NOVEMBER))
    # All of the 11 due cases of the fixture are in November, and EDGE-IN: 12 due, 9 closed, 7 on time,
    # 1 rework (C02). Hours 1,2,4,5,6,8,10,20,30: median 6; p90 position 7.2 -> 20 + 0.2*10 = 22.
    assert month == expected(12, 9, 7, 1, 6.0, 22.0)
    daily = [kpis(months, kpi_sql(day=day))[0] for day in days_of(date(2026, 11, 1), date(2026, 11, 30))]
    for column in COUNTS:
        assert month[column] == sum(row[column] for row in daily), column
    reworks = sum(round(row["rework_rate"] * row["cases_due"]) for row in daily if row["cases_due"])
    assert round(month["rework_rate"] * month["cases_due"]) == reworks == 1
    [december] = kpis(months, kpi_sql(month=date(2026, 12, 31)))
    assert (december["cases_due"], december["closed"]) == (1, 1)  # EDGE-OUT, not in November


def test_a_month_per_group_adds_up_to_the_town(months: duckdb.DuckDBPyConnection) -> None:
    [town_row] = kpis(months, kpi_sql(month=NOVEMBER))
    for by in GROUPINGS:
        rows = kpis(months, kpi_sql(by=by, month=NOVEMBER))  # type: ignore[arg-type]
        for column in COUNTS:
            assert sum(row[column] for row in rows) == town_row[column], (by, column)


def test_day_and_month_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        kpi_sql(day=DAY, month=DAY)
    with pytest.raises(ValueError, match="not both"):
        approvals_kpi_sql(day=DAY, month=DAY)


@pytest.mark.parametrize("session_zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_each_trend_row_is_that_days_kpis_and_empty_days_are_there(session_zone: str) -> None:
    connection = connect(session_zone)
    insert(connection, "cases", CASES)
    insert(connection, "case_transitions", TRANSITIONS)
    rows = kpis(connection, kpi_trend_sql(date(2026, 11, 28), days=7))
    assert [row["day"] for row in rows] == days_of(date(2026, 11, 22), date(2026, 11, 28))
    assert list(rows[0]) == ["day", *kpis(connection, kpi_sql())[0]]
    for row in rows:
        assert {name: value for name, value in row.items() if name != "day"} == kpis(
            connection, kpi_sql(day=row["day"])
        )[0], row["day"]
    by_day = {row["day"]: row for row in rows}
    assert by_day[date(2026, 11, 25)] == {"day": date(2026, 11, 25), **expected(9, 7, 5, 1, 8.0, 24.0)}
    for empty in (date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 26), date(2026, 11, 28)):
        assert by_day[empty] == {
            "day": empty,
            "cases_due": 0,
            "closed": 0,
            "closed_on_time": 0,
            "closure_rate": None,
            "on_time_rate": None,
            "rework_rate": None,
            "median_hours_to_close": None,
            "p90_hours_to_close": None,
            "parked": 0,
            "escalated": 0,
            "escalation_rate": None,
        }


def test_a_trend_of_one_day_and_of_a_leap_year(warehouse: duckdb.DuckDBPyConnection) -> None:
    assert kpis(warehouse, kpi_trend_sql(DAY, 1)) == [{"day": DAY, **kpis(warehouse, kpi_sql(day=DAY))[0]}]
    year = kpis(warehouse, kpi_trend_sql(date(2028, 12, 31), TREND_MAX_DAYS))
    assert (len(year), year[0]["day"]) == (366, date(2028, 1, 1))  # 2028 is a leap year


@pytest.mark.parametrize("days", [0, -3, TREND_MAX_DAYS + 1])
def test_a_trend_outside_one_to_366_days_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 366"):
        kpi_trend_sql(DAY, days)


@pytest.mark.parametrize("days", [True, 2.5, "30"])
def test_a_trend_length_must_be_an_int(days: object) -> None:
    with pytest.raises(TypeError):
        kpi_trend_sql(DAY, days)  # type: ignore[arg-type]


# Patrol compliance per squad -------------------------------------------------------------------------


def roster(cells: dict[str, tuple[str, tuple[str, ...]]]) -> Grid:
    """A small grid: code -> (squad, workers), each cell a separate square so none overlap."""
    return Grid(
        GridCell(code, f"cell {code}", "甲村", squad, "basic", None, workers, box(n, 0, n + 0.01, 0.01))  # type: ignore[arg-type]
        for n, (code, (squad, workers)) in enumerate(cells.items())
    )


# P9 is on the roster and never sends a track; X1 sends two patrols but is on no roster.
ROSTER = {
    G1: ("wansui", ("P1", "P2")),
    G2: ("wansui", ("P3", "P9")),
    G3: ("mengcheng", ("P4", "P5", "P6")),
    G4: ("xiaohe", ("P7", "P8")),
}
OUTSIDER = [*track("X1", "2026-11-25 08:00", 60), *track("X1", "2026-11-25 15:00", 60)]


def test_patrol_by_squad_counts_the_roster_not_only_who_sent_tracks(patrols: duckdb.DuckDBPyConnection) -> None:
    replace_grid_cells(patrols, roster(ROSTER))
    insert(patrols, "patrol_tracks", [*OUTSIDER, *track("X1", "2026-11-26 08:00", 60)])
    rows = patrols.execute(patrol_sql(by="squad")).fetchall()
    assert [description[0] for description in patrols.description] == [  # type: ignore[union-attr]
        "squad",
        "day",
        "workers",
        "patrolling",
        "compliant",
        "compliance_rate",
        "own_cell_share",
    ]
    the_24th, the_26th = date(2026, 11, 24), date(2026, 11, 26)
    # Every fixture point lies in G1, the cell of P1 and P2: only their points are in their own cell.
    assert rows == [
        # The 24th: only P8 went out (two patrols), outside its cell G4.
        ("mengcheng", the_24th, 3, 0, 0, 0.0, None),
        ("wansui", the_24th, 4, 0, 0, 0.0, None),
        ("xiaohe", the_24th, 2, 1, 1, 0.5, 0.0),
        # The 25th: P4 P5 P6 out, P6 compliant; P1 P2 P3 out, P1 compliant, P9 absent but counted;
        # P7 out (not compliant), P8 absent. X1's compliant day counts for no squad. Wansui's points:
        # P1 13 + 14, P2 14 in their own G1; P3 7 + 7 outside G2: 41 of 55.
        ("mengcheng", DAY, 3, 3, 1, 0.3333, 0.0),
        ("wansui", DAY, 4, 3, 1, 0.25, 0.7455),
        ("xiaohe", DAY, 2, 1, 0, 0.0, 0.0),
        # The 26th has a track (X1's), so it is a day judged: nobody on the roster went out.
        ("mengcheng", the_26th, 3, 0, 0, 0.0, None),
        ("wansui", the_26th, 4, 0, 0, 0.0, None),
        ("xiaohe", the_26th, 2, 0, 0, 0.0, None),
    ]
    assert patrols.execute(patrol_sql(day=DAY, by="squad")).fetchall() == rows[3:6]
    assert patrols.execute(patrol_sql(day=date(2026, 11, 30), by="squad")).fetchall() == []


def test_each_rostered_worker_has_a_row_a_day_with_or_without_a_track(patrols: duckdb.DuckDBPyConnection) -> None:
    replace_grid_cells(patrols, roster(ROSTER))
    insert(patrols, "patrol_tracks", OUTSIDER)
    rows = {row[0]: row for row in patrols.execute(patrol_sql(day=DAY)).fetchall()}
    assert set(rows) == {"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "X1"}
    assert rows["P9"] == ("P9", DAY, 0, 0, False, "wansui", G2, None)  # on the roster, never went out
    assert rows["P8"] == ("P8", DAY, 0, 0, False, "xiaohe", G4, None)  # went out the day before only
    assert rows["P1"] == ("P1", DAY, 2, 125.0, True, "wansui", G1, 1.0)
    assert rows["P3"][5:] == ("wansui", G2, 0.0)
    assert rows["X1"][2:] == (2, 120.0, True, None, None, None)  # on no roster: no squad, no cell to cover


def test_patrol_by_squad_without_a_roster_has_no_rows(patrols: duckdb.DuckDBPyConnection) -> None:
    assert patrols.execute(patrol_sql(by="squad")).fetchall() == []


def test_patrol_grouping_is_squad_only() -> None:
    with pytest.raises(ValueError, match="unknown patrol grouping"):
        patrol_sql(by="worker")  # type: ignore[arg-type]


# Masked roles ----------------------------------------------------------------------------------------


def rows_as(connection: duckdb.DuckDBPyConnection, schema: str, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` as a role of ``schema`` runs it: checked by the SQL door against that schema's relations."""
    check_query(sql, relations=relations_of(connection, schema))
    cursor = connection.cursor()
    try:
        use_schema(cursor, schema)
        return cursor.execute(sql).fetchall()
    finally:
        cursor.close()


def secret_of(connection: duckdb.DuckDBPyConnection) -> str:
    return str(connection.execute("SELECT secret FROM main.masking_secret").fetchone()[0])  # type: ignore[index]


def test_a_masked_analyst_gets_the_commanders_patrol_counts_per_squad(tmp_path: Path) -> None:
    connection = connect_file(tmp_path / "warehouse.duckdb", Resolver(ResolutionRules.load()))
    try:
        replace_grid_cells(connection, roster(ROSTER))
        insert(
            connection,
            "patrol_tracks",
            [
                *track("P1", "2026-11-25 07:00", 60),
                *track("P1", "2026-11-25 15:00", 65),
                *track("P3", "2026-11-25 08:00", 65),
                *track("P6", "2026-11-25 08:00", 55),
                *track("P6", "2026-11-25 14:00", 50),
                *OUTSIDER,
            ],
        )
        commander = rows_as(connection, "main", patrol_sql(by="squad"))
        analyst = rows_as(connection, MASKED_SCHEMA, patrol_sql(by="squad"))
        assert (
            commander
            == analyst
            == [
                # Every point lies in G1: P1's 27 in its own cell, P3's 14 outside its G2.
                ("mengcheng", DAY, 3, 1, 1, 0.3333, 0.0),
                ("wansui", DAY, 4, 2, 1, 0.25, 0.6585),
                ("xiaohe", DAY, 2, 0, 0, 0.0, None),
            ]
        )
        workers = rows_as(connection, MASKED_SCHEMA, patrol_sql(day=DAY))
        whole = rows_as(connection, "main", patrol_sql(day=DAY))
        assert sorted(map(str, (row[2:] for row in workers))) == sorted(map(str, (row[2:] for row in whole)))
        assert {row[0] for row in workers} >= {pseudonym("P9", secret_of(connection))}
        secret = secret_of(connection)
        seen = dict(rows_as(connection, MASKED_SCHEMA, "SELECT code, workers FROM grid_cells"))
        assert seen[G1] == [pseudonym("P1", secret), pseudonym("P2", secret)]
        # The screen sends every builder's SQL through the SQL door as the viewer: a masked role's must pass too.
        for sql in (
            kpi_sql(month=NOVEMBER),
            kpi_trend_sql(DAY, 30),
            approvals_kpi_sql(month=NOVEMBER, by="item"),
            approvals_kpi_sql(month=NOVEMBER, by="window"),
        ):
            assert rows_as(connection, MASKED_SCHEMA, sql) == rows_as(connection, "main", sql)
    finally:
        connection.close()


# The service centre's applications ----------------------------------------------------------------------

# LIC: 5 days; ONL: fully online, 3 days; BLD: a hundred years, so an application for it is never
# overdue while these tests run (in_progress is judged against the clock, now).
ITEMS = [
    ("T-LIC", "营业执照", "municipal", "market", "市场监管局", False, 5),
    ("T-ONL", "网上备案", "municipal", "market", "市场监管局", True, 3),
    ("T-BLD", "建设许可", "provincial", "housing", "住建局", False, 36500),
]


def application(
    app_id: str, item: str, status: str, submitted: str, updated: str | None = None, **seat: Any
) -> dict[str, Any]:
    return {
        **seat,
        "application_id": app_id,
        "item_code": item,
        "applicant_id_number": "11010519491231002X",
        "status": status,
        "submitted_at": town(submitted),
        "updated_at": town(updated or submitted),
        "source": "test",
        "source_record_id": app_id,
    }


APPLICATIONS = [
    # received on the 25th, finished on the 27th, on time (due the 30th 09:00)
    application("A1", "T-LIC", "approved", "2026-11-25 09:00", "2026-11-27 10:00", window_no=1, channel="window"),
    # received on the 10th, finished on the 25th, late (due the 15th 09:00)
    application("A2", "T-LIC", "refused", "2026-11-10 09:00", "2026-11-25 10:00"),
    # fully online, and taken online; received at 23:30 on the 25th in town (15:30Z), finished on time on the 26th
    application("A3", "T-ONL", "approved", "2026-11-25 23:30", "2026-11-26 08:00", channel="online"),
    # in progress since 2020: overdue now
    application("A4", "T-LIC", "accepted", "2020-01-01 09:00"),
    # in progress, received on the 25th, not overdue
    application("A5", "T-BLD", "accepted", "2026-11-25 14:00", window_no=2, channel="window"),
    # received 31 October in town, finished 1 November 00:30 in town (31 October 16:30Z), on time
    application("A6", "T-BLD", "approved", "2026-10-31 23:00", "2026-11-01 00:30"),
    # an item the catalogue no longer has: no department, no deadline, so not finished on time
    application("A7", "T-GONE", "withdrawn", "2026-11-25 11:00", "2026-11-25 12:00"),
]


@pytest.fixture
def service_centre() -> duckdb.DuckDBPyConnection:
    connection = connect()
    for item in ITEMS:
        connection.execute("INSERT INTO approval_items VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [*item, "calendar_days"])
    connection.execute(
        "INSERT INTO service_windows VALUES (1, 'market', '市场监管局', 'C1', '王丽', true, NULL), "
        "(2, 'housing', '住建局', 'C2', '陈静', true, NULL)"
    )
    insert(connection, "applications", APPLICATIONS)
    return connection


APPROVAL_COLUMNS = (
    "received",
    "in_progress",
    "overdue_in_progress",
    "finished",
    "finished_on_time",
    "on_time_rate",
    "fully_online_share",
    "overdue",
    "online_share",
)


def approval_row(*values: Any) -> dict[str, Any]:
    return dict(zip(APPROVAL_COLUMNS, values, strict=True))


def test_approvals_for_a_day(service_centre: duckdb.DuckDBPyConnection) -> None:
    # Received on the 25th: A1 A3 A5 A7 (A3 is fully online). Finished on the 25th: A2 (late), A7
    # (no deadline). In progress now: A4 (overdue), A5.
    assert kpis(service_centre, approvals_kpi_sql(day=DAY)) == [approval_row(4, 2, 1, 2, 0, 0.0, 0.25, 0, 0.25)]


def test_approvals_for_a_month(service_centre: duckdb.DuckDBPyConnection) -> None:
    # Received in November: A1 A2 A3 A5 A7 (A6 on 31 October in town). Finished in November: A1 A2
    # A3 A6 A7, on time A1 A3 A6.
    assert kpis(service_centre, approvals_kpi_sql(month=NOVEMBER)) == [approval_row(5, 2, 1, 5, 3, 0.6, 0.2, 1, 0.2)]
    # October: A6 received; nothing finished; the backlog is the same snapshot.
    assert kpis(service_centre, approvals_kpi_sql(month=date(2026, 10, 1))) == [
        approval_row(1, 2, 1, 0, 0, None, 0.0, 0, 0.0)
    ]


def test_approvals_without_a_period_count_everything(service_centre: duckdb.DuckDBPyConnection) -> None:
    assert kpis(service_centre, approvals_kpi_sql()) == [
        approval_row(7, 2, 1, 5, 3, 0.6, round(1 / 7, 4), 2, round(1 / 7, 4))
    ]


def test_approvals_on_a_quiet_day_are_one_row_with_the_backlog(service_centre: duckdb.DuckDBPyConnection) -> None:
    quiet = date(2026, 12, 25)
    assert kpis(service_centre, approvals_kpi_sql(day=quiet)) == [approval_row(0, 2, 1, 0, 0, None, None, 0, None)]
    rows = kpis(service_centre, approvals_kpi_sql(day=quiet, by="item"))
    assert rows == [
        {"item_code": "T-BLD", **approval_row(0, 1, 0, 0, 0, None, None, 0, None)},
        {"item_code": "T-LIC", **approval_row(0, 1, 1, 0, 0, None, None, 0, None)},
    ]
    service_centre.execute("DELETE FROM applications")
    assert kpis(service_centre, approvals_kpi_sql()) == [approval_row(0, 0, 0, 0, 0, None, None, 0, None)]


def test_approvals_per_department_for_a_month(service_centre: duckdb.DuckDBPyConnection) -> None:
    assert kpis(service_centre, approvals_kpi_sql(month=NOVEMBER, by="department")) == [
        {"department": "housing", **approval_row(1, 1, 0, 1, 1, 1.0, 0.0, 0, 0.0)},  # A5 received, A6 finished
        {"department": "market", **approval_row(3, 1, 1, 3, 2, 0.6667, 0.3333, 1, 0.3333)},  # A1 A2 A3; A4 waiting
        {"department": None, **approval_row(1, 0, 0, 1, 0, 0.0, 0.0, 0, 0.0)},  # A7, not in the catalogue
    ]


def test_approvals_per_item_for_a_day(service_centre: duckdb.DuckDBPyConnection) -> None:
    assert kpis(service_centre, approvals_kpi_sql(day=DAY, by="item")) == [
        {"item_code": "T-BLD", **approval_row(1, 1, 0, 0, 0, None, 0.0, 0, 0.0)},  # A5 (A6 is another day)
        {"item_code": "T-GONE", **approval_row(1, 0, 0, 1, 0, 0.0, 0.0, 0, 0.0)},  # A7
        {"item_code": "T-LIC", **approval_row(1, 1, 1, 1, 0, 0.0, 0.0, 0, 0.0)},  # A1 received, A2 late, A4 overdue
        {"item_code": "T-ONL", **approval_row(1, 0, 0, 0, 0, None, 1.0, 0, 1.0)},  # A3
    ]


def test_approvals_per_window_for_a_month(service_centre: duckdb.DuckDBPyConnection) -> None:
    # A window's row names the department staffing it; without a window number, rows split by channel.
    assert kpis(service_centre, approvals_kpi_sql(month=NOVEMBER, by="window")) == [
        {
            "window_no": 1,
            "window_department": "market",
            "channel": "window",
            **approval_row(1, 0, 0, 1, 1, 1.0, 0.0, 0, 0.0),
        },
        {
            "window_no": 2,
            "window_department": "housing",
            "channel": "window",
            **approval_row(1, 1, 0, 0, 0, None, 0.0, 0, 0.0),
        },
        {
            "window_no": None,
            "window_department": None,
            "channel": "online",
            **approval_row(1, 0, 0, 1, 1, 1.0, 1.0, 0, 1.0),
        },
        # A2 (late) and A7 received, A4 overdue in progress, A2 A6 A7 finished (A6 on time): channel not said
        {
            "window_no": None,
            "window_department": None,
            "channel": None,
            **approval_row(2, 1, 1, 3, 1, 0.3333, 0.0, 1, 0.0),
        },
    ]


def test_approvals_grouping_is_refused_unless_known() -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        approvals_kpi_sql(by="item_code; DROP TABLE applications")  # type: ignore[arg-type]
