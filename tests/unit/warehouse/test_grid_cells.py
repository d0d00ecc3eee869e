"""The grid's cells and roster in the warehouse: replaced as a whole, in one transaction, masked for masked roles."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from shapely.geometry import box

from foundation.packaged import MENGHE_GRID
from schemas.grid import Grid, GridCell
from schemas.personal import pseudonym
from warehouse.grid_cells import COLUMNS, replace_grid_cells
from warehouse.masking import MASKED_SCHEMA, use_schema
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import SCHEMA_FILES, connect


def small_grid(*cells: tuple[str, str, tuple[str, ...]]) -> Grid:
    """Cells (code, squad, workers), each its own square; the second is a school's dedicated cell."""
    return Grid(
        GridCell(
            code,
            f"网格{code[-3:]}",
            "甲村",
            squad,  # type: ignore[arg-type]
            "dedicated" if n == 1 else "basic",
            "school" if n == 1 else None,
            workers,
            box(n, 0, n + 0.01, 0.01),
        )
        for n, (code, squad, workers) in enumerate(cells)
    )


@pytest.fixture
def warehouse() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for schema in SCHEMA_FILES:
        connection.execute(schema.read_text())
    return connection


def cells_in(connection: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return connection.execute(f"SELECT {', '.join(COLUMNS)} FROM grid_cells ORDER BY code").fetchall()


def test_the_table_is_installed_with_the_warehouse(warehouse: duckdb.DuckDBPyConnection) -> None:
    types = warehouse.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'grid_cells' ORDER BY column_index"
    ).fetchall()
    assert [name for name, _ in types] == list(COLUMNS)
    assert dict(types)["workers"] == "VARCHAR[]"


def test_the_shipped_grid_lands_cell_by_cell_with_its_roster(warehouse: duckdb.DuckDBPyConnection) -> None:
    grid = Grid.load(MENGHE_GRID)
    replace_grid_cells(warehouse, grid)
    assert warehouse.execute("SELECT kind, count(*) FROM grid_cells GROUP BY 1 ORDER BY 1").fetchall() == [
        ("basic", 128),
        ("dedicated", 18),
    ]
    roster = dict(warehouse.execute("SELECT unnest(workers), code FROM grid_cells").fetchall())
    assert roster == {worker: cell.code for worker, cell in grid.workers().items()}
    assert len(roster) == 146
    squads = dict(warehouse.execute("SELECT squad, count(*) FROM grid_cells GROUP BY 1").fetchall())
    assert set(squads) == {"wansui", "mengcheng", "xiaohe"}
    first = grid.cells["320411101001001"]
    assert cells_in(warehouse)[0] == (
        first.code,
        first.name,
        "basic",
        None,
        first.squad,
        first.community,
        list(first.workers),
    )


def test_replacing_leaves_exactly_the_new_grid(warehouse: duckdb.DuckDBPyConnection) -> None:
    replace_grid_cells(warehouse, Grid.load(MENGHE_GRID))
    smaller = small_grid(("320411101001001", "xiaohe", ("GW1", "GW2")), ("320411101001900", "wansui", ("GW3",)))
    replace_grid_cells(warehouse, smaller)
    replace_grid_cells(warehouse, smaller)
    assert cells_in(warehouse) == [
        ("320411101001001", "网格001", "basic", None, "xiaohe", "甲村", ["GW1", "GW2"]),
        ("320411101001900", "网格900", "dedicated", "school", "wansui", "甲村", ["GW3"]),
    ]


def test_a_failed_replacement_keeps_the_old_grid_whole() -> None:
    """One transaction: a cell the table refuses half-way leaves the grid that was there, not part of the new one."""
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE grid_cells (code VARCHAR, name VARCHAR, kind VARCHAR, dedicated_to VARCHAR, "
        "squad VARCHAR CHECK (squad <> 'xiaohe'), community VARCHAR, workers VARCHAR[])"
    )
    before = small_grid(("320411101001001", "wansui", ("GW1",)))
    replace_grid_cells(connection, before)
    refused = small_grid(("320411101002001", "mengcheng", ("GW2",)), ("320411101002900", "xiaohe", ("GW3",)))
    with pytest.raises(duckdb.ConstraintException):
        replace_grid_cells(connection, refused)
    assert cells_in(connection) == [("320411101001001", "网格001", "basic", None, "wansui", "甲村", ["GW1"])]


def test_a_masked_role_sees_each_worker_as_the_pseudonym_of_their_tracks(tmp_path: Path) -> None:
    connection = connect(tmp_path / "warehouse.duckdb", Resolver(ResolutionRules.load()))
    try:
        replace_grid_cells(connection, small_grid(("320411101001001", "wansui", ("GW1", "GW2"))))
        connection.execute(
            "INSERT INTO patrol_tracks (worker_id, recorded_at) VALUES ('GW2', TIMESTAMPTZ '2026-11-25 08:00+08')"
        )
        secret = str(connection.execute("SELECT secret FROM main.masking_secret").fetchone()[0])  # type: ignore[index]
        cursor = connection.cursor()
        use_schema(cursor, MASKED_SCHEMA)
        [(workers, name)] = cursor.execute("SELECT workers, name FROM grid_cells").fetchall()
        assert (workers, name) == ([pseudonym("GW1", secret), pseudonym("GW2", secret)], "网格001")
        joined = cursor.execute(
            "SELECT count(*) FROM grid_cells, unnest(workers) AS roster(worker_id) JOIN patrol_tracks USING (worker_id)"
        ).fetchone()
        assert joined == (1,)
        cursor.close()
    finally:
        connection.close()
