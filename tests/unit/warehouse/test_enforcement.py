"""The enforcement bureau in the warehouse: its roster and powers, its case facts, its KPIs, masked for analysts.

Expected numbers are worked out by hand from the rows below (see the comments).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from schemas.enforcement import load_bureau
from warehouse.enforcement import replace_bureau
from warehouse.kpi import ENFORCEMENT_GROUPINGS, enforcement_kpi_sql
from warehouse.masking import MASKED_SCHEMA, use_schema
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import connect

PERSON = "320411199001011235"


def _case(case_no: str, officer: str, squad: str, power: str, **stages: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_no": case_no,
        "power_code": power,
        "officer_id": officer,
        "squad": squad,
        "party_name": "王建国",
        "status": list(stages)[-1].removesuffix("_at").replace("filed", "filing"),
    }
    row.update({name: f"2026-{value}+08" for name, value in stages.items()})
    return row


ROWS = [
    # ZF-CG-005 has 30 days: decided on the day it was filed, on time; started by grid case R1.
    {
        **_case("E1", "ZF03", "wansui", "ZF-CG-005", filed_at="11-25 09:45", decided_at="11-25 10:15"),
        "grid_case_id": "R1",
        "party_id_number": PERSON,
    },
    # ZF-CG-005 again, filed in October and decided 31 days later: late.
    _case("E2", "ZF03", "wansui", "ZF-CG-005", filed_at="10-30 09:00", decided_at="11-30 09:00"),
    # A labour case (60 days), investigated but not decided yet.
    _case("E3", "ZF20", "mengcheng", "ZF-LD-003", filed_at="11-25 14:00", investigated_at="11-25 15:00"),
]


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = connect(tmp_path / "warehouse.duckdb", Resolver(ResolutionRules.load()))
    replace_bureau(connection, load_bureau())
    for row in ROWS:
        columns = ", ".join(row)
        connection.execute(
            f"INSERT INTO enforcement_cases ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
        )
    connection.execute(
        "INSERT INTO cases (case_id, category, department, reporter_id, status, reported_at, due_at) "
        "VALUES ('R1', '0101', 'enforcement', 'GW001', 'closed', '2026-11-25 09:30+08', '2026-11-28 09:30+08')"
    )
    connection.execute("INSERT INTO people (person_key, id_number, name) VALUES (?, ?, '王建国')", [PERSON, PERSON])
    return connection


def rows(connection: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = connection.execute(sql)
    names = [column[0] for column in result.description]
    return [dict(zip(names, values, strict=True)) for values in result.fetchall()]


def test_the_roster_and_the_powers_are_loaded_and_replaced_whole(warehouse: duckdb.DuckDBPyConnection) -> None:
    replace_bureau(warehouse, load_bureau())
    counts = warehouse.execute(
        "SELECT (SELECT count(*) FROM enforcement_units WHERE kind = 'squad'), "
        "(SELECT count(*) FROM enforcement_officers), (SELECT count(*) FROM enforcement_powers)"
    ).fetchone()
    assert counts == (3, 44, 78)


def test_facts_link_the_grid_case_and_the_partys_golden_record(warehouse: duckdb.DuckDBPyConnection) -> None:
    facts = {row["case_no"]: row for row in rows(warehouse, "SELECT * FROM enforcement_case_facts")}
    assert facts["E1"]["grid_case_status"] == "closed"
    assert facts["E1"]["person_key"] == PERSON
    assert facts["E1"]["squad_name"] == "万绥中队"
    assert facts["E1"]["on_time"] is True
    assert facts["E1"]["hours_to_decision"] == 0.5
    assert facts["E2"]["on_time"] is False
    assert facts["E3"]["on_time"] is None  # neither decided nor closed: its clock still runs


def test_steps_list_each_stage_reached(warehouse: duckdb.DuckDBPyConnection) -> None:
    steps = warehouse.execute("SELECT stage FROM enforcement_steps WHERE case_no = 'E3' ORDER BY 1").fetchall()
    assert steps == [("filing",), ("investigation",)]


def test_kpis_per_squad_and_per_officer(warehouse: duckdb.DuckDBPyConnection) -> None:
    by_squad = {row["squad"]: row for row in rows(warehouse, enforcement_kpi_sql(by="squad"))}
    assert by_squad["wansui"]["cases"] == 2
    assert by_squad["wansui"]["decided"] == 2
    assert by_squad["wansui"]["on_time_rate"] == 0.5
    assert by_squad["wansui"]["powers_used"] == 1
    assert by_squad["wansui"]["from_grid_cases"] == 1
    assert by_squad["mengcheng"]["decided"] == 0
    assert by_squad["mengcheng"]["on_time_rate"] is None
    by_officer = rows(warehouse, enforcement_kpi_sql(by="officer"))
    assert [(row["officer_id"], row["cases"]) for row in by_officer] == [("ZF03", 2), ("ZF20", 1)]


def test_a_day_counts_the_cases_filed_that_day(warehouse: duckdb.DuckDBPyConnection) -> None:
    [day] = rows(warehouse, enforcement_kpi_sql(day=date(2026, 11, 25)))
    assert (day["cases"], day["decided"], day["on_time"]) == (2, 1, 1)
    [month] = rows(warehouse, enforcement_kpi_sql(month=date(2026, 11, 1)))
    assert month["cases"] == 2  # E2 was filed in October


def test_groupings_are_fixed_words_never_caller_text() -> None:
    assert set(ENFORCEMENT_GROUPINGS) == {"squad", "officer", "power"}
    with pytest.raises(ValueError, match="unknown grouping"):
        enforcement_kpi_sql(by="squad; DROP TABLE cases")  # type: ignore[arg-type]


def test_an_analyst_sees_the_party_masked(warehouse: duckdb.DuckDBPyConnection) -> None:
    cursor = warehouse.cursor()
    use_schema(cursor, MASKED_SCHEMA)
    [(name, id_number, person_key, officer)] = cursor.execute(
        "SELECT party_name, party_id_number, person_key, officer_id FROM enforcement_case_facts WHERE case_no = 'E1'"
    ).fetchall()
    assert name == "王**"
    assert id_number != PERSON and PERSON not in str(id_number)
    assert person_key == id_number  # one pseudonym per resident, so the two still join
    assert officer == "ZF03"
