"""From raw bytes to a canonical record or a reject with a reason a person can act on."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from foundation.packaged import CATEGORIES
from schemas.approvals import load_catalogue
from schemas.identity import resident_id_check_char
from schemas.records import Application, EntityKind, Event, Person, RawEnvelope
from streams.normalise import Accepted, Rejected, internal_failure, normalise
from streams.routing import RoutingRules, load_rules

RULES_FILE = CATEGORIES
WOMAN_ID = "11010519491231002X"
USCC = "91350100M000100Y43"


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(RULES_FILE)


def envelope(
    entity: EntityKind,
    payload: dict[str, Any],
    *,
    source: str = "civil-affairs",
    record_id: str = "r1",
    record_uid: str = "uid-1",
    run_id: str | None = None,
) -> RawEnvelope:
    return RawEnvelope(
        record_uid=record_uid,
        source=source,
        source_record_id=record_id,
        entity=entity,
        received_at=datetime(2026, 11, 25, 1, 0, tzinfo=UTC),
        content_hash="0" * 64,
        run_id=run_id,
        payload=payload,
    )


def raw(entity: EntityKind, payload: dict[str, Any], **provenance: Any) -> bytes:
    return envelope(entity, payload, **provenance).model_dump_json().encode()


def accepted(outcome: Accepted | Rejected) -> Accepted:
    assert isinstance(outcome, Accepted), outcome
    return outcome


def rejected(outcome: Accepted | Rejected) -> tuple[str, str, str]:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reject.stage, outcome.reject.reason_code, outcome.reject.reason


PERSON = {"id_number": WOMAN_ID, "name": "张三", "phone": "13800000000"}
REPORT = {
    "event_id": "R1",
    "category": "0102",
    "description": "暴露垃圾",
    "reported_at": "2026-11-25T09:00:00",
    "reporter_id": "GW001",
    "lat": 31.99,
    "lon": 119.87,
}
APPLICATION = {
    "application_id": "A1",
    "item_code": "XK-001",
    "status": "submitted",
    "submitted_at": "2026-11-25T09:00:00+08:00",
    "updated_at": "2026-11-25T09:00:00+08:00",
}


# Decode stage ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b'{"record_uid": ', b"", b"not json", b"\xff\xfe\x00", b"{'single': 'quotes'}"])
def test_bytes_that_are_not_json_are_rejected_at_decode(rules: RoutingRules, data: bytes) -> None:
    stage, code, reason = rejected(normalise(data, rules))
    assert (stage, code) == ("decode", "bad_json")
    assert reason.startswith("message is not valid JSON")


def test_undecodable_message_is_kept_verbatim_and_keyed_by_its_hash(rules: RoutingRules) -> None:
    data = b'{"record_uid": "u1", "payload": {"name": "\xe5\xbc\xa0'
    outcome = normalise(data, rules)
    assert isinstance(outcome, Rejected)
    reject = outcome.reject
    assert reject.record_uid == hashlib.sha256(data).hexdigest()
    assert (reject.source, reject.source_record_id, reject.entity, reject.run_id) == (
        "unknown",
        "unknown",
        "unknown",
        None,
    )
    assert reject.payload == data.decode("utf-8")


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"hello": "world"}, "record_uid"),
        ([1, 2, 3], "record"),
        ("just a string", "record"),
    ],
)
def test_json_that_is_not_an_envelope_is_rejected_at_decode(rules: RoutingRules, document: Any, named: str) -> None:
    stage, code, reason = rejected(normalise(json.dumps(document).encode(), rules))
    assert (stage, code) == ("decode", "bad_envelope")
    assert reason.startswith("raw envelope does not match schema")
    assert named in reason


@pytest.mark.parametrize("field", ["record_uid", "source", "source_record_id", "entity", "payload"])
def test_envelope_missing_a_field_is_rejected_naming_it(rules: RoutingRules, field: str) -> None:
    document = json.loads(raw("person", PERSON))
    del document[field]
    stage, code, reason = rejected(normalise(json.dumps(document).encode(), rules))
    assert (stage, code) == ("decode", "bad_envelope")
    assert f"{field}: Field required" in reason


def test_envelope_with_an_extra_field_is_rejected(rules: RoutingRules) -> None:
    document = {**json.loads(raw("person", PERSON)), "priority": "high"}
    _, code, reason = rejected(normalise(json.dumps(document).encode(), rules))
    assert code == "bad_envelope"
    assert "priority" in reason


def test_envelope_for_an_unknown_entity_kind_is_rejected(rules: RoutingRules) -> None:
    document = {**json.loads(raw("person", PERSON)), "entity": "dragon"}
    _, code, reason = rejected(normalise(json.dumps(document).encode(), rules))
    assert code == "bad_envelope"
    assert "entity" in reason


# Validate stage ------------------------------------------------------------------------------------------


def test_bad_check_character_names_the_field_and_the_expected_character(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(raw("person", {**PERSON, "id_number": "110105194912310021"}), rules))
    assert (stage, code) == ("validate", "invalid_id_number")
    assert reason.startswith("id_number:")
    assert "check character is 1, expected X" in reason


@pytest.mark.parametrize("first17", ["32041119800101001", "44052418800101001", "11010519491231002"])
def test_every_wrong_check_character_is_reported_with_the_right_one(rules: RoutingRules, first17: str) -> None:
    right = resident_id_check_char(first17)
    for wrong in (c for c in "0123456789X" if c != right):
        _, code, reason = rejected(normalise(raw("person", {**PERSON, "id_number": first17 + wrong}), rules))
        assert code == "invalid_id_number"
        assert f"expected {right}" in reason


def test_bad_uscc_is_rejected_with_the_expected_character(rules: RoutingRules) -> None:
    payload = {"uscc": USCC[:17] + "4", "name": "某某有限公司"}
    stage, code, reason = rejected(normalise(raw("organisation", payload), rules))
    assert (stage, code) == ("validate", "invalid_uscc")
    assert "expected 3" in reason


@pytest.mark.parametrize(
    ("entity", "payload", "field"),
    [
        ("person", {"id_number": WOMAN_ID}, "name"),
        ("person", {"id_number": WOMAN_ID, "name": ""}, "name"),
        ("event", {k: v for k, v in REPORT.items() if k != "reported_at"}, "reported_at"),
        ("event", {k: v for k, v in REPORT.items() if k != "description"}, "description"),
        ("application", {k: v for k, v in APPLICATION.items() if k != "status"} | {"applicant_uscc": USCC}, "status"),
    ],
)
def test_missing_required_field_is_named_in_code_and_reason(
    rules: RoutingRules, entity: EntityKind, payload: dict[str, Any], field: str
) -> None:
    stage, code, reason = rejected(normalise(raw(entity, payload), rules))
    assert (stage, code) == ("validate", f"missing_{field}")
    assert reason.startswith(f"{field}: Field required")


@pytest.mark.parametrize(
    ("entity", "payload", "key", "wanted"),
    [
        ("person", {"name": "张三"}, "id_number", "at least 2 of birth_date, phone, address (has none)"),
        ("person", {"name": "张三", "phone": "13900000000"}, "id_number", "(has phone)"),
        ("organisation", {"name": "某某有限公司"}, "uscc", "at least 1 of legal_representative"),
    ],
)
def test_a_record_without_its_strong_key_needs_enough_to_match_it_by(
    rules: RoutingRules, entity: EntityKind, payload: dict[str, Any], key: str, wanted: str
) -> None:
    stage, code, reason = rejected(normalise(raw(entity, payload), rules))
    assert (stage, code) == ("validate", f"missing_{key}")
    assert f"no {key}" in reason
    assert wanted in reason


def test_a_person_without_id_but_with_birth_date_and_phone_is_accepted_for_matching(rules: RoutingRules) -> None:
    decision = normalise(raw("person", {"name": "王  芳", "birth_date": "1950-01-02", "phone": "13900000000"}), rules)
    assert isinstance(decision, Accepted)
    assert decision.record.model_dump()["match_key"] is None
    assert decision.record.model_dump()["name"] == "王芳"


def test_every_problem_is_in_the_reason_and_the_first_sets_the_code(rules: RoutingRules) -> None:
    _, code, reason = rejected(normalise(raw("event", {"event_id": "R1", "lat": 300}), rules))
    assert code == "missing_category"
    for field in ("category", "description", "reported_at", "reporter_id", "lon", "lat"):
        assert f"{field}:" in reason
    assert reason.count("; ") == 5


def test_register_that_contradicts_the_id_is_rejected(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(raw("person", {**PERSON, "性别": "", "gender": "男"}), rules))
    assert (stage, code) == ("validate", "invalid_record")
    assert reason == "record: gender M contradicts the resident ID, which encodes F"


def test_application_without_any_applicant_is_rejected(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(raw("application", APPLICATION, source="approvals"), rules))
    assert (stage, code) == ("validate", "invalid_record")
    assert "needs an applicant" in reason


@pytest.mark.parametrize(
    ("fields", "code", "named"),
    [
        ({"item_code": "320411-XK-999"}, "unknown_item", "'320411-XK-999' is not in the catalogue"),
        ({"window_no": 35, "channel": "window"}, "unknown_window", "window 35 is not among the 34 windows"),
        ({"window_no": 9, "channel": "online"}, "online_with_window", "taken online names window 9"),
    ],
)
def test_an_application_the_catalogue_cannot_judge_is_rejected_at_routing_with_its_reason(
    rules: RoutingRules, fields: dict[str, Any], code: str, named: str
) -> None:
    payload = {**APPLICATION, "item_code": "320411-XK-001", "applicant_uscc": USCC, **fields}
    stage, reason_code, reason = rejected(
        normalise(raw("application", payload, source="approvals"), rules, catalogue=load_catalogue())
    )
    assert (stage, reason_code) == ("route", code)
    assert named in reason


def test_an_application_at_a_window_keeps_its_window_and_channel(rules: RoutingRules) -> None:
    payload = {**APPLICATION, "item_code": "320411-XK-001", "applicant_uscc": USCC, "window_no": "12"}
    data = raw("application", {**payload, "channel": "window"}, source="approvals")
    record = accepted(normalise(data, rules, catalogue=load_catalogue())).record
    assert isinstance(record, Application)
    assert (record.window_no, record.channel, record.item_name) == (12, "window", "个体工商户设立登记")


def test_validation_reject_keeps_the_provenance_and_the_payload(rules: RoutingRules) -> None:
    payload = {"id_number": "110105194912310021", "name": "张三"}
    data = raw("person", payload, source="civil-affairs", record_id="r42", record_uid="uid-42", run_id="run-7")
    outcome = normalise(data, rules)
    assert isinstance(outcome, Rejected)
    reject = outcome.reject
    assert (reject.record_uid, reject.source, reject.source_record_id, reject.entity, reject.run_id) == (
        "uid-42",
        "civil-affairs",
        "r42",
        "person",
        "run-7",
    )
    assert json.loads(reject.payload) == payload
    assert "张三" in reject.payload  # readable for the person who fixes it, not \\u-escaped


# Route stage --------------------------------------------------------------------------------------------


def test_unknown_category_is_rejected_at_routing_with_the_known_codes(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(raw("event", {**REPORT, "category": "9999"}, source="patrol"), rules))
    assert (stage, code) == ("route", "unknown_category")
    assert "'9999'" in reason
    assert rules.known_codes() in reason


@pytest.mark.parametrize("named", ["0602", "河道违法排污", "illegal discharge into a river", " 河道违法排污 "])
def test_event_category_by_code_or_name_gets_code_name_and_department(rules: RoutingRules, named: str) -> None:
    outcome = accepted(normalise(raw("event", {**REPORT, "category": named}, source="patrol"), rules))
    record = outcome.record
    assert isinstance(record, Event)
    assert (record.category, record.category_name, record.department) == ("0602", "河道违法排污", "environment")
    assert outcome.category is not None
    assert (outcome.category.code, outcome.category.limit_hours) == ("0602", 24.0)


def test_routing_table_overrides_a_department_claimed_by_the_source(rules: RoutingRules) -> None:
    payload = {**REPORT, "category": "0509", "department": "sanitation", "category_name": "垃圾"}
    record = accepted(normalise(raw("event", payload, source="patrol"), rules)).record
    assert isinstance(record, Event)
    assert (record.category_name, record.department) == ("机动车乱停放", "police")


def test_records_other_than_events_are_not_routed(rules: RoutingRules) -> None:
    outcome = accepted(normalise(raw("person", PERSON), rules))
    assert outcome.category is None


# Accepted records ---------------------------------------------------------------------------------------


def test_accepted_person_is_normalised_and_carries_its_envelope(rules: RoutingRules) -> None:
    data = raw("person", {**PERSON, "id_number": "110105491231002"}, record_uid="uid-9")
    outcome = accepted(normalise(data, rules))
    assert isinstance(outcome.record, Person)
    assert outcome.record.id_number == WOMAN_ID
    assert outcome.record.birth_date is not None
    assert outcome.record.birth_date.isoformat() == "1949-12-31"
    assert outcome.envelope == RawEnvelope.model_validate_json(data)


def test_naive_report_time_is_read_as_china_standard_time(rules: RoutingRules) -> None:
    record = accepted(normalise(raw("event", REPORT, source="patrol"), rules)).record
    assert isinstance(record, Event)
    assert record.reported_at.astimezone(UTC) == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_dedup_key_is_source_and_source_record_id(rules: RoutingRules) -> None:
    first = accepted(normalise(raw("person", PERSON, source="civil-affairs", record_id="r7", record_uid="a"), rules))
    resend = accepted(normalise(raw("person", PERSON, source="civil-affairs", record_id="r7", record_uid="b"), rules))
    other = accepted(normalise(raw("person", PERSON, source="approvals", record_id="r7"), rules))
    assert first.dedup_key == resend.dedup_key == "civil-affairs|r7"
    assert other.dedup_key == "approvals|r7"


# Fingerprint --------------------------------------------------------------------------------------------


def fingerprint_of(rules: RoutingRules, entity: EntityKind, payload: dict[str, Any], **provenance: Any) -> str:
    return accepted(normalise(raw(entity, payload, **provenance), rules)).fingerprint


def test_fingerprint_is_a_sha256_hex_digest(rules: RoutingRules) -> None:
    digest = fingerprint_of(rules, "person", PERSON)
    assert len(digest) == 64
    assert int(digest, 16) >= 0


@pytest.mark.parametrize(
    "reformatted",
    [
        {**PERSON, "id_number": "11010519491231002x"},
        {**PERSON, "id_number": "110105-19491231-002X"},
        {**PERSON, "id_number": "110105491231002"},
        {**PERSON, "name": "  张三 "},
        {**PERSON, "address": ""},
        {**PERSON, "gender": "女", "birth_date": "1949-12-31"},
        {**PERSON, "unrelated_column": "ignored"},
        dict(reversed(PERSON.items())),
    ],
)
def test_person_fingerprint_ignores_formatting(rules: RoutingRules, reformatted: dict[str, Any]) -> None:
    assert fingerprint_of(rules, "person", reformatted) == fingerprint_of(rules, "person", PERSON)


@pytest.mark.parametrize(
    "changed",
    [
        {**PERSON, "phone": "13900000000"},
        {**PERSON, "name": "张四"},
        {**PERSON, "address": "孟河镇"},
        {**PERSON, "id_number": "110105194912310038"},
    ],
)
def test_person_fingerprint_changes_with_content(rules: RoutingRules, changed: dict[str, Any]) -> None:
    assert fingerprint_of(rules, "person", changed) != fingerprint_of(rules, "person", PERSON)


def test_fingerprint_does_not_depend_on_provenance(rules: RoutingRules) -> None:
    assert fingerprint_of(rules, "person", PERSON, source="a", record_id="1", record_uid="x") == fingerprint_of(
        rules, "person", PERSON, source="b", record_id="2", record_uid="y", run_id="run"
    )


@pytest.mark.parametrize(
    "reformatted",
    [
        {**REPORT, "category": "暴露垃圾"},
        {**REPORT, "category": "exposed rubbish"},
        {**REPORT, "reported_at": "2026-11-25T09:00:00+08:00"},
        {**REPORT, "lat": "31.99", "description": " 暴露垃圾\n"},
        {**REPORT, "department": "police"},
    ],
)
def test_event_fingerprint_ignores_formatting(rules: RoutingRules, reformatted: dict[str, Any]) -> None:
    assert fingerprint_of(rules, "event", reformatted) == fingerprint_of(rules, "event", REPORT)


@pytest.mark.parametrize(
    "changed",
    [
        {**REPORT, "category": "0104"},
        {**REPORT, "description": "积存垃圾"},
        {**REPORT, "reported_at": "2026-11-25T09:00:01"},
        {**REPORT, "status": "closed"},
    ],
)
def test_event_fingerprint_changes_with_content(rules: RoutingRules, changed: dict[str, Any]) -> None:
    assert fingerprint_of(rules, "event", changed) != fingerprint_of(rules, "event", REPORT)


def test_event_fingerprint_ignores_the_zone_a_time_is_written_in(rules: RoutingRules) -> None:
    utc = {**REPORT, "reported_at": "2026-11-25T01:00:00Z"}
    assert fingerprint_of(rules, "event", utc) == fingerprint_of(rules, "event", REPORT)


# Internal failures ---------------------------------------------------------------------------------------


def test_a_record_that_hits_a_bug_keeps_its_provenance_for_replay() -> None:
    data = raw("person", PERSON, record_id="r9", run_id="run-3")
    reject = internal_failure(data, KeyError("boom")).reject
    assert (reject.stage, reject.reason_code, reject.source_record_id, reject.run_id) == (
        "internal",
        "internal_error",
        "r9",
        "run-3",
    )
    assert "KeyError" in reject.reason
    assert "report it as a bug" in reject.reason
    assert "张三" in reject.payload


def test_an_undecodable_record_that_hits_a_bug_is_still_kept() -> None:
    reject = internal_failure(b"garbage", RuntimeError("boom")).reject
    assert (reject.stage, reject.source, reject.payload) == ("internal", "unknown", "garbage")


def test_with_the_grid_an_event_gets_its_cell_and_an_outside_point_is_refused(rules: RoutingRules) -> None:
    from foundation.packaged import MENGHE_GRID
    from schemas.grid import Grid

    grid = Grid.load(MENGHE_GRID)
    placed = normalise(raw("event", REPORT, source="patrol"), rules, grid)
    assert isinstance(placed, Accepted)
    cell = grid.locate(REPORT["lat"], REPORT["lon"])
    assert cell is not None
    assert (placed.record.grid_code, placed.record.squad) == (cell.code, cell.squad)  # type: ignore[attr-defined]
    outside = normalise(raw("event", {**REPORT, "lat": 30.0}, source="patrol"), rules, grid)
    assert isinstance(outside, Rejected)
    assert (outside.reject.stage, outside.reject.reason_code) == ("route", "outside_town")
