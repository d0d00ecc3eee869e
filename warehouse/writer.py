"""Write decoded micro-batches into DuckDB: one transaction per batch, offsets included.

Rows and the Kafka offsets they came from commit together, so after a crash the
warehouse resumes exactly after the last batch it holds. Entity tables are keyed
upserts and the ledgers are insert-if-absent, so a batch applied twice (after a
topic is replayed from the start) leaves the tables as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from foundation.errors import ConfigurationError
from schemas.batches import RecordBatch
from schemas.rejects import Reject
from warehouse.bulk import BulkWriter, Screen
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ENTITIES
from warehouse.upsert import insert_new_rows, transaction, upsert_rows

SCHEMA_FILES = tuple(
    Path(__file__).with_name(name) for name in ("schema.sql", "cases.sql", "entities.sql", "approvals.sql")
)

ENTITY_TABLES: dict[str, tuple[str, str]] = {
    "person": ("person_sources", "source, source_record_id"),
    "organisation": ("organisation_sources", "source, source_record_id"),
    "place": ("place_sources", "source, source_record_id"),
    "object": ("object_sources", "source, source_record_id"),
    "event": ("events", "event_id"),
    "event_update": ("event_updates", "update_id"),
    "application": ("applications", "application_id"),
    "track_point": ("patrol_tracks", "worker_id, recorded_at"),
    "case": ("cases", "case_id"),
    "case_transition": ("case_transitions", "case_id, seq"),
}
"""Where each kind's rows land; base data lands as source copies, which the resolver merges."""


@dataclass
class Batch:
    """What one sink transaction writes: its messages' rows by destination table, and the offsets after them.

    Reject rows are kept as the ``rejects`` topic carries them (JSON values, times as ISO text),
    so the worker's rejects and the sink's own fit in one Arrow table.
    """

    entities: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    intake: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    bulk: dict[str, list[RecordBatch]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.intake)

    @property
    def bulk_rows(self) -> int:
        """Rows that came in bulk-lane batches (counted apart: one message holds thousands)."""
        return sum(len(part) for parts in self.bulk.values() for part in parts)

    def absorb(self, other: Batch) -> None:
        """Take in another batch's rows and offsets (the sink's next message, decoded on its own)."""
        for kind, rows in other.entities.items():
            self.entities.setdefault(kind, []).extend(rows)
        self.rejects.extend(other.rejects)
        self.intake.extend(other.intake)
        self.decisions.extend(other.decisions)
        for kind, parts in other.bulk.items():
            self.bulk.setdefault(kind, []).extend(parts)
        self.offsets.update(other.offsets)

    def reject_row(self, kind: str, row: dict[str, Any], reason: str) -> None:
        """Turn an entity row into a reject, and its ledger entry into a rejected outcome."""
        uid = row.get("record_uid")
        reject = Reject.build(
            "warehouse",
            "contract_violation",
            reason,
            {key: value for key, value in row.items() if key != "loaded_at"},
            record_uid=uid,
            source=row.get("source"),
            source_record_id=row.get("source_record_id"),
            entity=kind,
            run_id=next((entry["run_id"] for entry in self.intake if entry["record_uid"] == uid), None),
            rejected_at=row.get("loaded_at"),
        )
        self.rejects.append(reject.model_dump(mode="json"))
        for entry in self.intake:
            if entry["record_uid"] == uid:
                entry.update(outcome="rejected", reason_code="contract_violation")


WAREHOUSE_VERSION = 3
"""Shape of the tables; bumped whenever a table changes (2: base data as source copies plus golden records;
3: no primary-key indexes, keys kept unique by the writer)."""


class WarehouseSchemaError(ConfigurationError):
    """The warehouse file was written by a gridhub whose tables have another shape."""


def _check_version(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a file of another table shape before writing to it, instead of failing mid-batch.

    ``CREATE TABLE IF NOT EXISTS`` keeps an old table as it is, so the first batch would
    meet a missing column; there are no migrations yet, so say what to do instead.
    """
    tables = {name for (name,) in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not tables:
        return
    found = 1
    if "warehouse_meta" in tables:
        row = connection.execute("SELECT value FROM warehouse_meta WHERE key = 'version'").fetchone()
        found = int(row[0]) if row else 1
    if found != WAREHOUSE_VERSION:
        raise WarehouseSchemaError(
            f"{path} holds warehouse tables of version {found}, this gridhub writes version {WAREHOUSE_VERSION}; "
            "move the file aside (the sink then rebuilds the warehouse from the Kafka topics) or run the "
            "gridhub version that wrote it"
        )


def connect(path: Path, resolver: Resolver) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file for writing, with its tables and views."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(path))
    try:
        _check_version(connection, path)
    except WarehouseSchemaError:
        connection.close()
        raise
    for schema in SCHEMA_FILES:
        connection.execute(schema.read_text())
    connection.execute(
        "CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR);"
        f"INSERT OR REPLACE INTO warehouse_meta VALUES ('version', '{WAREHOUSE_VERSION}')"
    )
    resolver.install(connection)
    return connection


class WarehouseWriter:
    """The single writer of the warehouse file."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, resolver: Resolver, screen: Screen | None = None) -> None:
        self.connection = connection
        self.resolver = resolver
        self.bulk = BulkWriter(resolver, screen)

    def stored_offsets(self) -> dict[tuple[str, int], tuple[int, str]]:
        """Where each partition was left: next offset to read and the topic id it belongs to."""
        rows = self.connection.execute("SELECT topic, partition, next_offset, topic_id FROM sink_offsets").fetchall()
        return {(topic, partition): (offset, topic_id) for topic, partition, offset, topic_id in rows}

    def write(self, batch: Batch, topic_ids: dict[str, str]) -> None:
        """Apply one batch atomically."""
        now = datetime.now(UTC)
        with transaction(self.connection) as cursor:
            for kind, rows in batch.entities.items():
                if kind in ENTITIES:
                    self.resolver.apply(cursor, kind, rows, now)
                else:
                    table, key = ENTITY_TABLES[kind]
                    upsert_rows(cursor, table, key, rows)
            for kind, parts in batch.bulk.items():
                self.bulk.write(cursor, kind, parts, now)
            if batch.decisions:
                self.resolver.apply_decisions(cursor, batch.decisions, now)
            insert_new_rows(cursor, "rejects", batch.rejects)
            insert_new_rows(cursor, "intake", batch.intake)
            cases = {row["case_id"] for kind in ("case", "case_transition") for row in batch.entities.get(kind, [])}
            cases |= {row["case_id"] for row in batch.entities.get("event", []) if row.get("case_id")}
            if cases:
                self._refresh_case_views(cursor, sorted(cases))
            offsets = [
                {"topic": topic, "partition": partition, "next_offset": offset, "topic_id": topic_ids[topic]}
                for (topic, partition), offset in batch.offsets.items()
            ]
            upsert_rows(cursor, "sink_offsets", "topic, partition", offsets)

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
