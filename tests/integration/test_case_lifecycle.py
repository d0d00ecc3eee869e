"""The one-grid loop on the real hub: report → dispatch → handle → verify → close, and its side paths.

Every step goes in through the patrol gateway (HTTP) as phones and desks send it; every assertion
reads the warehouse, the dispatch topics or the alerts topic, once the state that implies it shows.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from schemas.grid import Grid
from schemas.topics import CASE_COMMANDS, OVERDUE_ALERTS, RAW_PATROL
from tests.support import hub as support
from tests.support.files import picture
from tests.support.hub import Hub, unique, wait_until

STEP_COLUMNS = "seq, from_status, to_status, action, actor, actor_role"


def photo_ref(hub: Hub) -> str:
    """Upload a real photo with a throwaway report and return its reference."""
    photo = picture(colour=tuple(uuid.uuid4().bytes[:3]), size=(24, 24))
    status, answer = hub.post_form(
        "/v1/reports", "report", report(unique("P"), reporter="GW146", category="0101"), [photo]
    )
    assert status == 202, answer
    return str(answer["photos"][0])


def report(
    report_id: str,
    reporter: str = "GW021",
    category: str = "0404",
    reported_at: str = "2026-11-25T08:30:00+08:00",
    **extra: Any,
) -> dict:
    return support.report(
        report_id,
        category=category,
        description="下水道堵塞，污水外溢",
        reported_at=reported_at,
        reporter_id=reporter,
        **extra,
    )


def update(event_id: str, status: str, at: str, actor: str, **extra: Any) -> dict:
    return {"update_id": unique("U"), "event_id": event_id, "status": status, "at": at, "actor": actor, **extra}


def case_status(hub: Hub, case_id: str) -> str | None:
    return hub.scalar(f"SELECT status FROM cases WHERE case_id = '{case_id}'")


def settle(hub: Hub, case_id: str, transitions: int) -> None:
    """Wait until the warehouse shows the case after its first ``transitions`` steps, all of it.

    The agent publishes the opening report, the case and each transition on topics of their own,
    and the sink may write them in any order: the transitions alone do not prove that the case
    row has caught up, nor that the report's row is there.
    """
    wait_until(
        lambda: (
            hub.sql(
                f"SELECT (SELECT count(*) FROM case_transitions WHERE case_id = '{case_id}'), "
                f"(SELECT seq FROM cases WHERE case_id = '{case_id}'), "
                f"(SELECT count(*) FROM events WHERE event_id = '{case_id}')"
            )
            == [[transitions, transitions, 1]]
        ),
        what=f"{case_id} after {transitions} transitions",
    )


def known_to_gateway(hub: Hub, case_id: str) -> None:
    """Wait until the gateway's copy of a freshly dispatched case holds it, so the next update is checked.

    The gateway follows the agent's cases on its own, and may show a case later than the warehouse
    does; until then it lets updates of a report it accepted through unchecked. A step that is
    illegal from ``dispatched`` (closing it) tells which: refused with 409 once the copy has the
    case; let through before, and then refused by the case agent, which leaves the case as it was.
    """
    wait_until(
        lambda: (
            hub.post("/v1/updates", update(case_id, "closed", "2026-11-25T08:31:00+08:00", "command-centre"))[0] == 409
        ),
        what=f"the gateway to know case {case_id}",
    )


def reject_of(hub: Hub, update_id: str) -> list[Any]:
    return wait_until(
        lambda: hub.sql(f"SELECT stage, reason_code, reason FROM rejects WHERE source_record_id = '{update_id}'"),
        what=f"the reject of {update_id}",
    )[0]


def complete_work_orders(hub: Hub, department: str, case_id: str) -> list[dict]:
    """Every work order of a case, once the worker has processed all the test posted: no other can follow."""
    hub.worker_done(RAW_PATROL, CASE_COMMANDS)
    return hub.work_orders(department, case_id)


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
            "parked": 0,
            "escalated": 0,
            "escalation_rate": 0.0,
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
    assert len(complete_work_orders(hub, "water", case_id)) == 2


def test_illegal_steps_are_refused_at_once_with_reasons_and_leave_the_case_as_it_was(hub: Hub) -> None:
    case_id = unique("R")
    assert hub.post("/v1/reports", report(case_id))[0] == 202
    settle(hub, case_id, 3)
    known_to_gateway(hub, case_id)
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
    hub.settled()  # had the gateway let a refused update through, it would have moved the case or be in the ledger
    assert case_status(hub, case_id) == "in_handling"
    refused = ", ".join(f"'{step['update_id']}'" for step in (closed_early, no_photo, wrong_role, unknown))
    assert hub.scalar(f"SELECT count(*) FROM intake WHERE source_record_id IN ({refused})") == 0


def test_the_case_agent_rejects_an_illegal_step_that_bypassed_the_gateway(hub: Hub) -> None:
    """Another producer (or a second gateway racing this one) cannot push a case off the flow."""
    from connectors.publisher import RawPublisher, make_envelope

    case_id = unique("R")
    assert hub.post("/v1/reports", report(case_id))[0] == 202
    settle(hub, case_id, 3)

    # As a second gateway would publish it: with the role its caller's token gave.
    closed_early = {
        **update(case_id, "closed", "2026-11-25T09:00:00+08:00", "command-centre"),
        "actor_role": "command_centre",
    }
    publisher = RawPublisher(hub.stack.bootstrap, client_id="rogue")
    try:
        envelope = make_envelope("patrol", closed_early["update_id"], "event_update", closed_early)
        publisher.acknowledged([publisher.publish(RAW_PATROL, envelope)], "the rogue update")
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
    hub.settled()  # the joining report's own row, and anything a wrongly opened case would add, are in now
    assert hub.sql(f"SELECT case_id FROM events WHERE event_id IN ('{first}', '{second}') ORDER BY 1") == [
        [first],
        [first],
    ]
    assert case_status(hub, second) is None
    orders = [order["work_order"]["event_id"] for order in hub.work_orders("water")]
    assert orders.count(first) == 1 and second not in orders and elsewhere in orders


def overdue_alerts(hub: Hub, case_id: str) -> list[dict]:
    return [alert for alert in hub.read_topic(OVERDUE_ALERTS) if alert["case"]["case_id"] == case_id]


def test_a_case_past_its_deadline_raises_one_overdue_alert(hub: Hub) -> None:
    case_id = unique("R")
    late = report(case_id, reported_at="2026-11-20T08:00:00+08:00", category="0403")
    assert hub.post("/v1/reports", late)[0] == 202
    wait_until(
        lambda: hub.scalar(f"SELECT overdue_alerted FROM cases WHERE case_id = '{case_id}'") is True,
        what="the overdue flag",
    )
    wait_until(lambda: overdue_alerts(hub, case_id), what="the overdue alert")
    # Had the case kept no memory of its alert, the clock's next check would have raised another.
    hub.worker_done(CASE_COMMANDS, ticks=1)
    alerts = overdue_alerts(hub, case_id)
    assert len(alerts) == 1
    assert alerts[0]["case"]["department"] == "emergency"
    assert alerts[0]["hours_late"] > 24


def test_an_extension_moves_the_deadline_and_a_cancelled_case_leaves_the_kpis(hub: Hub) -> None:
    extended_id, cancelled_id = unique("R"), unique("R")
    reporter = f"GW-{extended_id[-6:]}"
    for case_id in (extended_id, cancelled_id):
        assert hub.post("/v1/reports", report(case_id, reporter=reporter))[0] == 202
        settle(hub, case_id, 3)
    known_to_gateway(hub, extended_id)
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


def kpi_rows(hub: Hub, *options: str, token: str | None = None) -> list[dict[str, Any]]:
    """``gridhub kpi OPTIONS -o json``, as the commander (or the caller of ``token``)."""
    printed = hub.cli("kpi", *options, "-o", "json", token=token)
    assert printed.returncode == 0, printed.stderr
    return json.loads(printed.stdout)


def test_kpi_months_trends_patrols_by_squad_and_approvals(hub: Hub) -> None:
    case_id, worker = unique("R-KPI"), "GW120"
    assert hub.post("/v1/reports", report(case_id, reported_at="2026-11-25T08:30:00+08:00"))[0] == 202
    settle(hub, case_id, 3)
    # The clock escalates every case past its deadline (督办) at its next tick: let it, so the
    # figures read below cannot change between two reads.
    hub.settled(ticks=1)

    # A trend is one row per day, every day there, each the day's own KPIs; a month is the sum of its days.
    trend = kpi_rows(hub, "--trend", "3", "--date", "2026-11-26")
    assert [row.pop("day") for row in trend] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    for day, row in zip(("2026-11-24", "2026-11-25", "2026-11-26"), trend, strict=True):
        assert [row] == kpi_rows(hub, "--date", day), day
    [month] = kpi_rows(hub, "--month", "2026-11")
    november = kpi_rows(hub, "--trend", "30", "--date", "2026-11-30")
    assert len(november) == 30 and month["cases_due"] >= 1
    for column in ("cases_due", "closed", "closed_on_time"):
        assert month[column] == sum(row[column] for row in november), column

    # Patrols per squad count the sink's roster (the grid it runs with), masked or whole alike.
    minutes = range(0, 61, 5)  # 08:00-09:00 and 15:00-16:00: two patrols of an hour, so compliant
    points = [
        {"at": f"2026-11-25T{hour + minute // 60:02d}:{minute % 60:02d}:00+08:00", "lat": 31.99, "lon": 119.87}
        for hour in (8, 15)
        for minute in minutes
    ]
    assert hub.post("/v1/tracks", {"worker_id": worker, "points": points})[0] == 202
    wait_until(
        lambda: hub.scalar(f"SELECT count(*) FROM patrol_tracks WHERE worker_id = '{worker}'") == len(points),
        what="the worker's two patrols",
    )
    grid = Grid.load(hub.settings.grid_path)
    commander = kpi_rows(hub, "--patrol", "--by", "squad", "--date", "2026-11-25")
    assert commander == kpi_rows(hub, "--patrol", "--by", "squad", "--date", "2026-11-25", token=hub.tokens.analyst)
    roster = Counter(cell.squad for cell in grid.workers().values())
    assert {row["squad"]: row["workers"] for row in commander} == roster
    mine = next(row for row in commander if row["squad"] == grid.workers()[worker].squad)
    assert mine["patrolling"] >= 1 and mine["compliant"] >= 1

    # The service centre: one row without a grouping, whatever the period holds.
    columns = [
        "received",
        "in_progress",
        "overdue_in_progress",
        "finished",
        "finished_on_time",
        "on_time_rate",
        "fully_online_share",
        "overdue",
        "online_share",
    ]
    [approvals] = kpi_rows(hub, "--approvals", "--month", "2026-11")
    assert list(approvals) == columns
    for row in kpi_rows(hub, "--approvals", "--by", "department", "--date", "2026-11-25"):
        assert list(row) == ["department", *columns]

    for refused, complaint in (
        (("--date", "2026-11-25", "--month", "2026-11"), "not both"),
        (("--month", "2026-13"), "--month must look like 2026-11"),
        (("--trend", "0"), "--trend must be between 1 and 366"),
        (("--trend", "7", "--by", "squad"), "--by is not for --trend"),
        (("--patrol", "--by", "worker"), "--by with --patrol must be one of squad"),
        (("--patrol", "--approvals"), "choose one of"),
        (("--approvals", "--by", "squad"), "--by with --approvals must be one of department, item"),
    ):
        printed = hub.cli("kpi", *refused)
        assert printed.returncode == 2 and complaint in printed.stderr, (refused, printed.stderr)
