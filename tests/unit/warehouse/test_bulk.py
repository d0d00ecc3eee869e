"""The sink's bulk path on a real DuckDB file: outcomes decided set-based, replays harmless, refusals kept."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from schemas.batches import SEEN_PAYLOAD, RecordBatch
from schemas.identity import resident_id_check_char
from tests.unit.warehouse.batches import T0, canonical
from warehouse.quality import Screening
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import Batch, WarehouseWriter, connect

WANG = "32041119800203002" + resident_id_check_char("32041119800203002")
LI = "32041119750611001" + resident_id_check_char("32041119750611001")


def refuse_one_phone(kind: str, table: pa.Table) -> Screening:
    """A stand-in contract: one phone number breaks it."""
    phones = table.column("phone").to_pylist()
    refused = "+8613900000009"
    return Screening(
        {index: [f"phone must not be {refused}"] for index, phone in enumerate(phones) if phone == refused}
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[WarehouseWriter, duckdb.DuckDBPyConnection]:
    resolver = Resolver(ResolutionRules.load())
    connection = connect(tmp_path / "w.duckdb", resolver)
    return WarehouseWriter(connection, resolver, refuse_one_phone), connection


def write(writer: WarehouseWriter, *parts: RecordBatch, offset: int = 0) -> None:
    batch = Batch()
    batch.bulk["person"] = list(parts)
    batch.offsets[("canonical.batches", 0)] = offset
    writer.write(batch, {"canonical.batches": "topic-1"})


def outcomes(connection: duckdb.DuckDBPyConnection, run: str) -> dict[str, str]:
    rows = connection.execute("SELECT record_uid, outcome FROM intake WHERE run_id = ?", [run]).fetchall()
    return dict(rows)


def test_rows_are_new_updated_or_duplicate_against_the_stored_copy_and_within_the_batch(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    wang = {"id_number": WANG, "name": "王芳", "phone": "13900000001"}
    write(writer, canonical("r1", [("a1", wang), ("a2", wang), ("a3", {**wang, "phone": "13900000002"})]))
    assert outcomes(connection, "r1") == {"a1": "new", "a2": "duplicate", "a3": "update"}

    write(
        writer, canonical("r2", [("b1", {**wang, "phone": "13900000002"}), ("b2", {"id_number": LI, "name": "李四"})])
    )
    assert outcomes(connection, "r2") == {"b1": "duplicate", "b2": "new"}
    assert connection.execute("SELECT person_key, phone FROM people ORDER BY 1").fetchall() == sorted(
        [(WANG, "+8613900000002"), (LI, None)]
    )


def test_a_replayed_batch_changes_neither_ledger_nor_tables(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    batch = canonical("r1", [("a1", {"id_number": WANG, "name": "王芳"}), ("a2", {"id_number": LI, "name": "李四"})])
    write(writer, batch)
    tables = ("intake", "person_sources", "entity_matches", "people")
    before = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone() for table in tables}
    write(writer, batch, offset=1)
    assert {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone() for table in tables} == before
    assert outcomes(connection, "r1") == {"a1": "new", "a2": "new"}


def test_a_batch_delivered_again_beside_a_later_one_keeps_its_first_outcomes_and_the_later_rows_land(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    """The ledger is searched within the received span of a write's rows; a replay keeps its ``received_at``."""
    writer, connection = warehouse
    first = canonical("r1", [("a1", {"id_number": WANG, "name": "王芳"}), ("a2", {"id_number": LI, "name": "李四"})])
    write(writer, first, first)
    assert outcomes(connection, "r1") == {"a1": "new", "a2": "new"}
    later = replace(
        canonical("r1", [("a3", {"id_number": WANG, "name": "王芳", "phone": "13900000002"})]),
        received_at=T0 + timedelta(minutes=5),
    )
    write(writer, first, later, first, offset=1)
    assert outcomes(connection, "r1") == {"a1": "new", "a2": "new", "a3": "update"}
    assert connection.execute("SELECT count(*) FROM intake").fetchone() == (3,)


def test_a_row_the_contract_refuses_is_a_reject_with_its_rule_and_never_a_copy(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    write(
        writer,
        canonical(
            "r1",
            [
                ("a1", {"id_number": WANG, "name": "王芳"}),
                ("a2", {"id_number": LI, "name": "李四", "phone": "13900000009"}),
            ],
        ),
    )
    assert outcomes(connection, "r1") == {"a1": "new", "a2": "rejected"}
    assert connection.execute("SELECT record_uid, reason_code, reason FROM rejects").fetchall() == [
        ("a2", "contract_violation", "warehouse contract: phone must not be +8613900000009")
    ]
    assert connection.execute("SELECT person_key FROM people").fetchall() == [(WANG,)]


def test_a_corrected_row_of_a_later_export_closes_the_reject_of_its_record(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    li = {"id_number": LI, "name": "李四"}
    write(writer, canonical("r1", [("a1", {**li, "phone": "13900000009"})]))
    received = datetime.now(UTC) + timedelta(minutes=1)  # sent after the contract refused the first
    write(writer, replace(canonical("r2", [("b1", {**li, "phone": "13900000001"})]), received_at=received), offset=1)

    assert connection.execute("SELECT record_uid, resolution, resolved_by FROM rejects").fetchall() == [
        ("a1", "landed", "b1")
    ]


def seen(run: str, rows: list[tuple[str, RecordBatch]]) -> RecordBatch:
    """Seen rows as the worker sends them: each names the canonical row it remembers, by uid, for its fingerprint."""
    uids, ids, prints, payloads = [], [], [], []
    for uid, remembered in rows:
        row = remembered.rows.to_pylist()[0]
        uids.append(uid)
        ids.append(row["source_record_id"])
        prints.append(row["fingerprint"][:16])
        payloads.append({"name": row["name"], "id_number": row["id_number"]})
    table = pa.table(
        {"record_uid": uids, "source_record_id": ids, "fingerprint": prints, SEEN_PAYLOAD: pa.array(payloads)}
    )
    return RecordBatch("person", "civil-affairs", run, T0, table, processed_at=T0)


def test_a_seen_row_the_warehouse_holds_is_a_duplicate_seen_before_and_touches_no_copy(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    wang = canonical("r1", [("a1", {"id_number": WANG, "name": "王芳"})])
    write(writer, wang)
    copies = connection.execute("SELECT * FROM person_sources").fetchall()
    write(writer, seen("r2", [("b1", wang)]), offset=1)
    assert connection.execute("SELECT outcome, reason_code FROM intake WHERE run_id = 'r2'").fetchall() == [
        ("duplicate", "seen_before")
    ]
    assert connection.execute("SELECT * FROM person_sources").fetchall() == copies
    assert connection.execute("SELECT count(*) FROM rejects").fetchone() == (0,)


def test_a_seen_row_the_warehouse_does_not_hold_is_a_reject_that_can_be_replayed(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    old = canonical("r1", [("a1", {"id_number": WANG, "name": "王芳"})])
    remembered = canonical("r0", [("a0", {"id_number": WANG, "name": "王小芳"})])
    write(writer, old)
    refused = seen("r2", [("b1", remembered), ("b2", canonical("r0", [("a9", {"id_number": LI, "name": "李四"})]))])
    write(writer, refused)
    write(writer, refused, offset=1)
    assert outcomes(connection, "r2") == {"b1": "rejected", "b2": "rejected"}
    rejects = connection.execute(
        "SELECT record_uid, stage, reason_code, reason, payload FROM rejects ORDER BY record_uid"
    ).fetchall()
    assert [(uid, stage, code) for uid, stage, code, _, _ in rejects] == [
        ("b1", "warehouse", "seen_row_not_in_warehouse"),
        ("b2", "warehouse", "seen_row_not_in_warehouse"),
    ]
    assert "gridhub rejects replay" in rejects[0][3]
    assert json.loads(rejects[0][4]) == {"name": "王小芳", "id_number": WANG}
    assert connection.execute("SELECT name FROM people").fetchall() == [("王芳",)]


def test_a_seen_row_is_judged_in_order_with_the_full_rows_of_its_transaction(
    warehouse: tuple[WarehouseWriter, duckdb.DuckDBPyConnection],
) -> None:
    writer, connection = warehouse
    first = canonical("r1", [("a1", {"id_number": WANG, "name": "王芳"})])
    changed = canonical("r3", [("c1", {"id_number": WANG, "name": "王小芳"})])
    write(writer, first)
    write(writer, seen("r2", [("b1", first)]), changed, seen("r4", [("d1", changed)]), offset=1)
    assert connection.execute("SELECT record_uid, outcome, reason_code FROM intake ORDER BY record_uid").fetchall() == [
        ("a1", "new", None),
        ("b1", "duplicate", "seen_before"),
        ("c1", "update", None),
        ("d1", "duplicate", "seen_before"),
    ]
    assert connection.execute("SELECT name FROM people").fetchall() == [("王小芳",)]
