"""Read-only SQL over HTTP, served by the sink process that holds the warehouse file.

DuckDB lets one process open a file for writing, and then no other process can
open it at all. So while the sink runs, ``gridhub sql`` asks the sink, which
answers from its own connection; when nothing runs, ``gridhub sql`` opens the
file read-only itself.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb

from foundation.settings import Settings
from warehouse.sql_guard import QueryRefused, check_query, own_table_macros


@dataclass(frozen=True)
class QueryLimits:
    """What one query may cost: its rows in the answer and its running time (``GRIDHUB_SQL_*``)."""

    max_rows: int = 10_000
    timeout_s: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> QueryLimits:
        """The limits the settings give."""
        return cls(settings.sql_max_rows, settings.sql_timeout_s)


def run_query(connection: duckdb.DuckDBPyConnection, sql: str, limits: QueryLimits) -> dict[str, Any]:
    """Check and run one read-only query; return its columns and at most ``limits.max_rows`` rows.

    The query runs on a cursor of its own and is interrupted at ``limits.timeout_s``, whether or
    not its client still waits, so a heavy query neither runs on unseen nor holds the sink back.
    """
    cursor = connection.cursor()
    timer = threading.Timer(limits.timeout_s, cursor.interrupt)
    try:
        check_query(sql, own_table_macros(cursor))
        timer.start()
        cursor.execute("SET TimeZone = 'Asia/Shanghai'")
        result = cursor.execute(sql)
        columns = [item[0] for item in result.description or []]
        fetched = result.fetchmany(limits.max_rows + 1)
    except duckdb.PermissionException as exc:
        raise QueryRefused(
            f"the query reaches for a file or the network, which the SQL door never allows ({exc})", "host"
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
        "limits": {"max_rows": limits.max_rows, "timeout_s": limits.timeout_s},
    }


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

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, host: str, port: int, limits: QueryLimits | None = None
    ) -> None:
        connection_for_handlers = connection
        limits_for_handlers = limits or QueryLimits()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/sql":
                    self._reply(404, {"error": "not_found", "reason": "POST /sql"})
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    sql = json.loads(self.rfile.read(length))["sql"]
                    self._reply(200, run_query(connection_for_handlers, str(sql), limits_for_handlers))
                except QueryRefused as exc:
                    self._reply(400, {"error": exc.reason_code, "reason": str(exc)})
                except (ValueError, KeyError, TypeError) as exc:
                    self._reply(400, {"error": "bad_request", "reason": f'send JSON {{"sql": ...}} ({exc})'})

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
