"""The live feed's items: what the wall shows of each message, and that nothing personal passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gridhub.screen.feed import OVERDUE_ALERTS, REPORTS, TRANSITIONS, feed_item
from warehouse.case_story import CASE_ID

REPORT = {
    "event_id": "R-2", "case_id": "R-2", "category": "0102", "category_name": "暴露垃圾", "department": "sanitation",
    "squad": "wansui", "grid_code": "MH-01", "community": "万绥村", "lat": 31.95, "lon": 119.82,
    "reported_at": "2026-11-25T09:00:00+08:00", "status": "dispatched", "reporter_id": "GW001",
    "description": "联系13812345678", "subject_id_number": "320411199001011234",
}  # fmt: skip


def message(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def test_a_report_that_opens_its_case_is_a_report_and_one_that_joins_is_a_merge() -> None:
    opened = feed_item(REPORTS, message({"record": REPORT, "meta": {"outcome": "new"}}))
    joined = feed_item(REPORTS, message({"record": {**REPORT, "event_id": "R-3"}, "meta": {"outcome": "new"}}))
    assert opened is not None and joined is not None
    assert (opened["kind"], opened["case_id"], opened["report_id"]) == ("report", "R-2", "R-2")
    assert (joined["kind"], joined["case_id"], joined["report_id"]) == ("merge", "R-2", "R-3")
    assert (opened["lat"], opened["lon"], opened["grid_code"]) == (31.95, 119.82, "MH-01")


def test_a_resent_report_is_no_news() -> None:
    assert feed_item(REPORTS, message({"record": REPORT, "meta": {"outcome": "update"}})) is None


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        ({"record": REPORT, "meta": {"outcome": "new"}}, "report"),
        ({"case": REPORT, "at": "2026-11-26T09:00:00+08:00", "hours_late": 3.5}, "overdue"),
    ],
)
def test_nothing_personal_reaches_the_wall(document: dict[str, Any], kind: str) -> None:
    topic = REPORTS if kind == "report" else OVERDUE_ALERTS
    item = feed_item(topic, message(document))
    assert item is not None and item["kind"] == kind
    text = json.dumps(item, ensure_ascii=False)
    for personal in ("GW001", "13812345678", "320411199001011234", "联系"):
        assert personal not in text


def test_a_step_is_shown_by_its_action_and_the_opening_and_automatic_acceptance_are_not() -> None:
    step = {"case_id": "R-2", "seq": 4, "from_status": "returned", "to_status": "dispatched", "action": "redispatch",
            "actor": "command-centre", "actor_role": "command_centre", "at": "2026-11-25T10:00:00+08:00",
            "due_at": "2026-11-26T09:00:00+08:00", "note": "改派"}  # fmt: skip
    item = feed_item(TRANSITIONS, message({"record": step}))
    assert item == {
        "kind": "redispatch", "at": step["at"], "case_id": "R-2", "from_status": "returned", "status": "dispatched",
        "due_at": step["due_at"], "actor_role": "command_centre",
    }  # fmt: skip
    assert feed_item(TRANSITIONS, message({"record": {**step, "from_status": None, "action": "report"}})) is None
    assert feed_item(TRANSITIONS, message({"record": {**step, "from_status": "reported", "action": "accept"}})) is None


@pytest.mark.parametrize("case_id", ["R-20261125-000001", "R-WALL-630512746e4e", "gw:7.a_b"])
def test_a_case_id_as_the_hub_makes_them_is_accepted(case_id: str) -> None:
    assert CASE_ID.fullmatch(case_id)


@pytest.mark.parametrize("case_id", ["x' OR 1=1 --", "", "../etc/passwd", "R 1", "-R", "R" * 97, "R;DROP"])
def test_anything_else_is_refused_before_it_reaches_sql(case_id: str) -> None:
    assert not CASE_ID.fullmatch(case_id)


def test_a_new_viewer_gets_the_latest_items_by_time_whatever_order_the_partitions_were_read_in() -> None:
    import asyncio

    from foundation.settings import Settings
    from gridhub.screen.feed import LiveFeed

    feed = LiveFeed(Settings(), "unused:9092", keep=3)
    alert = {"case": REPORT, "at": "2026-12-02T08:00:00+00:00", "hours_late": 100}
    feed.publish(OVERDUE_ALERTS, message(alert))  # read first, but the latest of all
    for hour in range(10):
        step = {"case_id": "R-2", "from_status": "dispatched", "to_status": "in_handling", "action": "start",
                "at": f"2026-11-25T{hour + 8:02d}:00:00+08:00"}  # fmt: skip
        feed.publish(TRANSITIONS, message({"record": step}))

    async def first_items() -> list[dict[str, Any]]:
        async with feed.watch() as queue:
            return [queue.get_nowait() for _ in range(queue.qsize())]

    items = asyncio.run(first_items())
    assert [item["at"] for item in items] == [
        "2026-11-25T16:00:00+08:00", "2026-11-25T17:00:00+08:00", "2026-12-02T08:00:00+00:00",
    ]  # fmt: skip
    assert items[-1]["kind"] == "overdue"


def test_a_message_with_an_odd_time_neither_breaks_the_feed_nor_its_order() -> None:
    import asyncio

    from foundation.settings import Settings
    from gridhub.screen.feed import LiveFeed

    feed = LiveFeed(Settings(), "unused:9092", keep=10)
    step = {"case_id": "R-2", "from_status": "dispatched", "to_status": "in_handling", "action": "start"}
    feed.publish(TRANSITIONS, message({"record": {**step, "at": "2026-11-25T10:00:00"}}))  # naive: the town's time
    feed.publish(TRANSITIONS, message({"record": {**step, "at": "2026-11-25T01:30:00+00:00"}}))
    feed.publish(TRANSITIONS, message({"record": {**step, "at": "yesterday"}}))  # unreadable: skipped
    feed.publish(TRANSITIONS, b"not json")

    async def first_items() -> list[dict[str, Any]]:
        async with feed.watch() as queue:
            return [queue.get_nowait() for _ in range(queue.qsize())]

    assert [item["at"] for item in asyncio.run(first_items())] == [
        "2026-11-25T01:30:00+00:00", "2026-11-25T10:00:00+08:00",
    ]  # fmt: skip
