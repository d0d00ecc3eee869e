"""Keyed writes: an upsert keeps the last version of each key, a ledger the first outcome of each record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from warehouse.upsert import insert_new_rows, upsert_rows
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


def offset(topic: str, partition: int, next_offset: int) -> dict[str, Any]:
    return {"topic": topic, "partition": partition, "next_offset": next_offset, "topic_id": "t-1"}


def stored_offsets(cursor: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int]]:
    return cursor.execute("SELECT topic, partition, next_offset FROM sink_offsets ORDER BY 1, 2").fetchall()


@pytest.mark.parametrize("shape", ["python rows", "arrow table"])
def test_an_upsert_keeps_the_last_version_of_each_key_and_leaves_other_keys_alone(
    cursor: duckdb.DuckDBPyConnection, shape: str
) -> None:
    upsert_rows(cursor, "sink_offsets", "topic, partition", [offset("a", 0, 5), offset("a", 1, 7), offset("b", 0, 1)])
    versions = [offset("a", 0, 6), offset("b", 1, 2), offset("a", 0, 9), offset("b", 1, 3), offset("a", 0, 8)]
    upsert_rows(
        cursor,
        "sink_offsets",
        "topic, partition",
        pa.Table.from_pylist(versions) if shape == "arrow table" else versions,
    )
    assert stored_offsets(cursor) == [("a", 0, 8), ("a", 1, 7), ("b", 0, 1), ("b", 1, 3)]
