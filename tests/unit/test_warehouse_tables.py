"""Every canonical record fits its warehouse table, so the sink never meets a column it lacks."""

from __future__ import annotations

import duckdb
import pytest

from schemas.records import CANONICAL_MODELS
from warehouse.decode import LINEAGE
from warehouse.writer import ENTITY_TABLES, SCHEMA_FILES


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
