"""Department exports: register tables delivered as files (CSV, JSON Lines, XLSX, Parquet) or pulled over REST.

Rows of base data stream from the reader into Arrow batches of a few thousand (the
bulk lane, :mod:`.batching`), so an export of millions of rows needs no more memory
than a few batches; a CSV pyarrow parses cleanly is read and mapped column-wise
(:mod:`.columnar`). Incidents from department platforms (environment alarms, police
incidents, hotline complaints: ``event`` rows) travel one by one on the per-record
lane instead, as a grid worker's report does, because each becomes a case. Headers are
mapped to canonical field names by configuration (:mod:`.columns`); input that lacks a
required column is refused before a single row is published.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from kafka.producer.future import FutureRecordMetadata

from connectors.exports.batching import PartitionedBatches, batchable, block
from connectors.exports.columnar import content_hashes, mapped, record_ids
from connectors.exports.columns import ColumnMap, ExportEntity
from connectors.exports.errors import ExportRejected
from connectors.exports.readers import BadLine, Row, read_table
from connectors.publisher import RawPublisher, content_hash, make_envelope
from schemas.batches import BULK_KINDS
from schemas.records import RawEnvelope
from schemas.rejects import Reject
from schemas.runs import RunNotice
from schemas.topics import RAW_EXPORTS

__all__ = [
    "BadLine",
    "ColumnMap",
    "ExportEntity",
    "ExportFile",
    "ExportPublisher",
    "ExportRejected",
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
            raise ExportRejected(f"no such file: {path}", "no_such_file")
        self.columns = columns or ColumnMap(entity)
        if sheet is None and path.suffix.lower() == ".xlsx":
            sheet = self.columns.sheet  # the department's usual sheet; its CSV exports have none
        table = read_table(path, sheet)
        if not table.headers:
            raise ExportRejected(f"{path} has no header row or no JSON object to take column names from", "no_header")
        self.columns.require(table.headers, "export")
        self.headers = table.headers
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


def unreadable(source: str, rows: RowSource, line: BadLine, run_id: str) -> Reject:
    """The reject that keeps a line no reader could make a row of, so it can be fixed and sent again."""
    return Reject.build(
        "decode",
        "unreadable_line",
        f"{rows.origin} {line.unit} {line.number}: {line.problem}",
        line.text,
        record_uid=uuid.uuid4().hex,
        source=source,
        source_record_id=f"{rows.origin}:{line.number}",
        entity=rows.entity,
        run_id=run_id,
    )


def column_block(raw: pa.Table, rows: RowSource, first_number: int) -> pa.Table:
    """A block of raw cells as a raw batch's rows: mapped, keyed and hashed column-wise."""
    payload = mapped(raw, rows.columns)
    hashes = content_hashes(payload)
    if hashes is None:
        hashes = pa.array([content_hash(row) for row in payload.to_pylist()], pa.string())
    return block(payload, record_ids(payload, rows.columns, rows.origin, first_number), hashes)


class ExportPublisher:
    """Publishes the rows of one export (a file, a pull) as raw records of one entity kind, for any of its doors.

    ``gridhub ingest``, the watched folder and the REST poller all hand their rows here, so an
    export is read, mapped and sent the same way whichever door it came through. It returns only
    once Kafka has acknowledged every row; any failure is the taxonomy's (a broker away is
    retryable: publishing the export again resends rows the stream recognises as duplicates).
    """

    def __init__(self, publisher: RawPublisher, source: str) -> None:
        self.publisher = publisher
        self.source = source

    def publish(self, rows: RowSource, run_id: str, progress: Callable[[int], None] | None = None) -> IngestReport:
        """Publish every row, wait for Kafka to acknowledge them all, and report the counts.

        Base data travels in Arrow batches on the bulk lane; a row with nested values (JSON Lines)
        and every row of a kind the bulk lane does not take (events, which the case agent files
        one by one) keep the per-record lane, whose envelopes carry any JSON.
        """
        report = IngestReport(run_id=run_id)
        batches = PartitionedBatches(self.publisher, self.source, rows.entity, run_id)
        sent: list[FutureRecordMetadata] = []
        bulk = rows.entity in BULK_KINDS
        blocks = rows.blocks() if bulk else None
        if blocks is not None:
            for raw in blocks:
                batches.add_block(column_block(raw, rows, report.records + 1))
                report.records += raw.num_rows
                if progress:
                    progress(report.total)
        else:
            for item in export_rows(rows):
                if isinstance(item, BadLine):
                    sent.append(self.publisher.reject(unreadable(self.source, rows, item, run_id)))
                    report.unreadable += 1
                else:
                    source_record_id, payload = item
                    if bulk and batchable(payload):
                        batches.add(source_record_id, payload)
                    else:
                        envelope = make_envelope(self.source, source_record_id, rows.entity, payload, run_id)
                        sent.append(self.publisher.publish(RAW_EXPORTS, envelope))
                    report.records += 1
                if progress and report.total % 1000 == 0:
                    progress(report.total)
        batches.finish()
        self.publisher.acknowledged([*batches.sent, *sent], f"publishing {rows.origin} from {self.source}")
        if progress:
            progress(report.total)
        return report

    def publish_run(
        self, run: RunNotice, rows: Callable[[], RowSource], progress: Callable[[int], None] | None = None
    ) -> IngestReport:
        """Open and publish one door's input as ``run``, told to the run ledger (:meth:`RawPublisher.announcing`).

        The input is opened inside the run, so one refused as a whole (a missing column, a broken
        file) is a failed run with its reason, and the operator finds it in ``gridhub runs``.
        """
        with self.publisher.announcing(run) as tally:
            report = self.publish(rows(), run.run_id, progress)
            tally.published, tally.refused = report.records, report.unreadable
        return report
