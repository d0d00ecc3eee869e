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
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import duckdb

from foundation.access import ROLES, Caller, Doorkeeper, Forbidden, RateLimited, Role, Unauthenticated, require_role
from foundation.errors import InputRejected
from foundation.logs import get_logger
from foundation.quiet_http import BackgroundServer, QuietHandler
from foundation.settings import Settings
from schemas.openapi import documentation
from warehouse import audit
from warehouse.masking import MASKED_SCHEMA, relations_of, use_schema
from warehouse.query_contract import (
    AUDIT_READERS,
    INTAKE_READERS,
    MAX_SQL_BYTES,
    REPLAYERS,
    SQL_READERS,
    AuditQuery,
    BadRequest,
    BodyTooLarge,
    IntakeQuery,
    ReplayableQuery,
    SqlParameter,
    SqlQuery,
    read_body,
    read_query,
)
from warehouse.rejects import RejectFilter, replayable
from warehouse.runs import RunQuery, read_runs
from warehouse.sql_guard import QueryRefused, check_query, own_table_macros

if TYPE_CHECKING:
    from warehouse.relation_stream import RelationRows

log = get_logger(__name__)


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
    macros: frozenset[str] | None = None,
    params: Sequence[SqlParameter] = (),
) -> dict[str, Any]:
    """Check and run one read-only query; return its columns and at most ``limits.max_rows`` rows.

    The query runs on a cursor of its own, over ``schema`` (a role's views), naming only
    ``relations`` when given, and is interrupted at ``limits.timeout_s``, whether or not its
    client still waits, so a heavy query neither runs on unseen nor holds the sink back. ``macros``
    are the schema's own table macros when the caller knows them (:class:`Catalogue`). ``params``
    fill the statement's placeholders; a count that does not match them is refused (``sql_error``).
    """
    cursor = connection.cursor()
    timer = threading.Timer(limits.timeout_s, cursor.interrupt)
    try:
        use_schema(cursor, schema)
        check_query(sql, own_table_macros(cursor, schema) if macros is None else macros, relations)
        timer.start()
        cursor.execute("SET TimeZone = 'Asia/Shanghai'")
        result = cursor.execute(sql, list(params)) if params else cursor.execute(sql)
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


def schema_of(caller: Caller) -> str:
    """The schema a caller's queries run over: the tables for those who see personal data, else the masked views."""
    return "main" if caller.sees_personal_data else MASKED_SCHEMA


class Catalogue:
    """The relations and table macros a query may name in each schema, looked up once per schema.

    Finding the warehouse's own table macros lists every DuckDB function, 14 ms on every query
    the sink answered (a polling screen's or benchmark's too), taken from its writes. The names
    cannot change under a running sink: its migrations and views are made when it opens the
    file, and its doors run only reads. A process answering one query builds one for that query.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection
        self._relations: dict[str, frozenset[str]] = {}
        self._macros: dict[str, frozenset[str]] = {}

    def relations(self, schema: str) -> frozenset[str]:
        """The tables and views of ``schema`` a query may name (:func:`warehouse.masking.relations_of`)."""
        if schema not in self._relations:
            self._relations[schema] = relations_of(self._connection, schema)
        return self._relations[schema]

    def macros(self, schema: str) -> frozenset[str]:
        """The warehouse's own table macros in ``schema`` (:func:`warehouse.sql_guard.own_table_macros`)."""
        if schema not in self._macros:
            cursor = self._connection.cursor()
            try:
                self._macros[schema] = own_table_macros(cursor, schema)
            finally:
                cursor.close()
        return self._macros[schema]


def answer(
    connection: duckdb.DuckDBPyConnection,
    caller: Caller,
    sql: str,
    limits: QueryLimits,
    catalogue: Catalogue | None = None,
    params: Sequence[SqlParameter] = (),
) -> dict[str, Any]:
    """Run ``sql`` with ``params`` for ``caller`` over its role's views and audit it, refused or answered.

    An analyst or an admin queries the masked views under the same names; the commander the
    tables themselves, and every such read is recorded as a read of personal data. The audit
    keeps the values with the statement: what was looked up matters as much as how.
    """
    require_role(caller, *SQL_READERS)
    schema = schema_of(caller)
    names = catalogue or Catalogue(connection)
    audited = f"{sql}\n-- params: {json.dumps(list(params), ensure_ascii=False)}" if params else sql
    try:
        result = run_query(connection, sql, limits, schema, names.relations(schema), names.macros(schema), params)
    except QueryRefused as exc:
        audit.record(connection, caller, "sql", audited, 0, f"refused: {exc.reason_code}")
        raise
    audit.record(connection, caller, "sql", audited, len(result["rows"]))
    result["masked"] = schema == MASKED_SCHEMA
    return result


def readable_relations(
    connection: duckdb.DuckDBPyConnection, caller: Caller, catalogue: Catalogue | None = None
) -> frozenset[str]:
    """The tables and views ``caller`` may read: those of its role's schema, the private ones left out."""
    require_role(caller, *SQL_READERS)
    return (catalogue or Catalogue(connection)).relations(schema_of(caller))


def export_relation(
    connection: duckdb.DuckDBPyConnection, caller: Caller, relation: str, as_of: datetime | None = None
) -> AbstractContextManager[RelationRows]:
    """Every row of one relation for ``caller``, over its role's views, in record batches; audited like a query.

    No row cap, unlike :func:`answer`: an export takes the relation whole, in bounded memory
    (:mod:`warehouse.relation_stream`, imported here so that ``gridhub sql`` does not load pyarrow).
    """
    from warehouse.relation_stream import read_relation

    require_role(caller, *SQL_READERS)
    return read_relation(connection, caller, schema_of(caller), relation, as_of)


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


def run_ledger(connection: duckdb.DuckDBPyConnection, caller: Caller, query: RunQuery) -> dict[str, Any]:
    """Runs newest first, or one run with its rejects by reason, in the caller's view (audited).

    A publisher sees only its own source's runs, as with :func:`intake_counts`; reject examples
    are reasons, which can quote a record, so a masked role reads them masked.
    """
    require_role(caller, *INTAKE_READERS)
    cursor = connection.cursor()
    try:
        use_schema(cursor, schema_of(caller))
        found = read_runs(cursor, query, caller.source if caller.role == "publisher" else None)
    finally:
        cursor.close()
    audit.record(connection, caller, "runs", query.describe(), len(found["rows"]))
    return found


def audit_entries(
    connection: duckdb.DuckDBPyConnection, caller: Caller, limit: int, who: str | None = None
) -> dict[str, Any]:
    """The audit trail, for an admin."""
    require_role(caller, "admin")
    return audit.recent(connection, limit, who)


def sink_offsets(connection: duckdb.DuckDBPyConnection, caller: Caller) -> dict[str, Any]:
    """Where the sink got to in each partition: it keeps its positions here, not in Kafka (`gridhub status`)."""
    require_role(caller, *SQL_READERS)
    cursor = connection.cursor()
    try:
        rows = cursor.execute("SELECT topic, partition, next_offset FROM sink_offsets ORDER BY 1, 2").fetchall()
    finally:
        cursor.close()
    return {"columns": ["topic", "partition", "next_offset"], "rows": [list(row) for row in rows]}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class QueryServer(BackgroundServer):
    """A small threaded HTTP server for the warehouse, every route behind a bearer token.

    ``POST /sql`` (``{"sql": "...", "params": [...]}``) answers a query in the caller's role; ``GET /intake``
    (``?run_id=``) the outcome counts ``gridhub ingest --wait`` follows; ``GET /runs``
    (``?run_id=&source=&status=&limit=``) the run ledger ``gridhub runs`` shows; ``GET /audit``
    (``?limit=&caller=``) the audit trail; ``GET /offsets`` the sink's position in every partition;
    ``GET /whoami`` the caller a token belongs to;
    ``GET /relations`` the tables and views the caller's queries may name; ``GET /export``
    (``?relation=&as_of=``) every row of one of them, as an Arrow IPC stream.
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

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/sql":
                    self._reply(404, {"error": "not_found", "reason": "POST /sql"})
                    return
                self._answer(server.post_sql)

            def do_GET(self) -> None:
                served = server.documentation.get(urlsplit(self.path).path)
                if served is not None:
                    self.send_body(200, served.body, served.content_type, served.headers)
                    return
                route = server.get_routes.get(urlsplit(self.path).path)
                if route is None:
                    self._reply(404, {"error": "not_found", "reason": f"GET {', '.join(server.get_routes)}"})
                    return
                self._answer(route)

            def _answer(self, route: Callable[[Handler], dict[str, Any] | None]) -> None:
                try:
                    result = route(self)
                    if result is not None:  # None: the route sent its answer itself (a stream)
                        self._reply(200, result)
                except Unauthenticated as exc:
                    self._reply(401, exc, {"WWW-Authenticate": 'Bearer realm="gridhub"'})
                except Forbidden as exc:
                    self._reply(403, exc)
                except RateLimited as exc:
                    self._reply(429, exc, {"Retry-After": str(exc.retry_after_s)})
                except BodyTooLarge as exc:
                    self._reply(413, exc)
                except InputRejected as exc:
                    self._reply(400, exc)
                except (ValueError, KeyError, TypeError) as exc:
                    self._reply(400, {"error": "bad_request", "reason": f'send JSON {{"sql": ...}} ({exc})'})

            def _reply(
                self, status: int, body: dict[str, Any] | InputRejected, headers: dict[str, str] | None = None
            ) -> None:
                if isinstance(body, InputRejected):
                    body = {"error": body.reason_code, "reason": str(body)}
                self.send_body(
                    status, json.dumps(body, ensure_ascii=False, default=str).encode(), "application/json", headers
                )

        self.connection = connection
        self.catalogue = Catalogue(connection)
        self.limits = limits
        self.doorkeeper = doorkeeper
        from warehouse.query_openapi import query_document  # here: its Arrow media type would load pyarrow

        self.documentation = documentation(query_document(limits))
        """``/openapi.json``, ``/docs`` and the page's files: open doors, see :func:`schemas.openapi.documentation`."""
        self.get_routes: dict[str, Callable[[Any], dict[str, Any] | None]] = {
            "/": lambda _request: {"status": "ok"},
            "/whoami": self.whoami,
            "/intake": self.intake,
            "/runs": self.runs,
            "/audit": self.audit,
            "/relations": self.relations,
            "/export": self.export,
            "/offsets": self.offsets,
            "/rejects/replayable": self.replayable,
        }
        super().__init__(host, port, Handler, "sql-endpoint")

    def _caller(self, request: BaseHTTPRequestHandler, *roles: Role) -> Caller:
        return self.doorkeeper.admit(request.headers.get("Authorization"), *roles)

    def post_sql(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """Answer one query in the caller's role."""
        caller = self._caller(request, *SQL_READERS)
        length = int(request.headers.get("Content-Length", "0"))
        if length > MAX_SQL_BYTES:
            raise BodyTooLarge(f"the body is {length} bytes; send a statement of at most {MAX_SQL_BYTES}")
        if length < 0:
            raise BadRequest(f"Content-Length is {length}; send the length of the JSON body")
        body = read_body(SqlQuery, request.rfile.read(length))
        return answer(self.connection, caller, body.sql, self.limits, self.catalogue, body.params)

    def whoami(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The caller the token belongs to: how a command checks a role before it acts."""
        return dataclasses.asdict(self._caller(request, *ROLES))

    def relations(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The tables and views the caller may name, e.g. for a query tool's catalogue."""
        caller = self._caller(request, *SQL_READERS)
        return {"relations": sorted(readable_relations(self.connection, caller, self.catalogue))}

    def export(self, request: BaseHTTPRequestHandler) -> None:
        """Stream every row of one relation (``?relation=&as_of=``) as Arrow IPC, for ``gridhub export``.

        A refusal comes before the first byte, as JSON with its status. A failure after it (the
        client gone, the query failing) can only cut the stream short, which its reader notices.
        """
        from pyarrow import ArrowException

        from warehouse.relation_stream import ARROW_STREAM, parse_as_of, write_stream

        caller = self._caller(request, *SQL_READERS)
        query = parse_qs(urlsplit(request.path).query)
        relation, as_of = query.get("relation", [""])[0], query.get("as_of", [None])[0]
        try:
            with export_relation(self.connection, caller, relation, parse_as_of(as_of) if as_of else None) as rows:
                request.send_response(200)
                request.send_header("Content-Type", ARROW_STREAM)
                request.end_headers()
                write_stream(rows, request.wfile)
        except (OSError, duckdb.Error, ArrowException) as exc:
            log.warning("an export stream broke off", relation=relation, caller=caller.name, error=str(exc))

    def intake(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """Outcome counts of one run (or of everything)."""
        caller = self._caller(request, *INTAKE_READERS)
        return intake_counts(self.connection, caller, read_query(IntakeQuery, urlsplit(request.path).query).run_id)

    def runs(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The run ledger: the latest runs, or one run."""
        caller = self._caller(request, *INTAKE_READERS)
        return run_ledger(self.connection, caller, RunQuery.of_params(parse_qs(urlsplit(request.path).query)))

    def audit(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The latest audit entries."""
        caller = self._caller(request, *AUDIT_READERS)
        query = read_query(AuditQuery, urlsplit(request.path).query)
        return audit_entries(self.connection, caller, min(query.limit, self.limits.max_rows), query.caller)

    def replayable(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """Open rejects with their payloads, for ``gridhub rejects replay`` to send again."""
        caller = self._caller(request, *REPLAYERS)
        query = read_query(ReplayableQuery, urlsplit(request.path).query)
        return replayable(self.connection, caller, RejectFilter(query.source, query.reason, query.stage), query.limit)

    def offsets(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The sink's next offset in every partition it reads."""
        return sink_offsets(self.connection, self._caller(request, *SQL_READERS))
