"""Read-only SQL over HTTP, served by the sink process that holds the warehouse file.

DuckDB lets one process open a file for writing, and then no other process can
open it at all. So while the sink runs, ``gridhub sql`` asks the sink, which
answers from its own connection; when nothing runs, ``gridhub sql`` opens the
file itself and answers through the same functions (:func:`answer`), so the role's
views, the guard, the limits and the audit are the same either way.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb

from foundation.access import ROLES, Caller, Doorkeeper, Forbidden, RateLimited, Role, Unauthenticated, require_role
from foundation.errors import InputRejected
from foundation.settings import Settings
from warehouse import audit
from warehouse.masking import MASKED_SCHEMA, relations_of, use_schema
from warehouse.sql_guard import QueryRefused, check_query, own_table_macros


@dataclass(frozen=True)
class QueryLimits:
    """What one query may cost: rows in the answer, running time, and the memory of the process (``GRIDHUB_SQL_*``).

    DuckDB limits memory per database, not per query: the limit caps everything the process
    holding the file does (the sink's writes included), and a query that needs more spills to
    disk or fails with an out-of-memory refusal instead of taking the machine.
    """

    max_rows: int = 10_000
    timeout_s: float = 30.0
    memory_limit: str = "4GB"

    @classmethod
    def of(cls, settings: Settings) -> QueryLimits:
        """The limits the settings give."""
        return cls(settings.sql_max_rows, settings.sql_timeout_s, settings.duckdb_memory_limit)

    def apply(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Cap the memory of the database behind ``connection``."""
        connection.execute("SET memory_limit = ?", [self.memory_limit])


def run_query(
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    limits: QueryLimits,
    schema: str = "main",
    relations: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Check and run one read-only query; return its columns and at most ``limits.max_rows`` rows.

    The query runs on a cursor of its own, over ``schema`` (a role's views), naming only
    ``relations`` when given, and is interrupted at ``limits.timeout_s``, whether or not its
    client still waits, so a heavy query neither runs on unseen nor holds the sink back.
    """
    cursor = connection.cursor()
    timer = threading.Timer(limits.timeout_s, cursor.interrupt)
    try:
        use_schema(cursor, schema)
        check_query(sql, own_table_macros(cursor, schema), relations)
        timer.start()
        cursor.execute("SET TimeZone = 'Asia/Shanghai'")
        result = cursor.execute(sql)
        columns = [item[0] for item in result.description or []]
        fetched = result.fetchmany(limits.max_rows + 1)
    except duckdb.PermissionException as exc:
        raise QueryRefused(
            f"the query reaches for a file or the network, which the SQL door never allows ({exc})", "host"
        ) from exc
    except duckdb.OutOfMemoryException as exc:
        raise QueryRefused(
            f"the query needs more than the warehouse's {limits.memory_limit} of memory; narrow it", "memory"
        ) from exc
    except duckdb.InterruptException as exc:
        raise QueryRefused(
            f"the query ran longer than {limits.timeout_s:g}s and was stopped; narrow it (a WHERE, a LIMIT)", "timeout"
        ) from exc
    except duckdb.Error as exc:
        raise QueryRefused(f"the warehouse cannot answer this query: {exc}", "sql_error") from exc
    finally:
        timer.cancel()
        cursor.close()
    rows = [[_plain(value) for value in row] for row in fetched[: limits.max_rows]]
    return {
        "columns": columns,
        "rows": rows,
        "truncated": len(fetched) > limits.max_rows,
        "limits": {"max_rows": limits.max_rows, "timeout_s": limits.timeout_s, "memory_limit": limits.memory_limit},
    }


SQL_READERS: tuple[Role, ...] = ("analyst", "admin", "commander")
"""Roles that may query the warehouse; only the commander (and the hub itself) sees personal data whole."""


def schema_of(caller: Caller) -> str:
    """The schema a caller's queries run over: the tables for those who see personal data, else the masked views."""
    return "main" if caller.sees_personal_data else MASKED_SCHEMA


def answer(connection: duckdb.DuckDBPyConnection, caller: Caller, sql: str, limits: QueryLimits) -> dict[str, Any]:
    """Run ``sql`` for ``caller`` over its role's views and audit it, refused or answered.

    An analyst or an admin queries the masked views under the same names; the commander the
    tables themselves, and every such read is recorded as a read of personal data.
    """
    require_role(caller, *SQL_READERS)
    schema = schema_of(caller)
    relations = relations_of(connection, schema)
    try:
        result = run_query(connection, sql, limits, schema, relations)
    except QueryRefused as exc:
        audit.record(connection, caller, "sql", sql, 0, f"refused: {exc.reason_code}")
        raise
    audit.record(connection, caller, "sql", sql, len(result["rows"]))
    result["masked"] = schema == MASKED_SCHEMA
    return result


INTAKE_READERS: tuple[Role, ...] = ("publisher", *SQL_READERS)


def intake_counts(connection: duckdb.DuckDBPyConnection, caller: Caller, run_id: str | None) -> dict[str, Any]:
    """How the warehouse took a run (new, update, duplicate, rejected): a publisher sees only its own source's."""
    require_role(caller, *INTAKE_READERS)
    conditions, parameters = [], []
    if run_id:
        conditions.append("run_id = ?")
        parameters.append(run_id)
    if caller.role == "publisher":
        conditions.append("source = ?")
        parameters.append(caller.source)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cursor = connection.cursor()
    try:
        rows = cursor.execute(
            f"SELECT outcome, count(*) AS records FROM intake {where} GROUP BY outcome ORDER BY 1", parameters
        ).fetchall()
    finally:
        cursor.close()
    return {"columns": ["outcome", "records"], "rows": [list(row) for row in rows]}


def audit_entries(
    connection: duckdb.DuckDBPyConnection, caller: Caller, limit: int, who: str | None = None
) -> dict[str, Any]:
    """The audit trail, for an admin."""
    require_role(caller, "admin")
    return audit.recent(connection, limit, who)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class QueryServer:
    """A small threaded HTTP server for the warehouse, every route behind a bearer token.

    ``POST /sql`` (``{"sql": "..."}``) answers a query in the caller's role; ``GET /intake``
    (``?run_id=``) the outcome counts ``gridhub ingest --wait`` follows; ``GET /audit``
    (``?limit=&caller=``) the audit trail; ``GET /whoami`` the caller a token belongs to;
    ``GET /relations`` the tables and views the caller's queries may name.
    ``GET /`` says only that the endpoint is up.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        host: str,
        port: int,
        limits: QueryLimits,
        doorkeeper: Doorkeeper,
    ) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/sql":
                    self._reply(404, {"error": "not_found", "reason": "POST /sql"})
                    return
                self._answer(server.post_sql)

            def do_GET(self) -> None:
                route = server.get_routes.get(urlsplit(self.path).path)
                if route is None:
                    self._reply(404, {"error": "not_found", "reason": "GET /, /whoami, /relations, /intake or /audit"})
                    return
                self._answer(route)

            def _answer(self, route: Callable[[Handler], dict[str, Any]]) -> None:
                try:
                    self._reply(200, route(self))
                except Unauthenticated as exc:
                    self._reply(401, exc, {"WWW-Authenticate": 'Bearer realm="gridhub"'})
                except Forbidden as exc:
                    self._reply(403, exc)
                except RateLimited as exc:
                    self._reply(429, exc, {"Retry-After": str(exc.retry_after_s)})
                except InputRejected as exc:
                    self._reply(400, exc)
                except (ValueError, KeyError, TypeError) as exc:
                    self._reply(400, {"error": "bad_request", "reason": f'send JSON {{"sql": ...}} ({exc})'})

            def _reply(
                self, status: int, body: dict[str, Any] | InputRejected, headers: dict[str, str] | None = None
            ) -> None:
                if isinstance(body, InputRejected):
                    body = {"error": body.reason_code, "reason": str(body)}
                data = json.dumps(body, ensure_ascii=False, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.connection = connection
        self.limits = limits
        self.doorkeeper = doorkeeper
        self.get_routes: dict[str, Callable[[Any], dict[str, Any]]] = {
            "/": lambda _request: {"status": "ok"},
            "/whoami": self.whoami,
            "/intake": self.intake,
            "/audit": self.audit,
            "/relations": self.relations,
        }
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="sql-endpoint", daemon=True)

    def _caller(self, request: BaseHTTPRequestHandler, *roles: Role) -> Caller:
        return self.doorkeeper.admit(request.headers.get("Authorization"), *roles)

    def post_sql(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """Answer one query in the caller's role."""
        caller = self._caller(request, *SQL_READERS)
        length = int(request.headers.get("Content-Length", "0"))
        sql = json.loads(request.rfile.read(length))["sql"]
        return answer(self.connection, caller, str(sql), self.limits)

    def whoami(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The caller the token belongs to: how a command checks a role before it acts."""
        return dataclasses.asdict(self._caller(request, *ROLES))

    def relations(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The tables and views the caller may name, e.g. for a query tool's catalogue."""
        caller = self._caller(request, *SQL_READERS)
        return {"relations": sorted(relations_of(self.connection, schema_of(caller)))}

    def intake(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """Outcome counts of one run (or of everything)."""
        caller = self._caller(request, *INTAKE_READERS)
        run_id = parse_qs(urlsplit(request.path).query).get("run_id", [None])[0]
        return intake_counts(self.connection, caller, run_id)

    def audit(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The latest audit entries."""
        caller = self._caller(request, "admin")
        query = parse_qs(urlsplit(request.path).query)
        limit = min(int(query.get("limit", ["100"])[0]), self.limits.max_rows)
        return audit_entries(self.connection, caller, limit, query.get("caller", [None])[0])

    def start(self) -> str:
        """Serve in a background thread; return the URL."""
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
