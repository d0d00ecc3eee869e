"""Put the catalogue of approval items into the warehouse, where application facts join it.

The catalogue is a file, not a stream: the sink, the warehouse's only writer, replaces the
``approval_items`` table with it at start-up, in one transaction, so a query never sees
half a catalogue and an edited catalogue takes effect with the next start.
"""

from __future__ import annotations

from dataclasses import astuple, fields

import duckdb

from schemas.approvals import ApprovalCatalogue, ApprovalItem
from warehouse.upsert import transaction

COLUMNS = [field.name for field in fields(ApprovalItem)]
INSERT = f"INSERT INTO approval_items ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


def replace_approval_items(connection: duckdb.DuckDBPyConnection, catalogue: ApprovalCatalogue) -> None:
    """Make ``approval_items`` hold exactly this catalogue."""
    rows = [astuple(item) for item in catalogue.items.values()]
    with transaction(connection) as cursor:
        cursor.execute("DELETE FROM approval_items")
        cursor.executemany(INSERT, rows)
