"""Put the grid's cells and their roster of grid workers into the warehouse.

Patrol compliance per squad has to count the grid workers who sent no track at all, and who
patrols where is known only to the grid file (``schemas/grid.py``), not to any stream. Like the
approval catalogue (:mod:`warehouse.approvals`), the sink, the warehouse's only writer, replaces
the ``grid_cells`` table with the grid it runs with at start-up, in one transaction, so a query
never sees half a roster and a newly installed grid takes effect with the next start.
"""

from __future__ import annotations

import duckdb

from schemas.grid import Grid, GridCell
from warehouse.upsert import transaction

COLUMNS: tuple[str, ...] = ("code", "name", "kind", "dedicated_to", "squad", "community", "workers")
"""What a cell carries that queries use; its polygon stays in the grid file."""
INSERT = f"INSERT INTO grid_cells ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"

GridCellRow = tuple[str, str, str, str | None, str, str, list[str]]


def grid_cell_row(cell: GridCell) -> GridCellRow:
    """One cell as a row of ``grid_cells``, in :data:`COLUMNS` order (workers as a list: VARCHAR[])."""
    return (cell.code, cell.name, cell.kind, cell.dedicated_to, cell.squad, cell.community, list(cell.workers))


def replace_grid_cells(connection: duckdb.DuckDBPyConnection, grid: Grid) -> None:
    """Make ``grid_cells`` hold exactly this grid's cells, in one transaction."""
    rows = [grid_cell_row(cell) for cell in grid.cells.values()]
    with transaction(connection) as cursor:
        cursor.execute("DELETE FROM grid_cells")
        if rows:
            cursor.executemany(INSERT, rows)
