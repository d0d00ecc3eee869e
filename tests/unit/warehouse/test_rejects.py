"""Rejects close when a later outcome of their record is written: landed, or refused again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from warehouse.rejects import RejectFilter, close_resolved, list_sql
from warehouse.writer import SCHEMA_FILES

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def db() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for schema in SCHEMA_FILES:
        connection.execute(schema.read_text())
    return connection


def add_reject(db: duckdb.DuckDBPyConnection, uid: str, record: str, hours: float, reason: str = "bad") -> None:
    db.execute(
        "INSERT INTO rejects (record_uid, source, source_record_id, entity, stage, reason_code, reason, rejected_at) "
        "VALUES (?, 'civil-affairs', ?, 'person', 'validate', ?, 'why', ?)",
        [uid, record, reason, T0 + timedelta(hours=hours)],
    )


def add_outcome(
    db: duckdb.DuckDBPyConnection, uid: str, record: str, outcome: str, hours: float, written: datetime
) -> None:
    received = None if outcome == "rejected" else T0 + timedelta(hours=hours)
    db.execute(
        "INSERT INTO intake (record_uid, source, source_record_id, entity, outcome, received_at, processed_at, "
        "written_at) VALUES (?, 'civil-affairs', ?, 'person', ?, ?, ?, ?)",
        [uid, record, outcome, received, T0 + timedelta(hours=hours), written],
    )


def state(db: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return db.execute("SELECT record_uid, resolution, resolved_by FROM rejects ORDER BY rejected_at").fetchall()


def test_a_record_that_lands_later_closes_its_reject(db: duckdb.DuckDBPyConnection) -> None:
    add_reject(db, "r1", "c1", 0)
    written = T0 + timedelta(hours=2)
    add_outcome(db, "u2", "c1", "new", 1, written)

    close_resolved(db, written, {"civil-affairs"})

    assert state(db) == [("r1", "landed", "u2")]
    assert db.execute(list_sql(RejectFilter(), 10)).fetchall() == []
    assert len(db.execute(list_sql(RejectFilter(include_resolved=True), 10)).fetchall()) == 1


def test_a_record_refused_again_leaves_only_its_new_reject_open(db: duckdb.DuckDBPyConnection) -> None:
    add_reject(db, "r1", "c1", 0, reason="unknown_category")
    add_reject(db, "r2", "c1", 1, reason="outside_town")
    written = T0 + timedelta(hours=2)
    add_outcome(db, "r2", "c1", "rejected", 1, written)

    close_resolved(db, written, {"civil-affairs"})

    assert state(db) == [("r1", "rejected_again", "r2"), ("r2", None, None)]
    open_rejects = db.execute(list_sql(RejectFilter(source="civil-affairs"), 10)).fetchall()
    assert [row[6] for row in open_rejects] == ["outside_town"]


def test_only_outcomes_written_in_this_transaction_and_after_the_reject_close_it(
    db: duckdb.DuckDBPyConnection,
) -> None:
    add_reject(db, "r1", "c1", 5)
    earlier, now = T0 + timedelta(hours=1), T0 + timedelta(hours=6)
    add_outcome(db, "u0", "c1", "new", 1, earlier)  # written before: another transaction's
    add_outcome(db, "u1", "c1", "update", 4, now)  # received before the record was refused
    add_outcome(db, "u2", "c2", "new", 5.5, now)  # another record

    close_resolved(db, now, {"civil-affairs", "patrol"})

    assert state(db) == [("r1", None, None)]


def test_only_the_named_sources_open_rejects_are_looked_for(db: duckdb.DuckDBPyConnection) -> None:
    add_reject(db, "r1", "c1", 0)
    written = T0 + timedelta(hours=2)
    add_outcome(db, "u2", "c1", "new", 1, written)

    close_resolved(db, written, {"patrol"})
    close_resolved(db, written, set())
    assert state(db) == [("r1", None, None)]

    close_resolved(db, written, {"patrol", "civil-affairs"})
    assert state(db) == [("r1", "landed", "u2")]


def test_a_filter_quotes_what_a_person_typed(db: duckdb.DuckDBPyConnection) -> None:
    add_reject(db, "r1", "c1", 0, reason="it's")

    rows = db.execute(list_sql(RejectFilter(reason="it's", source="x' OR '1'='1"), 10)).fetchall()
    assert rows == []
    assert len(db.execute(list_sql(RejectFilter(reason="it's"), 10)).fetchall()) == 1
