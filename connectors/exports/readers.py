"""One row iterator per export format, all behind the same interface.

Every reader opens a file, reads its header, and hands back a :class:`Table`: the
column names and a one-pass iterator of rows (``{header: value}``) or
:class:`BadLine` for input that is not a row at all. Rows are produced lazily,
so an export of millions of rows needs no more memory than one row (Parquet:
one batch). Values stay as the format gives them (text from CSV, numbers and
datetimes from XLSX and Parquet); :mod:`connectors.exports.columns` turns them
into the canonical field names and text, the same way for every format.
"""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors.exports.errors import ExportRejected

CSV_BLOCK_BYTES = 1 << 20
"""CSV bytes parsed per Arrow block: about 15,000 register rows, so memory stays flat."""
PARQUET_BATCH_ROWS = 10_000
"""Rows decoded at a time from a Parquet file: large enough to be fast, small enough to keep memory flat."""
PARQUET_BUFFER_BYTES = 1 << 20
"""Column chunks are read through a buffer this size rather than whole, so a file written as one huge
row group streams in as little memory as one written in many small ones."""
_READ_ERRORS = (OSError, ValueError, csv.Error, zipfile.BadZipFile, pa.ArrowException)


@dataclass(frozen=True)
class BadLine:
    """Input that could not be read as a record at all, kept so it can be fixed and replayed."""

    number: int
    text: str
    problem: str
    unit: str = "line"


Row = dict[str, Any] | BadLine


@dataclass
class Table:
    """An export opened for reading: its column names and a one-pass iterator over its rows.

    A format pyarrow reads natively may also offer ``blocks``: the same rows as Arrow tables
    of text columns named by the headers, or None when the file must be read row by row.
    """

    headers: list[str]
    rows: Iterator[Row]
    blocks: Callable[[], Iterator[pa.Table] | None] = lambda: None


def blank(value: Any) -> bool:
    """An empty cell: nothing, or only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


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


def _arrow_csv(handle: BinaryIO, encoding: str, headers: list[str]) -> pacsv.CSVStreamingReader:
    """pyarrow's streaming reader over an open file: given a path instead, its peak memory grows with the file."""
    return pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(
            encoding="utf8" if encoding == "utf-8-sig" else encoding, block_size=CSV_BLOCK_BYTES, use_threads=False
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(headers, pa.string())),
    )


def _csv_blocks(path: Path, encoding: str, headers: list[str]) -> Iterator[pa.Table] | None:
    """The file's rows a block at a time, every cell as text, if pyarrow parses every row cleanly.

    One quick pass in C++ decides: duplicate or empty headers, or a row with more or fewer
    cells than headers, leave the file to ``csv.DictReader``, which reports each bad line.
    """
    if len(set(headers)) != len(headers) or not all(headers):
        return None
    try:
        with path.open("rb") as handle:
            for _ in _arrow_csv(handle, encoding, headers):
                pass
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError):
        return None

    def blocks() -> Iterator[pa.Table]:
        with path.open("rb") as handle:
            for batch in _arrow_csv(handle, encoding, headers):
                yield pa.Table.from_batches([batch])

    return blocks()


def read_csv(path: Path) -> Table:
    """A CSV export in UTF-8 (with or without BOM) or GBK/GB18030, as department systems write them."""
    encoding = _detect_encoding(path)
    with path.open(encoding=encoding, newline="") as handle:
        fieldnames = list(csv.DictReader(handle).fieldnames or [])

    def rows() -> Iterator[Row]:
        with path.open(encoding=encoding, newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                if None in row:
                    yield BadLine(reader.line_num, json.dumps(row, ensure_ascii=False), "more cells than headers")
                else:
                    yield row

    return Table([header for header in fieldnames if header], rows(), lambda: _csv_blocks(path, encoding, fieldnames))


def read_jsonl(path: Path) -> Table:
    """JSON Lines: one object per line; the first object's keys name the columns."""
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

    def rows() -> Iterator[Row]:
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

    return Table(headers, rows())


def read_xlsx(path: Path, sheet: str | None = None) -> Table:
    """An Excel workbook, streamed in read-only mode: the first sheet (or the named one).

    The first row with any value is the header; empty rows are skipped, and row
    numbers in rejects are the row numbers Excel shows. Formulas give their last
    computed value.
    """
    import openpyxl  # 0.13 s to import, which every CSV ingest would pay at start-up for nothing

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (*_READ_ERRORS, KeyError) as exc:
        raise ExportRejected(f"{path} is not a readable .xlsx workbook ({exc})", "unreadable") from exc
    if sheet is not None and sheet not in workbook.sheetnames:
        workbook.close()
        sheets = ", ".join(workbook.sheetnames)
        raise ExportRejected(f"{path} has no sheet {sheet!r}; its sheets are {sheets}", "no_such_sheet")
    cells = enumerate((workbook[sheet] if sheet else workbook.worksheets[0]).iter_rows(values_only=True), start=1)
    columns: dict[int, str] = {}
    for _, values in cells:
        if not all(blank(value) for value in values):
            columns = {index: str(value).strip() for index, value in enumerate(values) if not blank(value)}
            break
    else:
        workbook.close()

    def rows() -> Iterator[Row]:
        try:
            for number, values in cells:
                if all(blank(value) for value in values):
                    continue
                if any(not blank(value) and index not in columns for index, value in enumerate(values)):
                    text = json.dumps(values, ensure_ascii=False, default=str)
                    yield BadLine(number, text, "a value in a column without a header", unit="row")
                    continue
                yield {name: values[index] if index < len(values) else None for index, name in columns.items()}
        finally:
            workbook.close()

    return Table(list(columns.values()), rows())


def read_parquet(path: Path) -> Table:
    """A Parquet file, decoded one row group batch at a time so memory stays flat."""
    try:
        parquet = pq.ParquetFile(path, buffer_size=PARQUET_BUFFER_BYTES, pre_buffer=False)
    except _READ_ERRORS as exc:
        raise ExportRejected(f"{path} is not a readable Parquet file ({exc})", "unreadable") from exc

    def rows() -> Iterator[Row]:
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                yield from batch.to_pylist()
        finally:
            parquet.close()

    return Table(list(parquet.schema_arrow.names), rows())


READERS: dict[str, Callable[[Path], Table]] = {
    ".csv": read_csv,
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".xlsx": read_xlsx,
    ".parquet": read_parquet,
}


def _to_the_end(path: Path, rows: Iterator[Row]) -> Iterator[Row]:
    """Turn a file that breaks off half-way (damaged, truncated, a stray encoding) into one readable error."""
    try:
        yield from rows
    except _READ_ERRORS as exc:
        problem = f"{path} could not be read to the end ({type(exc).__name__}: {exc})"
        raise ExportRejected(problem, "unreadable") from exc


def read_table(path: Path, sheet: str | None = None) -> Table:
    """Open an export by its file name's suffix; ``sheet`` picks a worksheet of an .xlsx workbook."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        formats = ", ".join(READERS)
        raise ExportRejected(f"unsupported export format {path.suffix!r}; use one of {formats}", "unsupported_format")
    if sheet is not None and reader is not read_xlsx:
        raise ExportRejected(f"a sheet name applies to .xlsx workbooks only, not to {path.name}", "no_such_sheet")
    try:
        table = read_xlsx(path, sheet) if sheet is not None else reader(path)
    except _READ_ERRORS as exc:
        raise ExportRejected(f"{path} cannot be read ({type(exc).__name__}: {exc})", "unreadable") from exc
    return Table(table.headers, _to_the_end(path, table.rows), table.blocks)
