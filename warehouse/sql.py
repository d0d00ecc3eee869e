"""SQL text built in Python, kept apart from any I/O so the writer and the readers can share it."""

from __future__ import annotations


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal, for the few queries built from what a user typed."""
    return "'" + text.replace("'", "''") + "'"


def read_by_row_id(table: str, found: str, carried: tuple[str, ...] = ()) -> str:
    """The whole rows of ``table`` whose row ids the query ``found`` yields as ``found_row``.

    A query that looks a few rows up by key reads every column of every row, and the keys are
    random, so no row group can be skipped. Finding the rows first reads only the key columns;
    reading them whole by row id then lets DuckDB's join filter on the row ids skip every row
    group that holds none of them, and the rows a transaction has just written sit together
    (bench/PROFILE.md). ``carried`` names columns of ``found`` to keep in front of the row's own.
    """
    columns = ", ".join([*(f"found.{name}" for name in carried), "whole.*"])
    return f"SELECT {columns} FROM {table} whole JOIN ({found}) found ON whole.rowid = found.found_row"
