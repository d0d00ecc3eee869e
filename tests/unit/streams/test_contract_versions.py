"""The worker reads raw records of every contract version it knows, and refuses the others as rejects it can count."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from foundation.packaged import CATEGORIES
from schemas.records import EventUpdate
from schemas.versions import CONTRACTS
from streams.app import batch_outcome
from streams.normalise import Accepted, Rejected, normalise
from streams.routing import RoutingRules, load_rules
from tests.support.contracts import written_of

ENVELOPE = written_of("raw_envelope")[0]


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(CATEGORIES)


def test_a_raw_record_of_the_first_version_is_accepted_upgraded(rules: RoutingRules) -> None:
    decision = normalise(ENVELOPE.value, rules)
    assert isinstance(decision, Accepted), decision
    assert isinstance(decision.record, EventUpdate)
    assert decision.record.occurred_at.isoformat() == "2026-11-25T11:30:00+08:00"
    assert decision.envelope.payload_version == CONTRACTS["event_update"].version


def test_a_raw_record_of_a_future_version_is_refused_under_its_own_uid(rules: RoutingRules) -> None:
    future = CONTRACTS["event_update"].version + 1
    raw = json.dumps({**ENVELOPE.document, "schema_version": 2, "payload_version": future}).encode()
    decision = normalise(raw, rules)
    assert isinstance(decision, Rejected), decision
    reject = decision.reject
    assert (reject.stage, reject.reason_code, reject.record_uid, reject.source) == (
        "decode",
        "unknown_contract_version",
        ENVELOPE.document["record_uid"],
        "patrol",
    )
    assert f"reads event_update versions 1 to {future - 1}" in reject.reason
    assert reject.payload == raw.decode()


def _batch(version: int) -> bytes:
    """A batch of people as a gridhub writing batch format ``version`` would."""
    table = pa.table({"record_uid": ["b1"], "source_record_id": ["civil-1"], "name": ["王芳"]})
    metadata = {
        "schema_version": str(version),
        "kind": "person",
        "source": "civil",
        "received_at": "2026-11-26T04:00:00+00:00",
    }
    table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_a_batch_of_the_first_version_is_validated_upgraded(rules: RoutingRules) -> None:
    outcome = batch_outcome(written_of("record_batch")[0].value, rules)
    assert outcome.accepted is not None and not outcome.rejects, outcome.rejects
    assert outcome.accepted.rows.column("phone").to_pylist() == ["+8613800000000", "+8613912345678"]


def test_a_batch_of_a_future_version_is_one_reject_saying_so(rules: RoutingRules) -> None:
    outcome = batch_outcome(_batch(CONTRACTS["record_batch"].version + 1), rules)
    assert outcome.accepted is None
    assert [(reject.stage, reject.reason_code) for reject in outcome.rejects] == [
        ("decode", "unknown_contract_version")
    ]
    assert "upgrade gridhub" in outcome.rejects[0].reason
