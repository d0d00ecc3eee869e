"""Supervision (督办) and parking (挂账): the flow's new edges, the machine's rules, the case desk's clock."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.topics import ESCALATION_ALERTS, OVERDUE_ALERTS
from schemas.working_time import load_calendar
from streams.case_flow import DEFAULT_ESCALATION, FlowError, load_flow
from streams.case_machine import apply, escalate, is_overdue, open_case, review_due
from streams.case_state import Case
from streams.routing import RoutingError, load_rules
from tests.support.cases import FLOW, FLOW_FILE, T0, at_status, command, fresh, refusal
from tests.unit.streams.test_cases import Desk, desk_on_dicts

REVIEW = T0 + timedelta(days=90)


def parked(source: str = "in_handling") -> Case:
    case = at_status(source)
    return apply(FLOW, case, command(case, "parked", "command_centre", note="等待法院判决", due_at=REVIEW))[0]


# The flow file -----------------------------------------------------------------------------------


def test_the_packaged_flow_parks_with_a_reason_and_a_review_date_and_escalates_in_three_levels() -> None:
    park = FLOW.edge("in_handling", "parked")
    assert park is not None and park.note_required and park.review_required and not park.deadline_required
    unpark = FLOW.edge("parked", "in_handling")
    assert unpark is not None and unpark.deadline_required and unpark.roles == {"command_centre"}
    assert [(level.level, level.after_hours, level.zh) for level in FLOW.escalation] == [
        (1, 0.0, "超期提醒"),
        (2, 24.0, "督办"),
        (3, 72.0, "挂牌督办"),
    ]


def flow_file(tmp_path: Path, **changes: Any) -> Path:
    document = yaml.safe_load(FLOW_FILE.read_text(encoding="utf-8"))
    document.update(changes)
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_a_flow_without_escalation_has_the_overdue_level_only(tmp_path: Path) -> None:
    document = yaml.safe_load(FLOW_FILE.read_text(encoding="utf-8"))
    del document["escalation"]
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert load_flow(path).escalation == DEFAULT_ESCALATION


@pytest.mark.parametrize(
    ("levels", "problem"),
    [
        ([{"level": 1, "after_hours": 4, "zh": "a"}], "level 1 must come at 0 h"),
        ([{"level": 1, "after_hours": 0, "zh": "a"}, {"level": 2, "after_hours": 0, "zh": "b"}], "later than"),
        ([{"level": 2, "after_hours": 0, "zh": "a"}], "numbered 1"),
        ([{"level": 1, "after_hours": 0}], "exactly level, after_hours and zh"),
        ([], "list of levels"),
    ],
)
def test_wrong_escalation_levels_are_refused(tmp_path: Path, levels: list[Any], problem: str) -> None:
    with pytest.raises(FlowError, match=problem):
        load_flow(flow_file(tmp_path, escalation=levels))


def test_an_edge_cannot_take_due_at_as_deadline_and_review_date_at_once(tmp_path: Path) -> None:
    document = yaml.safe_load(FLOW_FILE.read_text(encoding="utf-8"))
    for entry in document["transitions"]:
        if entry["action"] == "park":
            entry["deadline"] = True
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(FlowError, match="not both"):
        load_flow(path)


# The machine -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["dispatched", "in_handling", "returned"])
def test_the_command_centre_parks_a_case_with_its_reason_and_review_date(source: str) -> None:
    case = parked(source)
    assert (case.status, case.review_at, case.review_alerted) == ("parked", REVIEW, False)
    assert case.due_at == at_status(source).due_at  # the deadline is left as it was


def test_parking_needs_a_reason_and_a_later_review_date_and_the_command_centre() -> None:
    case = at_status("in_handling")
    assert refusal(case, command(case, "parked", "command_centre", due_at=REVIEW)).code == "note_required"
    assert refusal(case, command(case, "parked", "command_centre", note="  ", due_at=REVIEW)).code == "note_required"
    assert refusal(case, command(case, "parked", "command_centre", note="why")).code == "review_date_required"
    past = command(case, "parked", "command_centre", note="why", due_at=case.updated_at)
    assert refusal(case, past).code == "review_date_required"
    desk = command(case, "parked", "desk", note="why", due_at=REVIEW)
    assert refusal(case, desk).code == "role_not_allowed"


def test_a_parked_case_is_never_overdue_nor_escalated() -> None:
    case = parked()
    late = case.due_at + timedelta(days=30)
    assert not is_overdue(case, late)
    assert escalate(FLOW, case, late) == (case, [])


def test_unparking_needs_a_new_deadline_and_starts_the_levels_again() -> None:
    case = replace(parked(), escalation_level=2, overdue_alerted=True, escalated_at=T0 + timedelta(days=2))
    assert refusal(case, command(case, "in_handling", "command_centre")).code == "deadline_required"
    new_due = case.due_at + timedelta(days=120)
    resumed, transition = apply(FLOW, case, command(case, "in_handling", "command_centre", due_at=new_due))
    assert (resumed.status, resumed.due_at, transition.action) == ("in_handling", new_due, "unpark")
    assert (resumed.escalation_level, resumed.overdue_alerted) == (0, False)
    assert resumed.escalated_at == case.escalated_at  # the KPIs keep that it was escalated once
    redispatched, _ = apply(FLOW, case, command(case, "dispatched", "command_centre", due_at=new_due))
    assert redispatched.status == "dispatched"


def test_a_parked_case_past_its_review_date_is_due_for_review_once() -> None:
    case = parked()
    assert not review_due(case, REVIEW)
    assert review_due(case, REVIEW + timedelta(seconds=1))
    assert not review_due(replace(case, review_alerted=True), REVIEW + timedelta(days=1))


def test_escalation_raises_each_level_once_in_order() -> None:
    case = at_status("in_handling")
    assert escalate(FLOW, case, case.due_at) == (case, [])
    first, levels = escalate(FLOW, case, case.due_at + timedelta(hours=1))
    assert [level.level for level in levels] == [1] and first.overdue_alerted and first.escalated_at is None
    assert escalate(FLOW, first, case.due_at + timedelta(hours=2)) == (first, [])
    later = case.due_at + timedelta(hours=25)
    second, levels = escalate(FLOW, first, later)
    # escalated_at is when 督办 fell due (deadline + 24 h), not when the check ran.
    assert [level.level for level in levels] == [2]
    assert (second.escalation_level, second.escalated_at) == (2, case.due_at + timedelta(hours=24))
    third, levels = escalate(FLOW, case, case.due_at + timedelta(days=4))  # found late: every level passed
    assert [level.level for level in levels] == [1, 2, 3] and third.escalation_level == 3
    assert third.escalated_at == case.due_at + timedelta(hours=24)


def test_an_entry_that_raised_its_overdue_alert_before_levels_were_kept_is_at_level_1() -> None:
    old = replace(at_status("in_handling"), overdue_alerted=True)
    _, levels = escalate(FLOW, old, old.due_at + timedelta(hours=30))
    assert [level.level for level in levels] == [2]


def test_a_finished_case_never_escalates() -> None:
    case = at_status("closed")
    assert escalate(FLOW, case, case.due_at + timedelta(days=9)) == (case, [])


# Working days ------------------------------------------------------------------------------------


def test_a_case_can_be_due_in_working_days_on_the_calendar() -> None:
    calendar = load_calendar()
    friday = datetime.fromisoformat("2026-02-13T10:00:00+08:00")
    case = fresh(reported_at=friday, limit_hours=None, limit_working_days=2, calendar=calendar)
    assert case.due_at == datetime.fromisoformat("2026-02-25T00:00:00+08:00")  # 调休 Saturday, then 春节
    with pytest.raises(ValueError, match="limit_hours"):
        open_case(**{**_fields(), "limit_hours": 8, "limit_working_days": 2, "calendar": calendar})
    with pytest.raises(ValueError, match="limit_working_days"):
        open_case(**{**_fields(), "limit_hours": None, "limit_working_days": 2})


def _fields() -> dict[str, Any]:
    return {
        "case_id": "C-9",
        "report_id": "C-9",
        "category": "0102",
        "department": "sanitation",
        "squad": None,
        "grid_code": None,
        "lat": 31.94,
        "lon": 119.88,
        "reporter_id": "gw",
        "reported_at": T0,
    }


def test_categories_may_give_their_limit_in_working_days(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "departments: {a: A}\ncategories:\n  - {code: '01', name: x, department: a, limit_working_days: 5}\n"
        "  - {code: '02', name: y, department: a, limit_hours: 8}\n",
        encoding="utf-8",
    )
    rules = load_rules(path)
    assert (rules.categories["01"].limit_working_days, rules.categories["01"].limit_hours) == (5, None)
    assert (rules.categories["02"].limit_working_days, rules.categories["02"].limit_hours) == (None, 8.0)
    for wrong in ("limit_working_days: 0", "limit_working_days: 1.5", "limit_working_days: 5, limit_hours: 8"):
        path.write_text(f"departments: {{a: A}}\ncategories:\n  - {{code: '01', name: x, department: a, {wrong}}}\n")
        with pytest.raises(RoutingError, match="incomplete"):
            load_rules(path)


# The case desk's clock ---------------------------------------------------------------------------


def alerts(desk: Desk, topic: str) -> list[dict[str, Any]]:
    return [json.loads(value) for sent_topic, _, value in desk.sent if sent_topic == topic]


def stored(desk: Desk, case: Case) -> None:
    desk.cases[case.case_id] = case.to_dict()
    desk.reindex()


def test_the_clock_raises_each_level_once_and_the_overdue_alert_with_level_1() -> None:
    desk = desk_on_dicts()
    case = at_status("in_handling")
    stored(desk, case)
    for hours in (1, 2, 25, 26, 73, 100):
        asyncio.run(desk.tick(case.due_at + timedelta(hours=hours)))
    raised = alerts(desk, ESCALATION_ALERTS)
    assert [(alert["alert"], alert["level"], alert["zh"]) for alert in raised] == [
        ("escalation", 1, "超期提醒"),
        ("escalation", 2, "督办"),
        ("escalation", 3, "挂牌督办"),
    ]
    assert [alert["case"]["escalation_level"] for alert in raised] == [1, 2, 3]
    assert len(alerts(desk, OVERDUE_ALERTS)) == 1
    kept = Case.from_dict(desk.cases[case.case_id])
    assert (kept.escalation_level, kept.escalated_at) == (3, case.due_at + timedelta(hours=24))


def test_a_restarted_desk_does_not_raise_a_level_again() -> None:
    first = desk_on_dicts()
    case = at_status("in_handling")
    stored(first, case)
    asyncio.run(first.tick(case.due_at + timedelta(hours=30)))
    second = desk_on_dicts()  # a new worker recovering the table from its changelog
    second.cases = {key: json.loads(json.dumps(value)) for key, value in first.cases.items()}
    asyncio.run(second.tick(case.due_at + timedelta(hours=31)))
    assert alerts(second, ESCALATION_ALERTS) == alerts(second, OVERDUE_ALERTS) == []
    asyncio.run(second.tick(case.due_at + timedelta(hours=80)))
    assert [alert["level"] for alert in alerts(second, ESCALATION_ALERTS)] == [3]


def test_the_clock_leaves_parked_and_closed_cases_alone_but_reminds_of_a_parked_case_review() -> None:
    desk = desk_on_dicts()
    waiting, closed = parked(), replace(at_status("closed"), case_id="C-2")
    stored(desk, waiting)
    stored(desk, closed)
    asyncio.run(desk.tick(waiting.due_at + timedelta(days=5)))
    assert alerts(desk, ESCALATION_ALERTS) == alerts(desk, OVERDUE_ALERTS) == []
    asyncio.run(desk.tick(REVIEW + timedelta(hours=1)))
    asyncio.run(desk.tick(REVIEW + timedelta(hours=2)))
    reminders = alerts(desk, ESCALATION_ALERTS)
    assert [(alert["alert"], alert["level"], alert["hours_late"]) for alert in reminders] == [("review_due", None, 1.0)]
    assert alerts(desk, OVERDUE_ALERTS) == []
