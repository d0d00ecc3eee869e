"""A ledger keeps the first outcome of each record, however its search for earlier outcomes is narrowed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from warehouse.upsert import insert_new_rows
from warehouse.writer import SCHEMA_FILES

NOW = "2026-12-03T10:00:00+08:00"


@pytest.fixture
def cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    for schema in SCHEMA_FILES:
        connection.execute(schema.read_text())
    yield connection
    connection.close()


def entry(uid: str, outcome: str, received_at: str | None) -> dict[str, Any]:
    return {
        "record_uid": uid,
        "run_id": None,
        "source": "patrol",
        "source_record_id": uid.lower(),
        "entity": "event",
        "outcome": outcome,
        "reason_code": None,
        "received_at": received_at,
        "processed_at": NOW,
        "written_at": NOW,
    }


def ledger(cursor: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return cursor.execute("SELECT record_uid, outcome FROM intake ORDER BY record_uid, outcome").fetchall()


def test_a_record_received_long_ago_keeps_its_first_outcome_when_written_again_with_newer_ones(
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    insert_new_rows(cursor, "intake", [entry("A", "new", "2026-11-26T09:00:00+08:00")])
    insert_new_rows(cursor, "intake", [entry("A", "duplicate", "2026-11-26T09:00:00+08:00"), entry("B", "new", NOW)])
    assert ledger(cursor) == [("A", "new"), ("B", "new")]


def test_rows_without_a_received_at_are_checked_against_the_whole_ledger(cursor: duckdb.DuckDBPyConnection) -> None:
    insert_new_rows(cursor, "intake", [entry("C", "rejected", None)])
    insert_new_rows(cursor, "intake", [entry("C", "new", None), entry("D", "new", NOW)])
    assert ledger(cursor) == [("C", "rejected"), ("D", "new")]


def test_received_at_texts_with_other_offsets_are_compared_as_instants(cursor: duckdb.DuckDBPyConnection) -> None:
    # As text, "…T05:00:00+00:00" sorts before "…T12:00:00+08:00", which is an hour earlier (04:00 UTC).
    insert_new_rows(cursor, "intake", [entry("E", "new", "2026-12-01T12:00:00+08:00")])
    insert_new_rows(
        cursor,
        "intake",
        [entry("E", "duplicate", "2026-12-01T12:00:00+08:00"), entry("F", "new", "2026-12-01T05:00:00+00:00")],
    )
    assert ledger(cursor) == [("E", "new"), ("F", "new")]


def test_a_record_twice_in_one_write_is_kept_once(cursor: duckdb.DuckDBPyConnection) -> None:
    insert_new_rows(cursor, "intake", [entry("G", "new", NOW), entry("G", "new", NOW)])
    assert ledger(cursor) == [("G", "new")]
