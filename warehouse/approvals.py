"""Put the catalogue of approval items and the centre's windows into the warehouse, where application facts join them.

The catalogue is a file, not a stream: the sink, the warehouse's only writer, replaces the
``approval_items`` and ``service_windows`` tables with it at start-up, in one transaction, so
a query never sees half a catalogue (or windows of another one) and an edited catalogue takes
effect with the next start.
"""

from __future__ import annotations

from dataclasses import astuple, fields
from typing import Any

import duckdb

from schemas.approvals import ApprovalCatalogue, ApprovalItem, ServiceWindow
from warehouse.upsert import transaction

COLUMNS = [field.name for field in fields(ApprovalItem)]
INSERT = f"INSERT INTO approval_items ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
WINDOW_COLUMNS = ["window_no", "department", "department_name", "clerk_id", "clerk_name", "all_items", "items"]
INSERT_WINDOW = (
    f"INSERT INTO service_windows ({', '.join(WINDOW_COLUMNS)}) VALUES ({', '.join('?' for _ in WINDOW_COLUMNS)})"
)


def _window_row(window: ServiceWindow) -> tuple[Any, ...]:
    """A window as its table row: a window taking every item has all_items and no list."""
    items = sorted(window.items) if window.items is not None else None
    return (*astuple(window)[:-1], window.items is None, items)


def replace_approval_items(connection: duckdb.DuckDBPyConnection, catalogue: ApprovalCatalogue) -> None:
    """Make ``approval_items`` and ``service_windows`` hold exactly this catalogue and its windows."""
    rows = [astuple(item) for item in catalogue.items.values()]
    windows = [_window_row(window) for window in catalogue.windows.values()]
    with transaction(connection) as cursor:
        cursor.execute("DELETE FROM approval_items")
        cursor.executemany(INSERT, rows)
        cursor.execute("DELETE FROM service_windows")
        if windows:
            cursor.executemany(INSERT_WINDOW, windows)
