"""A warehouse file of every older version opens upgraded in place, its rows read back through the current tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse import migrations
from warehouse.migrations import UPGRADES, WAREHOUSE_VERSION, WarehouseSchemaError
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.writer import connect

OLD_TABLES = Path(__file__).resolve().parents[2] / "fixtures" / "warehouse"
VERSIONS = range(1, WAREHOUSE_VERSION)
WOMAN_ID = "11010519491231002X"
EVENT = (
    "INSERT INTO events BY NAME SELECT 'E-1' AS event_id, '0101' AS category, '窨井盖破损' AS description, "
    "TIMESTAMPTZ '2026-11-25 09:00:00+08' AS reported_at, 'GW001' AS reporter_id, 119.81 AS lon, 31.93 AS lat, "
    "'dispatched' AS status, 'patrol' AS source, 'E-1' AS source_record_id, 'u-e1' AS record_uid"
)
UPDATE = (
    "INSERT INTO event_updates BY NAME SELECT 'E-1:handled:1' AS update_id, 'E-1' AS event_id, 'handled' AS status, "
    "TIMESTAMPTZ '2026-11-25 11:30:00+08' AS occurred_at, 'desk-city' AS actor, 'u-u1' AS record_uid"
)
REJECT = (
    "INSERT INTO rejects BY NAME SELECT 'u-r1' AS record_uid, 'patrol' AS source, 'validate' AS stage, "
    "'invalid_reported_at' AS reason_code, '{}' AS payload"
)
OFFSET = "INSERT INTO sink_offsets VALUES ('canonical.event', 0, 8, 'topic-id')"
BASE_DATA = {
    1: "INSERT INTO people VALUES ('11010519491231002X', '王芳', 'F', '1949-12-31', '138-0000-0000', "
    "'孟河镇通江中路 1 号', 'civil-affairs', 'c-1', 'u-p1', 'f1', '2026-11-25 09:00:00+08', '2026-11-25 09:00:01+08');"
    "INSERT INTO places VALUES ('H-1', 'house', NULL, '孟河镇通江中路1号', '320411101001001', 119.81, 31.93, "
    "'housing', 'h-1', 'u-h1', 'f2', '2026-11-25 09:00:00+08', '2026-11-25 09:00:01+08')",
    2: "INSERT INTO person_sources BY NAME SELECT 'civil-affairs' AS source, 'c-1' AS source_record_id, "
    "'11010519491231002X' AS match_key, '11010519491231002X' AS id_number, '王芳' AS name, '+8613800000000' AS phone, "
    "'u-p1' AS record_uid, TIMESTAMPTZ '2026-11-25 09:00:00+08' AS received_at;"
    "INSERT INTO entity_matches VALUES ('person', 'civil-affairs', 'c-1', '11010519491231002X', 'id_number', 1.0, "
    "'2026-11-25 09:00:01+08');"
    "INSERT INTO people BY NAME SELECT '11010519491231002X' AS person_key, '11010519491231002X' AS id_number, "
    "'王芳' AS name, '+8613800000000' AS phone, 1 AS source_count, ['civil-affairs'] AS sources",
}


def _old_file(path: Path, version: int) -> Path:
    """A file as the last gridhub writing ``version`` left it, with a few rows in."""
    with duckdb.connect(str(path)) as connection:
        connection.execute((OLD_TABLES / f"v{version}.sql").read_text())
        for statement in (EVENT, UPDATE, REJECT, OFFSET, BASE_DATA[min(version, 2)]):
            connection.execute(statement)
    return path


Shape = set[tuple[str, str, str, bool, str | None]]


def _shape(connection: duckdb.DuckDBPyConnection) -> Shape:
    """Every column of every table and view: its type, whether it may be NULL, its default.

    Not their order: a column a step adds comes last, where a new file has it in place, and the
    writer inserts by name.
    """
    rows = connection.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()
    return set(rows)


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> Shape:
    connection = connect(tmp_path_factory.mktemp("fresh") / "fresh.duckdb", Resolver(ResolutionRules.load()))
    try:
        return _shape(connection)
    finally:
        connection.close()


def test_every_older_version_has_a_step_and_old_tables_to_test_it_with() -> None:
    assert sorted(UPGRADES) == list(VERSIONS)
    assert sorted(path.stem for path in OLD_TABLES.glob("v*.sql")) == [f"v{version}" for version in VERSIONS]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_file_of_an_older_version_opens_with_the_current_tables_and_its_rows(
    version: int, tmp_path: Path, current: Shape
) -> None:
    connection = connect(_old_file(tmp_path / "old.duckdb", version), Resolver(ResolutionRules.load()))
    try:
        assert connection.execute("SELECT value FROM warehouse_meta WHERE key = 'version'").fetchall() == [
            (str(WAREHOUSE_VERSION),)
        ]
        assert _shape(connection) == current
        keyed = connection.execute("SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")
        assert keyed.fetchall() == [("warehouse_meta",)]
        assert connection.execute("SELECT event_id, status, subject_id_number, run_id FROM events").fetchall() == [
            ("E-1", "dispatched", None, None)
        ]
        assert connection.execute("SELECT update_id, department FROM event_updates").fetchall() == [
            ("E-1:handled:1", None)
        ]
        assert connection.execute("SELECT record_uid, reason_code, topic, resolved_at FROM rejects").fetchall() == [
            ("u-r1", "invalid_reported_at", None, None)
        ]
        assert connection.execute("SELECT * FROM sink_offsets").fetchall() == [("canonical.event", 0, 8, "topic-id")]
        assert connection.execute("SELECT person_key, name, phone FROM people").fetchall() == [
            (WOMAN_ID, "王芳", "+8613800000000")
        ]
    finally:
        connection.close()


def test_version_1_base_data_becomes_source_copies_resolved_into_golden_records_and_links(tmp_path: Path) -> None:
    connection = connect(_old_file(tmp_path / "v1.duckdb", 1), Resolver(ResolutionRules.load()))
    try:
        copies = connection.execute(
            "SELECT source, source_record_id, match_key, address_norm, record_uid, fingerprint FROM person_sources"
        )
        assert copies.fetchall() == [("civil-affairs", "c-1", WOMAN_ID, "通江中路1号", "u-p1", "f1")]
        assert connection.execute("SELECT method FROM entity_matches WHERE kind = 'person'").fetchall() == [
            ("id_number",)
        ]
        assert connection.execute(
            "SELECT relation, other_key FROM linked_to('person', $key)", {"key": WOMAN_ID}
        ).fetchall() == [("lives_at", "320411101001001|通江中路1号")]
        parked = connection.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'v1\\_%' ESCAPE '\\'")
        assert parked.fetchall() == []
    finally:
        connection.close()


def test_a_first_version_2_file_which_kept_no_version_is_read_as_version_2(tmp_path: Path) -> None:
    path = _old_file(tmp_path / "v2.duckdb", 2)
    with duckdb.connect(str(path)) as connection:
        connection.execute("DROP TABLE warehouse_meta")
    connection = connect(path, Resolver(ResolutionRules.load()))
    try:
        assert connection.execute("SELECT person_key, name FROM people").fetchall() == [(WOMAN_ID, "王芳")]
    finally:
        connection.close()


def test_an_upgrade_that_fails_half_way_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _old_file(tmp_path / "v1.duckdb", 1)

    def broken(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setitem(migrations.UPGRADES, 4, broken)
    with pytest.raises(
        WarehouseSchemaError, match=f"version 1 and could not be brought to version {WAREHOUSE_VERSION}"
    ) as refused:
        connect(path, Resolver(ResolutionRules.load()))
    assert "the file is left as it was" in str(refused.value)
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = {name for (name,) in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "warehouse_meta" not in tables and "person_sources" not in tables
        assert connection.execute("SELECT id_number, phone FROM people").fetchall() == [(WOMAN_ID, "138-0000-0000")]
        keyed = connection.execute("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")
        assert keyed.fetchone() == (13,)
