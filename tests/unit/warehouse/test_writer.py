"""Every canonical record fits its warehouse table, so the sink never meets a column it lacks."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from schemas.records import CANONICAL_MODELS
from warehouse.decode import LINEAGE
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import ENTITY_TABLES, SCHEMA_FILES, WarehouseSchemaError, connect


@pytest.fixture(scope="module")
def columns() -> dict[str, set[str]]:
    connection = duckdb.connect()
    for schema in SCHEMA_FILES:
        connection.execute(schema.read_text())
    rows = connection.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


@pytest.mark.parametrize("kind", sorted(CANONICAL_MODELS))
def test_each_canonical_kind_has_a_table_with_all_its_fields(kind: str, columns: dict[str, set[str]]) -> None:
    table, key = ENTITY_TABLES[kind]
    model = CANONICAL_MODELS[kind]
    wanted = {*model.model_fields, *model.model_computed_fields, *LINEAGE, "loaded_at"}
    assert wanted - columns[table] == set(), f"{table} lacks columns for {kind}"
    assert {part.strip() for part in key.split(",")} <= columns[table]


def test_a_warehouse_of_another_table_shape_is_refused_with_what_to_do(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as connection:
        connection.execute("CREATE TABLE people (id_number VARCHAR PRIMARY KEY, name VARCHAR)")
    with pytest.raises(WarehouseSchemaError, match="version 1, this gridhub writes version 3; move the file aside"):
        connect(old, Resolver(ResolutionRules.load()))


def test_a_new_warehouse_records_its_version_and_opens_again(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    connect(path, Resolver(ResolutionRules.load())).close()
    connection = connect(path, Resolver(ResolutionRules.load()))
    assert connection.execute("SELECT value FROM warehouse_meta WHERE key = 'version'").fetchall() == [("3",)]
    connection.close()
