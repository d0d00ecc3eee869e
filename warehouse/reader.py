"""Answer read-only SQL whether or not the sink is running."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import duckdb

from foundation import runfiles
from foundation.errors import ConfigurationError, RetryableError
from foundation.settings import Settings
from warehouse.query_server import QueryRefused, run_query


class WarehouseUnavailable(RetryableError):
    """Neither a running sink nor a warehouse file could answer."""


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
        raise QueryRefused(body.get("reason", str(exc))) from exc
    except urllib.error.URLError as exc:
        raise WarehouseUnavailable(f"the sink at {url} did not answer ({exc.reason})") from exc


def query(settings: Settings, sql: str) -> dict[str, Any]:
    """Run ``sql`` against the running sink, or the warehouse file if nothing runs."""
    sink = runfiles.discover(settings, "sink")
    url = settings.sink_url or (sink or {}).get("url")
    if url:
        return _ask_sink(str(url), sql)
    path = settings.warehouse_file
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path} yet: run `gridhub demo` or `gridhub up` first")
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise ConfigurationError(
            f"{path} is held by another process that does not announce a SQL endpoint; "
            f"set GRIDHUB_SINK_URL to that sink's endpoint ({exc})"
        ) from exc
    try:
        return run_query(connection, sql)
    finally:
        connection.close()
