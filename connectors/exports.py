"""Department exports: register tables delivered as CSV or JSON Lines files.

Rows stream from disk one at a time, so an export of millions of rows needs no
more memory than one row. Headers are mapped to canonical field names from the
data file ``schemas/data/export_headers.yaml``; a file that lacks a required
column is refused before a single row is published.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from connectors.base import Connector, ConnectorError
from schemas.topics import RAW_EXPORTS

ExportEntity = Literal["person", "organisation", "place", "object"]
HEADERS_FILE = Path(__file__).resolve().parent.parent / "schemas" / "data" / "export_headers.yaml"
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class BadLine:
    """A line that could not be read as a record at all."""

    number: int
    text: str
    problem: str


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


def _squash(header: str) -> str:
    return header.strip().lower().replace(" ", "").replace("_", "")


class HeaderMap:
    """Maps one export's headers to canonical field names for an entity kind."""

    def __init__(self, entity: ExportEntity, headers: list[str]) -> None:
        table = yaml.safe_load(HEADERS_FILE.read_text(encoding="utf-8"))
        aliases = {_squash(alias): field for field, names in table[entity].items() for alias in names}
        self.mapping = {header: aliases.get(_squash(header), header) for header in headers}
        self.key_field: str = table["required"][entity][0]
        missing = [field for field in table["required"][entity] if field not in self.mapping.values()]
        if missing:
            wanted = "; ".join(f"{field} ({' / '.join(table[entity][field])})" for field in missing)
            raise ConnectorError(
                f"export lacks required column(s) for {entity}: {wanted}. Found columns: {', '.join(headers)}"
            )

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """Rename one row's keys; unknown columns keep their header as the key."""
        return {self.mapping.get(key, key): value for key, value in row.items() if key is not None}


def _detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the head decodes as such, else GB18030, a superset of GBK."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return "gb18030"
    return "utf-8-sig"


def _csv_rows(path: Path) -> tuple[list[str], Iterator[dict[str, Any] | BadLine]]:
    handle = path.open(encoding=_detect_encoding(path), newline="")
    reader = csv.DictReader(handle)
    headers = [header for header in (reader.fieldnames or []) if header]

    def rows() -> Iterator[dict[str, Any] | BadLine]:
        with handle:
            for row in reader:
                if None in row:
                    yield BadLine(reader.line_num, json.dumps(row, ensure_ascii=False), "more cells than headers")
                else:
                    yield row

    return headers, rows()


def _jsonl_rows(path: Path) -> tuple[list[str], Iterator[dict[str, Any] | BadLine]]:
    headers: list[str] = []
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(first, dict):
                headers = list(first)
                break

    def rows() -> Iterator[dict[str, Any] | BadLine]:
        with path.open(encoding="utf-8-sig") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield BadLine(number, line.rstrip("\n"), f"not valid JSON ({exc})")
                    continue
                if isinstance(value, dict):
                    yield value
                else:
                    yield BadLine(number, line.rstrip("\n"), f"a JSON {type(value).__name__}, not an object")

    return headers, rows()


class ExportFile:
    """An export checked up front: it exists, has a known format and the required columns."""

    def __init__(self, path: Path, entity: ExportEntity) -> None:
        if not path.is_file():
            raise ConnectorError(f"no such file: {path}")
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise ConnectorError(f"unsupported export format {path.suffix!r}; use one of {', '.join(FORMATS)}")
        headers, self.rows = _csv_rows(path) if kind == "csv" else _jsonl_rows(path)
        if not headers:
            raise ConnectorError(f"{path} has no header row or no JSON object to take column names from")
        self.path = path
        self.entity = entity
        self.header_map = HeaderMap(entity, headers)


class ExportConnector(Connector):
    """Publishes the rows of one export file as raw records of one entity kind."""

    topic = RAW_EXPORTS

    def ingest(self, export: ExportFile, run_id: str, progress: Callable[[int], None] | None = None) -> IngestReport:
        """Publish every row, wait for Kafka to acknowledge them all, and report the counts."""
        report = IngestReport(run_id=run_id)
        name = export.path.name
        for item in export.rows:
            if isinstance(item, BadLine):
                self.publisher.reject(
                    source=self.source,
                    source_record_id=f"{name}:{item.number}",
                    entity=export.entity,
                    stage="decode",
                    reason_code="unreadable_line",
                    reason=f"{name} line {item.number}: {item.problem}",
                    payload=item.text,
                    run_id=run_id,
                )
                report.unreadable += 1
            else:
                payload = export.header_map.apply(item)
                key = str(payload.get(export.header_map.key_field) or "").strip().upper()
                record_id = key or f"{name}:{report.total + 1}"
                self.send(self.envelope(record_id, export.entity, payload, run_id))
                report.records += 1
            if progress and report.total % 1000 == 0:
                progress(report.total)
        self.publisher.flush()
        if progress:
            progress(report.total)
        return report
