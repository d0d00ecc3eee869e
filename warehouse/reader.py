"""Answer read-only SQL whether or not the sink is running."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import duckdb

from foundation import runfiles
from foundation.errors import ConfigurationError, RetryableError
from foundation.settings import Settings
from warehouse.query_server import QueryLimits, run_query
from warehouse.sql_guard import QueryRefused, close_to_the_host


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


def _ask_sink(url: str, sql: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - URL comes from our own announcement or settings
        f"{url}/sql", data=json.dumps({"sql": sql}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        if exc.code >= 500:
            raise WarehouseUnavailable(f"the sink at {url} could not answer now ({exc})") from exc
        raise QueryRefused(body.get("reason", str(exc)), body.get("error", "query_refused")) from exc
    except urllib.error.URLError as exc:
        raise WarehouseUnavailable(f"the sink at {url} did not answer ({exc.reason})") from exc


def _refuse_while_the_sink_starts(settings: Settings) -> None:
    """While ``gridhub up`` runs without an announced sink, its sink is (re)starting: opening the file would stop it."""
    if runfiles.discover(settings, "broker"):
        raise WarehouseUnavailable(
            "the running hub's sink is starting or restarting (opening its file now would keep it from starting); "
            "try again in a few seconds"
        )


def query(settings: Settings, sql: str) -> dict[str, Any]:
    """Run ``sql`` against the running sink, or the warehouse file if nothing runs."""
    sink = runfiles.discover(settings, "sink")
    url = settings.sink_url or (sink or {}).get("url")
    if url:
        return _ask_sink(str(url), sql)
    _refuse_while_the_sink_starts(settings)
    path = settings.warehouse_file
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path} yet: run `gridhub demo` or `gridhub up` first")
    require_duckdb_file(path)
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        _refuse_while_the_sink_starts(settings)
        raise ConfigurationError(
            f"{path} is held by another process that does not announce a SQL endpoint; "
            f"set GRIDHUB_SINK_URL to that sink's endpoint ({exc})"
        ) from exc
    try:
        close_to_the_host(connection)
        return run_query(connection, sql, QueryLimits.of(settings))
    finally:
        connection.close()
