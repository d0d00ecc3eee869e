"""History: every version of the source copies and golden records, and the warehouse as of a moment.

The entity tables hold what is true now; an analyst also asks what the register said last month,
or what civil affairs sent before the police corrected it. So each write of a source copy or a
golden record also keeps a version in ``<table>_history``: the row as it was, from ``valid_from``
to ``valid_to`` (NULL while current). The clock is the hub's: a source copy is valid from when
the hub received it, a golden record from when the newest copy it is built from arrived, so a
warehouse rebuilt from the same topics has the same history. A version is kept only when the
row's content changes (the provenance and load-time columns are not compared), so a
replayed batch or a resend of the same content never rewrites history. ``<table>_as_of(ts)``
gives the rows as they were at ``ts``; ``cases_as_of(ts)`` (:data:`CASES_AS_OF`) answers from the case
transitions, whose times are when things happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from warehouse.sql import read_by_row_id

SUFFIX = "_history"
UNVERSIONED = frozenset(
    {
        "record_uid",
        "run_id",
        "received_at",
        "loaded_at",
        "fingerprint",
        "topic",
        "partition",
        "message_offset",
        "resolved_at",
        "first_received_at",
        "last_received_at",
    }
)
"""Columns that say where and when a row came from, not what it says: a change to them alone is no new version."""


@dataclass(frozen=True)
class Versioned:
    """A table whose rows keep their versions: its key, and the column a version is valid from."""

    key: tuple[str, ...]
    since: str


VERSIONED: dict[str, Versioned] = {
    **{
        f"{kind}_sources": Versioned(("source", "source_record_id"), "received_at")
        for kind in ("person", "organisation", "place", "object")
    },
    "people": Versioned(("person_key",), "last_received_at"),
    "organisations": Versioned(("organisation_key",), "last_received_at"),
    "places": Versioned(("place_key",), "last_received_at"),
    "objects": Versioned(("object_key",), "last_received_at"),
}

AS_OF: dict[str, str] = {name: f"{name}_as_of" for name in VERSIONED} | {"cases": "cases_as_of"}
"""Relation -> its table macro of rows as of a moment: ``SELECT * FROM people_as_of(TIMESTAMPTZ '...')``."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _content(types: dict[str, str], alias: str) -> str:
    """SQL of what a row says: its columns but the provenance ones, as one value to compare (NULLs equal)."""
    return f"ROW({', '.join(f'{alias}.{_quoted(name)}' for name in types if name not in UNVERSIONED)})"


def _matching(key: tuple[str, ...], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{_quoted(name)} = {right}.{_quoted(name)}" for name in key)


def install(connection: duckdb.DuckDBPyConnection) -> None:
    """Create each history table (kept in step with its table's columns), seed it, and make the as-of macros.

    A history table is seeded from its table when it is empty and the table is not: a warehouse
    written before history existed starts with each row's current version, valid from when it came.
    """
    for table, versioned in VERSIONED.items():
        history = table + SUFFIX
        types = _types(connection, table)
        columns = list(types)
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {history} AS SELECT *, CAST(NULL AS TIMESTAMPTZ) AS valid_from, "
            f"CAST(NULL AS TIMESTAMPTZ) AS valid_to FROM {table} LIMIT 0"
        )
        kept = set(_types(connection, history))
        for name in columns:
            if name not in kept:
                connection.execute(f"ALTER TABLE {history} ADD COLUMN {_quoted(name)} {types[name]}")
        listed = ", ".join(_quoted(name) for name in columns)
        connection.execute(
            f"INSERT INTO {history} ({listed}, valid_from, valid_to) "
            f"SELECT {listed}, t.{versioned.since}, NULL FROM {table} t "
            f"WHERE NOT EXISTS (SELECT 1 FROM {history})"
        )
    for statement in as_of_macros("main"):
        connection.execute(statement)


CASES_AS_OF = """
CREATE OR REPLACE MACRO {schema}.cases_as_of(ts) AS TABLE
SELECT c.case_id, c.category, c.category_name, c.department, c.squad, c.grid_code, c.community, c.reporter_id,
       c.reported_at, t.status, t.status_since, t.due_at,
       t.status NOT IN ('closed', 'rejected', 'cancelled') AS is_open,
       t.status NOT IN ('closed', 'rejected', 'cancelled', 'parked') AND t.due_at < ts AS overdue
FROM {schema}.cases c JOIN (
    SELECT case_id, arg_max(to_status, seq) AS status, arg_max("at", seq) AS status_since,
           arg_max(due_at, seq) AS due_at
    FROM {schema}.case_transitions WHERE "at" <= ts GROUP BY case_id
) t ON t.case_id = c.case_id
"""
"""A case as it stood at ``ts``, from its transitions (when things happened, not when the hub heard of them):
its status, since when, the deadline then in force, whether it was open and overdue. Department and
cell are today's."""


def as_of_macros(schema: str) -> list[str]:
    """The as-of table macros of ``schema`` (``main``, or ``masked`` over the masked views of the same tables)."""
    statements = [
        f"CREATE OR REPLACE MACRO {schema}.{AS_OF[table]}(ts) AS TABLE SELECT * EXCLUDE (valid_from, valid_to) "
        f"FROM {schema}.{table}{SUFFIX} WHERE valid_from <= ts AND (valid_to IS NULL OR valid_to > ts)"
        for table in VERSIONED
    ]
    return [*statements, CASES_AS_OF.format(schema=schema)]


def _types(cursor: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = cursor.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    return {str(name): str(data_type) for name, data_type in rows}


def _repeats_a_key(cursor: duckdb.DuckDBPyConnection, rows: str, key: str) -> bool:
    """Whether some key comes more than once in relation ``rows``.

    Only then can one row's version follow another's within the rows, which takes two windows
    partitioned by key. A bulk batch reaches the resolver without its duplicates, so its keys
    rarely repeat: keeping the versions of 250,000 new copies against 700,000 took 1.16-1.51 s
    with the windows and 0.55-0.73 s with this count instead (five alternating rounds, one session).
    """
    found = cursor.execute(f"SELECT count(*) > count(DISTINCT ({key})) FROM ({rows})").fetchone()
    return bool(found and found[0])


def record_versions(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    rows: str,
    now: datetime,
    order: str | None = None,
    gone: str | None = None,
) -> None:
    """Keep the versions the rows of relation ``rows`` bring to ``table``, in the order of column ``order``.

    Without ``order``, ``rows`` holds one row per key (golden records rebuilt from their copies).

    Each row is read as the table stores it (its columns cast to the table's types, a missing
    one NULL). A row whose content (:func:`_content`) differs from the version before it (the
    previous row of its key in ``rows``, else the current version) becomes a version, and the
    version it follows ends when it starts. A version cannot start before the one it ends (a
    golden record changed by a reviewer's decision carries no newer copy): it then starts at
    ``now``. ``gone`` is a relation of keys whose rows no longer exist (an entity merged into
    another): their current version ends at ``now``.
    """
    versioned = VERSIONED[table]
    history = table + SUFFIX
    types = _types(cursor, table)
    given = {str(column[0]) for column in cursor.execute(f"SELECT * FROM ({rows}) LIMIT 0").description}
    projection = ", ".join(
        f"CAST({'r.' + _quoted(name) if name in given else 'NULL'} AS {data_type}) AS {_quoted(name)}"
        for name, data_type in types.items()
    )
    key = ", ".join(_quoted(name) for name in versioned.key)
    arrival = f"r.{_quoted(order)}" if order else "row_number() OVER ()"
    by_key = ", ".join("i." + _quoted(name) for name in versioned.key)
    repeated = order is not None and _repeats_a_key(cursor, rows, key)
    previous = f"lag({_content(types, 'i')}) OVER (PARTITION BY {by_key} ORDER BY i._order)" if repeated else "NULL"
    following = f"lead(valid_from) OVER (PARTITION BY {key} ORDER BY _order)" if repeated else "NULL"
    current = read_by_row_id(
        history,
        f"SELECT k.rowid AS found_row FROM {history} k "
        f"SEMI JOIN incoming ON {_matching(versioned.key, 'k', 'incoming')} WHERE k.valid_to IS NULL",
    )
    cursor.execute(
        "CREATE OR REPLACE TEMP TABLE _versions AS "
        f"WITH incoming AS (SELECT {projection}, {arrival} AS _order FROM ({rows}) AS r), "
        "compared AS ("
        f"  SELECT i.*, i.{_quoted(versioned.since)} AS valid_from, {_content(types, 'i')} AS _content, "
        f"    {previous} AS _previous, "
        f"    CASE WHEN h.valid_from IS NOT NULL THEN {_content(types, 'h')} END AS _current, "
        "    h.valid_from AS _current_from "
        f"  FROM incoming i LEFT JOIN ({current}) h ON {_matching(versioned.key, 'h', 'i')}) "
        "SELECT * EXCLUDE (_content, _previous, _current, _current_from) "
        "REPLACE (CASE WHEN _current_from IS NOT NULL AND valid_from <= _current_from "
        "  THEN greatest($now, _current_from + INTERVAL 1 MICROSECOND) ELSE valid_from END AS valid_from) "
        "FROM compared WHERE _content IS DISTINCT FROM coalesce(_previous, _current)",
        {"now": now},
    )
    cursor.execute(
        f"UPDATE {history} AS h SET valid_to = v.first_from FROM ("
        f"  SELECT {key}, min(valid_from) AS first_from FROM _versions GROUP BY {key}) AS v "
        f"WHERE {_matching(versioned.key, 'h', 'v')} AND h.valid_to IS NULL"
    )
    listed = ", ".join(_quoted(name) for name in types)
    cursor.execute(
        f"INSERT INTO {history} ({listed}, valid_from, valid_to) "
        f"SELECT {listed}, valid_from, {following} FROM _versions"
    )
    if gone is not None:
        cursor.execute(
            f"UPDATE {history} SET valid_to = $now "
            f"WHERE valid_to IS NULL AND ({key}) IN (SELECT ({key}) FROM ({gone}))",
            {"now": now},
        )
    cursor.execute("DROP TABLE _versions")
