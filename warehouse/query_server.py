"""Read-only SQL over HTTP, served by the sink process that holds the warehouse file.

DuckDB lets one process open a file for writing, and then no other process can
open it at all. So while the sink runs, ``gridhub sql`` asks the sink, which
answers from its own connection; when nothing runs, ``gridhub sql`` opens the
file read-only itself.
"""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb

from foundation.errors import InputRejected

READ_ONLY_STATEMENTS = {
    duckdb.StatementType.SELECT,
    duckdb.StatementType.EXPLAIN,
}


class QueryRefused(InputRejected):
    """The SQL is not a read-only query or does not parse."""

    reason_code = "query_refused"


def check_read_only(sql: str) -> None:
    """Allow only statements that cannot change the warehouse."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(str(exc)) from exc
    if not statements:
        raise QueryRefused("no SQL statement given")
    for statement in statements:
        if statement.type not in READ_ONLY_STATEMENTS:
            raise QueryRefused(f"only SELECT and EXPLAIN are allowed here, not {statement.type.name}")


def run_query(connection: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    """Execute a read-only query and return columns and rows as plain JSON values."""
    check_read_only(sql)
    cursor = connection.cursor()
    try:
        cursor.execute("SET TimeZone = 'Asia/Shanghai'")
        result = cursor.execute(sql)
        columns = [item[0] for item in result.description or []]
        rows = [[_plain(value) for value in row] for row in result.fetchall()]
    finally:
        cursor.close()
    return {"columns": columns, "rows": rows}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class QueryServer:
    """A small threaded HTTP server: POST /sql with a JSON body ``{"sql": "..."}``."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, host: str, port: int) -> None:
        connection_for_handlers = connection

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/sql":
                    self._reply(404, {"error": "not_found", "reason": "POST /sql"})
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    sql = json.loads(self.rfile.read(length))["sql"]
                    self._reply(200, run_query(connection_for_handlers, str(sql)))
                except QueryRefused as exc:
                    self._reply(400, {"error": "refused", "reason": str(exc)})
                except (ValueError, KeyError, TypeError) as exc:
                    self._reply(400, {"error": "bad_request", "reason": f'send JSON {{"sql": ...}} ({exc})'})
                except duckdb.Error as exc:
                    self._reply(400, {"error": "sql_error", "reason": str(exc)})

            def do_GET(self) -> None:
                self._reply(200, {"status": "ok"})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="sql-endpoint", daemon=True)

    def start(self) -> str:
        """Serve in a background thread; return the URL."""
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
