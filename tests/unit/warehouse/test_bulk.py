"""The sink's bulk path on a real DuckDB file: outcomes decided set-based, replays harmless, refusals kept."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from schemas.batches import RecordBatch
from schemas.identity import resident_id_check_char
from tests.unit.warehouse.batches import canonical
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
