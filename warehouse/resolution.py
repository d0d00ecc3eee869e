"""Entity resolution in the warehouse: source copies in, one golden record per entity out.

It runs inside the sink's batch transaction, after the batch's source copies are
stored, because a golden record is a function of every copy of the entity and the
warehouse is the one place that holds them all (keeping them in worker memory would
duplicate a population register per worker). Each step is set-based SQL over the
batch, and re-running a batch gives the same tables, so a replay changes nothing.

Steps for one kind:
1. store each source's copy (``<kind>_sources``), keyed by source and record id;
2. a copy with a strong key joins that entity; a copy without one starts as its own
   entity ``~source:record_id``;
3. copies without a strong key, and earlier unmatched copies that share a blocking
   value with this batch (a register with IDs may have just arrived for them), are
   scored against the golden records and merged, kept apart, or listed for review;
4. the golden rows of every entity that gained or lost a copy are rebuilt with the
   survivorship rules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.history import install as install_history
from warehouse.history import record_versions
from warehouse.resolution_rules import ENTITIES, Entity, ResolutionRules
from warehouse.sql import read_by_row_id
from warehouse.upsert import Rows, as_arrow, replace_keyed, upsert_rows

REVIEW_CANDIDATES = 3


@dataclass(frozen=True)
class Candidate:
    """One scored pairing of a copy without a strong key and an existing entity."""

    key: str
    score: float
    detail: str


@dataclass(frozen=True)
class Probe:
    """A copy being matched: its own entity key and where it currently sits."""

    source: str
    source_record_id: str
    own_key: str
    current_key: str


class Resolver:
    """Applies the resolution rules to batches of base-data rows."""

    def __init__(self, rules: ResolutionRules) -> None:
        self.rules = rules

    def install(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Create the lineage views, which depend on the survivorship rules in force, and the history it keeps."""
        install_history(connection)
        observations = " UNION ALL ".join(
            self._observations_sql(entity, field) for entity in ENTITIES.values() for field in entity.fields
        )
        connection.execute(f"CREATE OR REPLACE VIEW field_observations AS {observations}")
        connection.execute(
            "CREATE OR REPLACE VIEW field_lineage AS SELECT * EXCLUDE (source_rank, _rank) FROM ("
            "  SELECT *, row_number() OVER (PARTITION BY kind, entity_key, field "
            "    ORDER BY source_rank, observed_at DESC, source, source_record_id) AS _rank"
            "  FROM field_observations) WHERE _rank = 1"
        )

    def _observations_sql(self, entity: Entity, field: str) -> str:
        return (
            f"SELECT '{entity.kind}' AS kind, m.entity_key, '{field}' AS field, CAST(s.{field} AS VARCHAR) AS value, "
            f"s.source, s.source_record_id, s.received_at AS observed_at, "
            f"{self.rules.rank_sql(entity.kind, field)} AS source_rank "
            f"FROM {entity.sources_table} s JOIN entity_matches m ON m.kind = '{entity.kind}' "
            f"AND m.source = s.source AND m.source_record_id = s.source_record_id WHERE s.{field} IS NOT NULL"
        )

    def apply(self, cursor: duckdb.DuckDBPyConnection, kind: str, rows: Rows, now: datetime) -> None:
        """Store one batch of copies of ``kind`` and bring its golden records up to date."""
        if len(rows) == 0:
            return
        entity = ENTITIES[kind]
        table = as_arrow(rows)
        upsert_rows(cursor, entity.sources_table, "source, source_record_id", table)
        cursor.register("batch_copies", table.append_column("_arrival", pa.array(range(len(table)), pa.int64())))
        try:
            record_versions(cursor, entity.sources_table, "SELECT * FROM batch_copies", now, order="_arrival")
        finally:
            cursor.unregister("batch_copies")
        cursor.register("batch_ids", table.select(["source", "source_record_id"]))
        try:
            touched = self._match_on_strong_keys(cursor, entity, now)
            self._rebuild(cursor, entity, touched, now)
            touched = self._match_on_similarity(cursor, entity, now)
            self._rebuild(cursor, entity, touched, now)
        finally:
            cursor.unregister("batch_ids")

    @staticmethod
    def _match_on_strong_keys(cursor: duckdb.DuckDBPyConnection, entity: Entity, now: datetime) -> set[str]:
        """Put each copy of the batch with its strong key's entity, or on its own; return touched entities.

        The batch's new matches are computed once, written, and their entities taken from them: asking
        the table again after writing them searched every match a second time.
        """
        previous = {
            key
            for (key,) in cursor.execute(
                "SELECT DISTINCT m.entity_key FROM entity_matches m JOIN batch_ids b "
                "ON m.source = b.source AND m.source_record_id = b.source_record_id WHERE m.kind = $kind",
                {"kind": entity.kind},
            ).fetchall()
        }
        matches = cursor.sql(
            f"SELECT $kind AS kind, s.source, s.source_record_id, "
            f"  coalesce(s.match_key, d.entity_key, '~' || s.source || ':' || s.source_record_id) AS entity_key, "
            f"  CASE WHEN s.match_key IS NOT NULL THEN $strong WHEN d.decision IS NOT NULL THEN 'manual' "
            f"    ELSE 'unmatched' END AS method, "
            f"  CASE WHEN s.match_key IS NOT NULL OR d.decision IS NOT NULL THEN 1.0 END AS confidence, "
            f"  $now AS matched_at "
            f"FROM {entity.sources_table} s SEMI JOIN batch_ids b "
            f"  ON s.source = b.source AND s.source_record_id = b.source_record_id "
            f"LEFT JOIN match_decisions d ON d.kind = $kind "
            f"  AND d.source = s.source AND d.source_record_id = s.source_record_id",
            params={"kind": entity.kind, "strong": entity.strong_method, "now": now},
        ).to_arrow_table()
        cursor.register("batch_matches", matches)
        try:
            replace_keyed(cursor, "entity_matches", "kind, source, source_record_id", "SELECT * FROM batch_matches")
        finally:
            cursor.unregister("batch_matches")
        return previous | set(pc.unique(matches.column("entity_key")).to_pylist())

    def _probes(self, cursor: duckdb.DuckDBPyConnection, entity: Entity) -> list[Probe]:
        """Copies to (re)match: the batch's copies without a strong key, and unmatched copies in its blocks."""
        sources = entity.sources_table
        blocks = self.rules.of(entity.kind).fuzzy.block
        overlap = " OR ".join(
            f"s.{field} IN (SELECT t.{field} FROM {sources} t SEMI JOIN batch_ids b "
            f"ON t.source = b.source AND t.source_record_id = b.source_record_id)"
            for field in blocks
        )
        cursor.execute(
            f"CREATE OR REPLACE TEMP TABLE probes AS "
            f"SELECT s.*, '~' || s.source || ':' || s.source_record_id AS own_key, m.entity_key AS current_key "
            f"FROM {sources} s JOIN entity_matches m ON m.kind = $kind "
            f"  AND m.source = s.source AND m.source_record_id = s.source_record_id "
            f"WHERE s.match_key IS NULL AND m.method <> 'manual' AND ("
            f"  EXISTS (SELECT 1 FROM batch_ids b "
            f"    WHERE b.source = s.source AND b.source_record_id = s.source_record_id)"
            f"  OR (m.method = 'unmatched' AND ({overlap})))",
            {"kind": entity.kind},
        )
        rows = cursor.execute("SELECT source, source_record_id, own_key, current_key FROM probes").fetchall()
        return [Probe(*row) for row in rows]

    def _candidates(self, cursor: duckdb.DuckDBPyConnection, entity: Entity) -> dict[str, list[Candidate]]:
        """Score every probe against the entities whose copies share a blocking value with it, best first.

        Each field is compared with every copy of the candidate entity and the best agreement counts:
        a resident's old phone number, still on one department's copy, identifies them as well as the
        new one.
        """
        fuzzy = self.rules.of(entity.kind).fuzzy
        copies = (
            f"{entity.sources_table} s JOIN entity_matches m ON m.kind = '{entity.kind}' "
            f"AND m.source = s.source AND m.source_record_id = s.source_record_id"
        )
        not_itself = "NOT (s.source = p.source AND s.source_record_id = p.source_record_id)"
        pairs = " UNION ".join(
            f"SELECT p.own_key, m.entity_key FROM probes p JOIN {copies} ON p.{field} = s.{field} WHERE {not_itself}"
            for field in fuzzy.block
        )
        best = ", ".join(
            f"max(CAST({self.rules.similarity_sql(field, rule, 'p', 's')} AS DOUBLE)) AS {field}_similarity"
            for field, rule in fuzzy.compare.items()
        )
        rows = cursor.execute(
            f"WITH pairs AS ({pairs}) "
            f"SELECT p.own_key, m.entity_key, {best} "
            f"FROM pairs JOIN probes p ON p.own_key = pairs.own_key "
            f"JOIN {copies} ON m.entity_key = pairs.entity_key WHERE {not_itself} "
            f"GROUP BY p.own_key, m.entity_key"
        ).fetchall()
        weights = [(field, rule.weight) for field, rule in fuzzy.compare.items()]
        scored: dict[str, list[Candidate]] = defaultdict(list)
        for own_key, candidate_key, *similarities in rows:
            score = round(sum(weight * value for (_, weight), value in zip(weights, similarities, strict=True)), 4)
            detail = ", ".join(
                f"{field} {round(value, 2)}" for (field, _), value in zip(weights, similarities, strict=True)
            )
            scored[own_key].append(Candidate(candidate_key, score, detail))
        for candidates in scored.values():
            candidates.sort(key=lambda candidate: (-candidate.score, candidate.key))
        return scored

    def _decide(self, probe: Probe, candidates: list[Candidate], probe_keys: set[str]) -> str:
        """The entity a probe joins: the clear best match at or above the threshold, else its own."""
        if not candidates:
            return probe.own_key
        best = candidates[0]
        runner_up = candidates[1].score if len(candidates) > 1 else 0.0
        clear = best.score >= self.rules.threshold and best.score - runner_up >= self.rules.ambiguity_margin
        if not clear:
            return probe.own_key
        if best.key in probe_keys and best.key > probe.own_key:
            return probe.own_key
        return best.key

    def _match_on_similarity(self, cursor: duckdb.DuckDBPyConnection, entity: Entity, now: datetime) -> set[str]:
        """Merge, separate or list for review every probe; return the entities that gained or lost copies."""
        probes = self._probes(cursor, entity)
        if not probes:
            return set()
        scored = self._candidates(cursor, entity)
        own_keys = {probe.own_key for probe in probes}
        targets = {probe.own_key: self._decide(probe, scored.get(probe.own_key, []), own_keys) for probe in probes}
        matches: list[dict[str, Any]] = []
        reviews: list[dict[str, Any]] = []
        for own_key in targets:
            while targets[own_key] in targets and targets[targets[own_key]] != targets[own_key]:
                targets[own_key] = targets[targets[own_key]]
        for probe in probes:
            target = targets[probe.own_key]
            candidates = scored.get(probe.own_key, [])
            merged = target != probe.own_key
            matches.append(
                {
                    "kind": entity.kind,
                    "source": probe.source,
                    "source_record_id": probe.source_record_id,
                    "entity_key": target,
                    "method": "fuzzy" if merged else "unmatched",
                    "confidence": candidates[0].score if merged else None,
                    "matched_at": now,
                }
            )
            if not merged:
                reviews.extend(
                    {
                        "kind": entity.kind,
                        "source": probe.source,
                        "source_record_id": probe.source_record_id,
                        "candidate_key": candidate.key,
                        "score": candidate.score,
                        "detail": candidate.detail,
                        "listed_at": now,
                    }
                    for candidate in candidates[:REVIEW_CANDIDATES]
                    if candidate.score >= self.rules.review_floor
                    and targets.get(candidate.key, candidate.key) == candidate.key
                )
        cursor.execute(
            "DELETE FROM match_review WHERE kind = $kind AND (source, source_record_id) IN "
            "(SELECT (source, source_record_id) FROM probes)",
            {"kind": entity.kind},
        )
        upsert_rows(cursor, "match_review", "kind, source, source_record_id, candidate_key", reviews)
        upsert_rows(cursor, "entity_matches", "kind, source, source_record_id", matches)
        return {probe.current_key for probe in probes} | {row["entity_key"] for row in matches} | own_keys

    def apply_decisions(
        self, cursor: duckdb.DuckDBPyConnection, decisions: list[dict[str, Any]], now: datetime
    ) -> None:
        """Record reviewers' decisions and move the copies they name; a strong key still outranks a reviewer."""
        upsert_rows(cursor, "match_decisions", "kind, source, source_record_id", decisions)
        for kind in sorted({decision["kind"] for decision in decisions}):
            entity = ENTITIES[kind]
            named = [decision for decision in decisions if decision["kind"] == kind]
            cursor.register("batch_ids", pa.Table.from_pylist(named).select(["source", "source_record_id"]))
            try:
                touched = self._match_on_strong_keys(cursor, entity, now)
                cursor.execute(
                    "DELETE FROM match_review WHERE kind = $kind AND (source, source_record_id) IN "
                    "(SELECT (source, source_record_id) FROM batch_ids)",
                    {"kind": kind},
                )
                self._rebuild(cursor, entity, touched, now)
            finally:
                cursor.unregister("batch_ids")

    def _golden_rows_sql(self, entity: Entity) -> str:
        """The golden rows of the ``touched`` entities, from their copies and the survivorship rules.

        An entity with one copy is that copy: only the entities with several go through the ordered
        aggregates, which cost a first load (one copy each) half of this statement (bench/PROFILE.md).
        """
        survivors = ", ".join(
            f"first(s.{field} ORDER BY {self.rules.rank_sql(entity.kind, field)}, s.received_at DESC, s.source, "
            f"s.source_record_id) FILTER (WHERE s.{field} IS NOT NULL) AS {field}"
            for field in entity.fields
        )
        sole = ", ".join(f"s.{field}" for field in entity.fields)
        copies = read_by_row_id(
            entity.sources_table,
            f"SELECT m.entity_key, s.rowid AS found_row FROM {entity.sources_table} s JOIN entity_matches m "
            "ON m.kind = $kind AND m.source = s.source AND m.source_record_id = s.source_record_id "
            "WHERE m.entity_key IN (SELECT entity_key FROM touched)",
            carried=("entity_key",),
        )
        return (
            f"WITH copies AS MATERIALIZED ({copies}), "
            f"shared AS MATERIALIZED (SELECT entity_key FROM copies GROUP BY entity_key HAVING count(*) > 1) "
            f"SELECT s.entity_key AS {entity.key_column}, {sole}, CAST(1 AS INTEGER) AS source_count, "
            f"  [s.source] AS sources, s.received_at AS first_received_at, s.received_at AS last_received_at, "
            f"  now() AS resolved_at "
            f"FROM copies s ANTI JOIN shared USING (entity_key) "
            f"UNION ALL "
            f"SELECT s.entity_key AS {entity.key_column}, {survivors}, CAST(count(*) AS INTEGER) AS source_count, "
            f"  list(DISTINCT s.source ORDER BY s.source) AS sources, min(s.received_at) AS first_received_at, "
            f"  max(s.received_at) AS last_received_at, now() AS resolved_at "
            f"FROM copies s SEMI JOIN shared USING (entity_key) GROUP BY s.entity_key"
        )

    def _rebuild(self, cursor: duckdb.DuckDBPyConnection, entity: Entity, keys: set[str], now: datetime) -> None:
        """Recompute the golden rows of ``keys`` from their copies; drop entities left with none.

        The entities left with none are found from the touched side, so a batch of a few changed
        copies does not build a table of every matched entity to learn that none is gone.
        """
        if not keys:
            return
        golden, key = entity.golden_table, entity.key_column
        cursor.register("touched", pa.table({"entity_key": sorted(keys)}))
        try:
            replace_keyed(cursor, golden, key, self._golden_rows_sql(entity), kind=entity.kind)
            gone = cursor.execute(
                "SELECT entity_key FROM touched EXCEPT SELECT m.entity_key FROM entity_matches m "
                "SEMI JOIN touched t ON m.entity_key = t.entity_key WHERE m.kind = $kind",
                {"kind": entity.kind},
            ).fetchall()
            cursor.register("gone", pa.table({"entity_key": pa.array([found for (found,) in gone], pa.string())}))
            if gone:
                cursor.execute(f"DELETE FROM {golden} WHERE {key} IN (SELECT entity_key FROM gone)")
            record_versions(
                cursor,
                golden,
                read_by_row_id(
                    golden, f"SELECT rowid AS found_row FROM {golden} WHERE {key} IN (SELECT entity_key FROM touched)"
                ),
                now,
                gone=f"SELECT entity_key AS {key} FROM gone" if gone else None,
            )
        finally:
            cursor.unregister("touched")
            cursor.unregister("gone")
