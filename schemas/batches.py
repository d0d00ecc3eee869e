"""Wire format of the bulk lane: many records of one source and kind in one Kafka message.

A department sync brings a million rows at once, and a Kafka message, a JSON parse and
a pydantic call per row cost more than the work itself. On the bulk lane a message is an
Arrow IPC stream holding one record batch of a few thousand rows of one source, kind and
run; the batch-wide provenance travels once, in the schema's metadata, and every row
keeps its own ``record_uid``, ``source_record_id`` and ``content_hash`` (raw batches) or
``fingerprint`` (canonical batches). Every value column is text, as on the per-record
lane, so a row of a batch and a per-record envelope carry the same payload.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import pyarrow as pa

from foundation.errors import InputRejected
from schemas.records import ENTITY_KINDS
from schemas.versions import CONTRACTS

BULK_KINDS = frozenset({"person", "organisation", "place", "object"})
"""Base data: the kinds department exports carry. Reports, updates and applications need the
per-record lane's case and change-number desks."""
MAX_MESSAGE_BYTES = 1_000_000
"""Largest batch message: under the 1 MiB a Kafka broker accepts by default."""
PROVENANCE_COLUMNS = ("record_uid", "source_record_id")
"""Per-row columns every batch carries besides its values."""
SEEN_PAYLOAD = "seen_payload"
"""The column that makes a canonical batch one of seen rows: rows the worker did not validate again because
it accepted the same content of the same record before (:mod:`streams.seen_rows`). Each holds the row as
its source sent it, for a reject that can be replayed; its ``fingerprint`` is the first 16 hex digits of
the one remembered, and the sink only checks that the warehouse still holds it."""
SEEN_DIGEST_HEX = 16
"""Hex digits of a seen row's fingerprint: the 64 bits the worker remembers and the sink compares."""
_COMPRESSION = "zstd"


class BatchFormatError(InputRejected):
    """A message on a batch topic that is not a batch gridhub can read."""

    reason_code = "bad_batch"


@dataclass(frozen=True)
class RecordBatch:
    """Rows of one kind from one source and run, with the provenance they share."""

    kind: str
    source: str
    run_id: str | None
    received_at: datetime
    rows: pa.Table
    processed_at: datetime | None = None

    def __len__(self) -> int:
        return self.rows.num_rows


def encode_batch(batch: RecordBatch) -> bytes:
    """The batch as one compressed Arrow IPC stream."""
    metadata = {
        "schema_version": str(CONTRACTS["record_batch"].version),
        "payload_version": str(CONTRACTS[batch.kind].version),
        "kind": batch.kind,
        "source": batch.source,
        "run_id": batch.run_id or "",
        "received_at": batch.received_at.isoformat(),
        "processed_at": batch.processed_at.isoformat() if batch.processed_at else "",
    }
    table = batch.rows.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=_COMPRESSION)) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def encode_within(batch: RecordBatch, max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """The batch as one or more messages of at most ``max_bytes``, in row order (halved until each fits)."""
    value = encode_batch(batch)
    if len(value) <= max_bytes or len(batch) < 2:
        return [value]
    half = len(batch) // 2
    first = replace(batch, rows=batch.rows.slice(0, half))
    second = replace(batch, rows=batch.rows.slice(half))
    return [*encode_within(first, max_bytes), *encode_within(second, max_bytes)]


def _upgraded_rows(table: pa.Table, kind: str, version: str | None) -> pa.Table:
    """Rows of an older version of their kind as the current version reads them; a field a step adds is text."""
    contract = CONTRACTS[kind]
    if contract.read_version(version) == contract.version:
        return table
    rows = [contract.upgrade(row, version) for row in table.to_pylist()]
    names = dict.fromkeys(name for row in rows for name in row)
    fields = [table.schema.field(name) if name in table.column_names else pa.field(name, pa.string()) for name in names]
    try:
        return pa.Table.from_pylist(rows, schema=pa.schema(fields))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise BatchFormatError(f"batch of {kind} records of version {version} cannot be upgraded ({exc})") from exc


def decode_batch(value: bytes) -> RecordBatch:
    """Read a batch back, its rows upgraded to their kind's current version; anything else raises.

    :class:`BatchFormatError` says what is no batch gridhub can read, ``UnknownContractVersion``
    which version it does not read.
    """
    try:
        table = pa.ipc.open_stream(value).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise BatchFormatError(f"not an Arrow IPC stream ({exc})") from exc
    metadata = {key.decode(): item.decode() for key, item in (table.schema.metadata or {}).items()}
    missing = [name for name in ("kind", "source", "received_at") if not metadata.get(name)]
    missing += [name for name in PROVENANCE_COLUMNS if name not in table.column_names]
    if missing:
        raise BatchFormatError(f"batch lacks {', '.join(missing)}")
    if metadata["kind"] not in ENTITY_KINDS:
        raise BatchFormatError(f"batch of unknown kind {metadata['kind']!r}; known: {', '.join(ENTITY_KINDS)}")
    for name in PROVENANCE_COLUMNS:
        column = table.column(name)
        if not pa.types.is_string(column.type) or column.null_count:
            raise BatchFormatError(f"batch column {name} must be text on every row")
    metadata = CONTRACTS["record_batch"].upgrade(metadata, metadata.get("schema_version"))
    rows = _upgraded_rows(table.replace_schema_metadata(None), metadata["kind"], metadata.get("payload_version"))
    try:
        received_at = datetime.fromisoformat(metadata["received_at"])
        processed_at = datetime.fromisoformat(metadata["processed_at"]) if metadata.get("processed_at") else None
    except ValueError as exc:
        raise BatchFormatError(f"batch metadata holds an unreadable time ({exc})") from exc
    return RecordBatch(
        kind=metadata["kind"],
        source=metadata["source"],
        run_id=metadata.get("run_id") or None,
        received_at=received_at,
        rows=rows,
        processed_at=processed_at,
    )
