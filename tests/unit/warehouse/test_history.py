"""History on a real (in-memory) DuckDB: versions of source copies and golden records, and as-of answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.warehouse.test_resolution import LI, T0, WANG, Warehouse
from warehouse.history import VERSIONED, record_versions
from warehouse.masking import install_masked_views, use_schema
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ResolutionRules
from warehouse.upsert import transaction
from warehouse.writer import ENTITY_TABLES, WAREHOUSE_VERSION, connect


def copy(rid: str, hours: float, address: str, source: str = "civil-affairs", **extra: Any) -> dict[str, Any]:
    return {
        "source": source,
        "rid": rid,
        "hours": hours,
        "id_number": WANG,
        "name": "王芳",
        "address": address,
        **extra,
    }


def at(hours: float) -> str:
    return f"TIMESTAMPTZ '{(T0 + timedelta(hours=hours)).isoformat()}'"


@pytest.fixture
def warehouse() -> Warehouse:
    return Warehouse()


def addresses_as_of(warehouse: Warehouse, hours: float) -> list[tuple[Any, ...]]:
    return warehouse.rows(f"SELECT address FROM people_as_of({at(hours)})")


def test_an_update_makes_a_version_and_as_of_answers_from_the_version_then(warehouse: Warehouse) -> None:
    warehouse.load("person", copy("c1", 0, "孟河镇通江路12号"))
    warehouse.load("person", copy("c1", 24, "孟河镇富民路3号"))

    versions = warehouse.rows("SELECT address, valid_from, valid_to FROM person_sources_history ORDER BY valid_from")
    assert versions == [
        ("孟河镇通江路12号", T0, T0 + timedelta(hours=24)),
        ("孟河镇富民路3号", T0 + timedelta(hours=24), None),
    ]
    assert addresses_as_of(warehouse, -1) == []
    assert addresses_as_of(warehouse, 1) == [("孟河镇通江路12号",)]
    assert addresses_as_of(warehouse, 25) == [("孟河镇富民路3号",)]
    assert warehouse.rows(f"SELECT address FROM person_sources_as_of({at(23)})") == [("孟河镇通江路12号",)]


def test_an_entity_left_without_copies_ends_its_version_and_leaves_the_as_of_answers(warehouse: Warehouse) -> None:
    warehouse.load("person", {"source": "school", "rid": "s1", "id_number": WANG, "name": "李强"})
    warehouse.load("person", {"source": "school", "rid": "s1", "id_number": LI, "name": "李强", "hours": 1})

    assert warehouse.rows(f"SELECT person_key FROM people_as_of({at(2)})") == [(LI,)]
    assert warehouse.rows(f"SELECT count(*) FROM people_history WHERE person_key = '{WANG}' AND valid_to IS NULL") == [
        (0,)
    ]


def test_a_resend_or_a_replayed_batch_of_the_same_content_never_rewrites_history(warehouse: Warehouse) -> None:
    warehouse.load("person", copy("c1", 0, "孟河镇通江路12号"))
    warehouse.load("person", copy("c1", 24, "孟河镇富民路3号"))
    before = warehouse.rows("SELECT * FROM person_sources_history ORDER BY valid_from")
    golden_before = warehouse.rows("SELECT * FROM people_history ORDER BY valid_from")

    warehouse.load("person", copy("c1", 24, "孟河镇富民路3号"))  # the same batch again (a replayed topic)
    warehouse.load("person", copy("c1", 30, "孟河镇富民路3号"))  # the same content sent again later

    assert warehouse.rows("SELECT * FROM person_sources_history ORDER BY valid_from") == before
    assert warehouse.rows("SELECT * FROM people_history ORDER BY valid_from") == golden_before
    assert len(before) == 2


def test_versions_arriving_in_one_batch_are_each_kept_in_order(warehouse: Warehouse) -> None:
    warehouse.load(
        "person",
        copy("c1", 0, "一号"),
        copy("c1", 1, "二号"),
        copy("c1", 2, "二号"),
        copy("c1", 3, "三号"),
    )

    versions = warehouse.rows("SELECT address, valid_from, valid_to FROM person_sources_history ORDER BY valid_from")
    assert [row[0] for row in versions] == ["一号", "二号", "三号"]
    assert [row[2] for row in versions] == [T0 + timedelta(hours=1), T0 + timedelta(hours=3), None]
    assert warehouse.rows("SELECT address FROM person_sources") == [("三号",)]


def test_what_one_department_sent_before_another_corrected_it(warehouse: Warehouse) -> None:
    warehouse.load("person", copy("c1", 0, "孟河镇通江路12号", phone="13900000001"))
    warehouse.load("person", copy("p1", 48, "孟河镇通江路12号", source="public-security", phone="13900000009"))

    assert warehouse.rows(f"SELECT source, phone FROM person_sources_as_of({at(47)}) ORDER BY source") == [
        ("civil-affairs", "+8613900000001")
    ]
    assert warehouse.rows(f"SELECT source_count FROM people_as_of({at(47)})") == [(1,)]
    assert warehouse.rows(f"SELECT source_count, sources FROM people_as_of({at(49)})") == [
        (2, ["civil-affairs", "public-security"])
    ]
    golden = warehouse.rows("SELECT valid_from, valid_to FROM people_history ORDER BY valid_from")
    assert golden == [(T0, T0 + timedelta(hours=48)), (T0 + timedelta(hours=48), None)]


def test_a_warehouse_written_before_history_starts_with_each_rows_current_version() -> None:
    warehouse = Warehouse()
    warehouse.load("person", copy("c1", 5, "孟河镇通江路12号"))
    warehouse.db.execute("DROP TABLE person_sources_history")
    warehouse.db.execute("DROP TABLE people_history")

    warehouse.resolver.install(warehouse.db)

    assert warehouse.rows("SELECT address, valid_from, valid_to FROM person_sources_history") == [
        ("孟河镇通江路12号", T0 + timedelta(hours=5), None)
    ]
    assert addresses_as_of(warehouse, 6) == [("孟河镇通江路12号",)]
    warehouse.load("person", copy("c1", 5, "孟河镇通江路12号"))
    assert len(warehouse.rows("SELECT * FROM person_sources_history")) == 1


def _case_rows(warehouse: Warehouse) -> None:
    reported = T0
    warehouse.db.execute(
        "INSERT INTO cases (case_id, category, status, reported_at, due_at, reporter_id) "
        "VALUES ('GD1', '0101', 'closed', ?, ?, 'GW001')",
        [reported, reported + timedelta(hours=8)],
    )
    steps = [
        (1, None, "reported", 0, 8),
        (2, "reported", "accepted", 1, 8),
        (3, "accepted", "dispatched", 2, 8),
        (4, "dispatched", "handled", 10, 8),
        (5, "handled", "closed", 12, 8),
    ]
    for seq, before, after, hours, due in steps:
        warehouse.db.execute(
            'INSERT INTO case_transitions (case_id, seq, from_status, to_status, "at", due_at) '
            "VALUES ('GD1', ?, ?, ?, ?, ?)",
            [seq, before, after, reported + timedelta(hours=hours), reported + timedelta(hours=due)],
        )


def test_which_cases_were_open_at_a_given_moment(warehouse: Warehouse) -> None:
    _case_rows(warehouse)

    def state(hours: float) -> list[tuple[Any, ...]]:
        return warehouse.rows(f"SELECT status, is_open, overdue FROM cases_as_of({at(hours)})")

    assert state(-1) == []
    assert state(1.5) == [("accepted", True, False)]
    assert state(9) == [("dispatched", True, True)]
    assert state(11) == [("handled", True, True)]
    assert state(13) == [("closed", False, False)]


def test_a_masked_role_reads_history_through_the_same_masks(warehouse: Warehouse) -> None:
    warehouse.load("person", copy("c1", 0, "孟河镇通江路12号"))
    _case_rows(warehouse)
    install_masked_views(warehouse.db)

    with transaction(warehouse.db) as cursor:
        use_schema(cursor, "masked")
        people = cursor.execute(f"SELECT id_number, name FROM people_as_of({at(1)})").fetchall()
        copies = cursor.execute(f"SELECT id_number FROM person_sources_as_of({at(1)})").fetchall()
        history = cursor.execute("SELECT name FROM person_sources_history").fetchall()
        reporter = cursor.execute(f"SELECT reporter_id FROM cases_as_of({at(1)})").fetchall()
    assert people == [(WANG[:6] + "**********" + WANG[-2:], "王*")]
    assert copies == [(WANG[:6] + "**********" + WANG[-2:],)]
    assert history == [("王*",)]
    assert reporter[0][0] != "GW001"


def test_now_is_used_when_a_golden_change_carries_no_newer_copy(warehouse: Warehouse) -> None:
    warehouse.load("person", copy("c1", 0, "孟河镇通江路12号"))
    later = datetime(2026, 12, 1, tzinfo=UTC)
    with transaction(warehouse.db) as cursor:
        cursor.execute("UPDATE people SET phone = '13900000077'")
        record_versions(cursor, "people", "SELECT * FROM people", later)
    assert warehouse.rows("SELECT phone, valid_from FROM people_history ORDER BY valid_from") == [
        (None, T0),
        ("13900000077", later),
    ]


def test_a_version_6_warehouse_gains_lineage_and_a_history_of_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v6.duckdb"
    connection = connect(path, Resolver(ResolutionRules.load()))
    lineage = ("run_id", "topic", "partition", "message_offset")
    for table, _ in ENTITY_TABLES.values():
        for column in lineage:
            connection.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for column in ("resolved_at", "resolution", "resolved_by"):
        connection.execute(f"ALTER TABLE rejects DROP COLUMN {column}")
    for table in VERSIONED:
        connection.execute(f"DROP TABLE {table}_history")
    connection.execute(
        "INSERT INTO person_sources (source, source_record_id, id_number, name, received_at) "
        f"VALUES ('civil-affairs', 'c1', '{WANG}', '王芳', ?)",
        [T0],
    )
    connection.execute("UPDATE warehouse_meta SET value = '6' WHERE key = 'version'")
    connection.close()

    connection = connect(path, Resolver(ResolutionRules.load()))
    for table, _ in ENTITY_TABLES.values():
        columns = {name for (name,) in connection.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()}
        assert set(lineage) <= columns, table
    assert connection.execute("SELECT name, valid_from, valid_to FROM person_sources_history").fetchall() == [
        ("王芳", T0, None)
    ]
    assert connection.execute("SELECT value FROM warehouse_meta WHERE key = 'version'").fetchall() == [
        (str(WAREHOUSE_VERSION),)
    ]
    connection.close()
