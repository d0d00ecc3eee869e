"""Send rejected records through the whole pipeline again, once the mapping or catalogue that refused them is fixed.

Each open reject becomes what its source's door would have published: a record refused by the
worker or the warehouse is published again as a raw record of its source (the worker judges it
with today's catalogues and rules); a change row the approval system's mapping could not map is
mapped again with today's mapping file, and refused again by the same door if it still cannot be.
What the hub never read as a record (a line no reader could parse, a message that was not JSON, a
payload kept only by its hash) cannot be rebuilt here: it must be sent again from its source.

Sending again is safe whatever happens meanwhile: the worker dedups by source record and content,
and the sink closes a reject only when a later outcome of its record is written
(:func:`warehouse.rejects.close_resolved`), so a replay that is cut short is simply run again.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from connectors.approvals_mapping import (
    ApprovalsMapping,
    UnmappedChannel,
    UnmappedCode,
    UnmappedStatus,
    load_mapping,
)
from connectors.publisher import RawPublisher, make_envelope
from schemas.approvals import CHANGE_SEQ_FIELD
from schemas.records import EntityKind, RawEnvelope
from schemas.rejects import Reject
from schemas.runs import new_run_id
from schemas.topics import DOOR_TOPICS, RAW_APPROVALS, RAW_EXPORTS

PROVENANCE = frozenset(
    {
        "source",
        "source_record_id",
        "record_uid",
        "fingerprint",
        "received_at",
        "loaded_at",
        "run_id",
        "topic",
        "partition",
        "message_offset",
    }
)
"""What the warehouse adds to a record: a reject of its contract keeps the row with it, the source never sent it."""
RECORD_STAGES = frozenset({"validate", "route", "lifecycle", "internal", "warehouse"})
"""Stages whose rejects keep the record's payload as its source's door published it (or the row the sink refused)."""
ENTITIES: frozenset[str] = frozenset(get_args(EntityKind))
MAPPING_REFUSALS = frozenset({UnmappedStatus.reason_code, UnmappedChannel.reason_code})
"""Reasons the approval system's door refuses a change row for: a code its mapping file does not map."""


@dataclass(frozen=True)
class Resend:
    """A rejected record rebuilt as its door would publish it."""

    topic: str
    envelope: RawEnvelope


@dataclass(frozen=True)
class Refusal:
    """A rejected record refused again by its door (the mapping still cannot map it)."""

    reject: Reject


@dataclass(frozen=True)
class NotReplayable:
    """A reject that holds no record to send again, and what to do instead."""

    reason: str


Plan = Resend | Refusal | NotReplayable


@dataclass
class ReplayReport:
    """What a replay did: how many records went out again, refused again at the door, or could not be rebuilt."""

    run_id: str
    sent: int = 0
    refused_at_door: int = 0
    not_replayable: Counter[str] = field(default_factory=Counter)

    @property
    def published(self) -> int:
        """Records whose outcome the warehouse will account for under this run."""
        return self.sent + self.refused_at_door


def plan(reject: dict[str, Any], run_id: str, mapping: Callable[[], ApprovalsMapping]) -> Plan:
    """What to publish for one open reject (``mapping`` is read only when a change row needs it)."""
    payload_text = reject.get("payload")
    if payload_text is None:
        return NotReplayable("kept only by its hash (too large to keep): send it again from its source")
    if reject["entity"] not in ENTITIES or reject["source_record_id"] == "unknown":
        return NotReplayable("it names no record of a known kind: send it again from its source")
    try:
        payload = json.loads(payload_text)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return NotReplayable("the hub never read it as a record: send it again from its source")
    source, record_id, entity = reject["source"], reject["source_record_id"], reject["entity"]
    topic = DOOR_TOPICS.get(source, RAW_EXPORTS)
    if topic == RAW_APPROVALS and reject["reason_code"] in MAPPING_REFUSALS:
        return _mapped_again(reject, payload, run_id, mapping())
    if reject["stage"] not in RECORD_STAGES:
        return NotReplayable(
            f"refused at stage {reject['stage']} before it was a record: send it again from its source"
        )
    record = {name: value for name, value in payload.items() if name not in PROVENANCE}
    return Resend(topic, make_envelope(source, record_id, entity, record, run_id))


def _mapped_again(reject: dict[str, Any], row: dict[str, Any], run_id: str, mapping: ApprovalsMapping) -> Plan:
    """A change row the approval system's door refused, mapped again with today's mapping file."""
    try:
        payload = mapping.payload(row)
    except UnmappedCode as exc:
        return Refusal(
            Reject.build(
                "validate",
                exc.reason_code,
                str(exc),
                row,
                record_uid=uuid.uuid4().hex,
                source=reject["source"],
                source_record_id=reject["source_record_id"],
                entity=reject["entity"],
                run_id=run_id,
            )
        )
    except KeyError as exc:
        return NotReplayable(f"the mapping names column {exc} that this change row lacks: fix the mapping")
    if mapping.cursor_column in row:
        payload[CHANGE_SEQ_FIELD] = row[mapping.cursor_column]
    return Resend(
        RAW_APPROVALS, make_envelope(reject["source"], reject["source_record_id"], reject["entity"], payload, run_id)
    )


def replay(rejects: list[dict[str, Any]], publisher: RawPublisher | None, mapping_path: Path) -> ReplayReport:
    """Publish what each open reject becomes under one new run; return once Kafka has all of it.

    Without a publisher nothing is sent: the report says what a replay would do (``--dry-run``).
    """
    report = ReplayReport(new_run_id())
    loaded: list[ApprovalsMapping] = []

    def mapping() -> ApprovalsMapping:
        if not loaded:
            loaded.append(load_mapping(mapping_path))
        return loaded[0]

    for reject in rejects:
        step = plan(reject, report.run_id, mapping)
        if isinstance(step, NotReplayable):
            report.not_replayable[step.reason] += 1
        elif isinstance(step, Refusal):
            report.refused_at_door += 1
            if publisher is not None:
                publisher.reject(step.reject)
        else:
            report.sent += 1
            if publisher is not None:
                publisher.publish(step.topic, step.envelope)
    if publisher is not None:
        publisher.flush("replaying rejects")
    return report
