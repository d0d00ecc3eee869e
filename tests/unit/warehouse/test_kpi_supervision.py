"""Parked (挂账) and escalated (督办) cases in the case KPIs: visible on their own, outside the on-time figures."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from tests.unit.warehouse.test_kpi import case, connect, insert, kpis, town
from warehouse.kpi import kpi_sql, kpi_trend_sql

DAY = date(2026, 11, 25)


@pytest.fixture
def supervised() -> duckdb.DuckDBPyConnection:
    """Four cases due on the 25th and one parked on it.

    S1 closed on time; S2 closed late after reaching 督办 (level 2); S3 open and only overdue
    (level 1); S4 open at 挂牌督办 (level 3); P1 parked, once escalated before it was parked.
    """
    rows = [
        case("S1", "wansui", "sanitation", "G1", "W1", "closed", due="2026-11-25 12:00", closed="2026-11-25 10:00",
             hours=2),
        {**case("S2", "wansui", "sanitation", "G1", "W1", "closed", due="2026-11-24 12:00", closed="2026-11-25 18:00",
                hours=40), "escalation_level": 2, "escalated_at": town("2026-11-25 12:00")},
        {**case("S3", "xiaohe", "water", "G2", "W2", "in_handling", due="2026-11-25 08:00"), "escalation_level": 1},
        {**case("S4", "xiaohe", "water", "G2", "W2", "in_handling", due="2026-11-25 09:00"),
         "escalation_level": 3, "escalated_at": town("2026-11-26 09:00")},
        {**case("P1", "xiaohe", "water", "G2", "W2", "parked", due="2026-11-25 11:00"),
         "escalation_level": 2, "escalated_at": town("2026-11-24 11:00"), "review_at": town("2027-02-01 09:00")},
    ]  # fmt: skip
    connection = connect()
    insert(connection, "cases", rows)
    return connection


def test_a_parked_case_is_counted_apart_and_escalations_among_the_cases_due(
    supervised: duckdb.DuckDBPyConnection,
) -> None:
    [row] = kpis(supervised, kpi_sql(day=DAY))
    assert (row["cases_due"], row["closed"], row["closed_on_time"]) == (4, 2, 1)
    assert (row["parked"], row["escalated"], row["escalation_rate"]) == (1, 2, 0.5)
    assert row["on_time_rate"] == 0.25  # the parked case is in no rate


def test_columns_keep_their_order_with_the_new_ones_at_the_end(supervised: duckdb.DuckDBPyConnection) -> None:
    [row] = kpis(supervised, kpi_sql())
    assert list(row)[-3:] == ["parked", "escalated", "escalation_rate"]
    assert list(row)[:3] == ["cases_due", "closed", "closed_on_time"]


def test_groups_and_the_trend_see_the_same(supervised: duckdb.DuckDBPyConnection) -> None:
    by_squad = {row["squad"]: row for row in kpis(supervised, kpi_sql(by="squad", day=DAY))}
    assert (by_squad["xiaohe"]["cases_due"], by_squad["xiaohe"]["parked"], by_squad["xiaohe"]["escalated"]) == (2, 1, 1)
    assert (by_squad["wansui"]["parked"], by_squad["wansui"]["escalated"]) == (0, 1)
    trend = {row["day"]: row for row in kpis(supervised, kpi_trend_sql(DAY, days=2))}
    assert {name: value for name, value in trend[DAY].items() if name != "day"} == kpis(supervised, kpi_sql(day=DAY))[0]
    assert (trend[date(2026, 11, 24)]["parked"], trend[date(2026, 11, 24)]["cases_due"]) == (0, 0)


def test_the_facts_flag_parked_and_escalated(supervised: duckdb.DuckDBPyConnection) -> None:
    rows = supervised.execute(
        "SELECT case_id, is_due, is_parked, is_escalated, escalation_level FROM kpi_case_facts ORDER BY case_id"
    ).fetchall()
    assert rows == [
        ("P1", False, True, False, 2),
        ("S1", True, False, False, 0),
        ("S2", True, False, True, 2),
        ("S3", True, False, False, 1),
        ("S4", True, False, True, 3),
    ]


def test_a_case_closed_before_supervision_fell_due_is_not_escalated_whatever_the_clock_saw(
    supervised: duckdb.DuckDBPyConnection,
) -> None:
    # S5: due 08:00, closed late at 20:00, before 督办 fell due (08:00 the next day). A replay of
    # history let the clock see it open and raise every level first; it still counts as late, not 督办.
    late = {**case("S5", "wansui", "sanitation", "G1", "W1", "closed", due="2026-11-25 08:00",
                   closed="2026-11-25 20:00", hours=14), "escalation_level": 3,
            "escalated_at": town("2026-11-26 08:00")}  # fmt: skip
    insert(supervised, "cases", [late])
    [row] = kpis(supervised, kpi_sql(day=DAY))
    assert (row["cases_due"], row["closed"], row["closed_on_time"], row["escalated"]) == (5, 3, 1, 2)
