"""The sink reads canonical records and rejects of every contract version it knows, and refuses the others."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from schemas.topics import CANONICAL_BATCHES, REJECTS, canonical_topic
from schemas.versions import CONTRACTS
from tests.support.contracts import written_of
from warehouse.decode import decode_message


def _message(kind: str, record: dict[str, Any], **meta: Any) -> bytes:
    provenance = {
        "record_uid": f"uid-{kind}",
        "source": "patrol",
        "source_record_id": f"{kind}-1",
        "entity": kind,
        "run_id": None,
        "received_at": "2026-11-25T03:30:00+00:00",
        "processed_at": "2026-11-25T03:30:01+00:00",
        "outcome": "new",
        "fingerprint": "f" * 64,
    }
    return json.dumps({"record": record, "meta": {**provenance, **meta}}, ensure_ascii=False).encode()


def test_a_record_without_a_version_is_read_as_version_1_and_upgraded() -> None:
    entry = written_of("event_update")[0]
    batch = decode_message(canonical_topic("event_update"), 0, 0, _message("event_update", entry.document))
    assert not batch.rejects
    [row] = batch.entities["event_update"]
    assert "at" not in row
    assert {name: row[name] for name in entry.expect} == entry.expect
    assert [(entry["record_uid"], entry["outcome"]) for entry in batch.intake] == [("uid-event_update", "new")]


def test_a_record_of_an_older_version_gets_what_the_current_model_derives() -> None:
    entry = written_of("place")[0]
    batch = decode_message(canonical_topic("place"), 0, 0, _message("place", entry.document, record_version=1))
    [row] = batch.entities["place"]
    assert (row["match_key"], row["address_norm"]) == (entry.expect["match_key"], entry.expect["address_norm"])


def test_a_record_of_a_future_version_is_the_sink_own_reject_counted_under_its_uid() -> None:
    future = CONTRACTS["person"].version + 1
    record = written_of("person")[-1].document
    batch = decode_message(canonical_topic("person"), 0, 5, _message("person", record, record_version=future))
    assert "person" not in batch.entities
    [reject] = batch.rejects
    assert (reject["stage"], reject["reason_code"], reject["record_uid"]) == (
        "sink",
        "unknown_contract_version",
        "uid-person",
    )
    assert (reject["topic"], reject["message_offset"]) == ("canonical.person", 5)
    assert f"reads person versions 1 to {future - 1}" in reject["reason"]
    assert [(entry["record_uid"], entry["outcome"]) for entry in batch.intake] == [("uid-person", "rejected")]


def test_a_reject_of_the_first_version_is_stored_with_what_it_could_not_know_empty() -> None:
    entry = written_of("reject")[0]
    batch = decode_message(REJECTS, 0, 0, entry.value)
    [reject] = batch.rejects
    assert {name: reject[name] for name in entry.expect} == entry.expect
    assert reject["record_uid"] == entry.document["record_uid"]


def _batch(kind: str, **metadata: str) -> bytes:
    """A canonical batch of one row of ``kind`` with the given metadata (no versions unless given)."""
    table = pa.table({"record_uid": ["b1"], "source_record_id": ["c1"], "fingerprint": ["f"], "case_id": ["E-1"]})
    table = table.replace_schema_metadata(
        {"kind": kind, "source": "civil", "received_at": "2026-11-26T04:00:00+00:00", **metadata}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_a_canonical_batch_of_a_future_version_is_one_reject_at_its_place() -> None:
    future = str(CONTRACTS["record_batch"].version + 1)
    batch = decode_message(CANONICAL_BATCHES, 0, 3, _batch("person", schema_version=future))
    assert [(reject["reason_code"], reject["message_offset"]) for reject in batch.rejects] == [
        ("unknown_contract_version", 3)
    ]
    assert "record_batch of contract version" in batch.rejects[0]["reason"]
    assert not batch.bulk


def test_a_canonical_batch_whose_rows_cannot_be_upgraded_is_refused_not_raised() -> None:
    batch = decode_message(CANONICAL_BATCHES, 0, 4, _batch("case"))
    assert [reject["reason_code"] for reject in batch.rejects] == ["undecodable_at_sink"]
    assert "cannot be upgraded" in batch.rejects[0]["reason"]
