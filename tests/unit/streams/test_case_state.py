"""The case values and the one mapping between a case, its table entry and its warehouse record."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.records import CaseRecord
from streams.case_machine import merge_report
from streams.case_state import Case, Command, Transition
from tests.support.cases import CST, PHOTO, T0, TO_HANDLED, at_status, fresh, walk

# Serialisation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["reported", "returned", "closed"])
def test_case_round_trips_through_json(status: str) -> None:
    case = at_status(status)
    case = case if case.status == "closed" else merge_report(case, "R-2")
    case = replace(case, overdue_alerted=True, squad="Wansui")
    document = json.loads(json.dumps(case.to_dict()))
    assert Case.from_dict(document) == case
    assert isinstance(document["reported_at"], str) and isinstance(document["report_ids"], list)


def test_transition_to_dict_is_json_safe() -> None:
    _, log = walk(fresh(), *TO_HANDLED)
    document = json.loads(json.dumps(log[-1].to_dict()))
    assert document["photo_ref"] == PHOTO and document["seq"] == 5
    assert datetime.fromisoformat(document["at"]) == log[-1].at


def test_from_dict_names_a_missing_field() -> None:
    document = fresh().to_dict()
    del document["due_at"]
    with pytest.raises(ValueError, match="due_at"):
        Case.from_dict(document)


def test_a_naive_command_time_is_read_as_china_standard_time() -> None:
    command = Command("C-1", "accepted", "cc-1", "command_centre", datetime(2024, 5, 6, 9, 0))
    assert command.at == T0 and command.at.utcoffset() == timedelta(hours=8)


# Entries and messages written by earlier workers ----------------------------------------------------------

# Case table entries exactly as the case agent wrote them before the mapping was unified: a restarted
# worker recovers its tables from changelog topics that hold entries like these.
OPEN_ENTRY: dict[str, Any] = {
    "case_id": "R1",
    "category": "0102",
    "department": "sanitation",
    "squad": None,
    "grid_code": "320411101001001",
    "lat": 31.9405,
    "lon": 119.8867,
    "reporter_id": "GW001",
    "status": "dispatched",
    "reported_at": "2026-11-25T09:00:00+08:00",
    "due_at": "2026-11-25T17:00:00+08:00",
    "updated_at": "2026-11-25T09:00:00+08:00",
    "report_ids": ["R1"],
    "seq": 3,
    "rework_count": 0,
    "return_count": 0,
    "closed_at": None,
    "overdue_alerted": False,
    "opening_report": {"event_id": "R1", "category": "0102", "description": "暴露垃圾", "case_id": "R1"},
}
CLOSED_ENTRY: dict[str, Any] = {
    "case_id": "R1",
    "category": "0102",
    "department": "sanitation",
    "squad": "Mengcheng",
    "grid_code": "320411101001001",
    "lat": 31.9405,
    "lon": 119.8867,
    "reporter_id": "GW001",
    "status": "closed",
    "reported_at": "2026-11-25T09:00:00+08:00",
    "due_at": "2026-11-25T17:00:00+08:00",
    "updated_at": "2026-11-25T12:30:00+08:00",
    "report_ids": ["R1", "R2"],
    "seq": 10,
    "rework_count": 1,
    "return_count": 0,
    "closed_at": "2026-11-25T12:30:00+08:00",
    "overdue_alerted": False,
}
REPORTED = datetime(2026, 11, 25, 9, 0, tzinfo=CST)
ADDED_SINCE: dict[str, Any] = {
    "handled_by": [],
    "escalation_level": 0,
    "escalated_at": None,
    "review_at": None,
    "review_alerted": False,
}
"""Fields added to a case after these entries were written, at the value an old entry means."""


def test_a_table_entry_written_by_an_earlier_worker_still_loads_and_is_written_back_the_same() -> None:
    case = Case.from_dict(OPEN_ENTRY)
    assert case == Case(
        case_id="R1",
        category="0102",
        department="sanitation",
        squad=None,
        grid_code="320411101001001",
        lat=31.9405,
        lon=119.8867,
        reporter_id="GW001",
        status="dispatched",
        reported_at=REPORTED,
        due_at=REPORTED + timedelta(hours=8),
        updated_at=REPORTED,
        report_ids=("R1",),
        seq=3,
        rework_count=0,
        return_count=0,
        closed_at=None,
        overdue_alerted=False,
    )
    stored = {key: value for key, value in OPEN_ENTRY.items() if key != "opening_report"}
    # Fields added since come last, at the value an old entry means (an earlier worker ignores them).
    assert json.dumps(case.to_dict()) == json.dumps({**stored, **ADDED_SINCE}), (
        "same keys, in the same order, in the same formats"
    )


def test_a_closed_case_entry_keeps_its_closing_time_and_counters() -> None:
    case = Case.from_dict(CLOSED_ENTRY)
    assert case.closed_at == case.updated_at == REPORTED + timedelta(hours=3, minutes=30)
    assert (case.report_ids, case.seq, case.rework_count) == (("R1", "R2"), 10, 1)
    assert json.dumps(case.to_dict()) == json.dumps({**CLOSED_ENTRY, **ADDED_SINCE})


def test_a_transition_keeps_the_message_format_earlier_workers_published() -> None:
    transition = Transition(
        case_id="R1",
        seq=10,
        from_status="verified",
        to_status="closed",
        action="close",
        actor="command-centre",
        actor_role="command_centre",
        at=REPORTED + timedelta(hours=3, minutes=30),
        due_at=REPORTED + timedelta(hours=8),
        note=None,
        photo_ref=None,
    )
    assert transition.to_dict() == {
        "case_id": "R1",
        "seq": 10,
        "from_status": "verified",
        "to_status": "closed",
        "action": "close",
        "actor": "command-centre",
        "actor_role": "command_centre",
        "at": "2026-11-25T12:30:00+08:00",
        "due_at": "2026-11-25T17:00:00+08:00",
        "note": None,
        "photo_ref": None,
    }
    assert list(transition.to_dict()) == [field.name for field in fields(Transition)]


# The warehouse record -------------------------------------------------------------------------------------


def test_a_record_carries_every_field_of_a_case_but_the_time_of_its_last_transition() -> None:
    assert {field.name for field in fields(Case)} - set(CaseRecord.model_fields) == {"updated_at"}


@pytest.mark.parametrize("status", ["reported", "returned", "handled", "closed", "cancelled"])
def test_case_to_record_and_back_takes_the_report_time_as_the_last_change(status: str) -> None:
    case = at_status(status)
    if status not in ("closed", "cancelled"):
        case = replace(merge_report(case, "R-2"), overdue_alerted=True, squad="Wansui")
    record = case.to_record("暴露垃圾", "Menghe")
    assert record == CaseRecord(
        case_id=case.case_id,
        category=case.category,
        category_name="暴露垃圾",
        department=case.department,
        squad=case.squad,
        grid_code=case.grid_code,
        community="Menghe",
        reporter_id=case.reporter_id,
        status=case.status,  # type: ignore[arg-type]
        reported_at=case.reported_at,
        due_at=case.due_at,
        closed_at=case.closed_at,
        report_ids=list(case.report_ids),
        report_count=len(case.report_ids),
        seq=case.seq,
        rework_count=case.rework_count,
        return_count=case.return_count,
        lat=case.lat,
        lon=case.lon,
        overdue_alerted=case.overdue_alerted,
        handled_by=list(case.handled_by),
    )
    as_copied = replace(case, updated_at=case.reported_at)
    assert Case.from_dict(record.model_dump(mode="json")) == as_copied
    assert Case.from_dict(json.loads(record.model_dump_json())) == as_copied
    assert Case.from_dict(record.model_dump()) == as_copied


def test_a_record_without_names_maps_to_none() -> None:
    record = fresh().to_record(None, None)
    assert (record.category_name, record.community, record.report_ids) == (None, None, ["R-C-1"])


def test_a_case_remembers_who_handled_it_through_its_table_entry_and_record() -> None:
    """巡办分离 needs the handlers wherever a case is rebuilt: the agent's table and the gateway's copy."""
    case = at_status("handled")
    assert case.handled_by == ("desk-1",)
    assert Case.from_dict(json.loads(json.dumps(case.to_dict()))).handled_by == ("desk-1",)
    rebuilt = Case.from_dict(case.to_record(None, None).model_dump())
    assert rebuilt.handled_by == ("desk-1",)


def test_a_case_record_published_before_handlers_were_kept_still_loads() -> None:
    """A record on canonical.case (or in the warehouse) without handled_by is a case nobody is known to have handled."""
    record = CaseRecord.model_validate({**CLOSED_ENTRY, "report_count": 2})
    assert record.handled_by == []
    assert Case.from_dict(record.model_dump()).handled_by == ()


def test_a_field_without_a_default_is_still_required() -> None:
    entry = {key: value for key, value in CLOSED_ENTRY.items() if key != "seq"}
    with pytest.raises(ValueError, match="lacks field 'seq'"):
        Case.from_dict(entry)
