"""Write decoded micro-batches into DuckDB: one transaction per batch, offsets included.

Rows and the Kafka offsets they came from commit together, so after a crash the
warehouse resumes exactly after the last batch it holds. Entity tables are keyed
upserts and the ledgers are insert-if-absent, so a batch applied twice (after a
topic is replayed from the start) leaves the tables as they were. A transaction that
fails is raised as what its failure means (:mod:`foundation.errors`): the warehouse
cannot be written now, the warehouse is broken, or the batch holds what it cannot store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from foundation.errors import ConfigurationError, InputRejected, RetryableError
from schemas.batches import RecordBatch
from schemas.rejects import Reject, describe_error
from warehouse.bulk import BulkWriter, Screen
from warehouse.masking import install_masked_views
from warehouse.migrations import UPGRADES as UPGRADES
from warehouse.migrations import WAREHOUSE_VERSION as WAREHOUSE_VERSION
from warehouse.migrations import WarehouseSchemaError, migrate
from warehouse.quality import Place, store_results
from warehouse.reader import require_duckdb_file
from warehouse.rejects import close_resolved
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ENTITIES
from warehouse.runs import record_runs
from warehouse.upsert import insert_new_rows, transaction, upsert_rows

SCHEMA_FILES = tuple(
    Path(__file__).with_name(name)
    for name in (
        "schema.sql",
        "cases.sql",
        "entities.sql",
        "approvals.sql",
        "enforcement.sql",
        "runs.sql",
        "quality.sql",
        "daily.sql",
    )
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
    "enforcement_case": ("enforcement_cases", "case_no"),
}
"""Where each kind's rows land; base data lands as source copies, which the resolver merges."""


@dataclass(frozen=True)
class Origin:
    """A polled message as it came: where it sits and its bytes.

    A batch keeps the origins of its messages so that, when its transaction fails, its
    messages can be decoded again in smaller groups, and one that fails alone can be kept
    as a reject with its bytes and its place.
    """

    topic: str
    partition: int
    offset: int
    value: bytes


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
    runs: list[dict[str, Any]] = field(default_factory=list)
    bulk: dict[str, list[RecordBatch]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    origins: list[Origin] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)
    """The warehouse contract's results for the batch's per-record rows (:mod:`warehouse.quality`)."""

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
        self.runs.extend(other.runs)
        for kind, parts in other.bulk.items():
            self.bulk.setdefault(kind, []).extend(parts)
        self.offsets.update(other.offsets)
        self.origins.extend(other.origins)
        self.quality.extend(other.quality)

    def sources(self) -> set[str]:
        """The sources of the outcomes the batch writes to the intake ledger, its bulk-lane rows' included."""
        return {entry["source"] for entry in self.intake if entry.get("source") is not None} | {
            part.source for parts in self.bulk.values() for part in parts
        }

    def first_place(self, topic_ids: dict[str, str]) -> Place:
        """Where the batch's first message sits, which its quality results name (all None without one)."""
        if not self.origins:
            return (None, None, None, None)
        first = self.origins[0]
        return (first.topic, first.partition, first.offset, topic_ids.get(first.topic))

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


class WarehouseIOError(RetryableError):
    """The warehouse file could not be written now (disk full, an I/O error): nothing was stored, try again."""


class WarehouseBroken(ConfigurationError):
    """DuckDB can no longer write the warehouse through this connection: the sink stops, to be started again."""


class UnwritableBatch(InputRejected):
    """DuckDB or Arrow refused what the batch holds (a value it cannot convert, a NULL where one may not be).

    The same rows fail the same way every time, so trying them again is pointless: the messages
    that cause it must be found and kept as rejects.
    """

    reason_code = "unwritable_at_sink"


_CANNOT_WRITE_NOW = (duckdb.IOException, duckdb.ResourceInUseException)
_BROKEN = (duckdb.FatalException, duckdb.InternalException, duckdb.ConnectionException)
_CONTENT = (
    duckdb.DataError,
    duckdb.IntegrityError,
    duckdb.BinderException,
    duckdb.InvalidInputException,
    KeyError,
    TypeError,
    ValueError,
)
"""Failures caused by what a batch holds: DuckDB's conversion, constraint and binding errors, and the
Arrow (``ArrowInvalid`` is a ``ValueError``) and Python errors of rows of the wrong shape."""


def _first_failure(error: BaseException) -> BaseException:
    """The error that failed a transaction, not the ones raised after it.

    Once a statement fails, DuckDB refuses every later one in the transaction ("Current transaction
    is aborted"), the ``unregister`` in a ``finally`` block of the write path included, and Python
    raises the last of those with the first as its context: judged by it, every failure would look alike.
    """
    while isinstance(error, duckdb.TransactionException) and error.__context__ is not None:
        error = error.__context__
    return error


def connect(path: Path, resolver: Resolver) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file for writing, with its tables and views, upgraded in place."""
    require_duckdb_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(path))
    try:
        migrate(connection, path, SCHEMA_FILES, resolver)
    except WarehouseSchemaError:
        connection.close()
        raise
    install_masked_views(connection)
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
        """Apply one batch atomically; a failure is raised as what it means for the batch.

        :class:`WarehouseIOError`: try the same batch again later. :class:`WarehouseBroken`: stop.
        :class:`UnwritableBatch`: the batch holds something the warehouse cannot store. Anything
        else is raised as it is: nobody knows yet whether the batch or the code is at fault.
        """
        try:
            self._write(batch, topic_ids)
        except Exception as exc:
            cause = _first_failure(exc)
            if isinstance(cause, _CANNOT_WRITE_NOW):
                raise WarehouseIOError(f"the warehouse could not be written now ({describe_error(cause)})") from cause
            if isinstance(cause, _BROKEN):
                raise WarehouseBroken(
                    f"DuckDB can no longer write the warehouse ({describe_error(cause)}); the sink stops: check the "
                    "disk and the file, then start it again (it resumes after the last batch it stored)"
                ) from cause
            if isinstance(cause, _CONTENT):
                raise UnwritableBatch(describe_error(cause)) from cause
            raise

    def _write(self, batch: Batch, topic_ids: dict[str, str]) -> None:
        now = datetime.now(UTC)
        with transaction(self.connection) as cursor:
            for kind, rows in batch.entities.items():
                if kind in ENTITIES:
                    self.resolver.apply(cursor, kind, rows, now)
                else:
                    table, key = ENTITY_TABLES[kind]
                    upsert_rows(cursor, table, key, rows)
            quality = list(batch.quality)
            for kind, parts in batch.bulk.items():
                quality.extend(self.bulk.write(cursor, kind, parts, now))
            if batch.decisions:
                self.resolver.apply_decisions(cursor, batch.decisions, now)
            insert_new_rows(cursor, "rejects", batch.rejects)
            insert_new_rows(cursor, "intake", [{**entry, "written_at": now} for entry in batch.intake])
            close_resolved(cursor, now, batch.sources())
            record_runs(cursor, batch.runs)
            store_results(cursor, quality, batch.first_place(topic_ids), now)
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
