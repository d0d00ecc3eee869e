"""Keyed writes of Python rows into DuckDB through Arrow, and the transaction frame around them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa


def upsert_rows(cursor: duckdb.DuckDBPyConnection, table: str, key: str, rows: list[dict[str, Any]]) -> None:
    """Keyed upsert; within one call the last version of a key wins, so a batch may carry several."""
    if not rows:
        return
    arrow = pa.Table.from_pylist(rows).append_column("_seq", pa.array(range(len(rows)), pa.int64()))
    cursor.register("incoming", arrow)
    try:
        cursor.execute(
            f"INSERT OR REPLACE INTO {table} BY NAME SELECT * EXCLUDE (_seq) FROM incoming "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _seq DESC) = 1"
        )
    finally:
        cursor.unregister("incoming")


def insert_new_rows(cursor: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Append ledger rows whose ``record_uid`` is not stored yet: the first outcome of a record stands."""
    if not rows:
        return
    cursor.register("incoming", pa.Table.from_pylist(rows))
    try:
        cursor.execute(
            f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM incoming "
            "QUALIFY row_number() OVER (PARTITION BY record_uid) = 1"
        )
    finally:
        cursor.unregister("incoming")


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor inside one transaction: committed when the block ends, rolled back on any exception."""
    cursor = connection.cursor()
    cursor.execute("BEGIN TRANSACTION")
    try:
        yield cursor
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.close()
