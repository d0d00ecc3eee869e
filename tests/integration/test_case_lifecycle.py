"""The one-grid loop on the real hub: report → dispatch → handle → verify → close, and its side paths.

Every step goes in through the patrol gateway (HTTP) as phones and desks send it; every assertion
reads the warehouse, the dispatch topics or the alerts topic.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

from PIL import Image
from support import Hub, spot, unique, wait_until

STEP_COLUMNS = "seq, from_status, to_status, action, actor, actor_role"


def photo_ref(hub: Hub) -> str:
    """Upload a real photo with a throwaway report and return its reference."""
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), tuple(uuid.uuid4().bytes[:3])).save(buffer, format="PNG")
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="report"\r\nContent-Type: application/json\r\n\r\n'
            + json.dumps(report(unique("P"), reporter="GW146", category="0101"))
            + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + buffer.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, answer = hub.post("/v1/reports", body, content_type=f"multipart/form-data; boundary={boundary}")
    assert status == 202, answer
    return str(answer["photos"][0])


def report(report_id: str, reporter: str = "GW021", **extra: Any) -> dict:
    return {
        "report_id": report_id,
        "category": "0404",
        "description": "下水道堵塞，污水外溢",
        **spot(),
        "reported_at": "2026-11-25T08:30:00+08:00",
        "reporter_id": reporter,
        **extra,
    }


def update(event_id: str, status: str, at: str, actor: str, **extra: Any) -> dict:
    return {"update_id": unique("U"), "event_id": event_id, "status": status, "at": at, "actor": actor, **extra}


def case_status(hub: Hub, case_id: str) -> str | None:
    rows = hub.sql(f"SELECT status FROM cases WHERE case_id = '{case_id}'")
    return rows[0][0] if rows else None


def settle(hub: Hub, case_id: str, transitions: int) -> None:
    wait_until(
        lambda: hub.scalar(f"SELECT count(*) FROM case_transitions WHERE case_id = '{case_id}'") == transitions,
        what=f"{transitions} transitions of {case_id}",
    )


def reject_of(hub: Hub, update_id: str) -> list[Any]:
    return wait_until(
        lambda: hub.sql(f"SELECT stage, reason_code, reason FROM rejects WHERE source_record_id = '{update_id}'"),
        what=f"the reject of {update_id}",
    )[0]


def test_a_case_goes_through_every_step_to_closed(hub: Hub) -> None:
    case_id = unique("R")
    reporter = f"GW-{case_id[-6:]}"
    assert hub.post("/v1/reports", report(case_id, reporter=reporter))[0] == 202
    settle(hub, case_id, 3)
    handled_photo, verified_photo = photo_ref(hub), photo_ref(hub)
    steps = [
        update(case_id, "in_handling", "2026-11-25T09:00:00+08:00", "desk-water"),
        update(case_id, "handled", "2026-11-25T10:00:00+08:00", "desk-water", photo_ref=handled_photo),
        update(case_id, "verified", "2026-11-25T10:30:00+08:00", reporter, photo_ref=verified_photo),
        update(case_id, "closed", "2026-11-25T10:45:00+08:00", "command-centre"),
    ]
    for step in steps:
        assert hub.post("/v1/updates", step)[0] == 202
    settle(hub, case_id, 7)

    assert hub.sql(f"SELECT {STEP_COLUMNS} FROM case_transitions WHERE case_id = '{case_id}' ORDER BY seq") == [
        [1, None, "reported", "report", reporter, "grid_worker"],
        [2, "reported", "accepted", "accept", "system", "system"],
        [3, "accepted", "dispatched", "dispatch", "system", "system"],
        [4, "dispatched", "in_handling", "start", "desk-water", "desk"],
        [5, "in_handling", "handled", "handle", "desk-water", "desk"],
        [6, "handled", "verified", "verify", reporter, "grid_worker"],
        [7, "verified", "closed", "close", "command-centre", "command_centre"],
    ]
    case = hub.sql(
        "SELECT status, department, closed_at, accepted_at, handled_at, report_count, rework_count, "
        f"epoch(due_at - reported_at) / 3600 FROM cases WHERE case_id = '{case_id}'"
    )[0]
    assert case[0:2] == ["closed", "water"]
    assert case[2].startswith("2026-11-25T10:45:00")
    assert case[3].startswith("2026-11-25T08:30:00") and case[4].startswith("2026-11-25T10:00:00")
    assert case[5:] == [1, 0, 12.0]
    assert hub.scalar(f"SELECT status FROM events WHERE event_id = '{case_id}'") == "closed"
    photos = hub.sql(
        f"SELECT photo_ref FROM case_transitions WHERE case_id = '{case_id}' AND seq IN (5, 6) ORDER BY seq"
    )
    assert photos == [[handled_photo], [verified_photo]]

    kpi = hub.cli("kpi", "--by", "worker", "--output", "json")
    assert kpi.returncode == 0, kpi.stderr
    mine = [row for row in json.loads(kpi.stdout) if row["worker"] == reporter]
    assert mine == [
        {
            "worker": reporter,
            "cases_due": 1,
            "closed": 1,
            "closed_on_time": 1,
            "closure_rate": 1.0,
            "on_time_rate": 1.0,
            "rework_rate": 0.0,
            "median_hours_to_close": 2.25,
            "p90_hours_to_close": 2.25,
        }
    ]


def test_decline_redispatch_and_rework_are_counted_and_the_work_order_goes_out_again(hub: Hub) -> None:
    case_id = unique("R")
    assert hub.post("/v1/reports", report(case_id))[0] == 202
    settle(hub, case_id, 3)
    photo = photo_ref(hub)
    for step in [
        update(case_id, "returned", "2026-11-25T09:00:00+08:00", "desk-water", note="不属于本部门"),
        update(case_id, "dispatched", "2026-11-25T09:10:00+08:00", "command-centre"),
        update(case_id, "in_handling", "2026-11-25T09:20:00+08:00", "desk-water"),
        update(case_id, "handled", "2026-11-25T10:00:00+08:00", "desk-water", photo_ref=photo),
        update(case_id, "returned", "2026-11-25T10:30:00+08:00", "GW021", note="现场仍有积水"),
        update(case_id, "in_handling", "2026-11-25T10:40:00+08:00", "desk-water"),
    ]:
        assert hub.post("/v1/updates", step)[0] == 202
    settle(hub, case_id, 9)
    actions = hub.sql(f"SELECT action FROM case_transitions WHERE case_id = '{case_id}' AND seq > 3 ORDER BY seq")
    assert [row[0] for row in actions] == ["decline", "redispatch", "start", "handle", "rework", "restart"]
    assert hub.sql(f"SELECT status, return_count, rework_count FROM cases WHERE case_id = '{case_id}'") == [
        ["in_handling", 1, 1]
    ]
    orders = [order for order in hub.read_topic("dispatch.water") if order["work_order"]["event_id"] == case_id]
    assert len(orders) == 2


def test_illegal_steps_are_refused_at_once_with_reasons_and_leave_the_case_as_it_was(hub: Hub) -> None:
    case_id = unique("R")
    assert hub.post("/v1/reports", report(case_id))[0] == 202
    settle(hub, case_id, 3)
    closed_early = update(case_id, "closed", "2026-11-25T09:00:00+08:00", "command-centre")
    no_photo = update(case_id, "handled", "2026-11-25T09:00:00+08:00", "desk-water")
    wrong_role = update(case_id, "in_handling", "2026-11-25T09:00:00+08:00", "GW021")
    unknown = update(unique("R-NONE"), "in_handling", "2026-11-25T09:00:00+08:00", "desk-water")

    status, answer = hub.post("/v1/updates", closed_early)
    assert (status, answer["error"]) == (409, "illegal_transition")
    assert "dispatched" in answer["reason"] and "in_handling" in answer["reason"]
    assert hub.post("/v1/updates", no_photo)[0] == 409
    status, answer = hub.post("/v1/updates", wrong_role)
    assert (status, answer["error"]) == (409, "role_not_allowed")
    status, answer = hub.post("/v1/updates", unknown)
    assert (status, answer["error"]) == (404, "unknown_case")

    fine = update(case_id, "in_handling", "2026-11-25T09:05:00+08:00", "desk-water")
    assert hub.post("/v1/updates", fine)[0] == 202
    assert hub.post("/v1/updates", fine)[0] == 202, "a phone resending an accepted update is not refused"
    settle(hub, case_id, 4)
    assert case_status(hub, case_id) == "in_handling"
    refused = ", ".join(f"'{step['update_id']}'" for step in (closed_early, no_photo, wrong_role, unknown))
    assert hub.scalar(f"SELECT count(*) FROM intake WHERE source_record_id IN ({refused})") == 0


def test_the_case_agent_rejects_an_illegal_step_that_bypassed_the_gateway(hub: Hub) -> None:
    """Another producer (or a second gateway racing this one) cannot push a case off the flow."""
    from connectors.base import Connector, RawPublisher
    from schemas.topics import RAW_PATROL

    case_id = unique("R")
    assert hub.post("/v1/reports", report(case_id))[0] == 202
    settle(hub, case_id, 3)

    class RogueTerminal(Connector):
        topic = RAW_PATROL

    publisher = RawPublisher(hub.stack.bootstrap, client_id="rogue")
    try:
        terminal = RogueTerminal(publisher, source="patrol")
        closed_early = update(case_id, "closed", "2026-11-25T09:00:00+08:00", "command-centre")
        terminal.send(terminal.envelope(closed_early["update_id"], "event_update", closed_early)).get(timeout=30)
    finally:
        publisher.close()
    stage, code, reason = reject_of(hub, closed_early["update_id"])
    assert (stage, code) == ("lifecycle", "illegal_transition")
    assert "not to closed" in reason
    assert case_status(hub, case_id) == "dispatched"
    assert (
        hub.scalar(f"SELECT outcome FROM intake WHERE source_record_id = '{closed_early['update_id']}'") == "rejected"
    )


def test_a_second_worker_reporting_the_same_problem_joins_the_open_case(hub: Hub) -> None:
    first, second, elsewhere = unique("R"), unique("R"), unique("R")
    original = report(first)
    assert hub.post("/v1/reports", original)[0] == 202
    settle(hub, first, 3)
    close_by = {"lat": original["lat"] + 0.00005, "lon": original["lon"] + 0.00003}
    nearby = report(second, reporter="GW088", reported_at="2026-11-25T09:10:00+08:00", **close_by)
    far = report(elsewhere, reporter="GW089", reported_at="2026-11-25T09:10:00+08:00")
    assert hub.post("/v1/reports", nearby)[0] == 202
    assert hub.post("/v1/reports", far)[0] == 202
    settle(hub, elsewhere, 3)
    wait_until(lambda: hub.scalar(f"SELECT report_count FROM cases WHERE case_id = '{first}'") == 2, what="merge")
    assert hub.sql(f"SELECT case_id FROM events WHERE event_id IN ('{first}', '{second}') ORDER BY 1") == [
        [first],
        [first],
    ]
    assert case_status(hub, second) is None
    orders = [order["work_order"]["event_id"] for order in hub.read_topic("dispatch.water")]
    assert orders.count(first) == 1 and second not in orders and elsewhere in orders


def test_a_case_past_its_deadline_raises_one_overdue_alert(hub: Hub) -> None:
    case_id = unique("R")
    late = report(case_id, reported_at="2026-11-20T08:00:00+08:00", category="0403")
    assert hub.post("/v1/reports", late)[0] == 202
    wait_until(
        lambda: hub.scalar(f"SELECT overdue_alerted FROM cases WHERE case_id = '{case_id}'") is True,
        what="the overdue flag",
    )
    alerts = [alert for alert in hub.read_topic("alerts.overdue") if alert["case"]["case_id"] == case_id]
    assert len(alerts) == 1
    assert alerts[0]["case"]["department"] == "emergency"
    assert alerts[0]["hours_late"] > 24


def test_an_extension_moves_the_deadline_and_a_cancelled_case_leaves_the_kpis(hub: Hub) -> None:
    extended_id, cancelled_id = unique("R"), unique("R")
    reporter = f"GW-{extended_id[-6:]}"
    for case_id in (extended_id, cancelled_id):
        assert hub.post("/v1/reports", report(case_id, reporter=reporter))[0] == 202
        settle(hub, case_id, 3)
    no_deadline = update(extended_id, "extended", "2026-11-25T09:00:00+08:00", "command-centre")
    status, answer = hub.post("/v1/updates", no_deadline)
    assert (status, answer["error"]) == (409, "deadline_required")
    extend = {**no_deadline, "update_id": unique("U"), "due_at": "2026-11-28T18:00:00+08:00"}
    assert hub.post("/v1/updates", extend)[0] == 202
    resume = update(extended_id, "in_handling", "2026-11-25T09:30:00+08:00", "desk-water")
    assert hub.post("/v1/updates", resume)[0] == 202
    cancel = update(cancelled_id, "cancelled", "2026-11-25T09:00:00+08:00", "command-centre", note="重复录入")
    assert hub.post("/v1/updates", cancel)[0] == 202
    settle(hub, extended_id, 5)
    settle(hub, cancelled_id, 4)

    assert hub.sql(f"SELECT status, due_at FROM cases WHERE case_id = '{extended_id}'") == [
        ["in_handling", "2026-11-28T18:00:00+08:00"]
    ]
    assert case_status(hub, cancelled_id) == "cancelled"
    kpi = hub.cli("kpi", "--by", "worker", "--output", "json")
    mine = [row for row in json.loads(kpi.stdout) if row["worker"] == reporter]
    assert [(row["cases_due"], row["closed"]) for row in mine] == [(1, 0)], "only the extended case is due"
