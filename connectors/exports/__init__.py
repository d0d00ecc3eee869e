"""Department exports: register tables delivered as files (CSV, JSON Lines, XLSX, Parquet) or pulled over REST.

Rows stream one at a time (Parquet: one batch) from reader to Kafka, so an
export of millions of rows needs no more memory than a few rows. Headers are
mapped to canonical field names by configuration (:mod:`.columns`); input that
lacks a required column is refused before a single row is published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from connectors.base import Connector, ConnectorError, make_envelope
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


def export_records(source: str, rows: RowSource, run_id: str) -> Iterator[RawEnvelope | BadLine]:
    """Each row as the raw envelope to publish, or the bad line to keep as a reject.

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
        yield make_envelope(source, key or f"{rows.origin}:{number}", rows.entity, payload, run_id)


class ExportConnector(Connector):
    """Publishes the rows of one export file or pull as raw records of one entity kind."""

    topic = RAW_EXPORTS

    def ingest(self, rows: RowSource, run_id: str, progress: Callable[[int], None] | None = None) -> IngestReport:
        """Publish every row, wait for Kafka to acknowledge them all, and report the counts."""
        report = IngestReport(run_id=run_id)
        for item in export_records(self.source, rows, run_id):
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
                self.send(item)
                report.records += 1
            if progress and report.total % 1000 == 0:
                progress(report.total)
        self.publisher.flush()
        if progress:
            progress(report.total)
        return report
