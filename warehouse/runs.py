"""The run ledger (``runs.sql``): the sink keeps each run's last word, and readers list runs or show one.

Notices come from the doors on the ``runs`` topic (:mod:`schemas.runs`), a start and an end per
run. A topic read again from its start (a recreated topic, a warehouse rebuilt from Kafka) brings
every start back after its end, so a notice only replaces what it supersedes: nothing stored yet,
a start, or an end earlier than its own. The ledger then neither doubles nor goes back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import duckdb
import pyarrow as pa
from pydantic import Field

from foundation.errors import InputRejected
from schemas.runs import RUN_STATUSES, RunStatus
from warehouse.upsert import replace_keyed

NOTICE_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("kind", pa.string()),
        ("source", pa.string()),
        ("entity", pa.string()),
        ("origin", pa.string()),
        ("started_by", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("ended_at", pa.timestamp("us", tz="UTC")),
        ("state", pa.string()),
        ("published", pa.int64()),
        ("refused", pa.int64()),
        ("error", pa.string()),
        ("noticed_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""A row of ``runs``: a notice as the sink decoded it, and when it was stored."""

_SUPERSEDING = (
    "SELECT i.* EXCLUDE (_seq) FROM incoming_runs i LEFT JOIN runs r ON r.run_id = i.run_id "
    "WHERE r.run_id IS NULL OR (i.state <> 'running' AND (r.state = 'running' OR i.ended_at >= r.ended_at)) "
    "QUALIFY row_number() OVER (PARTITION BY i.run_id ORDER BY i.state <> 'running' DESC, i.ended_at DESC NULLS LAST, "
    "i._seq DESC) = 1"
)
"""Of a batch's notices, the last word of each run, where it supersedes the stored one."""


def record_runs(cursor: duckdb.DuckDBPyConnection, notices: list[dict[str, Any]]) -> None:
    """Store each run's last word among ``notices`` where it supersedes the ledger's (inside the sink's transaction)."""
    if not notices:
        return
    incoming = pa.Table.from_pylist(notices, schema=NOTICE_SCHEMA)
    cursor.register("incoming_runs", incoming.append_column("_seq", pa.array(range(len(notices)), pa.int64())))
    try:
        replace_keyed(cursor, "runs", "run_id", _SUPERSEDING)
    finally:
        cursor.unregister("incoming_runs")


SUMMARY_COLUMNS = (
    "run_id", "kind", "source", "entity", "origin", "started_by", "started_at", "ended_at", "status",
    "published", "refused", "accounted", "new", "updated", "duplicate", "rejected", "rejected_by_reason",
    "landed_at", "error",
)  # fmt: skip
"""The columns of the ``run_summary`` view, as a reader gets them."""
MAX_LIMIT = 1000
_RUN_ID = re.compile("[0-9a-f]{1,64}")


class BadRunQuery(InputRejected):
    """A run, status or limit that cannot be asked for."""

    reason_code = "bad_argument"


@dataclass(frozen=True)
class RunQuery:
    """Which runs to read: one run, or the latest ``limit`` (of a source, in a status).

    Checked here, whether a command or a URL asks; the descriptions document ``GET /runs``.
    """

    run_id: Annotated[str | None, Field(pattern=_RUN_ID.pattern, description="One run, by its id.")] = None
    source: Annotated[str | None, Field(description="Only this source's runs (a publisher: its own, always).")] = None
    status: Annotated[RunStatus | None, Field(description="Only runs in this status.")] = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="The latest this many runs.")] = 20

    def __post_init__(self) -> None:
        if self.run_id is not None and not _RUN_ID.fullmatch(self.run_id):
            raise BadRunQuery(f"run ids are up to 64 hexadecimal digits, not {self.run_id!r}")
        if self.status is not None and self.status not in RUN_STATUSES:
            raise BadRunQuery(f"--status must be one of {', '.join(RUN_STATUSES)}, not {self.status!r}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise BadRunQuery(f"--limit must be between 1 and {MAX_LIMIT}, not {self.limit}")

    @classmethod
    def of_params(cls, params: dict[str, list[str]]) -> RunQuery:
        """The query a URL's parameters ask for (``run_id``, ``source``, ``status``, ``limit``)."""
        first = {name: values[0] for name, values in params.items() if values}
        limit = first.get("limit", "20")
        if not limit.isascii() or not limit.isdigit():
            raise BadRunQuery(f"limit must be a whole number, not {limit!r}")
        return cls(first.get("run_id"), first.get("source"), first.get("status"), int(limit))

    def params(self) -> dict[str, str]:
        """The URL parameters that ask for this query."""
        given = {"run_id": self.run_id, "source": self.source, "status": self.status, "limit": str(self.limit)}
        return {name: value for name, value in given.items() if value is not None}

    def describe(self) -> str:
        """The query in a line, for the audit trail."""
        return "runs " + " ".join(f"{name}={value}" for name, value in self.params().items())


def _rows(cursor: duckdb.DuckDBPyConnection, sql: str, parameters: list[Any]) -> dict[str, Any]:
    result = cursor.execute(sql, parameters)
    columns = [item[0] for item in result.description or []]
    rows = [[value.isoformat() if isinstance(value, datetime) else value for value in row] for row in result.fetchall()]
    return {"columns": columns, "rows": rows}


def read_runs(cursor: duckdb.DuckDBPyConnection, query: RunQuery, only_source: str | None) -> dict[str, Any]:
    """The runs ``query`` asks for, newest first, from ``run_summary`` as the cursor's schema shows it.

    Runs are chosen by their true values (``main``), so a masked role's filters match what was
    stored; what it is shown is its own schema's. With ``only_source`` (a publisher's), no other
    source's run is found. Asking for one run adds its rejects by reason code, each with one
    reject's sentence as its example.
    """
    conditions, parameters = [], []
    for column, value in (
        ("run_id", query.run_id), ("source", query.source), ("source", only_source), ("status", query.status)
    ):  # fmt: skip
        if value is not None:
            conditions.append(f"{column} = ?")
            parameters.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cursor.execute("SET TimeZone = 'Asia/Shanghai'")
    found = _rows(
        cursor,
        f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM run_summary WHERE run_id IN "
        f"(SELECT run_id FROM main.run_summary {where} ORDER BY started_at DESC, run_id DESC LIMIT ?) "
        "ORDER BY started_at DESC, run_id DESC",
        [*parameters, query.limit],
    )
    if query.run_id is not None and found["rows"]:
        found["rejects"] = _rows(
            cursor,
            "SELECT reason_code, records, example FROM run_rejects WHERE run_id = ? ORDER BY records DESC, reason_code",
            [query.run_id],
        )
    return found
