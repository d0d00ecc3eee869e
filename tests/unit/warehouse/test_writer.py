"""Every canonical record fits its warehouse table, so the sink never meets a column it lacks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import duckdb
import pytest
from pydantic import SecretStr

from foundation.access import TokenBook
from foundation.settings import Settings
from schemas.records import CANONICAL_MODELS
from warehouse.decode import LINEAGE
from warehouse.reader import NotAWarehouse, query
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import ENTITY_TABLES, SCHEMA_FILES, WAREHOUSE_VERSION, WarehouseSchemaError, connect


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


def _newer(path: Path) -> Path:
    """A warehouse file stamped by a gridhub newer than this one."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        connection.execute(f"INSERT INTO warehouse_meta VALUES ('version', '{WAREHOUSE_VERSION + 1}')")
    return path


def test_a_warehouse_of_a_shape_this_gridhub_cannot_write_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(
        WarehouseSchemaError,
        match=f"version {WAREHOUSE_VERSION + 1}, this gridhub writes version {WAREHOUSE_VERSION}; move the file aside",
    ):
        connect(_newer(tmp_path / "newer.duckdb"), Resolver(ResolutionRules.load()))


def test_the_advice_for_another_version_does_not_promise_a_rebuild_the_embedded_broker_cannot_give(
    tmp_path: Path,
) -> None:
    with pytest.raises(WarehouseSchemaError) as refused:
        connect(_newer(tmp_path / "newer.duckdb"), Resolver(ResolutionRules.load()))
    assert "send the sources again" in str(refused.value)
    assert "embedded broker forgets" in str(refused.value)


def test_a_new_warehouse_records_its_version_and_opens_again(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    connect(path, Resolver(ResolutionRules.load())).close()
    connection = connect(path, Resolver(ResolutionRules.load()))
    assert connection.execute("SELECT value FROM warehouse_meta WHERE key = 'version'").fetchall() == [
        (str(WAREHOUSE_VERSION),)
    ]
    connection.close()


def test_a_version_3_warehouse_gains_the_reject_and_update_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v3.duckdb"
    connection = connect(path, Resolver(ResolutionRules.load()))
    added = ("topic", "partition", "message_offset", "error", "payload_sha256", "payload_bytes")
    for column in added:
        connection.execute(f"ALTER TABLE rejects DROP COLUMN {column}")
    connection.execute("ALTER TABLE event_updates DROP COLUMN department")
    connection.execute("INSERT INTO rejects (record_uid, stage) VALUES ('kept', 'validate')")
    connection.execute("UPDATE warehouse_meta SET value = '3' WHERE key = 'version'")
    connection.close()

    connection = connect(path, Resolver(ResolutionRules.load()))
    columns = {name for (name,) in connection.execute("SELECT name FROM pragma_table_info('rejects')").fetchall()}
    assert set(added) <= columns
    updates = {name for (name,) in connection.execute("SELECT name FROM pragma_table_info('event_updates')").fetchall()}
    assert "department" in updates
    assert connection.execute("SELECT record_uid FROM rejects").fetchall() == [("kept",)]
    version = connection.execute("SELECT value FROM warehouse_meta WHERE key = 'version'").fetchall()
    assert version == [(str(WAREHOUSE_VERSION),)]
    connection.close()


def test_a_newer_warehouse_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.duckdb"
    connection = connect(path, Resolver(ResolutionRules.load()))
    connection.execute(f"UPDATE warehouse_meta SET value = '{WAREHOUSE_VERSION + 1}' WHERE key = 'version'")
    connection.close()
    with pytest.raises(WarehouseSchemaError, match=f"version {WAREHOUSE_VERSION + 1}, this gridhub writes"):
        connect(path, Resolver(ResolutionRules.load()))


def _text_file(path: Path) -> Path:
    path.write_text("name,phone\n王芳,123\n")
    return path


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _sqlite_file(path: Path) -> Path:
    """DuckDB would try to download its SQLite extension to open this one."""
    with closing(sqlite3.connect(path)) as database:
        database.execute("CREATE TABLE t (a)")
        database.commit()
    return path


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_text_file, "it is not a DuckDB database"),
        (_empty_file, "it is empty"),
        (_sqlite_file, "it is a SQLite database"),
    ],
    ids=["text", "empty", "sqlite"],
)
def test_a_file_that_is_not_duckdb_is_refused_in_one_line_by_the_writer_and_the_reader(
    tmp_path: Path, make: Callable[[Path], Path], kind: str
) -> None:
    path = make(tmp_path / "warehouse.duckdb")
    with pytest.raises(NotAWarehouse) as by_writer:
        connect(path, Resolver(ResolutionRules.load()))
    with pytest.raises(NotAWarehouse) as by_reader:
        query(Settings(data_dir=tmp_path, warehouse_path=path), "SELECT 1")
    for refused in (by_writer.value, by_reader.value):
        message = str(refused)
        assert message.startswith(f"{path} is not a gridhub warehouse ({kind})")
        assert "GRIDHUB_WAREHOUSE_PATH" in message
        assert "\n" not in message
        assert "extension" not in message


def test_with_no_sink_running_the_reader_answers_from_the_file_with_params_and_audits_them(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    connect(settings.warehouse_file, Resolver(ResolutionRules.load())).close()
    token = TokenBook(settings.tokens_file).add("centre", "commander")
    as_commander = settings.model_copy(update={"token": SecretStr(token)})
    sql = "SELECT CAST(? AS INTEGER) + 2 AS n, ? AS word"
    assert query(as_commander, sql, ["40", "网格"])["rows"] == [[42, "网格"]]
    with closing(duckdb.connect(str(settings.warehouse_file))) as connection:
        [(statement,)] = connection.execute("SELECT statement FROM audit_log").fetchall()
    assert statement == sql + '\n-- params: ["40", "网格"]'
