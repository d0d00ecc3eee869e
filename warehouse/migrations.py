"""Bring a warehouse file of any older version to the current one, in place.

Each version of the tables after the first has one step, from the version before it: SQL, or a
function where SQL alone cannot say it. A step changes the tables the file has (``ALTER TABLE IF
EXISTS``); a table the file lacks is made in its current shape by the schema files after the last
step. Rows a step cannot place in the older shape (version 1's base data, kept before source copies
existed) wait in a table of their own and go into the current tables through the current code
afterwards. The steps, the schema files and the version stamp commit in one transaction, so an
upgrade that fails or is killed half-way leaves the file as it was.

A new version is one more entry in :data:`UPGRADES` and a bump of :data:`WAREHOUSE_VERSION`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from foundation.errors import ConfigurationError
from foundation.logs import get_logger
from schemas.upgrades import read_record
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ENTITIES
from warehouse.upsert import transaction

log = get_logger(__name__)
Step = str | Callable[[duckdb.DuckDBPyConnection], None]

WAREHOUSE_VERSION = 7
"""Shape of the tables; bumped whenever a table changes (2: base data as source copies plus golden records;
3: no primary-key indexes, keys kept unique by the writer; 4: rejects keep the topic, partition and offset
of the refused message, the error, and the hash and size of their payload; 5: an update keeps the department
a re-dispatch sends its case to; 6: applications keep their window and channel, cases their handlers, their
escalation level (督办) and their parking's review date (挂账); 7: every row keeps its lineage (run, topic,
partition, offset) and a reject what closed it; the history tables are made and seeded by the resolver)."""

PARKED = "v1_"
"""Prefix of the tables version 1's base data waits in (``v1_people``, ...) until the current code takes it in."""


def _source_copies(cursor: duckdb.DuckDBPyConnection) -> None:
    """Version 2 keeps base data as each source's copy plus golden records: version 1's rows wait to be taken in.

    Version 1 kept one row per strong key (``people`` by resident ID, ...), the last record to set it.
    That row is a source copy of version 1 of its contract; :func:`_take_in_parked` makes it one.
    """
    for entity in ENTITIES.values():
        columns = _columns(cursor, entity.golden_table)
        if columns and entity.key_column not in columns:
            cursor.execute(f"ALTER TABLE {entity.golden_table} RENAME TO {PARKED}{entity.golden_table}")
    cursor.execute(
        "ALTER TABLE IF EXISTS events ADD COLUMN IF NOT EXISTS subject_id_number VARCHAR;"
        "ALTER TABLE IF EXISTS events ADD COLUMN IF NOT EXISTS subject_uscc VARCHAR;"
        "ALTER TABLE IF EXISTS events ADD COLUMN IF NOT EXISTS object_id VARCHAR;"
        "ALTER TABLE IF EXISTS events ADD COLUMN IF NOT EXISTS place_id VARCHAR;"
    )


_PRIMARY_KEY = re.compile(r",\s*PRIMARY KEY\s*\([^)]*\)|\s+PRIMARY KEY\b")


def _without_primary_keys(cursor: duckdb.DuckDBPyConnection) -> None:
    """Version 3 keeps keys unique in the writer, not in DuckDB's indexes: each keyed table is made again without.

    DuckDB cannot drop a table's key, so the table is renamed, made again from its own definition
    less the key, and refilled. Only the transition log's key columns stay NOT NULL, as version 3 declares.
    """
    keyed = cursor.execute(
        "SELECT DISTINCT c.table_name, t.sql FROM duckdb_constraints() c JOIN duckdb_tables() t "
        "ON t.database_name = c.database_name AND t.schema_name = c.schema_name AND t.table_name = c.table_name "
        "WHERE c.constraint_type = 'PRIMARY KEY' AND c.schema_name = 'main' AND c.database_name = current_database() "
        "AND c.table_name <> 'warehouse_meta'"
    ).fetchall()
    for table, definition in keyed:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_keyed")
        cursor.execute(_PRIMARY_KEY.sub("", definition))
        cursor.execute(f"INSERT INTO {table} SELECT * FROM {table}_keyed")
        cursor.execute(f"DROP TABLE {table}_keyed")
    cursor.execute(
        "ALTER TABLE IF EXISTS case_transitions ALTER COLUMN case_id SET NOT NULL;"
        "ALTER TABLE IF EXISTS case_transitions ALTER COLUMN seq SET NOT NULL;"
    )


_LINEAGE_TABLES = (
    "person_sources",
    "organisation_sources",
    "place_sources",
    "object_sources",
    "events",
    "event_updates",
    "applications",
    "patrol_tracks",
    "cases",
    "case_transitions",
    "enforcement_cases",
)
"""The tables every canonical kind landed in at version 7 (``writer.ENTITY_TABLES`` then): a step stays as it was."""

UPGRADES: dict[int, Step] = {
    1: _source_copies,
    2: _without_primary_keys,
    3: "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS topic VARCHAR;"
    "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS partition INTEGER;"
    "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS message_offset BIGINT;"
    "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS error VARCHAR;"
    "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS payload_sha256 VARCHAR;"
    "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS payload_bytes BIGINT;",
    4: "ALTER TABLE IF EXISTS event_updates ADD COLUMN IF NOT EXISTS department VARCHAR;",
    5: "ALTER TABLE IF EXISTS approval_items ADD COLUMN IF NOT EXISTS time_limit_unit VARCHAR DEFAULT 'calendar_days';"
    "ALTER TABLE IF EXISTS applications ADD COLUMN IF NOT EXISTS window_no INTEGER;"
    "ALTER TABLE IF EXISTS applications ADD COLUMN IF NOT EXISTS channel VARCHAR;"
    "ALTER TABLE IF EXISTS cases ADD COLUMN IF NOT EXISTS handled_by VARCHAR[];"
    "ALTER TABLE IF EXISTS cases ADD COLUMN IF NOT EXISTS escalation_level INTEGER;"
    "ALTER TABLE IF EXISTS cases ADD COLUMN IF NOT EXISTS escalated_at TIMESTAMPTZ;"
    "ALTER TABLE IF EXISTS cases ADD COLUMN IF NOT EXISTS review_at TIMESTAMPTZ;"
    "ALTER TABLE IF EXISTS cases ADD COLUMN IF NOT EXISTS review_alerted BOOLEAN;",
    6: "".join(
        f"ALTER TABLE IF EXISTS {table} ADD COLUMN IF NOT EXISTS {column};"
        for table in _LINEAGE_TABLES
        for column in ("run_id VARCHAR", "topic VARCHAR", "partition INTEGER", "message_offset BIGINT")
    )
    + "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS resolved_at TIMESTAMPTZ;"
    "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS resolution VARCHAR;"
    "ALTER TABLE IF EXISTS rejects ADD COLUMN IF NOT EXISTS resolved_by VARCHAR;",
}
"""The step that brings a file of each older version to the next one, in place."""


class WarehouseSchemaError(ConfigurationError):
    """The warehouse file holds tables of a shape this gridhub cannot bring to its own."""


def _columns(cursor: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns of a table of the file (none when it has no such table)."""
    rows = cursor.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = $table",
        {"table": table},
    ).fetchall()
    return {name for (name,) in rows}


def _found_version(connection: duckdb.DuckDBPyConnection, path: Path) -> int | None:
    """The version of the tables the file holds (None for a new file), refusing one this gridhub cannot bring here.

    Version 1 kept no version; neither did the first files of version 2, which already hold source copies.
    """
    tables = {name for (name,) in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not tables:
        return None
    found = 2 if "person_sources" in tables else 1
    if "warehouse_meta" in tables:
        row = connection.execute("SELECT value FROM warehouse_meta WHERE key = 'version'").fetchone()
        found = int(row[0]) if row else found
    upgradable = all(version in UPGRADES for version in range(found, WAREHOUSE_VERSION))
    if found > WAREHOUSE_VERSION or not upgradable:
        raise WarehouseSchemaError(
            f"{path} holds warehouse tables of version {found}, this gridhub writes version {WAREHOUSE_VERSION}; "
            "move the file aside and send the sources again (a Kafka cluster that still holds the topics lets "
            "the sink rebuild the warehouse from them; the embedded broker forgets them when it stops), or run "
            "the gridhub version that wrote it"
        )
    return found


def _run(cursor: duckdb.DuckDBPyConnection, step: Step) -> None:
    if isinstance(step, str):
        cursor.execute(step)
    else:
        step(cursor)


def _take_in_parked(cursor: duckdb.DuckDBPyConnection, resolver: Resolver, now: datetime) -> None:
    """Version 1's base rows become source copies, read as records of version 1 of their contract, and are resolved."""
    for entity in ENTITIES.values():
        parked = PARKED + entity.golden_table
        if not _columns(cursor, parked):
            continue
        rows = cursor.sql(f"SELECT * FROM {parked}").to_arrow_table().to_pylist()
        resolver.apply(cursor, entity.kind, [read_record(entity.kind, row, 1) for row in rows], now)
        cursor.execute(f"DROP TABLE {parked}")


def migrate(
    connection: duckdb.DuckDBPyConnection, path: Path, schema_files: Iterable[Path], resolver: Resolver
) -> None:
    """Bring the file to :data:`WAREHOUSE_VERSION` with its tables, views and history, all or nothing.

    A file of a newer version, or one that fails to upgrade, raises :class:`WarehouseSchemaError`
    saying what to do; the file is then as it was.
    """
    found = _found_version(connection, path)
    steps = range(found or WAREHOUSE_VERSION, WAREHOUSE_VERSION)
    try:
        with transaction(connection) as cursor:
            for version in steps:
                _run(cursor, UPGRADES[version])
            for schema in schema_files:
                cursor.execute(schema.read_text())
            resolver.install(cursor)
            _take_in_parked(cursor, resolver, datetime.now(UTC))
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR);"
                f"INSERT OR REPLACE INTO warehouse_meta VALUES ('version', '{WAREHOUSE_VERSION}')"
            )
    except duckdb.Error as exc:
        if not steps:
            raise
        raise WarehouseSchemaError(
            f"{path} holds warehouse tables of version {found} and could not be brought to version "
            f"{WAREHOUSE_VERSION} ({type(exc).__name__}: {exc}); the file is left as it was: report it as a "
            "gridhub bug, or move the file aside and send the sources again"
        ) from exc
    if steps:
        log.info("warehouse upgraded", path=str(path), from_version=found, to_version=WAREHOUSE_VERSION)
