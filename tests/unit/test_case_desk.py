"""The case desk's index of open cases follows what it stores, and is rebuilt from the table on demand."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from gridhub.settings import Settings
from schemas.grid import Grid
from schemas.records import RawEnvelope
from streams.cases import CaseDesk, command_message
from streams.lifecycle import load_flow
from streams.normalise import Accepted, normalise
from streams.routing import load_rules

SETTINGS = Settings()


def report_command(event_id: str, lat: float, lon: float, category: str = "0102") -> dict[str, Any]:
    payload = {
        "event_id": event_id,
        "category": category,
        "description": "暴露垃圾",
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
    return json.loads(command_message(decision, "new", decision.category.limit_hours))


@pytest.fixture
def desk() -> CaseDesk:
    sent: list[tuple[str, bytes, bytes]] = []

    async def send(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    return CaseDesk(SETTINGS, load_rules(SETTINGS.routing_rules), Grid.load(SETTINGS.grid_path), load_flow(), send)


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
