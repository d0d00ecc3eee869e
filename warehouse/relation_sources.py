"""Where an export's rows come from: the running sink's query server, or the warehouse file itself.

While ``gridhub up`` runs, the sink holds the file (DuckDB lets one process write it), so the
rows come through its ``GET /export`` route; when nothing runs, the exporter opens the file and
reads the same rows through the same function (:func:`warehouse.query_server.export_relation`),
so the role's views and the audit are the same either way.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.client import HTTPResponse
from typing import Protocol
from urllib.parse import urlencode

import duckdb

from foundation.access import Caller
from foundation.door_client import RATE_LIMIT_RETRIES, wait_or_raise
from foundation.errors import RetryableError
from warehouse.query_server import export_relation, readable_relations
from warehouse.relation_stream import RelationRefused, RelationRows, read_stream

STREAM_TIMEOUT_S = 600.0
"""Longest wait for the next bytes of a stream: a large view can take a while to give its first batch."""


class Relations(Protocol):
    """The relations one caller may read, each to be read whole."""

    caller: Caller
    names: frozenset[str]

    def open(self, relation: str, as_of: datetime | None) -> AbstractContextManager[RelationRows]:
        """Every row of ``relation`` (as of ``as_of``), in record batches."""
        ...


@dataclass(frozen=True)
class FileRelations:
    """The relations of a warehouse file this process has opened (no sink running)."""

    connection: duckdb.DuckDBPyConnection
    caller: Caller

    @property
    def names(self) -> frozenset[str]:
        """What the caller's role may read."""
        return readable_relations(self.connection, self.caller)

    def open(self, relation: str, as_of: datetime | None) -> AbstractContextManager[RelationRows]:
        """Read ``relation`` from the file, audited in it."""
        return export_relation(self.connection, self.caller, relation, as_of)


@dataclass(frozen=True)
class SinkRelations:
    """The relations of the warehouse a running sink holds, streamed from its query server."""

    url: str
    token: str
    caller: Caller
    names: frozenset[str]

    @contextmanager
    def open(self, relation: str, as_of: datetime | None) -> Iterator[RelationRows]:
        """Stream ``relation`` from the sink, which audits the read."""
        parameters = {"relation": relation, **({"as_of": as_of.isoformat()} if as_of else {})}
        with _stream(f"{self.url}/export?{urlencode(parameters)}", self.token) as response:
            yield read_stream(relation, response)


@contextmanager
def _stream(url: str, token: str) -> Iterator[HTTPResponse]:
    """GET a stream as the caller of ``token``, waiting out a 429; refusals raised as the door's client raises them."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - the sink's URL
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            response = urllib.request.urlopen(request, timeout=STREAM_TIMEOUT_S)  # noqa: S310
        except urllib.error.HTTPError as exc:
            time.sleep(wait_or_raise(exc, url, RelationRefused, may_wait=attempt < RATE_LIMIT_RETRIES))
            continue
        except urllib.error.URLError as exc:
            raise RetryableError(f"the sink at {url} did not answer ({exc.reason})") from exc
        with response:
            yield response
        return
