"""SQL text built in Python, kept apart from any I/O so the writer and the readers can share it."""

from __future__ import annotations


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal, for the few queries built from what a user typed."""
    return "'" + text.replace("'", "''") + "'"
