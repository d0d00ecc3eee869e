"""Supervision against the real hub: a case parked (挂账) with its reason, and the levels of 督办 of a late one."""

from __future__ import annotations

import json

from schemas.topics import CASE_COMMANDS, ESCALATION_ALERTS, OVERDUE_ALERTS
from tests.integration.test_case_lifecycle import known_to_gateway, report, settle, update
from tests.support.hub import Hub, unique, wait_until


def escalations(hub: Hub, case_id: str) -> list[dict]:
    return [alert for alert in hub.read_topic(ESCALATION_ALERTS) if alert["case"]["case_id"] == case_id]


def test_the_commander_parks_a_case_with_a_reason_and_it_leaves_the_due_counts(hub: Hub) -> None:
    case_id = unique("R")
    reporter = f"GW-{case_id[-6:]}"
    assert hub.post("/v1/reports", report(case_id, reporter=reporter))[0] == 202
    settle(hub, case_id, 3)
    known_to_gateway(hub, case_id)
    park = update(case_id, "parked", "2026-11-25T09:00:00+08:00", "command-centre", due_at="2027-03-01T09:00:00+08:00")
    status, answer = hub.post("/v1/updates", park)
    assert (status, answer["error"]) == (409, "note_required")
    status, answer = hub.post("/v1/updates", {**park, "update_id": unique("U"), "note": "涉及产权纠纷，待法院判决"})
    assert status == 202, answer
    settle(hub, case_id, 4)

    assert hub.sql(f"SELECT status, review_at FROM cases WHERE case_id = '{case_id}'") == [
        ["parked", "2027-03-01T09:00:00+08:00"]
    ]
    assert hub.sql(f"SELECT action, note FROM case_transitions WHERE case_id = '{case_id}' AND seq = 4") == [
        ["park", "涉及产权纠纷，待法院判决"]
    ]
    kpi = hub.cli("kpi", "--by", "worker", "--output", "json")
    assert kpi.returncode == 0, kpi.stderr
    [mine] = [row for row in json.loads(kpi.stdout) if row["worker"] == reporter]
    assert (mine["cases_due"], mine["closed"], mine["parked"]) == (0, 0, 1)
    # Parked, it raises nothing more, however late its old deadline is.
    hub.worker_done(CASE_COMMANDS, ticks=2)
    level = hub.scalar(f"SELECT escalation_level FROM cases WHERE case_id = '{case_id}'")
    assert len(escalations(hub, case_id)) == level


def test_a_late_case_climbs_every_level_once_with_its_own_alerts(hub: Hub) -> None:
    case_id = unique("R")
    late = report(case_id, reported_at="2026-11-20T08:00:00+08:00", category="0403")  # due an hour later
    assert hub.post("/v1/reports", late)[0] == 202
    wait_until(
        lambda: hub.scalar(f"SELECT escalation_level FROM cases WHERE case_id = '{case_id}'") == 3,
        what="the case at level 3",
    )
    wait_until(lambda: len(escalations(hub, case_id)) == 3, what="three escalation alerts")
    hub.worker_done(CASE_COMMANDS, ticks=1)
    alerts = escalations(hub, case_id)
    assert [(alert["alert"], alert["level"], alert["zh"]) for alert in alerts] == [
        ("escalation", 1, "超期提醒"),
        ("escalation", 2, "督办"),
        ("escalation", 3, "挂牌督办"),
    ]
    assert len([alert for alert in hub.read_topic(OVERDUE_ALERTS) if alert["case"]["case_id"] == case_id]) == 1
    row = hub.sql(f"SELECT overdue_alerted, escalated_at IS NOT NULL FROM cases WHERE case_id = '{case_id}'")
    assert row == [[True, True]]
    [facts] = hub.sql(f"SELECT is_due, is_escalated FROM kpi_case_facts WHERE case_id = '{case_id}'")
    assert facts == [True, True]
