"""The current code reads what every earlier version of every contract wrote, and refuses versions it does not know."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.batches import decode_batch
from schemas.records import CANONICAL_MODELS, EventUpdate
from schemas.upgrades import read_envelope, read_record, read_reject
from schemas.versions import CONTRACTS, UnknownContractVersion
from tests.support.contracts import Written, written, written_of

RECORDS = written_of(*CANONICAL_MODELS)


def _holds(read: dict[str, Any], entry: Written) -> None:
    """What was read holds the expected values, and every value the older document held in a field still kept."""
    expected = {name: read.get(name) for name in entry.expect}
    assert expected == entry.expect
    kept = {name: value for name, value in entry.document.items() if name in read and name not in entry.expect}
    assert {name: read[name] for name in kept} == kept


def test_every_record_kind_has_a_contract_and_every_contract_a_reader() -> None:
    assert set(CONTRACTS) == {*CANONICAL_MODELS, "raw_envelope", "record_batch", "reject"}


def test_every_earlier_version_of_every_contract_has_a_document_written_under_it() -> None:
    have = {(entry.contract, entry.version) for entry in written()}
    earlier = {(name, version) for name, contract in CONTRACTS.items() for version in range(1, contract.version)}
    assert have == earlier


@pytest.mark.parametrize("entry", RECORDS, ids=str)
def test_a_record_of_an_earlier_version_reads_as_a_payload_into_the_current_model(entry: Written) -> None:
    upgraded = CONTRACTS[entry.contract].upgrade(entry.document, entry.version)
    record = CANONICAL_MODELS[entry.contract].model_validate(upgraded)
    _holds(record.model_dump(mode="json"), entry)


@pytest.mark.parametrize("entry", RECORDS, ids=str)
def test_a_record_of_an_earlier_version_reads_off_a_canonical_topic_as_the_current_model_dumps_it(
    entry: Written,
) -> None:
    read = read_record(entry.contract, entry.document, entry.version)
    model = CANONICAL_MODELS[entry.contract]
    assert read == model.model_validate(read).model_dump(mode="json")
    _holds(read, entry)


def test_a_record_of_the_current_version_is_read_as_it_is() -> None:
    record = {"kept": "as written"}
    assert read_record("person", record, CONTRACTS["person"].version) is record


@pytest.mark.parametrize("entry", written_of("raw_envelope"), ids=str)
def test_an_envelope_of_an_earlier_version_reads_with_its_payload_upgraded(entry: Written) -> None:
    envelope = read_envelope(entry.value)
    assert (envelope.schema_version, envelope.payload_version) == (
        CONTRACTS["raw_envelope"].version,
        CONTRACTS[envelope.entity].version,
    )
    assert envelope.record_uid == entry.document["record_uid"]
    assert {name: envelope.payload.get(name) for name in entry.expect["payload"]} == entry.expect["payload"]
    assert EventUpdate.model_validate(envelope.payload).occurred_at.isoformat() == "2026-11-25T11:30:00+08:00"


@pytest.mark.parametrize("entry", written_of("record_batch"), ids=str)
def test_a_batch_of_an_earlier_version_reads_with_its_rows_upgraded(entry: Written) -> None:
    batch = decode_batch(entry.value)
    assert (batch.kind, batch.source, batch.run_id, len(batch)) == ("person", "civil-affairs", "run-7", 2)
    assert {name: batch.rows.column(name).to_pylist() for name in entry.expect} == entry.expect
    assert batch.rows.column("record_uid").to_pylist() == ["b1", "b2"]


@pytest.mark.parametrize("entry", written_of("reject"), ids=str)
def test_a_reject_of_an_earlier_version_reads(entry: Written) -> None:
    _holds(read_reject(entry.value).model_dump(mode="json"), entry)


def test_a_document_without_a_version_is_version_1() -> None:
    assert CONTRACTS["event_update"].upgrade({"at": "2026-11-25T11:30:00+08:00"}, None)["occurred_at"] == (
        "2026-11-25T11:30:00+08:00"
    )


def test_a_step_leaves_alone_what_a_later_writer_already_wrote() -> None:
    later = {"case_id": "E-1", "report_ids": ["E-1", "E-2"], "seq": 7, "handled_by": ["desk-city"]}
    upgraded = CONTRACTS["case"].upgrade(later, 1)
    assert {name: upgraded[name] for name in later} == later


@pytest.mark.parametrize("version", [CONTRACTS["person"].version + 1, 0, -1, "two", True, 2.5, "", [1]])
def test_a_version_this_gridhub_does_not_read_is_refused_with_what_to_do(version: object) -> None:
    current = CONTRACTS["person"].version
    with pytest.raises(UnknownContractVersion) as refused:
        CONTRACTS["person"].upgrade({"name": "王芳"}, version)
    assert refused.value.reason_code == "unknown_contract_version"
    assert f"reads person versions 1 to {current}" in str(refused.value)
    assert "upgrade gridhub" in str(refused.value)
    assert f"have the publisher write version {current}" in str(refused.value)


def test_a_version_given_as_text_is_read_as_its_number() -> None:
    assert CONTRACTS["person"].read_version("2") == 2


@pytest.mark.parametrize(
    ("field", "contract"), [("schema_version", "raw_envelope"), ("payload_version", "event_update")]
)
def test_an_envelope_or_payload_of_a_future_version_is_refused_naming_its_record(field: str, contract: str) -> None:
    future = CONTRACTS[contract].version + 1
    envelope = written_of("raw_envelope")[0].document
    with pytest.raises(UnknownContractVersion) as refused:
        read_envelope(json.dumps({**envelope, "schema_version": 2, field: future}))
    assert f"{contract} of contract version {future}" in str(refused.value)
    assert refused.value.provenance == {
        "record_uid": envelope["record_uid"],
        "source": "patrol",
        "source_record_id": envelope["source_record_id"],
        "entity": "event_update",
    }
