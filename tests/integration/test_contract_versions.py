"""A raw record written under an older contract lands upgraded; one of a version the hub does not know is a reject.

Both go straight to ``raw.exports`` as a publisher's bytes, the older one exactly as the first gridhub
wrote an envelope and a person (tests/fixtures/contracts), with only its ids made unique.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kafka import KafkaProducer

from schemas.topics import RAW_EXPORTS
from schemas.versions import CONTRACTS
from tests.support.contracts import written_of
from tests.support.hub import Hub, unique, wait_until

pytestmark = pytest.mark.integration


def _envelope(source: str, **changes: Any) -> dict[str, Any]:
    """Version 1 of the envelope holding version 1 of a person, as df7ab4d wrote them, under fresh ids."""
    envelope = written_of("raw_envelope")[0].document
    person = written_of("person")[0].document
    return {
        **envelope,
        "record_uid": unique("uid"),
        "source": source,
        "source_record_id": unique("civil"),
        "entity": "person",
        "payload": person,
        **changes,
    }


def _publish(bootstrap: str, *envelopes: dict[str, Any]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="contract-versions-test")
    try:
        for envelope in envelopes:
            key = f"{envelope['source']}|{envelope['source_record_id']}".encode()
            producer.send(RAW_EXPORTS, key=key, value=json.dumps(envelope, ensure_ascii=False).encode()).get(timeout=60)
    finally:
        producer.close()


def test_an_older_record_lands_upgraded_and_a_future_one_is_refused_with_what_to_do(hub: Hub) -> None:
    source = unique("contracts")
    older = _envelope(source)
    future_version = CONTRACTS["person"].version + 1
    future = _envelope(source, schema_version=CONTRACTS["raw_envelope"].version, payload_version=future_version)
    _publish(hub.stack.bootstrap, older, future)

    copy = wait_until(
        lambda: hub.sql(
            "SELECT phone, employer_uscc, match_key, address_norm, record_uid FROM person_sources "
            f"WHERE source = '{source}'"
        ),
        what="the older record's source copy",
    )
    assert copy == [["+8613800000000", None, "11010519491231002X", "通江中路1号", older["record_uid"]]]

    refused = wait_until(
        lambda: hub.sql(f"SELECT stage, reason_code, reason, record_uid FROM rejects WHERE source = '{source}'"),
        what="the future record's reject",
    )
    [(stage, code, reason, uid)] = refused
    assert (stage, code, uid) == ("decode", "unknown_contract_version", future["record_uid"])
    assert f"person of contract version {future_version}" in reason
    assert "upgrade gridhub" in reason
    outcome = wait_until(
        lambda: hub.sql(f"SELECT outcome, reason_code FROM intake WHERE record_uid = '{future['record_uid']}'"),
        what="the future record's ledger entry",
    )
    assert outcome == [["rejected", "unknown_contract_version"]]
