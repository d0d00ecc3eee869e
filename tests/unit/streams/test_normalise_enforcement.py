"""Enforcement case files on their way in: checked against the bureau's flow, powers and roster."""

from __future__ import annotations

from typing import Any

import pytest

from foundation.packaged import CATEGORIES
from schemas.enforcement import Bureau, load_bureau
from schemas.records import EnforcementCase
from streams.normalise import normalise
from streams.routing import RoutingRules, load_rules
from tests.unit.streams.test_normalise import accepted, raw, rejected

CASE_FILE: dict[str, Any] = {
    "case_no": "ZF20261125-0001",
    "grid_case_id": "R20261125-A00020",
    "power_code": "ZF-CG-005",
    "party_id_number": "320411199001011235",
    "party_name": "王建国",
    "officer_id": "ZF03",
    "filed_at": "2026-11-25 09:45",
    "investigated_at": "2026-11-25 09:50",
    "notified_at": "2026-11-25 10:00",
    "decided_at": "2026-11-25 10:10",
    "executed_at": "2026-11-25 11:10",
}


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(CATEGORIES)


@pytest.fixture(scope="module")
def bureau() -> Bureau:
    return load_bureau()


def test_a_good_case_file_is_accepted_with_its_status_and_squad(rules: RoutingRules, bureau: Bureau) -> None:
    outcome = accepted(normalise(raw("enforcement_case", CASE_FILE, source="enforcement"), rules, bureau=bureau))
    record = outcome.record
    assert isinstance(record, EnforcementCase)
    assert (record.status, record.squad, record.key) == ("execution", "wansui", "ZF20261125-0001")


@pytest.mark.parametrize(
    ("changes", "stage", "code"),
    [
        ({"power_code": "ZF-XX-999"}, "route", "unknown_power"),
        ({"notified_at": None}, "route", "stage_skipped"),
        ({"decided_at": "2026-11-25 09:00"}, "route", "stage_out_of_order"),
        ({"party_id_number": None, "party_name": None}, "validate", "missing_party"),
        ({"party_id_number": "990426199112010074"}, "validate", "unknown_division"),
        ({"filed_at": "not a time"}, "validate", "invalid_filed_at"),
    ],
)
def test_a_bad_case_file_is_rejected_with_a_reason_the_clerk_can_act_on(
    rules: RoutingRules, bureau: Bureau, changes: dict[str, Any], stage: str, code: str
) -> None:
    payload = {key: value for key, value in {**CASE_FILE, **changes}.items() if value is not None}
    found_stage, found_code, reason = rejected(normalise(raw("enforcement_case", payload), rules, bureau=bureau))
    assert (found_stage, found_code) == (stage, code)
    assert reason
