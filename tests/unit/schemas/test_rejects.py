"""The reject contract: one shape, built one way, whoever refused the record."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.rejects import MAX_PAYLOAD_BYTES, Reject


def test_a_reject_keeps_its_provenance_and_a_mapping_payload_as_readable_json() -> None:
    at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    payload = {"姓名": "张三", "seen": at}
    reject = Reject.build(
        "warehouse",
        "contract_violation",
        "warehouse contract: name must be present",
        payload,
        record_uid="uid-1",
        source="civil-affairs",
        source_record_id="row-1",
        entity="person",
        run_id="run-1",
        rejected_at=at,
    )
    assert reject.model_dump() == {
        "record_uid": "uid-1",
        "source": "civil-affairs",
        "source_record_id": "row-1",
        "entity": "person",
        "stage": "warehouse",
        "reason_code": "contract_violation",
        "reason": "warehouse contract: name must be present",
        "payload": json.dumps(payload, ensure_ascii=False, default=str),
        "run_id": "run-1",
        "rejected_at": at,
        "topic": None,
        "partition": None,
        "message_offset": None,
        "error": None,
        "payload_sha256": hashlib.sha256(json.dumps(payload, ensure_ascii=False, default=str).encode()).hexdigest(),
        "payload_bytes": len(json.dumps(payload, ensure_ascii=False, default=str).encode()),
    }
    assert "张三" in reject.payload


def test_bytes_without_provenance_are_known_by_their_hash_and_kept_as_text() -> None:
    raw = b"\xff not json"
    reject = Reject.build("decode", "bad_json", "message is not valid JSON", raw)
    assert reject.record_uid == hashlib.sha256(raw).hexdigest()
    assert (reject.source, reject.source_record_id, reject.entity, reject.run_id) == (
        "unknown",
        "unknown",
        "unknown",
        None,
    )
    assert reject.payload == raw.decode("utf-8", errors="replace")
    assert reject.rejected_at.tzinfo is not None


def test_the_sink_stage_is_a_reject_stage_and_an_invented_one_is_not() -> None:
    assert Reject.build("sink", "undecodable_at_sink", "unreadable", "x", record_uid="t@1").stage == "sink"
    with pytest.raises(ValidationError, match="stage"):
        Reject.build("teleport", "c", "r", "x")  # type: ignore[arg-type]


def test_a_payload_too_large_to_travel_is_kept_as_its_hash_and_size() -> None:
    raw = bytes(range(256)) * 1024  # 256 KiB of Arrow-like bytes: as escaped JSON text, several MB
    reject = Reject.build("decode", "bad_batch", "not a record batch", raw)
    assert reject.payload is None
    assert (reject.payload_sha256, reject.payload_bytes) == (hashlib.sha256(raw).hexdigest(), len(raw))
    assert len(reject.model_dump_json()) < MAX_PAYLOAD_BYTES
    small = Reject.build("decode", "bad_batch", "not a record batch", raw[:MAX_PAYLOAD_BYTES])
    assert small.payload == raw[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")


def test_a_reject_placed_at_its_message_is_known_by_that_place_when_it_has_no_uid_of_its_own() -> None:
    raw = b"not json"
    first = Reject.build("decode", "bad_json", "message is not valid JSON", raw).at("raw.patrol", 2, 7)
    second = Reject.build("decode", "bad_json", "message is not valid JSON", raw).at("raw.patrol", 2, 8)
    assert (first.topic, first.partition, first.message_offset) == ("raw.patrol", 2, 7)
    assert first.record_uid == f"raw.patrol[2]@7#{hashlib.sha256(raw).hexdigest()[:16]}"
    assert first.record_uid != second.record_uid
    named = Reject.build("validate", "missing_name", "name: missing", {"id": 1}, record_uid="uid-1")
    assert named.at("raw.exports", 0, 3, KeyError("name")).model_dump(include={"record_uid", "error"}) == {
        "record_uid": "uid-1",
        "error": "KeyError: 'name'",
    }


def test_a_reject_published_before_the_place_and_error_fields_still_reads() -> None:
    old = {
        "record_uid": "u",
        "source": "s",
        "source_record_id": "r",
        "entity": "person",
        "stage": "validate",
        "reason_code": "missing_name",
        "reason": "name: missing",
        "payload": "{}",
        "run_id": None,
        "rejected_at": "2026-11-25T09:00:00Z",
    }
    reject = Reject.model_validate_json(json.dumps(old))
    assert (reject.topic, reject.message_offset, reject.error, reject.payload_sha256) == (None, None, None, None)
