"""Wire format of what the stream agents publish after a raw record is decided.

Every raw record leaves exactly one trace the warehouse can count: a canonical
message, a reject, or a duplicate notice. Each carries the same ``meta`` block,
which is how ``gridhub ingest --wait`` knows when a run is fully accounted for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.personal import scrub_text
from schemas.records import Canonical, CaseRecord, RawEnvelope
from schemas.rejects import Reject
from schemas.versions import CONTRACTS

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


def _carrying(record: Canonical, meta: dict[str, Any]) -> bytes:
    """A record and its meta, which names the version of the record's contract (the sink reads older ones)."""
    version = CONTRACTS[record.kind].version
    return _dump({"record": record.model_dump(mode="json"), "meta": {**meta, "record_version": version}})


def canonical_message(
    envelope: RawEnvelope, record: Canonical, fingerprint: str, outcome: Literal["new", "update"]
) -> bytes:
    """A canonical record for ``canonical.<kind>``."""
    return _carrying(record, _meta(envelope, outcome, fingerprint))


def derived_message(envelope: RawEnvelope | None, record: Canonical) -> bytes:
    """A record the stream derived (a case, a transition) from the raw record that caused it.

    It carries that record's provenance (none for the stream's own clock ticks) but is no outcome
    of it, so the intake ledger skips it.
    """
    now = datetime.now(UTC).isoformat()
    base = (
        _meta(envelope, "new", None)
        if envelope is not None
        else {"record_uid": None, "source": "gridhub", "source_record_id": None, "received_at": now}
    )
    meta = {**base, "entity": record.kind, "derived_kind": record.kind, "processed_at": now}
    return _carrying(record, meta)


def restored_message(record: Canonical, lineage: dict[str, Any]) -> bytes:
    """A derived record put back on its topic from the warehouse, for a new broker, with the lineage the warehouse kept.

    Like :func:`derived_message` it is no outcome of a raw record, so the intake ledger skips it.
    """
    meta = {
        **lineage,
        "entity": record.kind,
        "derived_kind": record.kind,
        "processed_at": datetime.now(UTC).isoformat(),
    }
    return _carrying(record, meta)


def alert_message(case: CaseRecord, now: datetime) -> bytes:
    """An overdue alert for ``alerts.overdue``: the case as it stands and how late it is."""
    hours_late = round((now - case.due_at).total_seconds() / 3600, 2)
    return _dump({"alert": "overdue", "case": case.model_dump(mode="json"), "hours_late": hours_late, "at": now})


def escalation_message(case: CaseRecord, now: datetime, level: int | None, zh: str) -> bytes:
    """An alert for ``alerts.escalation``: a case reaching a level of supervision (督办), or its review date.

    ``level`` is the level reached (alert ``escalation``), or None for a parked case (挂账) whose
    review date passed (alert ``review_due``); ``zh`` names it for the command centre's staff.
    ``hours_late`` runs from the deadline, or from the review date.
    """
    since = case.due_at if level is not None else case.review_at or case.due_at
    return _dump(
        {
            "alert": "escalation" if level is not None else "review_due",
            "level": level,
            "zh": zh,
            "case": case.model_dump(mode="json"),
            "hours_late": round((now - since).total_seconds() / 3600, 2),
            "at": now,
        }
    )


def duplicate_message(envelope: RawEnvelope, fingerprint: str) -> bytes:
    """Notice that a record was absorbed as a duplicate, for the intake ledger."""
    return _dump({"meta": _meta(envelope, "duplicate", fingerprint)})


def reject_message(reject: Reject) -> bytes:
    """A reject envelope for the ``rejects`` topic, naming the version of the reject's contract."""
    return _dump({**reject.model_dump(mode="json"), "schema_version": CONTRACTS["reject"].version})


WORK_ORDER_FIELDS = (
    "event_id", "case_id", "category", "category_name", "department", "description", "reported_at", "status",
    "lat", "lon", "grid_code", "squad", "community", "photo_refs", "subject_uscc", "object_id", "place_id",
)  # fmt: skip
"""What a desk needs to act on a report: what, where, when, the photos and what it concerns.

Not who reported it (``reporter_id``) nor the resident it is about (``subject_id_number``), and
an identity or mobile number typed into the description is masked (``scrub_text``): a
work order travels to every department's desk and its systems, and data minimisation (PIPL
art. 6) keeps identity numbers where they are needed, in the warehouse behind its roles.
"""


def work_order_message(record: Canonical, department: str, limit_hours: float) -> bytes:
    """A work order for a department's ``dispatch.<department>`` topic, minimised to :data:`WORK_ORDER_FIELDS`."""
    fields = record.model_dump(mode="json")
    if fields.get("description"):
        fields["description"] = scrub_text(fields["description"])
    return _dump(
        {
            "work_order": {name: fields[name] for name in WORK_ORDER_FIELDS if name in fields},
            "department": department,
            "limit_hours": limit_hours,
            "routed_at": datetime.now(UTC).isoformat(),
        }
    )
