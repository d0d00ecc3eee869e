"""The worker's bulk lane: validate a whole Arrow batch of export rows at once.

A kind with a vectorised fast path (people, the bulk of every register) has the rows it
is sure of checked column-wise; every other row goes through the same canonical model
and placement as a single record on the per-record lane, so a row is accepted or refused
for the same reason whichever lane brought it. Deciding new, update or duplicate is left
to the sink, which holds every source's last copy and compares fingerprints for a whole
batch in one join: a per-row dedup table would cost a changelog write per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.approvals import ApprovalCatalogue
from schemas.batches import BULK_KINDS, PROVENANCE_COLUMNS, RecordBatch
from schemas.grid import Grid
from schemas.records import RawEnvelope
from schemas.rejects import Reject, RejectStage
from streams.batch_people import PeopleBatch, normalise_people
from streams.normalise import Accepted, normalise_envelope
from streams.routing import RoutingRules
from streams.seen_rows import Learned, Refusal, SeenRows, triage

FAST_PATHS: dict[str, Callable[[pa.Table], PeopleBatch]] = {"person": normalise_people}
"""Kinds with a vectorised validation: it returns the rows it accepted (with their input index) and
the rows it leaves to the canonical model."""


@dataclass(frozen=True)
class BatchOutcome:
    """What one raw batch became: its canonical rows (possibly none), its rejects, and its seen rows.

    ``learned`` is what the seen-rows memory takes in once the canonical rows are delivered.
    """

    accepted: RecordBatch | None
    rejects: list[Reject]
    seen: RecordBatch | None = None
    learned: Learned | None = None


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    """A raw row's values as its source sent them, without the provenance the batch added."""
    return {name: value for name, value in row.items() if name not in (*PROVENANCE_COLUMNS, "content_hash")}


def _envelope(batch: RecordBatch, row: dict[str, Any]) -> RawEnvelope:
    return RawEnvelope(
        record_uid=row["record_uid"],
        source=batch.source,
        source_record_id=row["source_record_id"],
        entity=batch.kind,  # type: ignore[arg-type]
        received_at=batch.received_at,
        content_hash=row.get("content_hash") or "",
        run_id=batch.run_id,
        payload=_payload(row),
    )


def _canonical_row(accepted: Accepted, index: int) -> dict[str, Any]:
    return {
        "row": index,
        "record_uid": accepted.envelope.record_uid,
        "source_record_id": accepted.envelope.source_record_id,
        **accepted.record.model_dump(mode="json"),
        "fingerprint": accepted.fingerprint,
    }


def _reject(batch: RecordBatch, row: dict[str, Any], stage: RejectStage, code: str, reason: str) -> Reject:
    """A raw row's reject, with the provenance :func:`streams.normalise.rejection` gives a record's."""
    return Reject.build(
        stage,
        code,
        reason,
        _payload(row),
        record_uid=row["record_uid"],
        source=batch.source,
        source_record_id=row["source_record_id"],
        entity=batch.kind,
        run_id=batch.run_id,
    )


def _reject_all(batch: RecordBatch, stage: RejectStage, code: str, reason: str) -> list[Reject]:
    return [_reject(batch, row, stage, code, reason) for row in batch.rows.to_pylist()]


def failed_batch(batch: RecordBatch, error: Exception) -> BatchOutcome:
    """Keep every row of a batch that hit a bug, so the batch can be replayed after the fix."""
    reason = f"gridhub could not process this record's batch ({type(error).__name__}: {error}); report it as a bug"
    return BatchOutcome(None, _reject_all(batch, "internal", "internal_error", reason))


def normalise_batch(
    batch: RecordBatch, rules: RoutingRules, grid: Grid | None = None, catalogue: ApprovalCatalogue | None = None
) -> BatchOutcome:
    """Validate, normalise and place every row of a raw batch; rows keep their order."""
    if batch.kind not in BULK_KINDS:
        reason = (
            f"{batch.kind!r} records cannot travel in batches (only {', '.join(sorted(BULK_KINDS))} can); "
            "publish them one by one to their raw topic"
        )
        return BatchOutcome(None, _reject_all(batch, "decode", "bad_envelope", reason))
    parts: list[pa.Table] = []
    remaining = pa.array(range(batch.rows.num_rows), pa.int64())
    fast_path = FAST_PATHS.get(batch.kind)
    if fast_path is not None:
        fast = fast_path(batch.rows)
        provenance = batch.rows.select(list(PROVENANCE_COLUMNS)).take(fast.accepted.column("row"))
        accepted = fast.accepted
        for name in reversed(PROVENANCE_COLUMNS):
            accepted = accepted.add_column(1, name, provenance.column(name))
        parts.append(accepted)
        remaining = fast.undecided
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for index, row in zip(remaining.to_pylist(), batch.rows.take(remaining).to_pylist(), strict=True):
        decision = normalise_envelope(_envelope(batch, row), rules, grid, catalogue)
        if isinstance(decision, Accepted):
            rows.append(_canonical_row(decision, index))
        else:
            rejects.append(decision.reject)
    if rows:
        parts.append(pa.Table.from_pylist(rows))
    parts = [part for part in parts if part.num_rows]
    if not parts:
        return BatchOutcome(None, rejects)
    table = pa.concat_tables(parts, promote_options="permissive")
    table = table.take(pc.sort_indices(table.column("row"))).drop_columns(["row"])
    canonical = RecordBatch(
        kind=batch.kind,
        source=batch.source,
        run_id=batch.run_id,
        received_at=batch.received_at,
        rows=table,
        processed_at=datetime.now(UTC),
    )
    return BatchOutcome(canonical, rejects)


def normalise_unseen(
    batch: RecordBatch,
    memory: SeenRows | None,
    rules: RoutingRules,
    grid: Grid | None = None,
    catalogue: ApprovalCatalogue | None = None,
) -> BatchOutcome:
    """:func:`normalise_batch` for the rows ``memory`` has not judged before; the others pass as seen rows.

    A row whose content was refused before is refused again for the same reason, unvalidated: a
    department re-sends its bad rows every night as well, and validating the 1% of a re-sync that
    was refused (one record at a time, through the canonical model) took an eighth of the worker's
    busy time in an unchanged re-sync of a million rows, and sending their rejects another 8%
    (bench/PROFILE.md).
    """
    if memory is None or not memory.enabled or batch.kind not in BULK_KINDS:
        return normalise_batch(batch, rules, grid, catalogue)
    split = triage(memory, batch)
    outcome = normalise_batch(split.fresh, rules, grid, catalogue) if len(split.fresh) else BatchOutcome(None, [])
    for reject in outcome.rejects:
        digests = split.pending.get(reject.record_uid)
        if digests is not None and reject.stage != "internal":
            memory.refuse(*digests, split.day, Refusal(reject.stage, reject.reason_code, reject.reason))
    again = [
        _reject(batch, row, refusal.stage, refusal.reason_code, refusal.reason)
        for row, refusal in zip(split.refused.to_pylist(), split.refusals, strict=True)
    ]
    return replace(
        outcome, rejects=[*outcome.rejects, *again], seen=split.seen, learned=split.learned(outcome.accepted)
    )
