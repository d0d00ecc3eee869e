"""Put the enforcement bureau's units, officers and powers into the warehouse, where its cases join them.

The roster and the powers are a file (``schemas/data/enforcement.yaml``), not a stream: like the
approval catalogue (:mod:`warehouse.approvals`), the sink replaces the three tables with the file the
running hub judges case files by, at start-up and in one transaction, so the KPIs per squad and per
officer never count a roster half loaded.
"""

from __future__ import annotations

from typing import Any

import duckdb

from schemas.enforcement import Bureau
from warehouse.upsert import transaction


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


TABLES: dict[str, tuple[str, ...]] = {
    "enforcement_units": ("unit", "name", "name_en", "kind"),
    "enforcement_officers": ("officer_id", "name", "unit", "cells"),
    "enforcement_powers": ("code", "name", "department", "department_name", "legal_basis", "time_limit_days"),
}


def bureau_rows(bureau: Bureau) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of each table, in :data:`TABLES` column order."""
    file = bureau.file
    return {
        "enforcement_units": [(key, unit.name, unit.name_en, unit.kind) for key, unit in file.units.items()],
        "enforcement_officers": [(o.id, o.name, o.unit, list(o.cells)) for o in file.officers],
        "enforcement_powers": [
            (p.code, p.name, p.department, file.power_departments[p.department].name, p.legal_basis, p.time_limit_days)
            for p in file.powers
        ],
    }


def replace_bureau(connection: duckdb.DuckDBPyConnection, bureau: Bureau) -> None:
    """Make the three bureau tables hold exactly this bureau, in one transaction."""
    rows = bureau_rows(bureau)
    with transaction(connection) as cursor:
        for table, columns in TABLES.items():
            cursor.execute(f"DELETE FROM {table}")
            if rows[table]:
                cursor.executemany(_insert(table, columns), rows[table])
