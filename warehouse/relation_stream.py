"""One relation's rows, whole, in Arrow record batches: read by role, audited, and carried over HTTP.

An export takes every row of a relation, so it cannot go through the SQL door, which caps the
rows of an answer and holds them in memory. Instead the rows are read in record batches of
:data:`BATCH_ROWS`, from the caller's schema (the masked views for an analyst or an admin, the
tables for the commander), so memory stays bounded however large the relation is. Only a name
from the caller's relation list (:func:`warehouse.masking.relations_of`) is ever put into SQL.

Over HTTP the batches travel as an Arrow IPC stream. A stream cut short at a message boundary
reads as a shorter stream, so the sender ends it with an empty batch carrying the number of rows
it sent (:data:`ROWS_SENT`), and the reader refuses a stream without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import BinaryIO

import duckdb
import pyarrow as pa

from foundation.access import Caller
from foundation.errors import InputRejected, RetryableError
from schemas import TOWN_TIMEZONE
from warehouse import audit, history
from warehouse.masking import relations_of
from warehouse.sql import sql_literal
from warehouse.sql_guard import own_table_macros

BATCH_ROWS = 50_000
"""Rows per record batch: what one reader holds at a time, in the sink and in the exporter."""
ARROW_STREAM = "application/vnd.apache.arrow.stream"
"""The media type of an Arrow IPC stream."""
ROWS_SENT = b"gridhub.rows"
"""Custom metadata key of the stream's last, empty batch: how many rows came before it."""


class RelationRefused(InputRejected):
    """A relation the caller may not read (or that does not exist): nothing of it was read."""

    reason_code = "relation"


class NoHistory(RelationRefused):
    """A relation that cannot be read as of a moment: it keeps no history, or not for the caller's role."""

    reason_code = "no_history"


class StreamBrokeOff(RetryableError):
    """The rows of a relation stopped arriving before the sender said it had sent them all."""


def parse_as_of(text: str) -> datetime:
    """The moment of ``--as-of``: ISO 8601, a date or a time; without an offset it is the town's time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputRejected(
            f"--as-of takes a moment like 2026-11-25T08:00 or 2026-11-25T08:00+08:00, not {text!r}", "bad_as_of"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=TOWN_TIMEZONE)


class RelationRows:
    """One relation's rows on their way out, counted as they pass, so the audit and the manifest say how many."""

    def __init__(self, relation: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
        self.relation = relation
        self.schema = schema
        self.rows = 0
        self._batches = batches

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            self.rows += batch.num_rows
            yield batch


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _as_of_source(cursor: duckdb.DuckDBPyConnection, schema: str, relation: str, as_of: datetime) -> str:
    """The table macro call giving ``relation``'s rows at ``as_of``, in the caller's schema; refused without one.

    A macro of ``main`` would show a masked role the rows whole, so only the caller's own schema's is used.
    """
    macro = history.AS_OF.get(relation)
    if macro is None:
        readable = ", ".join(sorted(history.AS_OF)) or "none yet"
        raise NoHistory(
            f"{relation} keeps no history, so it cannot be read as of a moment (those that can: {readable})"
        )
    if macro.lower() not in own_table_macros(cursor, schema):
        raise NoHistory(f"{relation}'s history cannot be read in your role's views yet ({schema}.{macro} is missing)")
    return f"{_quoted(schema)}.{_quoted(macro)}(TIMESTAMPTZ {sql_literal(as_of.isoformat())})"


def _open(
    connection: duckdb.DuckDBPyConnection,
    cursor: duckdb.DuckDBPyConnection,
    schema: str,
    relation: str,
    as_of: datetime | None,
) -> tuple[str, pa.RecordBatchReader]:
    """The statement reading ``relation`` for the caller, and its reader; refused for a name not in ``schema``."""
    if relation not in relations_of(connection, schema):
        raise RelationRefused(f"{relation!r} is not a table or view you may read")
    source = _as_of_source(cursor, schema, relation, as_of) if as_of else f"{_quoted(schema)}.{_quoted(relation)}"
    statement = f"SELECT * FROM {source}"
    try:
        cursor.execute("SET TimeZone = 'Asia/Shanghai'")
        return statement, cursor.sql(statement).to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        raise RelationRefused(f"the warehouse cannot read {relation} now: {exc}", "sql_error") from exc


@contextmanager
def read_relation(
    connection: duckdb.DuckDBPyConnection, caller: Caller, schema: str, relation: str, as_of: datetime | None = None
) -> Iterator[RelationRows]:
    """Every row of ``relation`` in ``schema`` (as of ``as_of`` through its history macro), in record batches.

    The rows are read on a cursor of their own, which lives as long as the ``with`` block; leaving
    it records the read in the audit, with the rows that left and whether all of them did. A
    refusal is recorded too, as the SQL door records its own.
    """
    cursor = connection.cursor()
    try:
        statement, reader = _open(connection, cursor, schema, relation, as_of)
    except InputRejected as exc:
        cursor.close()
        moment = f" as of {as_of.isoformat()}" if as_of else ""
        audit.record(connection, caller, "export", f"export {relation}{moment}", 0, f"refused: {exc.reason_code}")
        raise
    rows = RelationRows(relation, reader.schema, reader)
    outcome = "failed"
    try:
        yield rows
        outcome = "ok"
    finally:
        cursor.close()
        audit.record(connection, caller, "export", statement, rows.rows, outcome)


def write_stream(rows: RelationRows, sink: BinaryIO) -> None:
    """Send ``rows`` as an Arrow IPC stream ending with the count of rows sent."""
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        for batch in rows:
            writer.write_batch(batch)
        writer.write_batch(pa.RecordBatch.from_pylist([], schema=rows.schema), {ROWS_SENT: str(rows.rows).encode()})


def read_stream(relation: str, source: BinaryIO) -> RelationRows:
    """The rows of a stream :func:`write_stream` sent; raises :class:`StreamBrokeOff` if it ends short."""
    try:
        reader = pa.ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StreamBrokeOff(f"the rows of {relation} did not arrive as an Arrow stream ({exc})") from exc

    def batches() -> Iterator[pa.RecordBatch]:
        received = 0
        while True:
            try:
                batch, metadata = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError) as exc:
                raise StreamBrokeOff(f"the rows of {relation} stopped arriving after {received} ({exc})") from exc
            if metadata is not None and ROWS_SENT in metadata:
                if int(metadata[ROWS_SENT]) != received:
                    break
                return
            received += batch.num_rows
            yield batch
        raise StreamBrokeOff(
            f"the rows of {relation} stopped arriving after {received}, before the sink said all were sent; "
            "try again (the sink's log says why it stopped)"
        )

    return RelationRows(relation, reader.schema, batches())
