"""Squad desks of the enforcement bureau at the gateway: who may move which case and read which orders.

The enforcement bureau dispatches by squad (``dispatch_by_squad`` in the categories file): a squad
desk (``enforcement.wansui``) moves only enforcement cases of its area, the bureau's own desk
(``enforcement``) every enforcement case, and a desk bound to a unit no order goes to is refused
with its reason. No broker here: the case view is fed by hand and the work orders are a fake.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.case_view import CaseView
from connectors.patrol_http import Limits, PatrolGateway
from connectors.photos import PhotoStore
from foundation.access import Doorkeeper, RateLimiter, TokenBook
from foundation.settings import Settings
from schemas.grid import Grid
from schemas.records import CaseRecord, EventUpdate
from streams.case_flow import load_flow
from streams.routing import load_rules
from tests.unit.connectors.test_patrol_http import NoKafka

SETTINGS = Settings()
RULES = load_rules(SETTINGS.routing_rules)


def record(case_id: str, department: str, squad: str | None) -> bytes:
    """A dispatched case as the case agent publishes it on ``canonical.case``."""
    case = CaseRecord(
        case_id=case_id,
        category="0101" if department == "enforcement" else "0404",
        department=department,
        squad=squad,
        reporter_id="GW021",
        status="dispatched",
        reported_at="2026-11-25T08:30:00+08:00",  # type: ignore[arg-type]
        due_at="2026-11-28T08:30:00+08:00",  # type: ignore[arg-type]
        report_ids=[case_id],
        report_count=1,
        seq=3,
        rework_count=0,
        return_count=0,
        lat=31.97,
        lon=119.85,
    )
    return json.dumps({"record": case.model_dump(mode="json")}).encode()


def start(event_id: str, actor: str = "ZF03") -> EventUpdate:
    """A desk taking a case on, naming the officer it assigned."""
    return EventUpdate.model_validate(
        {
            "update_id": f"{event_id}-{actor}",
            "event_id": event_id,
            "status": "in_handling",
            "at": "2026-11-25T09:30:00+08:00",
            "actor": actor,
            "actor_role": "desk",
        }
    )


@pytest.fixture
def view() -> CaseView:
    view = CaseView("unused:9092", load_flow())  # never started: records are fed by hand
    view._caught_up.set()
    for case_id, department, squad in [
        ("R-W", "enforcement", "wansui"),
        ("R-M", "enforcement", "mengcheng"),
        ("R-0", "enforcement", None),
        ("R-S", "sanitation", "wansui"),
    ]:
        view._take(record(case_id, department, squad))
    return view


def test_a_squad_desk_moves_the_enforcement_cases_of_its_area_only(view: CaseView) -> None:
    assert view.refuse(start("R-W"), "enforcement.wansui") is None
    status, code, reason = view.refuse(start("R-M"), "enforcement.wansui")  # type: ignore[misc]
    assert (status, code) == (403, "forbidden")
    assert "squad mengcheng's area" in reason and "squad wansui's area" in reason and "enforcement desk" in reason
    status, code, reason = view.refuse(start("R-0"), "enforcement.wansui")  # type: ignore[misc]
    assert (status, code) == (403, "forbidden") and "outside every grid cell" in reason
    status, code, reason = view.refuse(start("R-S"), "enforcement.wansui")  # type: ignore[misc]
    assert (status, code) == (403, "forbidden") and "dispatched to sanitation, not to enforcement.wansui" in reason


def test_the_bureau_desk_moves_every_enforcement_case_and_no_other(view: CaseView) -> None:
    for case_id in ("R-W", "R-M", "R-0"):
        assert view.refuse(start(case_id), "enforcement") is None, case_id
    status, code, reason = view.refuse(start("R-S"), "enforcement")  # type: ignore[misc]
    assert (status, code) == (403, "forbidden") and "dispatched to sanitation, not to enforcement" in reason


def test_the_sanitation_desk_cannot_move_an_enforcement_case_of_its_area(view: CaseView) -> None:
    status, code, reason = view.refuse(start("R-W"), "sanitation")  # type: ignore[misc]
    assert (status, code) == (403, "forbidden") and "dispatched to enforcement, not to sanitation" in reason


class Orders:
    """Work orders of no broker: notes what was read, for whom, and answers nothing."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, str | None]] = []

    def read(
        self, unit: str, after: str | None, start: str, wait_s: float, reader: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        self.reads.append((unit, reader))
        return [], "0:0"


def call(tmp_path: Path, requests: list[tuple[str, str, str, dict[str, Any] | None]]) -> tuple[list[Any], Orders]:
    """Send (method, path, desk unit, body) requests, each with a desk token bound to that unit."""
    book = TokenBook(tmp_path / "tokens.sqlite")
    units = {unit for _, _, unit, _ in requests}
    tokens = {unit: book.add(f"desk-{unit}", "desk", department=unit) for unit in units}
    orders = Orders()
    gateway = PatrolGateway(
        NoKafka(),  # type: ignore[arg-type]
        RULES,
        Grid.load(SETTINGS.grid_path),
        PhotoStore(tmp_path / "photos", 100_000),
        Limits(record_bytes=100_000, photos=2, track_points=10),
        Doorkeeper(book, RateLimiter("1000/second")),
        orders=orders,  # type: ignore[arg-type]
    )

    async def send() -> list[Any]:
        answers = []
        async with TestClient(TestServer(gateway.application())) as client:
            for method, path, unit, body in requests:
                headers = {"Authorization": f"Bearer {tokens[unit]}"}
                response = await client.request(method, path, json=body, headers=headers)
                answers.append((response.status, await response.json()))
        return answers

    return asyncio.run(send()), orders


def test_a_squad_desk_reads_its_own_orders_in_its_own_group(tmp_path: Path) -> None:
    answers, orders = call(
        tmp_path,
        [
            ("GET", "/v1/orders", "enforcement.wansui", None),
            ("GET", "/v1/orders?department=enforcement.mengcheng", "enforcement.wansui", None),
            ("GET", "/v1/orders?department=enforcement", "enforcement.wansui", None),
        ],
    )
    assert answers[0] == (200, {"department": "enforcement.wansui", "orders": [], "cursor": "0:0"})
    assert answers[1][0] == 403 and "cannot read the orders of enforcement.mengcheng" in answers[1][1]["reason"]
    assert answers[2][0] == 403
    assert orders.reads == [("enforcement.wansui", "enforcement.wansui")]


def test_the_bureau_desk_reads_any_squads_orders_in_its_own_group(tmp_path: Path) -> None:
    answers, orders = call(
        tmp_path,
        [
            ("GET", "/v1/orders", "enforcement", None),
            ("GET", "/v1/orders?department=enforcement.xiaohe", "enforcement", None),
            ("GET", "/v1/orders?department=enforcement.nowhere", "enforcement", None),
        ],
    )
    assert [status for status, _ in answers] == [200, 200, 404]
    assert answers[2][1]["error"] == "unknown_department" and "enforcement.wansui" in answers[2][1]["reason"]
    # The bureau's reading keeps its own position, never the squad's.
    assert orders.reads == [("enforcement", "enforcement"), ("enforcement.xiaohe", "enforcement")]


def test_a_desk_of_an_unknown_squad_is_refused_with_its_reason(tmp_path: Path) -> None:
    update = {"update_id": "U-1", "event_id": "R-W", "status": "in_handling", "at": "2026-11-25T09:30:00+08:00"}
    answers, orders = call(
        tmp_path,
        [
            ("GET", "/v1/orders", "enforcement.nowhere", None),
            ("POST", "/v1/updates", "enforcement.nowhere", update),
            ("POST", "/v1/updates", "sanitation.wansui", update),
        ],
    )
    assert answers[0][0] == 404 and "no department 'enforcement.nowhere'" in answers[0][1]["reason"]
    for status, body in answers[1:]:
        assert (status, body["error"]) == (403, "unknown_desk") and "enforcement.xiaohe" in body["reason"]
    assert orders.reads == []
