"""The warehouse contract's findings, kept: each validation of a micro-batch as rows of ``quality_results``.

A reject says which rule one row broke; an operator also needs to know how often each rule
fails, since when, and which sources send the failing rows, which the rejects alone cannot say
(they hold no passing rows). So every validation the contract runs (:mod:`warehouse.contract`)
leaves rows in ``quality_results`` (``warehouse/quality.sql``), committed with the batch they
describe. A batch that passes leaves one row per kind with its counts, so the table grows with
batches, not with rows or rules; a batch that fails leaves Great Expectations' result for each
expectation of the suite as well. A failing row is named by its source and its ids, never by its
values: a failing value may be a resident's ID number.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.upsert import transaction

Lane = Literal["record", "bulk"]
"""``record``: rows of per-record messages; ``bulk``: the changed rows of ``canonical.batches``."""

Place = tuple[str | None, int | None, int | None, str | None]
"""The batch's first message: topic, partition, offset and the topic's id, which its results name."""

FAILING_IDS_KEPT = 5
"""Failing rows an expectation's result names by their ids: enough to look them up among the rejects."""

_PROVENANCE = ("source", "record_uid", "source_record_id")

RESULTS_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("message_offset", pa.int64()),
        ("topic_id", pa.string()),
        ("lane", pa.string()),
        ("checked_at", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("expectation_type", pa.string()),
        ("checked_column", pa.string()),
        ("parameters", pa.string()),
        ("success", pa.bool_()),
        ("element_count", pa.int64()),
        ("unexpected_count", pa.int64()),
        ("unexpected_percent", pa.float64()),
        ("sources", pa.list_(pa.string())),
        ("source_rows", pa.list_(pa.int64())),
        ("failing_sources", pa.list_(pa.string())),
        ("failing_source_rows", pa.list_(pa.int64())),
        ("failing_record_uids", pa.list_(pa.string())),
        ("failing_source_record_ids", pa.list_(pa.string())),
    ]
)
"""``quality_results`` as Arrow types, so a batch whose lists are all empty still writes typed columns."""

EXPECTATION_COLUMNS = ("kind", "target_table", "expectation_type", "checked_column", "parameters", "rule")
INSERT_EXPECTATION = (
    f"INSERT INTO quality_expectations ({', '.join(EXPECTATION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EXPECTATION_COLUMNS)})"
)


def parameters_of(kwargs: Mapping[str, Any]) -> str:
    """An expectation's parameters as JSON: its arguments but the column it checks and GX's batch id."""
    kept = {key: value for key, value in kwargs.items() if key not in ("column", "batch_id")}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class Provenance:
    """Where each row of a validated frame came from, by row index: all a kept result may say of a failing row."""

    table: pa.Table

    @classmethod
    def of_rows(cls, rows: Sequence[Mapping[str, Any]]) -> Provenance:
        """The provenance of per-record rows (dicts carrying ``source``, ``record_uid``, ``source_record_id``)."""
        return cls(pa.table({name: pa.array([row.get(name) for row in rows], pa.string()) for name in _PROVENANCE}))

    @classmethod
    def of_table(cls, table: pa.Table) -> Provenance:
        """The provenance of a bulk-lane table (a column it lacks is all nulls)."""
        return cls(
            pa.table(
                {
                    name: table.column(name).cast(pa.string())
                    if name in table.column_names
                    else pa.nulls(table.num_rows, pa.string())
                    for name in _PROVENANCE
                }
            )
        )

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def _of(self, indices: Collection[int] | None) -> pa.Table:
        return self.table if indices is None else self.table.take(pa.array(sorted(indices), pa.int64()))

    def by_source(self, indices: Collection[int] | None = None) -> tuple[list[str | None], list[int]]:
        """The sources of the rows at ``indices`` (all rows when None) and how many rows each, most first."""
        counted = pc.value_counts(self._of(indices).column("source"))
        pairs = sorted(
            zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True),
            key=lambda pair: (-pair[1], pair[0] or ""),
        )
        return [source for source, _ in pairs], [count for _, count in pairs]

    def ids(self, indices: Collection[int]) -> tuple[list[str | None], list[str | None]]:
        """The record uids and source record ids of the first :data:`FAILING_IDS_KEPT` rows at ``indices``."""
        first = self._of(sorted(indices)[:FAILING_IDS_KEPT])
        return first.column("record_uid").to_pylist(), first.column("source_record_id").to_pylist()


def _failing(provenance: Provenance, indices: Collection[int]) -> dict[str, Any]:
    sources, counts = provenance.by_source(indices)
    uids, ids = provenance.ids(indices)
    return {
        "failing_sources": sources,
        "failing_source_rows": counts,
        "failing_record_uids": uids,
        "failing_source_record_ids": ids,
    }


def suite_result(lane: Lane, kind: str, provenance: Provenance, failing: Collection[int]) -> dict[str, Any]:
    """The row of a kind's whole suite: rows checked, by source, and the rows that broke any of its rules."""
    sources, counts = provenance.by_source()
    return {
        "lane": lane,
        "kind": kind,
        "expectation_type": None,
        "checked_column": None,
        "parameters": None,
        "success": not failing,
        "element_count": provenance.rows,
        "unexpected_count": len(failing),
        "unexpected_percent": 100 * len(failing) / provenance.rows if provenance.rows else None,
        "sources": sources,
        "source_rows": counts,
        **_failing(provenance, failing),
    }


def expectation_results(lane: Lane, kind: str, validation: Any, provenance: Provenance) -> list[dict[str, Any]]:
    """One row per expectation of a complete validation (result format COMPLETE), its failing rows by provenance."""
    rows = []
    for outcome in validation.results:
        config, result = outcome.expectation_config, outcome.result
        failing = {int(index) for index in result.get("unexpected_index_list") or []}
        rows.append(
            {
                "lane": lane,
                "kind": kind,
                "expectation_type": config.type,
                "checked_column": config.kwargs.get("column"),
                "parameters": parameters_of(config.kwargs),
                "success": bool(outcome.success),
                "element_count": int(result.get("element_count", provenance.rows)),
                "unexpected_count": int(result.get("unexpected_count") or 0),
                "unexpected_percent": result.get("unexpected_percent"),
                "sources": None,
                "source_rows": None,
                **_failing(provenance, failing),
            }
        )
    return rows


@dataclass(frozen=True)
class Screening:
    """What the contract found in one kind's rows: the rules each failing row breaks, and the results to keep."""

    broken: dict[int, list[str]]
    """Row index → the rules that row breaks (empty when every row passed)."""
    results: list[dict[str, Any]] = field(default_factory=list)
    """Rows of ``quality_results`` without their batch's place and time (:func:`store_results` adds them)."""


def store_results(
    cursor: duckdb.DuckDBPyConnection, results: list[dict[str, Any]], place: Place, checked_at: datetime
) -> None:
    """Append a batch's results, unless the warehouse already holds the batch's first message.

    A batch is written again only after a replay of messages the warehouse already stored, and then
    the stored offset of its first message's partition (in this transaction, still the one before the
    batch) is past that message: its results were counted when it was first written. Reading that
    one-row-per-partition table costs nothing, where searching the results for the batch would cost
    more every day. A batch without a first message (one built by hand) has no place: always appended.
    """
    if not results:
        return
    topic, partition, offset, topic_id = place
    stamp = {"topic": topic, "partition": partition, "message_offset": offset, "topic_id": topic_id}
    table = pa.Table.from_pylist([{**row, **stamp, "checked_at": checked_at} for row in results], RESULTS_SCHEMA)
    cursor.register("quality_in", table)
    try:
        cursor.execute(
            "INSERT INTO quality_results BY NAME SELECT * FROM quality_in WHERE NOT EXISTS ("
            "  SELECT 1 FROM sink_offsets o WHERE o.topic = $topic AND o.partition = $partition"
            "  AND o.topic_id = $topic_id AND o.next_offset > $offset)",
            {"topic": topic, "partition": partition, "offset": offset, "topic_id": topic_id},
        )
    finally:
        cursor.unregister("quality_in")


def replace_expectations(connection: duckdb.DuckDBPyConnection, expectations: list[dict[str, Any]]) -> None:
    """Make ``quality_expectations`` hold exactly the contract the sink runs with, in one transaction."""
    with transaction(connection) as cursor:
        cursor.execute("DELETE FROM quality_expectations")
        cursor.executemany(INSERT_EXPECTATION, [[row[name] for name in EXPECTATION_COLUMNS] for row in expectations])
