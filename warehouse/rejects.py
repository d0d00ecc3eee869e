"""Rejects an operator can act on: which are still open, and the records to send again once the cause is fixed.

A reject stays open until a later outcome of the same source record reaches the warehouse: the
record landed (new, update or duplicate: after ``gridhub rejects replay`` or a corrected resend)
or it was refused again, when the new reject, with its new reason, is the one left open. The
sink closes them in the transaction that writes those outcomes (:func:`close_resolved`), so a
reject is never closed by a record that did not land.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from foundation.access import Caller, Forbidden, require_role
from warehouse import audit
from warehouse.query_contract import REPLAYERS
from warehouse.sql import sql_literal

UNKNOWN = "unknown"
"""What a reject says of provenance it lost (schemas/rejects.py): such a reject names no record to close."""


def close_resolved(cursor: duckdb.DuckDBPyConnection, written_at: datetime, sources: Collection[str]) -> None:
    """Close the open rejects of every source record whose later outcome this transaction wrote to the intake ledger.

    The latest outcome of a record decides: landed (new, update, duplicate) or refused again
    (``rejected_again``, by the reject that is now the open one). ``sources`` names every source
    of those outcomes: only when one of them has an open reject does the ledger get searched.
    A department export's ten thousand refused rows stay open for days, and searching the ledger
    for them cost each transaction of the incident lane 9.5 ms on average, where one took 86 ms
    at the median (20 reports/s on the benchmark's hub, one session), though no report could
    close one of them. Only the ledger rows of records with an open reject are grouped: grouping
    all 250,000 of a bulk transaction first took 130-146 ms against 77-110 ms (offline, 10,000
    open rejects).
    """
    if not sources:
        return
    found = cursor.execute(
        "SELECT 1 FROM rejects WHERE resolved_at IS NULL AND list_contains($sources, source) LIMIT 1",
        {"sources": sorted(sources)},
    ).fetchone()
    if found is None:
        return
    cursor.execute(
        "UPDATE rejects AS r SET resolved_at = l.written_at, resolution = l.resolution, resolved_by = l.record_uid "
        "FROM ("
        "  SELECT source, source_record_id, entity, max(written_at) AS written_at, max(seen_at) AS seen_at, "
        "    arg_max(record_uid, seen_at) AS record_uid, "
        "    arg_max(CASE WHEN outcome = 'rejected' THEN 'rejected_again' ELSE 'landed' END, seen_at) AS resolution "
        "  FROM (SELECT *, coalesce(received_at, processed_at) AS seen_at FROM intake "
        "    WHERE written_at = $written_at AND source_record_id <> $unknown "
        "    AND (source, source_record_id, entity) IN "
        "      (SELECT (source, source_record_id, entity) FROM rejects WHERE resolved_at IS NULL)) "
        "  GROUP BY source, source_record_id, entity"
        ") AS l "
        "WHERE r.resolved_at IS NULL AND r.source = l.source AND r.source_record_id = l.source_record_id "
        "AND r.entity = l.entity AND r.record_uid <> l.record_uid AND r.rejected_at <= l.seen_at",
        {"written_at": written_at, "unknown": UNKNOWN},
    )


@dataclass(frozen=True)
class RejectFilter:
    """Which rejects a list, a show or a replay is about; every value typed by a person, so quoted."""

    source: str | None = None
    reason: str | None = None
    stage: str | None = None
    include_resolved: bool = False

    def where(self) -> str:
        conditions = ["TRUE"]
        for column, value in (("source", self.source), ("reason_code", self.reason), ("stage", self.stage)):
            if value is not None:
                conditions.append(f"{column} = {sql_literal(value)}")
        if not self.include_resolved:
            conditions.append("resolved_at IS NULL")
        return " AND ".join(conditions)


LIST_COLUMNS = (
    "record_uid, rejected_at, source, entity, source_record_id, stage, reason_code, reason, "
    "resolution, resolved_at, resolved_by"
)


BRIEF_COLUMNS = (
    "strftime(rejected_at, '%Y-%m-%d %H:%M') AS rejected_at, record_uid, source, source_record_id, reason_code"
)
"""What a terminal's table has room for; ``gridhub rejects show`` gives the rest."""


def list_sql(which: RejectFilter, limit: int, brief: bool = False) -> str:
    """The rejects ``which`` names, newest first: for ``gridhub rejects list`` over the caller's (masked) view."""
    columns = BRIEF_COLUMNS if brief else LIST_COLUMNS
    return f"SELECT {columns} FROM rejects WHERE {which.where()} ORDER BY rejected_at DESC LIMIT {int(limit)}"


def summary_sql(which: RejectFilter) -> str:
    """How many rejects ``which`` names, by source, entity, stage and reason."""
    return (
        "SELECT source, entity, stage, reason_code, count(*) AS rejects, max(rejected_at) AS last_rejected_at "
        f"FROM rejects WHERE {which.where()} GROUP BY ALL ORDER BY rejects DESC, source, reason_code"
    )


def show_sql(record_uid: str) -> str:
    """One reject whole (as the caller's view shows it), and what closed it."""
    return f"SELECT * FROM rejects WHERE record_uid = {sql_literal(record_uid)} ORDER BY rejected_at"


def replayable(
    connection: duckdb.DuckDBPyConnection, caller: Caller, which: RejectFilter, limit: int
) -> dict[str, Any]:
    """The open rejects ``which`` names with their payloads whole, for the caller to send again.

    The payload is what the source sent, personal data included, so only those who may publish
    records get it (a publisher only its own source's) and every such read is audited as a read of
    personal data, whatever the role.
    """
    require_role(caller, *REPLAYERS)
    if caller.role == "publisher":
        if which.source not in (None, caller.source):
            raise Forbidden(f"{caller.name} publishes for {caller.source}; it cannot replay {which.source}'s rejects")
        which = RejectFilter(caller.source, which.reason, which.stage)
    which = RejectFilter(which.source, which.reason, which.stage)
    cursor = connection.cursor()
    try:
        result = cursor.execute(
            "SELECT record_uid, source, source_record_id, entity, stage, reason_code, reason, payload, "
            f"payload_bytes, run_id, rejected_at FROM rejects WHERE {which.where()} "
            f"ORDER BY rejected_at LIMIT {int(limit)}"
        )
        columns = [str(column[0]) for column in result.description]
        rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    finally:
        cursor.close()
    audit.record(connection, caller, "rejects_replay", json.dumps(which.__dict__), len(rows), personal=True)
    return {"rows": [{**row, "rejected_at": row["rejected_at"].isoformat()} for row in rows]}
