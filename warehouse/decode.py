"""Turn messages from the sink's topics into warehouse rows (pure, no I/O)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from schemas.batches import BatchFormatError, decode_batch
from schemas.decisions import MatchDecision
from schemas.rejects import Reject
from schemas.topics import CANONICAL_BATCHES, DUPLICATES, MATCH_DECISIONS, REJECTS
from warehouse.writer import Batch

LINEAGE = ("source", "source_record_id", "record_uid", "fingerprint", "received_at")


def _intake(meta: dict[str, Any], outcome: str, reason_code: str | None, now: datetime) -> dict[str, Any]:
    return {
        "record_uid": meta["record_uid"],
        "run_id": meta.get("run_id"),
        "source": meta.get("source"),
        "source_record_id": meta.get("source_record_id"),
        "entity": meta.get("entity"),
        "outcome": outcome,
        "reason_code": reason_code,
        "received_at": meta.get("received_at"),
        "processed_at": meta.get("processed_at"),
        "written_at": now,
    }


def _undecodable(
    batch: Batch, topic: str, partition: int, offset: int, value: bytes, problem: str, now: datetime
) -> None:
    """A message the sink cannot read is kept as a reject too: the sink never drops silently.

    It is known by where it sits and what it holds, so reading it again (a replayed topic) finds the
    same reject, while another unreadable message never takes its place: not one at the same offset
    of another partition, nor one of a later incarnation of the topic (a restarted embedded broker).
    """
    uid = f"{topic}[{partition}]@{offset}#{hashlib.sha256(value).hexdigest()[:16]}"
    reason = f"the warehouse sink could not read this message from {topic}: {problem}"
    reject = Reject.build(
        "sink", "undecodable_at_sink", reason, value, record_uid=uid, source_record_id=uid, rejected_at=now
    )
    batch.rejects.append(reject.model_dump(mode="json"))
    batch.intake.append(_intake({"record_uid": uid}, "rejected", "undecodable_at_sink", now))


def decode_message(topic: str, partition: int, offset: int, value: bytes, now: datetime | None = None) -> Batch:
    """One message as a batch of its own, holding the offset after it.

    The sink weighs each message before it joins a transaction, and the offsets a transaction
    stores are then exactly those of the messages it holds.
    """
    batch = Batch(offsets={(topic, partition): offset + 1})
    _add(batch, topic, partition, offset, value, now or datetime.now(UTC))
    return batch


def _add(batch: Batch, topic: str, partition: int, offset: int, value: bytes, now: datetime) -> None:
    """Decode one message into the batch's rows and ledger entries."""
    if topic == CANONICAL_BATCHES:
        try:
            part = decode_batch(value)
        except BatchFormatError as exc:
            _undecodable(batch, topic, partition, offset, value, str(exc), now)
        else:
            batch.bulk.setdefault(part.kind, []).append(part)
        return
    try:
        document = json.loads(value)
        if topic == REJECTS:
            batch.rejects.append(document)
            meta = {**document, "processed_at": document.get("rejected_at")}
            batch.intake.append(_intake(meta, "rejected", document["reason_code"], now))
        elif topic == MATCH_DECISIONS:
            batch.decisions.append(MatchDecision.model_validate_json(value).model_dump())
        elif topic == DUPLICATES:
            batch.intake.append(_intake(document["meta"], "duplicate", None, now))
        else:
            meta = document["meta"]
            row = {**document["record"], **{name: meta.get(name) for name in LINEAGE}, "loaded_at": now}
            kind = meta.get("derived_kind") or meta["entity"]
            batch.entities.setdefault(kind, []).append(row)
            if not meta.get("derived_kind"):
                batch.intake.append(_intake(meta, meta["outcome"], None, now))
    except (ValueError, KeyError, TypeError) as exc:
        _undecodable(batch, topic, partition, offset, value, f"{type(exc).__name__}: {exc}", now)
