"""Department exports: register tables delivered as files (CSV, JSON Lines, XLSX, Parquet) or pulled over REST.

Rows stream from the reader into Arrow batches of a few thousand (the bulk
lane, :mod:`.batching`), so an export of millions of rows needs no more memory
than a few batches; a CSV pyarrow parses cleanly is read and mapped column-wise
(:mod:`.columnar`). Headers are mapped to canonical field names by
configuration (:mod:`.columns`); input that lacks a required column is refused
before a single row is published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from connectors.base import Connector, ConnectorError, content_hash, make_envelope
from connectors.exports.batching import PartitionedBatches, batchable, block
from connectors.exports.columnar import content_hashes, mapped, record_ids
from connectors.exports.columns import ColumnMap, ExportEntity
from connectors.exports.readers import BadLine, Row, read_table
from schemas.records import RawEnvelope
from schemas.topics import RAW_EXPORTS

__all__ = [
    "BadLine",
    "ColumnMap",
    "ExportConnector",
    "ExportEntity",
    "ExportFile",
    "IngestReport",
    "RowSource",
    "export_records",
]


@dataclass
class IngestReport:
    """What one ingest published, for the caller's summary and ``--wait``."""

    run_id: str
    records: int = 0
    unreadable: int = 0

    @property
    def total(self) -> int:
        """Everything that will leave a trace in the warehouse (records and rejects)."""
        return self.records + self.unreadable


class RowSource(Protocol):
    """Rows of one entity kind from one origin (a file, a REST pull) and the map that names their fields."""

    origin: str
    entity: ExportEntity
    columns: ColumnMap
    rows: Iterable[Row]

    def blocks(self) -> Iterator[pa.Table] | None:
        """The rows as Arrow blocks of text columns named by their headers, or None to read them row by row."""


class ExportFile:
    """An export file checked up front: it exists, has a known format and the required columns."""

    def __init__(
        self, path: Path, entity: ExportEntity, columns: ColumnMap | None = None, sheet: str | None = None
    ) -> None:
        if not path.is_file():
            raise ConnectorError(f"no such file: {path}")
        self.columns = columns or ColumnMap(entity)
        if sheet is None and path.suffix.lower() == ".xlsx":
            sheet = self.columns.sheet  # the department's usual sheet; its CSV exports have none
        table = read_table(path, sheet)
        if not table.headers:
            raise ConnectorError(f"{path} has no header row or no JSON object to take column names from")
        self.columns.require(table.headers, "export")
        self.path = path
        self.origin = path.name
        self.entity = entity
        self.rows: Iterable[Row] = table.rows
        self._blocks = table.blocks

    def blocks(self) -> Iterator[pa.Table] | None:
        """Arrow blocks of a file pyarrow reads cleanly (see :mod:`.readers`), else None."""
        return self._blocks()


def export_rows(rows: RowSource) -> Iterator[tuple[str, dict[str, Any]] | BadLine]:
    """Each row as its source record id and payload, or the bad line to keep as a reject.

    A row's source record id is its key field (resident ID, credit code, parcel
    code...), so every resend of the same record is recognised downstream;
    without one it is the department's own row id (the mapping's ``record_id``
    column), and failing that the row's position in its origin.
    """
    for number, item in enumerate(rows.rows, start=1):
        if isinstance(item, BadLine):
            yield item
            continue
        payload: dict[str, Any] = rows.columns.apply(item)
        key = str(payload.get(rows.columns.key_field) or "").strip().upper()
        if not key and rows.columns.record_id:
            key = str(payload.get(rows.columns.record_id) or "").strip()
        yield key or f"{rows.origin}:{number}", payload


def export_records(source: str, rows: RowSource, run_id: str) -> Iterator[RawEnvelope | BadLine]:
    """Each row as the raw envelope the per-record lane would publish, or the bad line to keep as a reject."""
    for item in export_rows(rows):
        if isinstance(item, BadLine):
            yield item
        else:
            yield make_envelope(source, item[0], rows.entity, item[1], run_id)


def column_block(raw: pa.Table, rows: RowSource, first_number: int) -> pa.Table:
    """A block of raw cells as a raw batch's rows: mapped, keyed and hashed column-wise."""
    payload = mapped(raw, rows.columns)
    hashes = content_hashes(payload)
    if hashes is None:
        hashes = pa.array([content_hash(row) for row in payload.to_pylist()], pa.string())
    return block(payload, record_ids(payload, rows.columns, rows.origin, first_number), hashes)


class ExportConnector(Connector):
    """Publishes the rows of one export file or pull as raw records of one entity kind."""

    topic = RAW_EXPORTS

    def ingest(self, rows: RowSource, run_id: str, progress: Callable[[int], None] | None = None) -> IngestReport:
        """Publish every row, wait for Kafka to acknowledge them all, and report the counts.

        Rows travel in Arrow batches on the bulk lane; a row with nested values (JSON Lines)
        keeps the per-record lane, whose envelopes carry any JSON.
        """
        report = IngestReport(run_id=run_id)
        batches = PartitionedBatches(self.publisher, self.source, rows.entity, run_id)
        blocks = rows.blocks()
        if blocks is not None:
            for raw in blocks:
                batches.add_block(column_block(raw, rows, report.records + 1))
                report.records += raw.num_rows
                if progress:
                    progress(report.total)
            batches.close()
            return report
        for item in export_rows(rows):
            if isinstance(item, BadLine):
                self.publisher.reject(
                    source=self.source,
                    source_record_id=f"{rows.origin}:{item.number}",
                    entity=rows.entity,
                    stage="decode",
                    reason_code="unreadable_line",
                    reason=f"{rows.origin} {item.unit} {item.number}: {item.problem}",
                    payload=item.text,
                    run_id=run_id,
                )
                report.unreadable += 1
            else:
                source_record_id, payload = item
                if batchable(payload):
                    batches.add(source_record_id, payload)
                else:
                    self.send(self.envelope(source_record_id, rows.entity, payload, run_id))
                report.records += 1
            if progress and report.total % 1000 == 0:
                progress(report.total)
        batches.close()
        if progress:
            progress(report.total)
        return report
