"""Public complaints wait for verification on site (核实): their cases are not filed and dispatched by the system."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from foundation.packaged import CATEGORIES
from streams.routing import RoutingError, load_rules
from tests.unit.streams.test_cases import Desk, desk_on_dicts, report_command, update_command, work_orders

HOTLINE = "hotline-12345"


def complaint(event_id: str, lat: float, lon: float) -> dict[str, Any]:
    """A report command as the integrate agent hands over a 12345 complaint."""
    message = report_command(event_id, lat, lon)
    message["envelope"]["source"] = HOTLINE
    return message


def transitions(desk: Desk, case_id: str) -> list[tuple[str, str, str]]:
    return [
        (record["record"]["action"], record["record"]["actor_role"], record["record"]["to_status"])
        for topic, key, value in desk.sent
        if topic == "canonical.case_transition" and key == case_id.encode()
        for record in [json.loads(value)]
    ]


@pytest.fixture
def desk() -> Desk:
    return desk_on_dicts()


def test_the_packaged_rules_hold_12345_complaints_for_verification() -> None:
    assert load_rules(CATEGORIES).verify_on_site == frozenset({HOTLINE})


def test_a_complaint_opens_a_case_that_stays_reported_without_a_work_order(desk: Desk) -> None:
    asyncio.run(desk.report(complaint("GD1", 31.99, 119.87)))
    assert desk.cases["GD1"]["status"] == "reported"
    assert work_orders(desk) == []
    assert transitions(desk, "GD1") == [("report", "grid_worker", "reported")]


def test_a_grid_worker_who_verified_it_files_it_and_the_system_dispatches_it(desk: Desk) -> None:
    asyncio.run(desk.report(complaint("GD1", 31.99, 119.87)))
    asyncio.run(desk.update(*update_command("GD1", "accepted", "GW007", 5)))
    assert desk.cases["GD1"]["status"] == "dispatched"
    assert transitions(desk, "GD1")[1:] == [("accept", "grid_worker", "accepted"), ("dispatch", "system", "dispatched")]
    [order] = work_orders(desk)
    assert order["event_id"] == "GD1"


def test_the_command_centre_may_refuse_a_complaint_that_is_not_true(desk: Desk) -> None:
    asyncio.run(desk.report(complaint("GD1", 31.99, 119.87)))
    asyncio.run(desk.update(*update_command("GD1", "rejected", "command-centre", 5)))
    assert desk.cases["GD1"]["status"] == "rejected"
    assert work_orders(desk) == []


def test_a_complaint_about_an_open_case_joins_it_and_leaves_it_as_it_is(desk: Desk) -> None:
    asyncio.run(desk.report(report_command("R1", 31.99, 119.87)))
    asyncio.run(desk.report(complaint("GD2", 31.9901, 119.8701)))
    assert desk.cases["R1"]["status"] == "dispatched"
    assert "GD2" not in desk.cases
    assert [case.report_ids for case in desk.open_cases("0102")] == [("R1", "GD2")]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("sources: [hotline-12345]", "'sources' must map each source name"),
        ("sources: {hotline-12345: {verify_on_site: yes please}}", "may only set verify_on_site"),
        ("sources: {hotline-12345: {auto_close: true}}", "may only set verify_on_site"),
    ],
)
def test_a_wrong_sources_section_stops_the_rules_from_loading(tmp_path: Path, section: str, problem: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(CATEGORIES.read_text(encoding="utf-8").split("\nsources:")[0] + "\n" + section + "\n", "utf-8")
    with pytest.raises(RoutingError, match=problem):
        load_rules(path)
