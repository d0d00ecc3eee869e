"""Wire format of what the stream agents publish after a raw record is decided.

Every raw record leaves exactly one trace the warehouse can count: a canonical
message, a reject, or a duplicate notice. Each carries the same ``meta`` block,
which is how ``gridhub ingest --wait`` knows when a run is fully accounted for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.records import Canonical, RawEnvelope, Reject

Outcome = Literal["new", "update", "duplicate", "rejected"]


def _meta(envelope: RawEnvelope, outcome: Outcome, fingerprint: str | None) -> dict[str, Any]:
    return {
        "record_uid": envelope.record_uid,
        "source": envelope.source,
        "source_record_id": envelope.source_record_id,
        "entity": envelope.entity,
        "run_id": envelope.run_id,
        "received_at": envelope.received_at.isoformat(),
        "processed_at": datetime.now(UTC).isoformat(),
        "outcome": outcome,
        "fingerprint": fingerprint,
    }


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, default=str).encode()


def canonical_message(
    envelope: RawEnvelope, record: Canonical, fingerprint: str, outcome: Literal["new", "update"]
) -> bytes:
    """A canonical record for ``canonical.<kind>``."""
    return _dump({"record": record.model_dump(mode="json"), "meta": _meta(envelope, outcome, fingerprint)})


def duplicate_message(envelope: RawEnvelope, fingerprint: str) -> bytes:
    """Notice that a record was absorbed as a duplicate, for the intake ledger."""
    return _dump({"meta": _meta(envelope, "duplicate", fingerprint)})


def reject_message(reject: Reject) -> bytes:
    """A reject envelope for the ``rejects`` topic."""
    return reject.model_dump_json().encode()


def work_order_message(record: Canonical, department: str, limit_hours: float) -> bytes:
    """A work order for a department's ``dispatch.<department>`` topic."""
    return _dump(
        {
            "work_order": record.model_dump(mode="json"),
            "department": department,
            "limit_hours": limit_hours,
            "routed_at": datetime.now(UTC).isoformat(),
        }
    )
