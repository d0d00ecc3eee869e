"""What the SQL door lets through: one read-only SELECT over the warehouse, checked on its parsed form.

The warehouse holds residents' identity numbers and DuckDB can read any file the process can
(``read_text('/etc/passwd')``), write anywhere (``COPY ... TO``), attach other databases and
load extensions. So a query is parsed by DuckDB itself (``json_serialize_sql``, which takes
only SELECT statements) and its tree is walked: table functions come from an allow-list
(generated rows and JSON, never files, URLs or another SQL string), and no scalar function
may read settings or the environment. ``EXPLAIN`` is allowed for a query that passes, never
``EXPLAIN ANALYZE`` (which runs the statement it explains). Behind this check the connection
itself is closed to the outside (:func:`close_to_the_host`), so a function this list forgets
still cannot reach the host.

A role that sees the warehouse through its own schema (analysts and admins see ``masked``,
:mod:`warehouse.masking`) is held to the relations of that schema: given ``relations``, every
table a query names must be one of them (or a CTE of the query), unqualified, since DuckDB
resolves a name its schema lacks in ``main``, and a schema, a catalog or a system view named
outright would reach past the masks. The masking macros (``gh_...``) are refused to everyone:
called on a guessed ID they would give away its pseudonym.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import duckdb

from foundation.errors import InputRejected

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})
DENIED_FUNCTIONS = frozenset({"current_setting", "getenv", "query", "query_table", "json_execute_serialized_sql"})
DENIED_PREFIXES = ("read_", "gh_")
"""``read_*`` reads files; ``gh_*`` are the warehouse's masking macros (:mod:`warehouse.masking`)."""
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
_PARSER = duckdb.connect()
CHECKED_STATEMENTS = 256
"""How many distinct statements that passed, with the relations they were checked against, are remembered."""
_PARSER_LOCK = threading.Lock()


class QueryRefused(InputRejected):
    """A query the SQL door does not run; ``reason_code`` names the rule it broke."""

    def __init__(self, reason: str, reason_code: str = "query_refused") -> None:
        super().__init__(reason, reason_code)


def close_to_the_host(connection: duckdb.DuckDBPyConnection) -> None:
    """Shut a connection's ways out: no file or network access from SQL, no extension installed or loaded.

    DuckDB refuses to turn external access back on once it is off, so no later ``SET`` can.
    """
    connection.execute("SET autoinstall_known_extensions = false")
    connection.execute("SET autoload_known_extensions = false")
    connection.execute("SET enable_external_access = false")


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def _scoped(tree: Any, ctes: frozenset[str]) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
    """Every node of the tree with the CTE names a table reference there resolves to.

    A CTE is seen by the query it belongs to and by the CTEs after it, not by itself (nor by those
    before it): in ``WITH x AS (SELECT * FROM x)`` the inner ``x`` is a table of the warehouse. A
    recursive CTE sees itself in its recursive part only (the right side of its UNION).
    """
    if isinstance(tree, list):
        for value in tree:
            yield from _scoped(value, ctes)
        return
    if not isinstance(tree, dict):
        return
    yield tree, ctes
    cte_map = tree.get("cte_map") if tree.get("type") in _QUERY_NODES else None
    for entry in cte_map.get("map", []) if isinstance(cte_map, dict) else []:
        yield from _scoped(entry.get("value"), ctes)
        ctes = ctes | {str(entry.get("key", "")).lower()}
    for key, value in tree.items():
        if key == "cte_map" and cte_map is not None:
            continue
        if tree.get("type") == "RECURSIVE_CTE_NODE" and key == "right":
            yield from _scoped(value, ctes | {str(tree.get("cte_name", "")).lower()})
        else:
            yield from _scoped(value, ctes)


def _qualified(node: dict[str, Any], schema: str, catalog: str) -> bool:
    path = node.get("qualified_name", {}).get("path", []) if isinstance(node.get("qualified_name"), dict) else []
    return bool(node.get(schema) or node.get(catalog) or len(path) > 1)


def _check_relations(tree: dict[str, Any], relations: frozenset[str]) -> None:
    """Refuse a table reference (or DESCRIBE/SHOW) that is qualified, or names neither a relation nor a CTE."""
    allowed = ", ".join(sorted(relations)) or "none"
    for node, ctes in _scoped(tree, frozenset()):
        kind = node.get("type")
        if kind in ("BASE_TABLE", "SHOW_REF") and (kind == "BASE_TABLE" or node.get("table_name")):
            name = str(node.get("table_name", ""))
            if _qualified(node, "schema_name", "catalog_name"):
                path = ".".join(str(part) for part in node.get("qualified_name", {}).get("path", [])) or name
                raise QueryRefused(
                    f"{path}: name tables and views without a schema or catalog; you may query {allowed}", "relation"
                )
            if name.lower() not in ctes and name.lower() not in relations:
                raise QueryRefused(f"{name} is not a table or view you may query; you may query {allowed}", "relation")
        elif node.get("class") == "FUNCTION" and _qualified(node, "schema", "catalog"):
            name = ".".join(str(part) for part in node.get("qualified_name", {}).get("path", []))
            raise QueryRefused(
                f"{name}(): call functions without a schema or catalog; you may query {allowed}", "relation"
            )


def _serialized(sql: str) -> dict[str, Any]:
    with _PARSER_LOCK:
        text = _PARSER.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    return json.loads(text[0]) if text else {"error": True, "error_message": "nothing to parse"}


def _explained(sql: str) -> str | None:
    """The query an ``EXPLAIN`` statement explains, or None if ``sql`` is no EXPLAIN; refuses EXPLAIN ANALYZE."""
    tokens = duckdb.tokenize(sql)
    words = [sql[start:].split(None, 1)[0].rstrip(";").upper() for start, _ in tokens[:2]]
    if not words or words[0] != "EXPLAIN":
        return None
    if len(words) > 1 and words[1] in ("ANALYZE", "ANALYSE"):
        raise QueryRefused("EXPLAIN ANALYZE runs the statement it explains; use EXPLAIN alone", "explain_analyze")
    return sql[tokens[1][0] :] if len(tokens) > 1 else ""


def own_table_macros(connection: duckdb.DuckDBPyConnection, schema: str | None = None) -> frozenset[str]:
    """The warehouse's own table macros (``linked_to``, ...): SQL over its tables, so as safe as they are.

    Given a ``schema``, only that schema's (a masked role's ``linked_to`` is ``masked.linked_to``).
    """
    rows = connection.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table_macro' AND NOT internal "
        "AND ($schema IS NULL OR schema_name = $schema)",
        {"schema": schema},
    ).fetchall()
    return frozenset(str(row[0]).lower() for row in rows)


@lru_cache(maxsize=CHECKED_STATEMENTS)
def check_query(sql: str, also_allowed: frozenset[str] = frozenset(), relations: frozenset[str] | None = None) -> None:
    """Refuse anything but one read-only SELECT (or its EXPLAIN) that stays inside the warehouse.

    ``also_allowed`` names table functions of the warehouse itself (:func:`own_table_macros`).
    ``relations``, when given, are the only tables and views the query may name (lower-case), and
    only unqualified (``warehouse.masking.relations_of`` of the role's schema); refused with
    ``relation``.

    The verdict depends on the arguments alone, and a screen asks the same few statements on
    every refresh: a statement that passed is remembered with them (:data:`CHECKED_STATEMENTS`),
    so asking it again costs no parse (1.3 ms of the door's 5.6 ms, offline). A refusal is never
    remembered; it is raised again by a new check.
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"the SQL does not parse: {exc}", "parse_error") from exc
    if len(statements) != 1:
        raise QueryRefused(f"send exactly one statement, not {len(statements)}", "one_statement")
    [statement] = statements
    if statement.type == duckdb.StatementType.EXPLAIN:
        sql = _explained(sql) or ""
    elif statement.type != duckdb.StatementType.SELECT:
        raise QueryRefused(f"only SELECT (and EXPLAIN) are allowed here, not {statement.type.name}", "not_a_select")
    tree = _serialized(sql)
    if tree.get("error"):
        raise QueryRefused(f"only a plain SELECT is allowed here ({tree.get('error_message')})", "not_a_select")
    for node in _nodes(tree):
        if node.get("type") == "TABLE_FUNCTION":
            name = str(node.get("function", {}).get("function_name", "")).lower()
            if name.startswith("gh_"):
                raise QueryRefused(f"function {name}() is not allowed here", "function")
            if name not in ALLOWED_TABLE_FUNCTIONS | also_allowed:
                allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS | also_allowed))
                raise QueryRefused(
                    f"table function {name}() is not allowed here: it could read files, other databases or other SQL; "
                    f"query the warehouse's tables and views, or use {allowed}",
                    "table_function",
                )
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
                raise QueryRefused(f"function {name}() is not allowed here", "function")
    if relations is not None:
        _check_relations(tree, relations)
