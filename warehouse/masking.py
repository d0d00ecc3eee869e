"""Personal data masked by role, in the warehouse itself: the views of the ``masked`` schema.

Analysts and admins must see residents' personal data masked; the command centre sees it whole.
The masks live in the warehouse, as one view ``masked.<name>`` over every table and view
``main.<name>``, with the same name and columns, each column masked as
``schemas/data/personal_fields.yaml`` says (:mod:`schemas.personal`) and every other text
scrubbed. A masked role's query runs with its search path set to ``masked``
(:func:`use_schema`), so it names the same relations (``people``, ``events``, ``linked_to(...)``)
and every path into the warehouse (SQL, ``gridhub show``, ``review list``, ``kpi --by worker``,
exports) inherits the masks without knowing of them.

DuckDB falls back to ``main`` for a name that ``masked`` lacks, whatever the search path: the
SQL guard, told the names of :func:`relations_of`, is what keeps a masked role from naming
anything else (``check_query(..., relations=...)``).

Pseudonyms are keyed by a random secret made once per warehouse, in ``main.masking_secret``,
which no role may name (:data:`PRIVATE_TABLES`). The masking macros are all called ``gh_...`` and
the guard refuses such a call: an analyst able to call them could build a dictionary from IDs
to pseudonyms.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import duckdb

from foundation.logs import get_logger
from schemas.personal import (
    DIGIT,
    DIGITS_TO_LETTERS,
    ID_IN_TEXT,
    ID_IN_TEXT_MASK,
    IN_TEXT_PASSES,
    PHONE_IN_TEXT,
    PHONE_IN_TEXT_MASK,
    PLACE_KEY,
    PSEUDONYM_LENGTH,
    PSEUDONYM_PREFIX,
    RESIDENT_ID,
    SHORTEST_NUMBER,
    MaskKind,
    PersonalFields,
    load_personal_fields,
)
from warehouse import history
from warehouse.audit import AUDIT_TABLE
from warehouse.sql import sql_literal
from warehouse.upsert import transaction

log = get_logger(__name__)

MASKED_SCHEMA = "masked"
"""The schema of the masked views: what an analyst's or an admin's query sees."""
SECRET_TABLE = "masking_secret"  # noqa: S105 - the name of the table, not the secret
"""``main.masking_secret``: the key of the pseudonyms, one random row made with the warehouse."""
PRIVATE_TABLES = frozenset({SECRET_TABLE, AUDIT_TABLE})
"""Tables that get no masked view and that no role may name in a query."""
MACRO_PREFIX = "gh_"
"""Every masking macro's name starts so; the SQL guard refuses calls of such functions."""

_ROW = "__gh_row"
_KEY = "__gh_key"
_ELEMENT = "__gh_x"
_SCHEMA_NAME = re.compile("[a-z_][a-z0-9_]*")
_PLAIN_TYPE = re.compile(
    r"(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE"
    r"|DECIMAL\(\d+,\s*\d+\)|DATE|TIME|TIME WITH TIME ZONE|TIMESTAMP[A-Z_ ]*|INTERVAL|UUID|ENUM\(.*\))(\[\d*\])*"
)
"""Types that cannot hold free text: shown as they are. Any other type but VARCHAR and VARCHAR[] is hidden."""


def _in_text(pattern: str, replacement: str, value: str) -> str:
    expression = value
    for _ in range(IN_TEXT_PASSES):
        expression = f"regexp_replace({expression}, {sql_literal(pattern)}, {sql_literal(replacement)}, 'g')"
    return expression


_LETTERS = sql_literal(DIGITS_TO_LETTERS[1])
MACROS: dict[str, str] = {
    "gh_hash(v, k)": f"{sql_literal(PSEUDONYM_PREFIX)} || translate(left(sha256(k || ':' || v), {PSEUDONYM_LENGTH}), "
    f"{sql_literal(DIGITS_TO_LETTERS[0])}, {_LETTERS})",
    "gh_pseudonym(v, k)": "main.gh_hash(CASE WHEN regexp_full_match(v, '[0-9]{17}x') THEN upper(v) ELSE v END, k)",
    "gh_scrub_numbers(v)": _in_text(PHONE_IN_TEXT, PHONE_IN_TEXT_MASK, _in_text(ID_IN_TEXT, ID_IN_TEXT_MASK, "v")),
    "gh_scrub(v, k)": f"CASE WHEN length(v) < {SHORTEST_NUMBER} THEN v "
    f"WHEN regexp_full_match(v, {sql_literal(RESIDENT_ID)}) THEN main.gh_hash(upper(v), k) "
    f"WHEN regexp_full_match(v, {sql_literal(PLACE_KEY)}) THEN main.gh_hash(v, k) "
    "ELSE main.gh_scrub_numbers(v) END",
    "gh_mask_id_number(v)": "CASE WHEN length(v) = 18 THEN left(v, 6) || '**********' || right(v, 2) "
    f"ELSE regexp_replace(v, '{DIGIT}', '*', 'g') END",
    "gh_mask_phone_digits(v, d)": "CASE WHEN length(d) = 11 THEN left(d, 3) || '****' || right(d, 4) "
    "WHEN length(d) = 13 AND left(d, 2) = '86' THEN substr(d, 3, 3) || '****' || right(d, 4) "
    f"ELSE regexp_replace(v, '{DIGIT}', '*', 'g') END",
    "gh_mask_phone(v)": "main.gh_mask_phone_digits(v, regexp_replace(v, '[^0-9０-９]', '', 'g'))",
    "gh_mask_name(v)": "CASE WHEN length(v) <= 1 THEN repeat('*', length(v)) "
    "ELSE left(v, 1) || repeat('*', length(v) - 1) END",
    "gh_mask_address(v)": "left(v, least(6, length(v) // 3)) || repeat('*', length(v) - least(6, length(v) // 3))",
    "gh_mask_birth_date(d)": "make_date(year(d), 1, 1)",
    "gh_mask_birth_date_text(v)": "strftime(main.gh_mask_birth_date(TRY_CAST(v AS DATE)), '%Y-%m-%d')",
}
"""The masks in SQL, as macros of ``main`` (the same as :mod:`schemas.personal`'s functions).

A macro that needs the secret takes it as an argument (``k``) rather than reading the secret table
itself: DuckDB refuses a subquery inside a lambda, and VARCHAR[] columns are masked by one.
"""

LINKED_TO = f"""
CREATE OR REPLACE MACRO {MASKED_SCHEMA}.linked_to(entity_kind, entity_key) AS TABLE
SELECT relation, to_kind AS other_kind, to_key AS other_key, 'outgoing' AS direction, evidence
FROM {MASKED_SCHEMA}.entity_links WHERE from_kind = entity_kind AND from_key = entity_key
UNION ALL
SELECT relation, from_kind, from_key, 'incoming', evidence
FROM {MASKED_SCHEMA}.entity_links WHERE to_kind = entity_kind AND to_key = entity_key
"""
"""``linked_to`` of ``warehouse/entities.sql`` over the masked links: keep the two alike."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text_mask(mask: MaskKind | None, value: str, key: str) -> str:
    """SQL masking the text expression ``value`` with ``mask`` (None: scrubbed)."""
    if mask is None:
        return f"main.gh_scrub({value}, {key})"
    if mask == "hidden":
        return "CAST(NULL AS VARCHAR)"
    if mask == "pseudonym":
        return f"main.gh_pseudonym({value}, {key})"
    if mask == "birth_date":
        return f"main.gh_mask_birth_date_text({value})"
    return f"main.gh_mask_{mask}({value})"


def _by_field(fields: PersonalFields, relation: str, value: str, key: str) -> str:
    """SQL masking a lineage value as the field its row names is masked in the source copies."""
    spec = fields.by_field[relation]
    kind, field = f"{_ROW}.{_quoted(spec.kind)}", f"{_ROW}.{_quoted(spec.field)}"
    arms = [
        f"WHEN {kind} = {sql_literal(entity)} AND {field} = {sql_literal(name)} THEN {_text_mask(mask, value, key)}"
        for entity in fields.source_kinds()
        for name, mask in sorted(fields.field_masks(entity).items())
    ]
    return f"CASE {' '.join(arms)} ELSE {_text_mask(None, value, key)} END"


def _masked_column(fields: PersonalFields, relation: str, column: str, data_type: str) -> str:
    """The select-list entry of one column of a masked view."""
    reference = f"{_ROW}.{_quoted(column)}"
    key = f"{_KEY}.k"
    mask = fields.mask_of(relation, column)
    by_field = fields.by_field.get(relation)
    if mask == "hidden":
        expression = f"CAST(NULL AS {data_type})"
    elif data_type == "VARCHAR":
        if by_field is not None and column == by_field.value:
            expression = _by_field(fields, relation, reference, key)
        else:
            expression = _text_mask(mask, reference, key)
    elif data_type == "VARCHAR[]":
        expression = f"list_transform({reference}, lambda {_ELEMENT}: {_text_mask(mask, _ELEMENT, key)})"
    elif mask == "birth_date" and data_type == "DATE":
        expression = f"main.gh_mask_birth_date({reference})"
    elif mask is None and _PLAIN_TYPE.fullmatch(data_type):
        expression = reference
    else:
        log.warning(
            "a column of a type the masks do not know is hidden from masked roles",
            relation=relation,
            column=column,
            data_type=data_type,
            mask=mask,
        )
        expression = f"CAST(NULL AS {data_type})"
    return f"{expression} AS {_quoted(column)}"


def _main_columns(cursor: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Every table and view of ``main`` but the private ones, with its columns and their types, in order."""
    rows = cursor.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index"
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for relation, column, data_type in rows:
        if str(relation).lower() not in PRIVATE_TABLES:
            columns.setdefault(str(relation), []).append((str(column), str(data_type)))
    return columns


def masked_view_sql(fields: PersonalFields, relation: str, columns: list[tuple[str, str]]) -> str:
    """``CREATE OR REPLACE VIEW masked.<relation>`` over ``main.<relation>``, every column masked or scrubbed."""
    select = ", ".join(_masked_column(fields, relation, column, data_type) for column, data_type in columns)
    return (
        f"CREATE OR REPLACE VIEW {MASKED_SCHEMA}.{_quoted(relation)} AS SELECT {select} "
        f"FROM main.{_quoted(relation)} AS {_ROW} "
        f"CROSS JOIN (SELECT secret AS k FROM main.{SECRET_TABLE} LIMIT 1) AS {_KEY}"
    )


def install_masked_views(connection: duckdb.DuckDBPyConnection, fields: PersonalFields | None = None) -> None:
    """Create (or bring up to date) the secret, the masking macros and a masked view of every table and view.

    Idempotent, in one transaction; run it after every table and view of ``main`` exists, so a new
    and an upgraded warehouse both get the views of their current tables. A view or macro keeps the
    digest of the SQL it was made from as its comment (the macros' digest is the secret table's
    comment) and is made again only when that changes (a column added, a mask changed), which keeps
    a restart quick. A masked view whose relation is gone is dropped.
    """
    fields = fields or load_personal_fields()
    started = time.perf_counter()
    with transaction(connection) as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS main.{SECRET_TABLE} (secret VARCHAR NOT NULL)")
        cursor.execute(
            f"INSERT INTO main.{SECRET_TABLE} SELECT ? WHERE NOT EXISTS (SELECT 1 FROM main.{SECRET_TABLE})",
            [secrets.token_hex(32)],
        )
        macros = _digest(";".join(f"{signature} AS {body}" for signature, body in MACROS.items()))
        if _installed(cursor, "SELECT table_name, comment FROM duckdb_tables()", "main").get(SECRET_TABLE) != macros:
            for signature, body in MACROS.items():
                cursor.execute(f"CREATE OR REPLACE MACRO main.{signature} AS {body}")
            cursor.execute(f"COMMENT ON TABLE main.{SECRET_TABLE} IS {sql_literal(macros)}")
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {MASKED_SCHEMA}")
        views = _installed(cursor, "SELECT view_name, comment FROM duckdb_views()", MASKED_SCHEMA)
        relations = _main_columns(cursor)
        created = 0
        for relation, columns in relations.items():
            sql = masked_view_sql(fields, relation, columns)
            if views.get(relation) != _digest(sql):
                cursor.execute(sql)
                cursor.execute(f"COMMENT ON VIEW {MASKED_SCHEMA}.{_quoted(relation)} IS {sql_literal(_digest(sql))}")
                created += 1
        for name in sorted(set(views) - set(relations)):
            cursor.execute(f"DROP VIEW {MASKED_SCHEMA}.{_quoted(name)}")
        if "entity_links" in relations:
            cursor.execute(LINKED_TO)
        for statement in history.as_of_macros(MASKED_SCHEMA):
            cursor.execute(statement)
    log.info(
        "masked views installed",
        views=len(relations),
        replaced=created,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )


def _digest(sql: str) -> str:
    """What a view or macro was made from, kept as its comment: an unchanged one is not made again."""
    return "gridhub masking " + hashlib.sha256(sql.encode()).hexdigest()[:32]


def _installed(cursor: duckdb.DuckDBPyConnection, query: str, schema: str) -> dict[str, str | None]:
    """Names and comments of the views (or tables) of ``schema`` this warehouse holds."""
    rows = cursor.execute(f"{query} WHERE database_name = current_database() AND schema_name = ?", [schema])
    return {str(name): comment for name, comment in rows.fetchall()}


def relations_of(connection: duckdb.DuckDBPyConnection, schema: str) -> frozenset[str]:
    """The tables and views a query may name in ``schema`` (lower-case): all of them but the private ones."""
    cursor = connection.cursor()
    try:
        rows = cursor.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = $s "
            "UNION SELECT view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND schema_name = $s AND NOT internal",
            {"s": schema},
        ).fetchall()
    finally:
        cursor.close()
    return frozenset(str(name).lower() for (name,) in rows) - PRIVATE_TABLES


def use_schema(cursor: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Make unqualified names of ``cursor``'s queries resolve in ``schema`` first (``SET search_path``).

    The setting is the cursor's own (a DuckDB cursor is a connection of its own), so other queries
    of the process keep theirs. ``linked_to(...)`` then resolves to ``masked.linked_to``. A name
    ``schema`` lacks still resolves in ``main``: that is the SQL guard's to refuse.
    """
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"not a schema name: {schema!r}")
    cursor.execute(f"SET search_path = {sql_literal(schema)}")
