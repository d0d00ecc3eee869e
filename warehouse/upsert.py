"""Keyed writes of Python rows into DuckDB through Arrow, and the transaction frame around them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.sql import sql_literal

Rows = list[dict[str, Any]] | pa.Table
"""Python rows from the per-record lane, or an Arrow table from the bulk lane."""


def as_arrow(rows: Rows) -> pa.Table:
    """The rows as an Arrow table (bulk-lane tables pass through untouched)."""
    return rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)


def _matching(key: str, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{name.strip()} = {right}.{name.strip()}" for name in key.split(","))


def replace_keyed(cursor: duckdb.DuckDBPyConnection, table: str, key: str, relation: str, **params: Any) -> None:
    """Replace the rows of ``table`` whose ``key`` the SQL ``relation`` yields with its rows.

    Keys are kept unique by this single writer, not by a primary-key index: DuckDB's indexes
    cost ten times the write itself when a million random keys go in (see bench/PROFILE.md).
    """
    cursor.execute(f"CREATE OR REPLACE TEMP TABLE _replacing AS {relation}", params)
    cursor.execute(f"DELETE FROM {table} USING _replacing WHERE {_matching(key, table, '_replacing')}")
    cursor.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _replacing")
    cursor.execute("DROP TABLE _replacing")


def _last_per_key(rows: Rows, key: str) -> pa.Table:
    """One row per ``key``, the last given: a batch may carry several versions of a record."""
    names = [name.strip() for name in key.split(",")]
    if not isinstance(rows, pa.Table):
        return pa.Table.from_pylist(list({tuple(row.get(name) for name in names): row for row in rows}.values()))
    arrival = rows.append_column("_arrival", pa.array(range(len(rows)), pa.int64()))
    last = arrival.group_by(names, use_threads=False).aggregate([("_arrival", "max")])
    if last.num_rows == rows.num_rows:
        return rows
    latest = last.column("_arrival_max")
    return rows.take(latest.take(pc.sort_indices(latest)))


def upsert_rows(cursor: duckdb.DuckDBPyConnection, table: str, key: str, rows: Rows) -> None:
    """Keyed upsert; within one call the last version of a key wins, so a batch may carry several.

    The versions are settled before DuckDB sees the rows, so the write is two statements straight
    from them. Settling them in SQL took a window over a temporary table, created and dropped:
    per small batch of the incident lane that cost 9 ms for two tables against 6 ms now (one
    session), and the sink writes four such tables in every transaction.
    """
    if len(rows) == 0:
        return
    cursor.register("incoming", _last_per_key(rows, key))
    try:
        cursor.execute(f"DELETE FROM {table} USING incoming WHERE {_matching(key, table, 'incoming')}")
        cursor.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
    finally:
        cursor.unregister("incoming")


def insert_new(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    relation: str,
    runs: list[str] | None = None,
    received_span: bool = False,
    one_per_uid: bool = False,
    **params: Any,
) -> None:
    """Append the rows of ``relation`` whose ``record_uid`` is not stored yet: the first outcome of a record stands.

    A ledger grows by millions a re-sync, and searching it whole cost every transaction of the
    incident lane 45 ms at 3,000,000 rows (4 ms within a span), growing without end. So the
    search is narrowed by what DuckDB's zone maps can skip: a record id belongs to one run, so
    given the runs of the rows only their ledger rows are searched; and a record id and its
    ``received_at`` come from one envelope, so with ``received_span`` (every row has a
    ``received_at``) only ledger rows received within the span of the rows' are.

    A record the relation holds twice is appended once; with ``one_per_uid`` the relation has
    already chosen which row stands, and a second window over the rows would only cost time.
    """
    same_run = f"AND t.run_id IN ({', '.join(map(sql_literal, runs))}) " if runs else ""
    same_span = (
        f"AND t.received_at BETWEEN (SELECT min(received_at::TIMESTAMPTZ) FROM ({relation})) "
        f"AND (SELECT max(received_at::TIMESTAMPTZ) FROM ({relation})) "
        if received_span
        else ""
    )
    cursor.execute(
        f"INSERT INTO {table} BY NAME SELECT * FROM ({relation}) AS incoming "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.record_uid = incoming.record_uid {same_run}{same_span}) "
        + ("" if one_per_uid else "QUALIFY row_number() OVER (PARTITION BY record_uid) = 1"),
        params,
    )


def insert_new_rows(cursor: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Append ledger rows whose ``record_uid`` is not stored yet (see :func:`insert_new`).

    When every row carries a ``received_at``, only the ledger rows received within their span are searched.
    """
    if not rows:
        return
    cursor.register("incoming_rows", pa.Table.from_pylist(rows))
    try:
        received_span = all(row.get("received_at") is not None for row in rows)
        insert_new(cursor, table, "SELECT * FROM incoming_rows", received_span=received_span)
    finally:
        cursor.unregister("incoming_rows")


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor inside one transaction: committed when the block ends, rolled back on any exception.

    A failed COMMIT has already ended the transaction, and the ROLLBACK after it fails too
    ("no transaction is active"): the error raised is the one that failed the transaction, which
    says whether the batch or the warehouse is at fault, never the ROLLBACK's.
    """
    cursor = connection.cursor()
    cursor.execute("BEGIN TRANSACTION")
    try:
        yield cursor
        cursor.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.TransactionException):
            cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.close()
