"""The case desk: its index of open cases, where it keeps reports, and the work orders it sends."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from foundation.settings import Settings
from schemas.grid import Grid
from schemas.records import Event, RawEnvelope
from schemas.topics import canonical_topic
from streams.case_flow import load_flow
from streams.case_state import Case
from streams.cases import CaseDesk, command_message, restore_message
from streams.normalise import Accepted, normalise
from streams.routing import load_rules
from tests.support.patrol import gateway_role

SETTINGS = Settings()


def report_command(
    event_id: str, lat: float, lon: float, category: str = "0102", description: str = "暴露垃圾", outcome: str = "new"
) -> dict[str, Any]:
    payload = {
        "event_id": event_id,
        "category": category,
        "description": description,
        "reported_at": "2026-11-25T09:00:00+08:00",
        "reporter_id": "GW001",
        "lat": lat,
        "lon": lon,
    }
    envelope = RawEnvelope(
        record_uid=uuid.uuid4().hex,
        source="patrol",
        source_record_id=event_id,
        entity="event",
        received_at=datetime(2026, 11, 25, 1, tzinfo=UTC),
        content_hash="x",
        payload=payload,
    )
    rules = load_rules(SETTINGS.routing_rules)
    decision = normalise(envelope.model_dump_json().encode(), rules, Grid.load(SETTINGS.grid_path))
    assert isinstance(decision, Accepted), decision
    assert decision.category is not None
    return json.loads(command_message(decision, outcome, decision.category.limit_hours))


def update_command(event_id: str, status: str, actor: str, minute: int) -> tuple[bytes, dict[str, Any]]:
    record = {
        "update_id": f"{event_id}-{status}-{minute}",
        "event_id": event_id,
        "status": status,
        "at": f"2026-11-25T10:{minute:02d}:00+08:00",
        "actor": actor,
        "actor_role": gateway_role(actor),
    }
    envelope = RawEnvelope(
        record_uid=uuid.uuid4().hex,
        source="patrol",
        source_record_id=record["update_id"],
        entity="event_update",
        received_at=datetime(2026, 11, 25, 2, tzinfo=UTC),
        content_hash="x",
        payload=record,
    )
    message = {
        "type": "event_update",
        "envelope": envelope.model_dump(mode="json"),
        "record": record,
        "fingerprint": "f",
        "outcome": "new",
    }
    return json.dumps(message).encode(), message


class Desk(CaseDesk):
    """A case desk on plain dicts that records what it sends."""

    sent: list[tuple[str, bytes, bytes]]


def desk_on_dicts() -> Desk:
    sent: list[tuple[str, bytes, bytes]] = []

    async def send(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    desk = Desk(SETTINGS, load_rules(SETTINGS.routing_rules), Grid.load(SETTINGS.grid_path), load_flow(), send)
    desk.sent = sent
    return desk


@pytest.fixture
def desk() -> Desk:
    return desk_on_dicts()


def work_orders(desk: Desk) -> list[dict[str, Any]]:
    return [json.loads(value)["work_order"] for topic, _, value in desk.sent if topic.startswith("dispatch.")]


def move(desk: Desk, event_id: str, *steps: tuple[str, str]) -> None:
    for minute, (status, actor) in enumerate(steps, start=1):
        asyncio.run(desk.update(*update_command(event_id, status, actor, minute)))
    assert not [topic for topic, _, _ in desk.sent if topic == "rejects"]


def test_a_second_report_nearby_joins_the_open_case_found_in_the_index(desk: CaseDesk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    asyncio.run(desk.report(report_command("R2", 31.9901, 119.8701)))
    assert [case.report_ids for case in desk.open_cases("0102")] == [("R1", "R2")]


def test_the_index_is_rebuilt_from_the_table_and_drops_finished_cases(desk: CaseDesk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    asyncio.run(desk.report(report_command("R9", 31.95, 119.83)))
    closed = {**desk.cases["R9"], "status": "closed"}
    desk.cases["R9"] = closed
    desk.reindex()
    assert [case.case_id for case in desk.open_cases()] == ["R1"]
    assert desk.open_cases("0999") == []


def test_a_report_that_opens_a_case_is_kept_in_the_case_entry_and_goes_out_as_the_work_order(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    assert desk.reports == {}
    assert desk.cases["R1"]["opening_report"]["description"] == "暴露垃圾"
    [order] = work_orders(desk)
    assert (order["event_id"], order["case_id"], order["status"]) == ("R1", "R1", "dispatched")


def test_a_redispatch_sends_the_opening_report_again_as_last_resent_by_the_phone(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87, description="垃圾满溢", outcome="update")))
    move(desk, "R1", ("returned", "desk-sanitation"), ("dispatched", "command-centre"))
    assert [order["description"] for order in work_orders(desk)] == ["暴露垃圾", "垃圾满溢"]
    assert desk.cases["R1"]["status"] == "dispatched" and desk.reports == {}


def test_a_redispatch_to_another_department_sends_the_work_order_there(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    move(desk, "R1", ("returned", "desk-sanitation"))
    raw, message = update_command("R1", "dispatched", "command-centre", 2)
    message["record"]["department"] = "water"
    asyncio.run(desk.update(raw, message))
    assert dispatched_to(desk) == [("dispatch.sanitation", "R1"), ("dispatch.water", "R1")]
    assert desk.cases["R1"]["department"] == "water"


def dispatched_to(desk: Desk) -> list[tuple[str, str]]:
    """(topic, report id) of every work order the desk sent, in order."""
    return [
        (topic, json.loads(value)["work_order"]["event_id"]) for topic, _, value in desk.sent if "dispatch." in topic
    ]


def test_an_enforcement_case_goes_to_the_squad_desk_of_its_area(desk: Desk) -> None:
    """一支队伍管执法: the bureau dispatches by squad; other departments keep their one desk."""
    asyncio.run(desk.report(report_command("R1", 31.95, 119.83, category="0101", description="私搭乱建")))  # wansui
    asyncio.run(desk.report(report_command("R2", 31.99, 119.87, category="0101", description="私搭乱建")))  # mengcheng
    asyncio.run(desk.report(report_command("R3", 31.95, 119.83)))  # sanitation, in wansui's area
    assert dispatched_to(desk) == [
        ("dispatch.enforcement.wansui", "R1"),
        ("dispatch.enforcement.mengcheng", "R2"),
        ("dispatch.sanitation", "R3"),
    ]


def test_a_case_redispatched_to_the_bureau_goes_to_the_squad_of_its_area(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.95, 119.83)))
    move(desk, "R1", ("returned", "desk-sanitation"))
    raw, message = update_command("R1", "dispatched", "command-centre", 2)
    message["record"]["department"] = "enforcement"
    asyncio.run(desk.update(raw, message))
    assert dispatched_to(desk) == [("dispatch.sanitation", "R1"), ("dispatch.enforcement.wansui", "R1")]


def test_the_case_entry_remembers_who_handled_it(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.95, 119.83, category="0101", description="私搭乱建")))
    move(desk, "R1", ("in_handling", "desk-enforcement.wansui"))
    raw, message = update_command("R1", "handled", "desk-enforcement.wansui", 2)
    message["record"]["photo_ref"] = "sha256:" + "a" * 64
    asyncio.run(desk.update(raw, message))
    assert desk.cases["R1"]["handled_by"] == ["desk-enforcement.wansui"]
    [*_, (_, _, published)] = [sent for sent in desk.sent if sent[0] == canonical_topic("case")]
    assert json.loads(published)["record"]["handled_by"] == ["desk-enforcement.wansui"]


def test_a_department_the_town_does_not_have_is_rejected_and_changes_nothing(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    move(desk, "R1", ("returned", "desk-sanitation"))
    raw, message = update_command("R1", "dispatched", "command-centre", 2)
    message["record"]["department"] = "atlantis"
    asyncio.run(desk.update(raw, message))
    (reject,) = [json.loads(value) for topic, _, value in desk.sent if topic == "rejects"]
    assert reject["reason_code"] == "unknown_department" and "atlantis" in reject["reason"]
    assert (desk.cases["R1"]["status"], desk.cases["R1"]["department"]) == ("returned", "sanitation")


def test_a_merged_report_is_kept_apart_and_its_updates_move_the_case_it_joined(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    asyncio.run(desk.report(report_command("R2", 31.9901, 119.8701)))
    assert desk.reports["R2"]["case_id"] == "R1"
    move(desk, "R2", ("in_handling", "desk-sanitation"))
    assert desk.cases["R1"]["status"] == "in_handling" and "R2" not in desk.cases


def test_tables_that_kept_every_report_apart_still_route_updates_and_redispatches(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    desk.reports["R1"] = desk.cases["R1"].pop("opening_report")
    move(desk, "R1", ("returned", "desk-sanitation"), ("dispatched", "command-centre"))
    assert [order["event_id"] for order in work_orders(desk)] == ["R1", "R1"]


def _restored(desk: Desk, fresh: Desk, case_id: str) -> None:
    """Hand ``fresh`` the case as the warehouse holds it after ``desk`` built it: the record and its reports."""
    record = desk.case_record(Case.from_dict(desk.cases[case_id]))
    reports = [
        Event.model_validate(json.loads(value)["record"])
        for topic, _, value in desk.sent
        if topic == canonical_topic("event")
    ]
    asyncio.run(fresh.handle(json.loads(restore_message(record, reports)), b""))


def test_a_restored_case_takes_updates_and_second_reports_as_the_old_desk_would(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    asyncio.run(desk.report(report_command("R2", 31.9901, 119.8701)))
    fresh = desk_on_dicts()
    _restored(desk, fresh, "R1")
    assert fresh.sent == [], "a restore publishes nothing"
    move(fresh, "R2", ("in_handling", "desk-sanitation"))
    asyncio.run(fresh.report(report_command("R3", 31.9902, 119.8702)))
    assert [case.report_ids for case in fresh.open_cases("0102")] == [("R1", "R2", "R3")]
    assert fresh.cases["R1"]["status"] == "in_handling"
    assert fresh.cases["R1"]["opening_report"]["event_id"] == "R1"


def test_a_restore_never_takes_a_case_back_to_an_earlier_step(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    fresh = desk_on_dicts()
    _restored(desk, fresh, "R1")
    move(fresh, "R1", ("in_handling", "desk-sanitation"))
    _restored(desk, fresh, "R1")
    assert fresh.cases["R1"]["status"] == "in_handling"
