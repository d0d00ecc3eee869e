"""Bulk-lane batches into the warehouse: dedup, contract, resolution and ledger, set-based.

The worker validated the rows; what is left needs the warehouse. Each row is compared
with the copy its source sent last (or with an earlier row of the same record in the same
transaction): an equal fingerprint is a duplicate, a missing copy is new, anything else an
update. Only new and updated rows go through the contract and the resolver, so a
re-sync of an unchanged register costs one join. Seen rows (rows the worker passed on
unvalidated, :data:`schemas.batches.SEEN_PAYLOAD`) need neither: one whose remembered
fingerprint the warehouse holds is a duplicate, any other a reject that can be replayed,
since the worker remembered a copy the warehouse does not have. All of it runs in the
sink's batch transaction, so the outcome of every row commits with the offsets it came
from, and a replayed batch finds its copies already stored and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from schemas.batches import SEEN_DIGEST_HEX, SEEN_PAYLOAD, RecordBatch
from schemas.rejects import Reject
from warehouse.quality import Screening
from warehouse.resolution import Resolver
from warehouse.resolution_rules import ENTITIES
from warehouse.upsert import insert_new, insert_new_rows

Screen = Callable[[str, pa.Table], Screening]
"""The warehouse contract: the rules each row breaks, and the validation's results to keep."""

_BOOKKEEPING = (
    "_seq",
    "previous_fingerprint",
    "outcome",
    "run_id",
    "processed_at",
    "content_hash",
    "topic",
    "partition",
    "message_offset",
)
SEEN_NOT_IN_WAREHOUSE = "seen_row_not_in_warehouse"
_SEEN_REASON = (
    "the worker passed this row on without validating it, as it had accepted the same content of this record "
    "before, but the warehouse does not hold the copy accepted then (the warehouse was restored from a backup, "
    "or its contract refused that copy); resend it with `gridhub rejects replay`, which validates it again"
)


_EARLIER_IN_TRANSACTION = (
    "SELECT _seq, lag(CASE WHEN NOT seen THEN fingerprint END IGNORE NULLS) "
    "  OVER (PARTITION BY source, source_record_id ORDER BY _seq) AS earlier "
    "FROM bulk_in SEMI JOIN ("
    "  SELECT source AS held_source, source_record_id AS held_id FROM bulk_in GROUP BY ALL "
    "  HAVING count(*) > 1 AND bool_or(NOT seen)"
    ") ON source = held_source AND source_record_id = held_id"
)
"""Each row's fingerprint from the validated row of its record just before it in the transaction, if any.

Only records the transaction holds more than once, one of them validated, can have one, and a
re-sync or a first load holds few: windowing just those rows took a third off the outcome
statement of 250,000 rows, offline, against windowing every row.
"""


def _constant(value: Any, rows: int, kind: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), rows)


def combined(parts: list[RecordBatch]) -> pa.Table:
    """One table of a kind's batches, each row carrying the provenance its batch held once."""
    stamp = pa.timestamp("us", tz="UTC")
    tables = []
    for part in parts:
        rows = len(part)
        seen = SEEN_PAYLOAD in part.rows.column_names
        tables.append(
            (part.rows.drop_columns([SEEN_PAYLOAD]) if seen else part.rows)
            .append_column("seen", _constant(seen, rows, pa.bool_()))
            .append_column("source", _constant(part.source, rows, pa.string()))
            .append_column("run_id", _constant(part.run_id, rows, pa.string()))
            .append_column("received_at", _constant(part.received_at.astimezone(UTC), rows, stamp))
            .append_column("processed_at", _constant(part.processed_at, rows, stamp))
        )
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.append_column("_seq", pa.array(range(table.num_rows), pa.int64()))


class BulkWriter:
    """Writes a kind's bulk batches inside the caller's transaction."""

    def __init__(self, resolver: Resolver, screen: Screen | None = None) -> None:
        self.resolver = resolver
        self.screen = screen

    def write(
        self, cursor: duckdb.DuckDBPyConnection, kind: str, parts: list[RecordBatch], now: datetime
    ) -> list[dict[str, Any]]:
        """Decide, screen, store and account for every row of ``parts``; return the screen's quality results."""
        entity = ENTITIES[kind]
        cursor.register("bulk_in", combined(parts))
        try:
            cursor.execute(
                "CREATE OR REPLACE TEMP TABLE bulk_outcomes AS "
                "SELECT * EXCLUDE (held), CASE WHEN seen THEN (CASE WHEN held THEN 'duplicate' ELSE 'rejected' END) "
                "  WHEN previous_fingerprint IS NULL THEN 'new' "
                "  WHEN previous_fingerprint = fingerprint THEN 'duplicate' ELSE 'update' END AS outcome, "
                "  CASE WHEN seen THEN (CASE WHEN held THEN 'seen_before' ELSE $missing END) END AS reason_code "
                "FROM (SELECT *, coalesce(left(previous_fingerprint, $digits) = fingerprint, false) AS held FROM ("
                "  SELECT i.*, coalesce(e.earlier, s.fingerprint) AS previous_fingerprint "
                f"  FROM bulk_in i LEFT JOIN ({_EARLIER_IN_TRANSACTION}) e USING (_seq) "
                f"  LEFT JOIN {entity.sources_table} s "
                "    ON s.source = i.source AND s.source_record_id = i.source_record_id))",
                {"missing": SEEN_NOT_IN_WAREHOUSE, "digits": SEEN_DIGEST_HEX},
            )
        finally:
            cursor.unregister("bulk_in")
        changed = cursor.sql(
            "SELECT * EXCLUDE (seen) FROM bulk_outcomes WHERE NOT seen AND outcome <> 'duplicate' ORDER BY _seq"
        ).to_arrow_table()
        self._refuse_unheld(cursor, kind, [part for part in parts if SEEN_PAYLOAD in part.rows.column_names], now)
        changed, results = self._screened(cursor, kind, changed, now)
        if changed.num_rows:
            self.resolver.apply(cursor, kind, self._copies(cursor, entity.sources_table, changed, now), now)
        self._account(cursor, kind, now)
        cursor.execute("DROP TABLE bulk_outcomes")
        return results

    @staticmethod
    def _account(cursor: duckdb.DuckDBPyConnection, kind: str, now: datetime) -> None:
        """One intake row per record received; a record seen before (a replayed batch) keeps its first.

        A replayed batch keeps its ``received_at``, so only the ledger rows received within the rows'
        span are searched: searching the run's whole ledger made each transaction of a re-sync slower
        than the one before (bench/PROFILE.md).
        """
        runs = [run for (run,) in cursor.execute("SELECT DISTINCT run_id FROM bulk_outcomes").fetchall()]
        insert_new(
            cursor,
            "intake",
            "SELECT record_uid, run_id, source, source_record_id, $kind AS entity, outcome, reason_code, "
            "  received_at, processed_at, $now AS written_at FROM bulk_outcomes "
            "QUALIFY row_number() OVER (PARTITION BY record_uid ORDER BY _seq) = 1",
            runs=None if None in runs else runs,
            received_span=True,
            one_per_uid=True,
            kind=kind,
            now=now,
        )

    @staticmethod
    def _refuse_unheld(cursor: duckdb.DuckDBPyConnection, kind: str, seen: list[RecordBatch], now: datetime) -> None:
        """A reject, with the row as its source sent it, for each seen row whose copy the warehouse does not hold.

        The ledger is searched for the few such rows only: asking it whether each seen row was
        written before took a seventh of the sink's time in an unchanged re-sync.
        """
        if not seen:
            return
        unheld = {
            uid
            for (uid,) in cursor.execute(
                "SELECT record_uid FROM bulk_outcomes WHERE seen AND reason_code = $missing",
                {"missing": SEEN_NOT_IN_WAREHOUSE},
            ).fetchall()
        }
        if not unheld:
            return
        written = cursor.execute(  # a batch replayed after its outcomes were written keeps its first outcomes
            "SELECT record_uid FROM intake WHERE record_uid IN (SELECT unnest($uids))", {"uids": sorted(unheld)}
        ).fetchall()
        uids = pa.array(sorted(unheld - {uid for (uid,) in written}), pa.string())
        if not len(uids):
            return
        rejects = [
            Reject.build(
                "warehouse",
                SEEN_NOT_IN_WAREHOUSE,
                _SEEN_REASON,
                row[SEEN_PAYLOAD],
                record_uid=row["record_uid"],
                source=part.source,
                source_record_id=row["source_record_id"],
                entity=kind,
                run_id=part.run_id,
                rejected_at=now,
            ).model_dump(mode="json")
            for part in seen
            for row in part.rows.filter(pc.is_in(part.rows.column("record_uid"), value_set=uids)).to_pylist()
        ]
        insert_new_rows(cursor, "rejects", rejects)

    @staticmethod
    def _copies(cursor: duckdb.DuckDBPyConnection, table: str, changed: pa.Table, now: datetime) -> pa.Table:
        """The columns of the source-copies table, stamped with the load time."""
        stored = {name for (name,) in cursor.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()}
        copies = changed.select([name for name in changed.column_names if name in stored])
        return copies.append_column("loaded_at", _constant(now, copies.num_rows, pa.timestamp("us", tz="UTC")))

    def _screened(
        self, cursor: duckdb.DuckDBPyConnection, kind: str, changed: pa.Table, now: datetime
    ) -> tuple[pa.Table, list[dict[str, Any]]]:
        """The rows that keep the warehouse contract, and its results; the others become rejects naming their rules."""
        if self.screen is None or not changed.num_rows:
            return changed, []
        screening = self.screen(kind, changed)
        broken = screening.broken
        if not broken:
            return changed, screening.results
        indices = sorted(broken)
        rows = changed.take(pa.array(indices, pa.int64())).to_pylist()
        rejects = [
            Reject.build(
                "warehouse",
                "contract_violation",
                "warehouse contract: " + "; ".join(broken[index]),
                {name: value for name, value in row.items() if name not in _BOOKKEEPING},
                record_uid=row["record_uid"],
                source=row["source"],
                source_record_id=row["source_record_id"],
                entity=kind,
                run_id=row["run_id"],
                rejected_at=now,
            ).model_dump(mode="json")
            for index, row in zip(indices, rows, strict=True)
        ]
        insert_new_rows(cursor, "rejects", rejects)
        cursor.register("broken", pa.table({"record_uid": [row["record_uid"] for row in rows]}))
        try:
            cursor.execute(
                "UPDATE bulk_outcomes SET outcome = 'rejected', reason_code = 'contract_violation' "
                "WHERE record_uid IN (SELECT record_uid FROM broken)"
            )
        finally:
            cursor.unregister("broken")
        keep = pa.array([index not in broken for index in range(changed.num_rows)])
        return changed.filter(keep), screening.results
