"""Write decoded micro-batches into DuckDB: one transaction per batch, offsets included.

Rows and the Kafka offsets they came from commit together, so after a crash the
warehouse resumes exactly after the last batch it holds. Entity tables are keyed
upserts and the ledgers are insert-if-absent, so a batch applied twice (after a
topic is replayed from the start) leaves the tables as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

SCHEMA_FILES = (Path(__file__).with_name("schema.sql"), Path(__file__).with_name("cases.sql"))

ENTITY_TABLES: dict[str, tuple[str, str]] = {
    "person": ("people", "id_number"),
    "organisation": ("organisations", "uscc"),
    "place": ("places", "place_id"),
    "object": ("objects", "object_id"),
    "event": ("events", "event_id"),
    "event_update": ("event_updates", "update_id"),
    "application": ("applications", "application_id"),
    "track_point": ("patrol_tracks", "worker_id, recorded_at"),
    "case": ("cases", "case_id"),
    "case_transition": ("case_transitions", "case_id, seq"),
}


@dataclass
class Batch:
    """Everything one sink poll decoded, grouped by destination table."""

    entities: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    intake: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.intake)

    def reject_row(self, kind: str, row: dict[str, Any], reason: str) -> None:
        """Turn an entity row into a reject, and its ledger entry into a rejected outcome."""
        uid = row.get("record_uid")
        payload = {key: value for key, value in row.items() if key != "loaded_at"}
        self.rejects.append(
            {
                "record_uid": uid,
                "source": row.get("source"),
                "source_record_id": row.get("source_record_id"),
                "entity": kind,
                "stage": "warehouse",
                "reason_code": "contract_violation",
                "reason": reason,
                "payload": json.dumps(payload, ensure_ascii=False, default=str),
                "run_id": next((entry["run_id"] for entry in self.intake if entry["record_uid"] == uid), None),
                "rejected_at": row.get("loaded_at"),
            }
        )
        for entry in self.intake:
            if entry["record_uid"] == uid:
                entry.update(outcome="rejected", reason_code="contract_violation")


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file for writing, with its tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(path))
    for schema in SCHEMA_FILES:
        connection.execute(schema.read_text())
    return connection


class WarehouseWriter:
    """The single writer of the warehouse file."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection

    def stored_offsets(self) -> dict[tuple[str, int], tuple[int, str]]:
        """Where each partition was left: next offset to read and the topic id it belongs to."""
        rows = self.connection.execute("SELECT topic, partition, next_offset, topic_id FROM sink_offsets").fetchall()
        return {(topic, partition): (offset, topic_id) for topic, partition, offset, topic_id in rows}

    def write(self, batch: Batch, topic_ids: dict[str, str]) -> None:
        """Apply one batch atomically."""
        cursor = self.connection.cursor()
        cursor.execute("BEGIN TRANSACTION")
        try:
            for kind, rows in batch.entities.items():
                table, key = ENTITY_TABLES[kind]
                self._upsert(cursor, table, key, rows)
            self._insert_new(cursor, "rejects", batch.rejects)
            self._insert_new(cursor, "intake", batch.intake)
            cases = {row["case_id"] for kind in ("case", "case_transition") for row in batch.entities.get(kind, [])}
            cases |= {row["case_id"] for row in batch.entities.get("event", []) if row.get("case_id")}
            if cases:
                self._refresh_case_views(cursor, sorted(cases))
            offsets = [
                {"topic": topic, "partition": partition, "next_offset": offset, "topic_id": topic_ids[topic]}
                for (topic, partition), offset in batch.offsets.items()
            ]
            self._upsert(cursor, "sink_offsets", "topic, partition", offsets)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    @staticmethod
    def _upsert(cursor: duckdb.DuckDBPyConnection, table: str, key: str, rows: list[dict[str, Any]]) -> None:
        """Keyed upsert from Arrow; within a batch the last version of a key wins."""
        if not rows:
            return
        arrow = pa.Table.from_pylist(rows).append_column("_seq", pa.array(range(len(rows)), pa.int64()))
        cursor.register("incoming", arrow)
        cursor.execute(
            f"INSERT OR REPLACE INTO {table} BY NAME SELECT * EXCLUDE (_seq) FROM incoming "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _seq DESC) = 1"
        )
        cursor.unregister("incoming")

    @staticmethod
    def _insert_new(cursor: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
        """Append ledger rows whose key is not stored yet: the first outcome of a record stands."""
        if not rows:
            return
        cursor.register("incoming", pa.Table.from_pylist(rows))
        cursor.execute(
            f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM incoming "
            "QUALIFY row_number() OVER (PARTITION BY record_uid) = 1"
        )
        cursor.unregister("incoming")

    @staticmethod
    def _refresh_case_views(cursor: duckdb.DuckDBPyConnection, case_ids: list[str]) -> None:
        """Stage times come from the transition log; a report shows the status of its case."""
        cursor.execute(
            "UPDATE cases SET accepted_at = t.accepted_at, dispatched_at = t.dispatched_at, "
            "handled_at = t.handled_at, verified_at = t.verified_at FROM ("
            "  SELECT case_id,"
            "    min(\"at\") FILTER (to_status = 'accepted') AS accepted_at,"
            "    min(\"at\") FILTER (to_status = 'dispatched') AS dispatched_at,"
            "    max(\"at\") FILTER (to_status = 'handled') AS handled_at,"
            "    max(\"at\") FILTER (to_status = 'verified') AS verified_at"
            "  FROM case_transitions WHERE case_id IN (SELECT unnest($ids)) GROUP BY case_id"
            ") AS t WHERE cases.case_id = t.case_id",
            {"ids": case_ids},
        )
        cursor.execute(
            "UPDATE events SET status = cases.status FROM cases "
            "WHERE events.case_id = cases.case_id AND cases.case_id IN (SELECT unnest($ids))",
            {"ids": case_ids},
        )
