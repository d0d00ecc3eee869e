"""The audit trail: every query and every read of personal data, who asked it and what came back.

The table is only ever appended to: the SQL door lets no statement write, and nothing in the
hub deletes from it. Each entry also goes to the log (``gridhub.audit``, at INFO), for shippers
that keep logs elsewhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from foundation.access import Caller
from foundation.logs import get_logger

log = get_logger("gridhub.audit")
AUDIT_TABLE = "audit_log"
_DDL = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    "at" TIMESTAMPTZ NOT NULL, caller VARCHAR NOT NULL, role VARCHAR NOT NULL, action VARCHAR NOT NULL,
    statement VARCHAR, rows BIGINT, personal BOOLEAN NOT NULL, outcome VARCHAR NOT NULL
)
"""
STATEMENT_CHARS = 4000
"""Longer statements are kept cut to this many characters (the rows of a query are never kept)."""


def ensure_audit_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the audit table if the warehouse lacks it (a new one, or one made before the audit)."""
    connection.execute(_DDL)


def record(
    connection: duckdb.DuckDBPyConnection,
    caller: Caller,
    action: str,
    statement: str | None,
    rows: int,
    outcome: str = "ok",
    personal: bool | None = None,
) -> None:
    """Append one entry, on a cursor of its own (the connection may be writing a batch meanwhile).

    ``personal`` says the action read personal data whole whatever the caller's role (a replay's
    payloads); by default, whether the role sees it whole.
    """
    personal = caller.sees_personal_data if personal is None else personal
    cursor = connection.cursor()
    try:
        cursor.execute(
            f"INSERT INTO {AUDIT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                datetime.now(UTC),
                caller.name,
                caller.role,
                action,
                None if statement is None else statement[:STATEMENT_CHARS],
                rows,
                personal,
                outcome,
            ],
        )
    finally:
        cursor.close()
    log.info(
        "audit", caller=caller.name, role=caller.role, action=action, rows=rows, personal=personal, outcome=outcome
    )


def recent(connection: duckdb.DuckDBPyConnection, limit: int, caller: str | None = None) -> dict[str, Any]:
    """The latest ``limit`` entries, newest first, optionally of one caller."""
    where = "WHERE caller = ?" if caller else ""
    cursor = connection.cursor()
    try:
        result = cursor.execute(
            f'SELECT "at", caller, role, action, statement, rows, personal, outcome FROM {AUDIT_TABLE} '
            f'{where} ORDER BY "at" DESC LIMIT ?',
            [*([caller] if caller else []), limit],
        )
        columns = [item[0] for item in result.description or []]
        rows = [
            [value.isoformat() if isinstance(value, datetime) else value for value in row] for row in result.fetchall()
        ]
    finally:
        cursor.close()
    return {"columns": columns, "rows": rows}
