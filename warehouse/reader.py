"""Answer read-only SQL, as the caller of ``GRIDHUB_TOKEN``, whether or not the sink is running."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import duckdb
import tenacity

from foundation import runfiles
from foundation.access import Caller, TokenBook, caller_token
from foundation.door_client import call_door
from foundation.errors import ConfigurationError, RetryableError
from foundation.settings import Settings
from warehouse.audit import ensure_audit_table
from warehouse.query_contract import SqlParameter
from warehouse.query_server import QueryLimits, answer, audit_entries, intake_counts, run_ledger, sink_offsets
from warehouse.rejects import RejectFilter, replayable
from warehouse.runs import RunQuery
from warehouse.sql_guard import QueryRefused, close_to_the_host

if TYPE_CHECKING:
    from warehouse.relation_sources import Relations


class WarehouseUnavailable(RetryableError):
    """Neither a running sink nor a warehouse file could answer."""


class NotAWarehouse(ConfigurationError):
    """The warehouse path names a file that is not a DuckDB database."""


DUCKDB_MAGIC = b"DUCK"
"""Bytes 8 to 12 of every DuckDB database file."""


def require_duckdb_file(path: Path) -> None:
    """Refuse, in one line, a file at the warehouse path that is not a DuckDB database (a missing one is fine).

    DuckDB answers a text file with a bare "not a valid DuckDB database file", and a SQLite file
    by trying to download its SQLite extension, which fails without a network and names neither
    the file's real kind nor what to do.
    """
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except FileNotFoundError:
        return
    if head[8:12] == DUCKDB_MAGIC:
        return
    if not head:
        kind = "it is empty"
    elif head.startswith(b"SQLite format 3"):
        kind = "it is a SQLite database"
    else:
        kind = "it is not a DuckDB database"
    raise NotAWarehouse(
        f"{path} is not a gridhub warehouse ({kind}); set GRIDHUB_WAREHOUSE_PATH (or --data-dir) to "
        "the warehouse file, or move this file aside and the sink creates a new warehouse there"
    )


def _ask_sink(settings: Settings, url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        return call_door(f"{url}{path}", caller_token(settings), data, refused=QueryRefused)
    except RetryableError as exc:
        raise WarehouseUnavailable(f"the sink at {url} could not answer now ({exc})") from exc


def _refuse_while_the_sink_starts(settings: Settings) -> None:
    """While ``gridhub up`` runs without an announced sink, its sink is (re)starting: opening the file would stop it."""
    if runfiles.discover(settings, "broker"):
        raise WarehouseUnavailable(
            "the running hub's sink is starting or restarting (opening its file now would keep it from starting); "
            "try again in a few seconds"
        )


Local = Callable[[duckdb.DuckDBPyConnection, Caller], dict[str, Any]]


def _sink_url(settings: Settings) -> str | None:
    sink = runfiles.discover(settings, "sink")
    url = settings.sink_url or (sink or {}).get("url")
    return str(url) if url else None


def _open_the_file(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open the warehouse when no sink holds it, to answer (and audit) in this process.

    It is opened for writing because the audit is appended to; the guard lets no query write.
    Another command holding it a moment (DuckDB allows one writer) is waited for briefly.
    """
    _refuse_while_the_sink_starts(settings)
    path = settings.warehouse_file
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path} yet: run `gridhub demo` or `gridhub up` first")
    require_duckdb_file(path)
    for attempt in tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(duckdb.IOException),
        stop=tenacity.stop_after_delay(OPEN_WAIT_S),
        wait=tenacity.wait_fixed(0.2),
        reraise=True,
    ):
        with attempt:
            try:
                return duckdb.connect(str(path))
            except duckdb.IOException:
                _refuse_while_the_sink_starts(settings)
                raise
    raise AssertionError("tenacity either returns or re-raises")  # pragma: no cover


OPEN_WAIT_S = 5.0


def _local(settings: Settings, answer_here: Local) -> dict[str, Any]:
    try:
        connection = _open_the_file(settings)
    except duckdb.IOException as exc:
        raise ConfigurationError(
            f"{settings.warehouse_file} is held by another process that does not announce a SQL endpoint; "
            f"set GRIDHUB_SINK_URL to that sink's endpoint ({exc})"
        ) from exc
    try:
        caller = TokenBook(settings.tokens_file, settings.token_cache_s).caller(caller_token(settings))
        close_to_the_host(connection)
        QueryLimits.of(settings).apply(connection)
        ensure_audit_table(connection)
        return answer_here(connection, caller)
    finally:
        connection.close()


def _ask(settings: Settings, path: str, body: dict[str, Any] | None, answer_here: Local) -> dict[str, Any]:
    url = _sink_url(settings)
    if url:
        return _ask_sink(settings, url, path, body)
    return _local(settings, answer_here)


def query(settings: Settings, sql: str, params: Sequence[SqlParameter] = ()) -> dict[str, Any]:
    """Run ``sql`` as the caller of ``GRIDHUB_TOKEN``, against the running sink or the warehouse file.

    ``params`` fill its placeholders: a value that changes from call to call belongs there, not in
    the text, so it is never read as SQL and the sink checks the statement once (``sql_guard``).
    """
    limits = QueryLimits.of(settings)
    return _ask(
        settings,
        "/sql",
        {"sql": sql, "params": list(params)},
        lambda connection, caller: answer(connection, caller, sql, limits, params=params),
    )


def query_rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    """:func:`query`'s answer as one column → value mapping per row, for code that reads rows by name."""
    result = query(settings, sql)
    return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]


def replayable_rejects(settings: Settings, which: RejectFilter, limit: int) -> list[dict[str, Any]]:
    """The open rejects ``which`` names with their payloads whole (admin, or a source's own publisher); audited."""
    parameters = {"source": which.source, "reason": which.reason, "stage": which.stage, "limit": limit}
    path = "/rejects/replayable?" + urlencode({name: value for name, value in parameters.items() if value is not None})
    found = _ask(settings, path, None, lambda connection, caller: replayable(connection, caller, which, limit))
    return list(found["rows"])


def sink_positions(settings: Settings) -> dict[str, Any]:
    """The sink's next offset in every partition it has read (it keeps them in the warehouse, not in Kafka)."""
    return _ask(settings, "/offsets", None, sink_offsets)


def whoami(settings: Settings) -> Caller:
    """The caller ``GRIDHUB_TOKEN`` belongs to, as the hub (or the token book) knows it."""
    found = _ask(settings, "/whoami", None, lambda _connection, caller: dataclasses.asdict(caller))
    return Caller(**found)


def intake(settings: Settings, run_id: str | None) -> dict[str, Any]:
    """Intake outcome counts of one run (or of everything the caller may see)."""
    path = f"/intake?{urlencode({'run_id': run_id})}" if run_id else "/intake"
    return _ask(settings, path, None, lambda connection, caller: intake_counts(connection, caller, run_id))


def runs(settings: Settings, query: RunQuery) -> dict[str, Any]:
    """The run ledger as the caller may see it: the latest runs, or one run with its rejects by reason."""
    return _ask(
        settings,
        f"/runs?{urlencode(query.params())}",
        None,
        lambda connection, caller: run_ledger(connection, caller, query),
    )


def audit(settings: Settings, limit: int, who: str | None = None) -> dict[str, Any]:
    """The latest audit entries (admin only)."""
    parameters = {"limit": str(limit), **({"caller": who} if who else {})}
    return _ask(
        settings,
        f"/audit?{urlencode(parameters)}",
        None,
        lambda connection, caller: audit_entries(connection, caller, limit, who),
    )


def read_relations(settings: Settings, work: Callable[[Relations], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` (an export) over the relations the caller may read whole: from the running sink, or the file.

    Imported here, not above, so that the commands that do not stream rows never load pyarrow.
    """
    from warehouse.relation_sources import FileRelations, SinkRelations

    url = _sink_url(settings)
    if url:
        names = frozenset(_ask_sink(settings, url, "/relations")["relations"])
        return work(SinkRelations(url, caller_token(settings), whoami(settings), names))
    return _local(settings, lambda connection, caller: work(FileRelations(connection, caller)))
