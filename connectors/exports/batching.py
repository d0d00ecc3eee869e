"""Gather an export's rows into Arrow batches, one pending batch per partition (the bulk lane).

A row goes to the partition its source and record id hash to, so every version of a
record travels one partition in order and the worker and the sink can keep the last
one. A batch is sent once it holds ``batch_rows`` rows, split if its encoding would
exceed the broker's message limit. Rows read one by one are kept as plain lists and
turned into a block every ``batch_rows`` rows: an object per row would cost more than
everything else the connector does. Column-wise readers hand over whole blocks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from kafka.producer.future import FutureRecordMetadata

from connectors.publisher import RawPublisher, content_hash
from foundation.metrics import count_records
from schemas.batches import RecordBatch, encode_within
from schemas.digests import random_hex
from schemas.topics import RAW_BATCHES


def batchable(payload: dict[str, Any]) -> bool:
    """Rows of text cells travel in batches; a nested value (from JSON Lines) keeps the per-record lane."""
    return all(value is None or isinstance(value, str) for value in payload.values())


def block(payload: pa.Table, source_record_ids: pa.Array, content_hashes: pa.Array) -> pa.Table:
    """Provenance columns first, then the payload's text columns: the layout of a raw batch."""
    head = {
        "record_uid": random_hex(payload.num_rows),  # the 32 hex digits of the per-record lane's ids
        "source_record_id": source_record_ids,
        "content_hash": content_hashes,
    }
    return pa.table({**head, **{name: payload.column(name) for name in payload.column_names}})


@dataclass
class _Rows:
    """Rows read one by one, column by column, until they make a block."""

    source_record_ids: list[str] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def block(self) -> pa.Table:
        fields = list(dict.fromkeys(name for payload in self.payloads for name in payload))
        payload = pa.table({name: pa.array([row.get(name) for row in self.payloads], pa.string()) for name in fields})
        hashes = pa.array([content_hash(row) for row in self.payloads], pa.string())
        return block(payload, pa.array(self.source_record_ids, pa.string()), hashes)


class PartitionedBatches:
    """Pending rows of one run of one source and kind, per partition of ``raw.batches``."""

    def __init__(self, publisher: RawPublisher, source: str, kind: str, run_id: str) -> None:
        self.publisher = publisher
        self.source = source
        self.kind = kind
        self.run_id = run_id
        self.partitions = publisher.partitions(RAW_BATCHES)
        self.rows = _Rows()
        self.pending: dict[int, list[pa.Table]] = {}
        self.sent: list[FutureRecordMetadata] = []

    def add(self, source_record_id: str, payload: dict[str, Any]) -> None:
        """Queue one row read on its own."""
        self.rows.source_record_ids.append(source_record_id)
        self.rows.payloads.append(payload)
        if len(self.rows.payloads) >= self.publisher.batch_rows:
            self.add_block(self.rows.block())
            self.rows = _Rows()

    def add_block(self, rows: pa.Table) -> None:
        """Queue a block of rows laid out by :func:`block`; send every partition's batch that fills up."""
        prefix = f"{self.source}|"
        partitions = np.array(
            [
                zlib.crc32((prefix + key).encode()) % self.partitions
                for key in rows.column("source_record_id").to_pylist()
            ],
            np.int32,
        )
        grouped = rows.take(np.argsort(partitions, kind="stable"))  # one pass, not one filter per partition
        start = 0
        for partition, count in enumerate(np.bincount(partitions, minlength=self.partitions).tolist()):
            if count:
                self.pending.setdefault(partition, []).append(grouped.slice(start, count))
                self._send_full(partition)
            start += count

    def finish(self) -> None:
        """Send everything still pending; the caller waits for Kafka to acknowledge :attr:`sent`."""
        if self.rows.payloads:
            self.add_block(self.rows.block())
            self.rows = _Rows()
        for partition, parts in self.pending.items():
            if parts:
                self._send(partition, pa.concat_tables(parts, promote_options="permissive"))
        self.pending.clear()

    def _send_full(self, partition: int) -> None:
        parts = self.pending[partition]
        if sum(part.num_rows for part in parts) < self.publisher.batch_rows:
            return
        rows = pa.concat_tables(parts, promote_options="permissive")
        size = self.publisher.batch_rows
        full = rows.num_rows - rows.num_rows % size
        for start in range(0, full, size):
            self._send(partition, rows.slice(start, size))
        self.pending[partition] = [rows.slice(full)] if full < rows.num_rows else []

    def _send(self, partition: int, rows: pa.Table) -> None:
        batch = RecordBatch(self.kind, self.source, self.run_id, datetime.now(UTC), rows)
        uids = rows.column("record_uid").to_pylist()
        for value in encode_within(batch):
            self.sent.append(self.publisher.publish_batch(RAW_BATCHES, partition, value, uids))
        count_records("intake", self.source, taken=len(uids), passed=len(uids))
