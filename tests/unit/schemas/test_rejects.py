"""The reject contract: one shape, built one way, whoever refused the record."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas.rejects import Reject


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
