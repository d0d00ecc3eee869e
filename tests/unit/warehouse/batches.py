"""Canonical bulk-lane batches as the worker sends them to the sink, for the warehouse's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from schemas.batches import RecordBatch
from schemas.records import Person
from streams.normalise import fingerprint

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def canonical(run: str, rows: list[tuple[str, dict[str, Any]]]) -> RecordBatch:
    """A canonical batch as the worker sends it: record uid, record id, the model's dump, its fingerprint."""
    records = []
    for uid, fields in rows:
        person = Person.model_validate(fields)
        records.append(
            {
                "record_uid": uid,
                "source_record_id": person.key,
                **person.model_dump(mode="json"),
                "fingerprint": fingerprint(person),
            }
        )
    return RecordBatch("person", "civil-affairs", run, T0, pa.Table.from_pylist(records), processed_at=T0)
