"""From raw bytes to a canonical record or a reject with a reason a person can act on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import make_envelope
from schemas.records import Person
from streams.normalise import Accepted, Rejected, normalise
from streams.routing import RoutingError, RoutingRules, load_rules

RULES_FILE = Path(__file__).resolve().parents[2] / "schemas" / "data" / "categories.yaml"


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(RULES_FILE)


def raw(entity: str, payload: dict[str, Any], source: str = "civil-affairs", record_id: str = "r1") -> bytes:
    return make_envelope(source, record_id, entity, payload).model_dump_json().encode()  # type: ignore[arg-type]


def rejected(outcome: Accepted | Rejected) -> tuple[str, str, str]:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reject.stage, outcome.reject.reason_code, outcome.reject.reason


REPORT = {
    "event_id": "R1",
    "category": "0102",
    "description": "暴露垃圾",
    "reported_at": "2026-11-25T09:00:00",
    "reporter_id": "GW001",
    "lat": 31.99,
    "lon": 119.87,
}


def test_bytes_that_are_not_json_are_rejected_at_decode(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(b'{"record_uid": ', rules))
    assert (stage, code) == ("decode", "bad_json")
    assert "not valid JSON" in reason


def test_json_that_is_not_an_envelope_is_rejected_at_decode(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(b'{"hello": "world"}', rules))
    assert (stage, code) == ("decode", "bad_envelope")
    assert "record_uid" in reason


def test_bad_check_character_names_the_field_and_the_expected_character(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(raw("person", {"id_number": "110105194912310021", "name": "张三"}), rules))
    assert (stage, code) == ("validate", "invalid_id_number")
    assert "expected X" in reason


def test_missing_required_field_is_named(rules: RoutingRules) -> None:
    _, code, reason = rejected(normalise(raw("person", {"id_number": "11010519491231002X"}), rules))
    assert code == "missing_name"
    assert reason.startswith("name:")


def test_register_that_contradicts_the_id_is_rejected(rules: RoutingRules) -> None:
    _, code, reason = rejected(
        normalise(raw("person", {"id_number": "11010519491231002X", "name": "张三", "性别": "", "gender": "男"}), rules)
    )
    assert code == "invalid_record"
    assert "contradicts the resident ID" in reason


def test_unknown_category_is_rejected_at_routing_with_the_known_codes(rules: RoutingRules) -> None:
    stage, code, reason = rejected(normalise(raw("event", {**REPORT, "category": "9999"}, source="patrol"), rules))
    assert (stage, code) == ("route", "unknown_category")
    assert "0102" in reason


def test_event_named_by_its_chinese_category_gets_code_and_department(rules: RoutingRules) -> None:
    outcome = normalise(raw("event", {**REPORT, "category": "河道违法排污"}, source="patrol"), rules)
    assert isinstance(outcome, Accepted)
    assert (outcome.record.category, outcome.record.department) == ("0602", "environment")  # type: ignore[attr-defined]
    assert outcome.category is not None and outcome.category.limit_hours == 24


def test_naive_report_time_is_read_as_china_standard_time(rules: RoutingRules) -> None:
    outcome = normalise(raw("event", REPORT, source="patrol"), rules)
    assert isinstance(outcome, Accepted)
    reported = outcome.record.reported_at  # type: ignore[attr-defined]
    assert reported.astimezone(UTC) == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_fingerprint_ignores_formatting_but_not_content(rules: RoutingRules) -> None:
    def accepted(payload: dict[str, Any]) -> Accepted:
        outcome = normalise(raw("person", payload), rules)
        assert isinstance(outcome, Accepted)
        return outcome

    plain = accepted({"id_number": "11010519491231002X", "name": "张三", "phone": "13800000000"})
    messy = accepted({"id_number": "11010519491231002x", "name": "  张三 ", "phone": "13800000000", "address": ""})
    moved = accepted({"id_number": "11010519491231002X", "name": "张三", "phone": "13900000000"})
    assert plain.fingerprint == messy.fingerprint
    assert plain.fingerprint != moved.fingerprint
    assert plain.dedup_key == "civil-affairs|r1"
    assert isinstance(plain.record, Person)
    assert plain.record.birth_date.isoformat() == "1949-12-31"


def test_application_without_any_applicant_is_rejected(rules: RoutingRules) -> None:
    payload = {
        "application_id": "A1",
        "item_code": "XK-001",
        "status": "submitted",
        "submitted_at": "2026-11-25T09:00:00+08:00",
        "updated_at": "2026-11-25T09:00:00+08:00",
    }
    _, _, reason = rejected(normalise(raw("application", payload, source="approvals"), rules))
    assert "needs an applicant" in reason


def test_packaged_rules_resolve_by_code_and_both_names(rules: RoutingRules) -> None:
    assert rules.resolve("0509") == rules.resolve("机动车乱停放") == rules.resolve("illegal parking")
    assert rules.resolve("nonsense") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("categories: []\n", "must have 'departments' and 'categories'"),
        ("departments: {a: A}\ncategories:\n  - {code: '01', name: x, department: b}\n", "unknown department b"),
        (
            "departments: {a: A}\ncategories:\n  - {code: '01', name: x, department: a}\n"
            "  - {code: '01', name: y, department: a}\n",
            "appears twice",
        ),
        ("departments: {a: A}\ncategories:\n  - {name: x, department: a}\n", "incomplete"),
        ("departments: [unclosed\n", "cannot read routing rules"),
    ],
)
def test_broken_rules_files_are_refused_with_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutingError, match=fragment):
        load_rules(path)


def test_a_record_that_hits_a_bug_keeps_its_provenance_for_replay() -> None:
    from streams.normalise import internal_failure

    data = raw("person", {"id_number": "11010519491231002X", "name": "张三"}, record_id="r9")
    reject = internal_failure(data, KeyError("boom")).reject
    assert (reject.stage, reject.reason_code, reject.source_record_id) == ("internal", "internal_error", "r9")
    assert "KeyError" in reject.reason and "report it as a bug" in reject.reason
    assert "张三" in reject.payload
