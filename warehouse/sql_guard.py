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
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import duckdb

from foundation.errors import InputRejected

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})
DENIED_FUNCTIONS = frozenset({"current_setting", "getenv", "query", "query_table", "json_execute_serialized_sql"})
_PARSER = duckdb.connect()
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


def own_table_macros(connection: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The warehouse's own table macros (``linked_to``, ...): SQL over its tables, so as safe as they are."""
    rows = connection.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table_macro' AND NOT internal"
    ).fetchall()
    return frozenset(str(row[0]).lower() for row in rows)


def check_query(sql: str, also_allowed: frozenset[str] = frozenset()) -> None:
    """Refuse anything but one read-only SELECT (or its EXPLAIN) that stays inside the warehouse.

    ``also_allowed`` names table functions of the warehouse itself (:func:`own_table_macros`).
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
            if name not in ALLOWED_TABLE_FUNCTIONS | also_allowed:
                allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS | also_allowed))
                raise QueryRefused(
                    f"table function {name}() is not allowed here: it could read files, other databases or other SQL; "
                    f"query the warehouse's tables and views, or use {allowed}",
                    "table_function",
                )
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in DENIED_FUNCTIONS or name.startswith("read_"):
                raise QueryRefused(f"function {name}() is not allowed here", "function")
