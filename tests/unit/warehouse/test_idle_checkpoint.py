"""The sink's idle checkpoint empties DuckDB's write-ahead log once it holds enough, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from warehouse.idle_checkpoint import IdleCheckpoint


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.execute("CREATE TABLE cases (case_id VARCHAR, status VARCHAR)")
    connection.execute("CHECKPOINT")
    yield connection
    connection.close()


def write_cases(connection: duckdb.DuckDBPyConnection, count: int) -> None:
    for number in range(count):
        connection.execute("INSERT INTO cases VALUES (?, 'accepted')", [f"C-{number}"])


def test_a_log_of_at_least_the_minimum_is_moved_into_the_file(warehouse: duckdb.DuckDBPyConnection) -> None:
    write_cases(warehouse, 50)
    checkpoint = IdleCheckpoint(warehouse, min_kib=1)
    assert checkpoint.log_bytes() >= 1024

    assert checkpoint.run() is True
    assert checkpoint.log_bytes() == 0
    assert warehouse.execute("SELECT count(*) FROM cases").fetchone() == (50,)


def test_a_smaller_log_waits_for_more(warehouse: duckdb.DuckDBPyConnection) -> None:
    write_cases(warehouse, 2)
    checkpoint = IdleCheckpoint(warehouse, min_kib=1024)
    before = checkpoint.log_bytes()
    assert before > 0

    assert checkpoint.run() is False
    assert checkpoint.log_bytes() == before


def test_zero_turns_it_off(warehouse: duckdb.DuckDBPyConnection) -> None:
    write_cases(warehouse, 50)
    checkpoint = IdleCheckpoint(warehouse, min_kib=0)

    assert checkpoint.run() is False
    assert checkpoint.log_bytes() > 0


def test_it_checkpoints_beside_a_transaction_still_open(warehouse: duckdb.DuckDBPyConnection) -> None:
    write_cases(warehouse, 50)
    query = warehouse.cursor()
    query.execute("BEGIN TRANSACTION")
    query.execute("INSERT INTO cases VALUES ('C-open', 'reported')")
    checkpoint = IdleCheckpoint(warehouse, min_kib=1)

    assert checkpoint.run() is True
    query.execute("COMMIT")
    assert warehouse.execute("SELECT count(*) FROM cases").fetchone() == (51,)


def test_an_in_memory_warehouse_has_no_log_to_move() -> None:
    connection = duckdb.connect()
    connection.execute("CREATE TABLE cases AS SELECT 'C-1' AS case_id")
    checkpoint = IdleCheckpoint(connection, min_kib=1)

    assert checkpoint.log_bytes() == 0
    assert checkpoint.run() is False
