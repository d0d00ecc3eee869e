"""The SQL door on a real warehouse file: the hostile corpus is refused by code, and the host stays out of reach."""

from __future__ import annotations

import threading
import time
from typing import Any

import duckdb
import pytest

from tests.support.hostile_sql import HOSTILE
from warehouse.query_server import QueryLimits, run_query
from warehouse.sql_guard import QueryRefused, check_query, close_to_the_host


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path_factory.mktemp("w") / "warehouse.duckdb"))
    connection.execute("CREATE TABLE people (id_number VARCHAR, name VARCHAR)")
    connection.execute("CREATE TABLE events (event_id VARCHAR, status VARCHAR)")
    connection.execute("CREATE TABLE intake (record_uid VARCHAR)")
    connection.execute("CREATE TABLE rejects (record_uid VARCHAR)")
    connection.execute("INSERT INTO people VALUES ('11010519491231002X', '王芳')")
    close_to_the_host(connection)
    return connection


def test_the_corpus_holds_at_least_forty_hostile_queries() -> None:
    assert len(HOSTILE) >= 40
    assert {case["code"] for case in HOSTILE} >= {
        "not_a_select",
        "table_function",
        "explain_analyze",
        "function",
        "host",
    }


@pytest.mark.parametrize("case", HOSTILE, ids=[case["sql"][:50] for case in HOSTILE])
def test_every_hostile_query_is_refused_with_its_code(
    warehouse: duckdb.DuckDBPyConnection, case: dict[str, Any]
) -> None:
    with pytest.raises(QueryRefused) as refused:
        run_query(warehouse, case["sql"], QueryLimits())
    assert refused.value.reason_code == case["code"], str(refused.value)
    assert warehouse.execute("SELECT count(*) FROM intake").fetchone() == (0,)
    assert warehouse.execute("SELECT count(*) FROM rejects").fetchone() == (0,)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name, count(*) FROM people GROUP BY 1",
        "EXPLAIN SELECT * FROM people",
        "SELECT * FROM range(3)",
        "WITH x AS (SELECT unnest([1, 2]) AS n) SELECT sum(n) FROM x",
        "SELECT upper(name), strftime(now(), '%Y') FROM people",
    ],
)
def test_read_only_queries_pass(warehouse: duckdb.DuckDBPyConnection, sql: str) -> None:
    check_query(sql)
    assert run_query(warehouse, sql, QueryLimits())["rows"]


def test_the_host_is_out_of_reach_even_for_sql_the_guard_never_saw(warehouse: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.PermissionException):
        warehouse.execute("SELECT * FROM read_text('/etc/hostname')")
    with pytest.raises(duckdb.Error):
        warehouse.execute("SET enable_external_access = true")


def test_the_answer_is_cut_at_the_row_cap_and_says_so(warehouse: duckdb.DuckDBPyConnection) -> None:
    answer = run_query(warehouse, "SELECT * FROM range(30000000)", QueryLimits(max_rows=100))
    assert (len(answer["rows"]), answer["truncated"]) == (100, True)
    assert run_query(warehouse, "SELECT * FROM range(100)", QueryLimits(max_rows=100))["truncated"] is False


def test_a_query_past_its_time_is_interrupted_and_the_connection_serves_on(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    endless = "SELECT count(*) FROM range(1000000000000) a"
    started = time.monotonic()
    with pytest.raises(QueryRefused) as refused:
        run_query(warehouse, endless, QueryLimits(timeout_s=0.5))
    assert refused.value.reason_code == "timeout"
    assert time.monotonic() - started < 30
    assert run_query(warehouse, "SELECT 1", QueryLimits())["rows"] == [[1]]
    assert threading.active_count() < 50


def test_the_warehouses_own_table_macros_are_allowed(warehouse: duckdb.DuckDBPyConnection) -> None:
    warehouse.execute("CREATE OR REPLACE MACRO named(who) AS TABLE SELECT * FROM people WHERE name = who")
    answer = run_query(warehouse, "SELECT id_number FROM named('王芳')", QueryLimits())
    assert answer["rows"] == [["11010519491231002X"]]
