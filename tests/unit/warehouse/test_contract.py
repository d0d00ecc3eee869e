"""The warehouse contract (Great Expectations on each micro-batch) moves bad rows to the rejects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.identities import resident_id, uscc
from warehouse.contract import BatchContract
from warehouse.writer import ENTITY_TABLES, Batch


@pytest.fixture(scope="module")
def contract() -> BatchContract:
    return BatchContract()


def batch_of(kind: str, rows: list[dict[str, Any]]) -> Batch:
    batch = Batch()
    for number, row in enumerate(rows):
        row.update(record_uid=f"uid-{number}", source="test", source_record_id=str(number), loaded_at="2026-11-25")
        batch.intake.append({"record_uid": row["record_uid"], "run_id": "run-1", "outcome": "new", "reason_code": None})
    batch.entities[kind] = rows
    return batch


def test_good_people_pass_untouched(contract: BatchContract) -> None:
    batch = batch_of("person", [{"id_number": "11010519491231002X", "name": "张三", "gender": "F"}])
    assert contract.enforce(batch) == 0
    assert len(batch.entities["person"]) == 1
    assert batch.rejects == []


def test_rows_breaking_rules_become_rejects_naming_each_rule(contract: BatchContract) -> None:
    batch = batch_of(
        "person",
        [
            {"id_number": "11010519491231002X", "name": "张三", "gender": "F"},
            {"id_number": "1101051949", "name": None, "gender": "F"},
            {"id_number": "110105194912310011", "name": "李四", "gender": "unknown"},
        ],
    )
    assert contract.enforce(batch) == 2
    assert [row["name"] for row in batch.entities["person"]] == ["张三"]
    reasons = {reject["record_uid"]: reject["reason"] for reject in batch.rejects}
    assert "id_number must match" in reasons["uid-1"]
    assert "name must be present" in reasons["uid-1"]
    assert "gender must be one of M, F" in reasons["uid-2"]
    assert {reject["stage"] for reject in batch.rejects} == {"warehouse"}
    assert {reject["run_id"] for reject in batch.rejects} == {"run-1"}
    outcomes = {entry["record_uid"]: entry["outcome"] for entry in batch.intake}
    assert outcomes == {"uid-0": "new", "uid-1": "rejected", "uid-2": "rejected"}


def test_event_coordinates_statuses_and_missing_columns(contract: BatchContract) -> None:
    good = {"event_id": "E1", "category": "0102", "department": "sanitation", "reported_at": "2026-11-25T09:00"}
    batch = batch_of(
        "event",
        [
            {**good, "status": "reported", "lat": 31.99, "lon": 119.87},
            {**good, "event_id": "E2", "status": "teleported", "lat": 31.99, "lon": 119.87},
            {**good, "event_id": "E3", "status": "reported", "lat": 131.99, "lon": 119.87},
        ],
    )
    assert contract.enforce(batch) == 2
    reasons = sorted(reject["reason"] for reject in batch.rejects)
    assert "status must be one of" in reasons[1]
    assert "lat must lie between -90 and 90" in reasons[0]


def test_a_kind_whose_rows_lack_a_checked_column_rejects_them_all(contract: BatchContract) -> None:
    batch = batch_of("object", [{"name": "无码井盖"}])
    assert contract.enforce(batch) == 1
    assert "object_id must be present" in batch.rejects[0]["reason"]


def _keeping(rule: dict[str, Any]) -> Any:
    """A value that keeps ``rule``."""
    parameters = json.loads(rule["parameters"])
    if rule["expectation_type"] == "expect_column_values_to_match_regex":
        return resident_id() if "X" in parameters["regex"][-6:] else uscc()
    if rule["expectation_type"] == "expect_column_values_to_be_in_set":
        return parameters["value_set"][0]
    if rule["expectation_type"] == "expect_column_values_to_be_between":
        return parameters["min_value"]
    return "present"


BREAKING = {
    "expect_column_values_to_not_be_null": [None],
    "expect_column_values_to_match_regex": ["not-an-id", ""],
    "expect_column_values_to_be_in_set": ["no-such-value"],
    "expect_column_values_to_be_between": [1e9, -1e9, "north"],
}
"""Values breaking each sort of rule; a string where a number belongs is one GX cannot compare."""


def test_the_quick_screen_passes_a_batch_exactly_when_the_full_validation_succeeds(contract: BatchContract) -> None:
    import pandas as pd

    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in contract.expectations():
        rules.setdefault(rule["kind"], []).append(rule)
    compared = 0
    for kind, kept in rules.items():
        good = {}
        for rule in kept:
            good.setdefault(rule["checked_column"], _keeping(rule))
        frames = [[good], [good, dict(good)], [{column: None for column in good}]]
        for rule in kept:
            for value in BREAKING[rule["expectation_type"]]:
                frames.append([good, {**good, rule["checked_column"]: value}])
        for rows in frames:
            frame = pd.DataFrame({column: [row[column] for row in rows] for column in good})
            assert contract.passes(kind, frame) == contract.validation(kind, frame).success, (kind, rows)
            compared += 1
    assert compared > 100
    assert set(rules) == set(ENTITY_TABLES), "every kind the warehouse stores is compared"
