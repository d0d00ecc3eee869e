"""``gridhub export`` without a running sink: the file read in the caller's role, written as Hive-partitioned Parquet.

The round trip reads the export back with DuckDB, the way a county's analyst would, and compares it
with the warehouse relation by relation: the same rows and the same columns, masked for an analyst
and whole for the commander. Which relations an export takes (``--tables``, ``--as-of``) is tested on
its own, with a fake history mapping and a tiny history macro made in the test's warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from pydantic import SecretStr

from foundation.access import Caller, TokenBook
from foundation.settings import Settings
from warehouse import history
from warehouse.masking import MASKED_SCHEMA, install_masked_views, relations_of
from warehouse.parquet_export import (
    INTERNAL_RELATIONS,
    MANIFEST,
    NO_HISTORY,
    ExportFailed,
    ExportRefused,
    ExportRequest,
    export_warehouse,
    plan_export,
    town_code,
)
from warehouse.reader import read_relations
from warehouse.relation_stream import NoHistory, RelationRows
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import connect

TOWN = "320411101"
ID = "32041119800101001X"
AS_OF = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
ANALYST = Caller("ana", "analyst")


@dataclass(frozen=True)
class Town:
    """A warehouse file with a few rows and no sink, and the token book of its callers."""

    settings: Settings
    analyst: str
    commander: str

    def as_caller(self, token: str) -> Settings:
        return self.settings.model_copy(update={"token": SecretStr(token)})


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Town:
    folder = tmp_path_factory.mktemp("town")
    settings = Settings(data_dir=folder)
    connection = connect(settings.warehouse_file, Resolver(ResolutionRules.load()))
    connection.execute(
        "INSERT INTO people (person_key, id_number, name, gender, birth_date) "
        "VALUES (?, ?, '王小明', 'M', DATE '1980-01-01')",
        [ID, ID],
    )
    connection.execute(
        "INSERT INTO events (event_id, category, reported_at, status, reporter_id, photo_refs) VALUES "
        "('E1', '0101', TIMESTAMPTZ '2026-10-31 20:00:00+00', 'reported', 'GW001', ['a.jpg']), "
        "('E2', '0101', TIMESTAMPTZ '2026-11-02 09:00:00+08', 'closed', 'GW002', []), "
        "('E3', '0102', TIMESTAMPTZ '2026-09-15 09:00:00+08', 'reported', 'GW001', NULL)"
    )
    # A relation with history: its versions, and the macro that reads them as of a moment.
    connection.execute(
        "CREATE TABLE notes (note_id VARCHAR, body VARCHAR, valid_from TIMESTAMPTZ, valid_to TIMESTAMPTZ);"
        "INSERT INTO notes VALUES ('N1', 'old', '2026-10-01 00:00:00+00', '2026-11-15 00:00:00+00'),"
        "  ('N1', 'new', '2026-11-15 00:00:00+00', NULL), ('N2', 'later', '2026-11-20 00:00:00+00', NULL);"
        "CREATE MACRO notes_as_of(ts) AS TABLE "
        "  SELECT note_id, body FROM notes WHERE valid_from <= ts AND (valid_to IS NULL OR valid_to > ts)"
    )
    install_masked_views(connection)
    connection.close()
    book = TokenBook(settings.tokens_file)
    return Town(settings, book.add("ana", "analyst"), book.add("chief", "commander"))


def export(settings: Settings, directory: Path, *tables: str, as_of: datetime | None = None) -> dict[str, Any]:
    request = ExportRequest(directory, tuple(tables), as_of, TOWN, "test")
    return read_relations(settings, lambda relations: export_warehouse(relations, request))


def read_back(directory: Path, relation: str, select: str = "*") -> list[tuple[Any, ...]]:
    """Rows of one relation of an export, as another DuckDB reads them."""
    files = f"read_parquet('{directory}/{relation}/**/*.parquet', hive_partitioning = true)"
    return duckdb.execute(f"SELECT {select} FROM {files}").fetchall()


def columns(connection: duckdb.DuckDBPyConnection, source: str) -> list[tuple[str, str]]:
    """Names and DuckDB types of what a FROM item gives."""
    return [(str(row[0]), str(row[1])) for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


@pytest.mark.parametrize(("role", "schema"), [("analyst", MASKED_SCHEMA), ("commander", "main")])
def test_an_export_read_back_by_duckdb_has_the_warehouse_counts_and_columns(
    town: Town, tmp_path: Path, role: str, schema: str
) -> None:
    settings = town.as_caller(town.analyst if role == "analyst" else town.commander)
    manifest = export(settings, tmp_path / "export")
    with duckdb.connect(str(town.settings.warehouse_file), read_only=True) as warehouse:
        relations = relations_of(warehouse, schema) - INTERNAL_RELATIONS
        assert set(manifest["tables"]) == relations
        for relation in sorted(relations):
            [(count,)] = warehouse.execute(f'SELECT count(*) FROM {schema}."{relation}"').fetchall()
            assert read_back(tmp_path / "export", relation, "count(*)") == [(count,)], relation
            assert manifest["tables"][relation]["rows"] == count, relation
            stored = columns(warehouse, f'{schema}."{relation}"')
            files = f"'{tmp_path}/export/{relation}/**/*.parquet'"
            reader = duckdb.default_connection()
            assert columns(reader, f"read_parquet({files}, hive_partitioning = false)") == stored, relation
            partitioned = columns(reader, f"read_parquet({files}, hive_partitioning = true)")
            assert partitioned[: len(stored)] == stored, relation
            added = sorted(name for name, _ in partitioned[len(stored) :])
            assert added == sorted(manifest["tables"][relation]["partitioned_by"]), relation
    assert read_back(tmp_path / "export", "people", "id_number, name") == [
        ("320411**********1X", "王**") if role == "analyst" else (ID, "王小明")
    ]
    assert manifest["role"] == role and manifest["masked"] is (role == "analyst")


def test_time_series_are_partitioned_by_town_and_the_towns_month(town: Town, tmp_path: Path) -> None:
    manifest = export(town.as_caller(town.analyst), tmp_path / "export", "events", "people")
    assert sorted(read_back(tmp_path / "export", "events", "event_id, town, month")) == [
        ("E1", int(TOWN), "2026-11"),  # 20:00 UTC on 31 October is 1 November in the town
        ("E2", int(TOWN), "2026-11"),
        ("E3", int(TOWN), "2026-09"),
    ]
    files = sorted(file["path"] for file in manifest["tables"]["events"]["files"])
    assert files == [
        f"events/town={TOWN}/month=2026-09/part-0.parquet",
        f"events/town={TOWN}/month=2026-11/part-0.parquet",
    ]
    assert all((tmp_path / "export" / path).is_file() for path in files)
    assert manifest["tables"]["people"]["partitioned_by"] == ["town"]
    assert [column["name"] for column in manifest["tables"]["events"]["columns"]][:2] == ["event_id", "category"]
    on_disk = json.loads((tmp_path / "export" / MANIFEST).read_text())
    assert on_disk == manifest
    assert set(on_disk) >= {"tables", "as_of", "role", "town", "warehouse_version", "gridhub_version", "created_at"}


def test_an_empty_relation_is_one_empty_file_that_keeps_its_columns(town: Town, tmp_path: Path) -> None:
    manifest = export(town.as_caller(town.commander), tmp_path / "export", "cases", "approval_items")
    for relation in ("cases", "approval_items"):
        assert manifest["tables"][relation]["rows"] == 0
        assert read_back(tmp_path / "export", relation, "count(*)") == [(0,)]
    assert ("case_id", "VARCHAR") in columns(duckdb.default_connection(), f"'{tmp_path}/export/cases/**/*.parquet'")


def test_the_commanders_export_is_audited_as_a_read_of_personal_data(town: Town, tmp_path: Path) -> None:
    export(town.as_caller(town.commander), tmp_path / "export", "people")
    with duckdb.connect(str(town.settings.warehouse_file), read_only=True) as warehouse:
        entries = warehouse.execute(
            "SELECT statement, rows, personal, outcome FROM audit_log WHERE caller = 'chief' AND action = 'export'"
        ).fetchall()
    assert ('SELECT * FROM "main"."people"', 1, True, "ok") in entries


def test_a_relation_the_caller_may_not_read_is_refused_before_anything_is_written(town: Town, tmp_path: Path) -> None:
    for name in ("audit_log", "masking_secret", "people; DROP TABLE people", "../etc"):
        with pytest.raises(ExportRefused, match="you may not export"):
            export(town.as_caller(town.analyst), tmp_path / "export", name)
    assert not (tmp_path / "export").exists()


def test_as_of_reads_a_relation_through_its_history_macro(
    town: Town, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "AS_OF", {"notes": "notes_as_of"})
    manifest = export(town.as_caller(town.commander), tmp_path / "export", as_of=AS_OF)
    assert list(manifest["tables"]) == ["notes"]
    assert read_back(tmp_path / "export", "notes", "note_id, body") == [("N1", "old")]
    assert manifest["as_of"] == AS_OF.isoformat() and manifest["tables"]["notes"]["as_of_macro"] == "notes_as_of"
    assert manifest["left_out"]["events"] == NO_HISTORY
    with pytest.raises(ExportRefused, match="no history is kept of events"):
        export(town.as_caller(town.commander), tmp_path / "again", "notes", "events", as_of=AS_OF)


def test_a_masked_role_cannot_read_history_through_a_macro_of_the_whole_tables(
    town: Town, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "AS_OF", {"notes": "notes_as_of"})
    manifest = export(town.as_caller(town.analyst), tmp_path / "export", as_of=AS_OF)
    assert manifest["tables"] == {}
    assert "masked.notes_as_of is missing" in manifest["left_out"]["notes"]
    with pytest.raises(NoHistory, match=r"masked\.notes_as_of is missing"):
        export(town.as_caller(town.analyst), tmp_path / "named", "notes", as_of=AS_OF)


def test_the_plan_names_only_relations_the_caller_may_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "AS_OF", {"people": "people_as_of", "cases": "cases_as_of"})
    readable = frozenset({"people", "events", "cases", "sink_offsets", "warehouse_meta"})
    assert plan_export(readable, (), None).relations == ("cases", "events", "people")
    assert plan_export(readable, ["Events", " sink_offsets", "events"], None).relations == ("events", "sink_offsets")
    as_of = plan_export(readable, (), AS_OF)
    assert as_of.relations == ("cases", "people")
    assert as_of.left_out == {"events": NO_HISTORY}
    assert plan_export(readable, ["people"], AS_OF).relations == ("people",)
    with pytest.raises(ExportRefused, match="no history is kept of events"):
        plan_export(readable, ["people", "events"], AS_OF)
    with pytest.raises(ExportRefused, match="you may not export audit_log"):
        plan_export(readable, ["audit_log"], None)


@dataclass(frozen=True)
class Tables:
    """Relations held in memory, one of which may fail halfway: the layout and publishing without a warehouse."""

    tables: dict[str, pa.Table]
    failing: str | None = None
    caller: Caller = ANALYST

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.tables)

    @contextmanager
    def open(self, relation: str, as_of: datetime | None) -> Iterator[RelationRows]:
        table = self.tables[relation]

        def batches() -> Iterator[pa.RecordBatch]:
            yield from table.to_batches(max_chunksize=1)
            if relation == self.failing:
                raise OSError("the disk is full")

        yield RelationRows(relation, table.schema, batches())


def numbers(count: int) -> pa.Table:
    return pa.table({"n": pa.array(range(count), pa.int64())})


def test_a_failed_export_leaves_the_previous_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "export"
    first = export_warehouse(Tables({"a": numbers(2), "b": numbers(3)}), ExportRequest(target, (), None, TOWN, "t"))
    with pytest.raises(ExportFailed, match="nothing was published"):
        export_warehouse(Tables({"a": numbers(5), "b": numbers(5)}, "b"), ExportRequest(target, (), None, TOWN, "t"))
    assert json.loads((target / MANIFEST).read_text()) == first
    assert read_back(target, "a", "count(*)") == [(2,)]
    assert sorted(path.name for path in target.iterdir()) == [".gridhub-export", "a", "b", MANIFEST]


def test_a_new_export_replaces_the_previous_one_and_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "export"
    export_warehouse(Tables({"a": numbers(2), "b": numbers(3)}), ExportRequest(target, (), None, TOWN, "t"))
    manifest = export_warehouse(Tables({"a": numbers(4)}), ExportRequest(target, (), None, TOWN, "t"))
    assert list(manifest["tables"]) == ["a"] and not (target / "b").exists()
    assert read_back(target, "a", "count(*)") == [(4,)]
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ExportRefused, match="not a gridhub export"):
        export_warehouse(Tables({"a": numbers(1)}), ExportRequest(foreign, (), None, TOWN, "t"))
    assert [path.name for path in foreign.iterdir()] == ["holiday.jpg"]


def test_the_town_is_the_setting_or_the_county_and_township_of_the_grids_cells() -> None:
    assert town_code(Settings(town_code="320412102")) == "320412102"
    assert town_code(Settings()) == "320411101"  # the packaged Menghe grid
