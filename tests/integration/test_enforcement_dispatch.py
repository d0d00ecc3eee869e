"""One team for enforcement on the real hub: squad dispatch by area, and 巡办分离 (patrol apart from handling).

An enforcement report in a cell of the Wansui squad's area gives a work order on
``dispatch.enforcement.wansui``, which the Wansui squad desk reads through the gateway; the Mengcheng
squad desk may not move the case; the officer the Wansui desk names handles it, and that officer,
out on patrol with a phone, may not verify it, while another grid worker may.
"""

from __future__ import annotations

from urllib.parse import urlencode

from foundation.door_client import call_door
from schemas.grid import Grid
from tests.integration.test_case_lifecycle import photo_ref, report, settle, update
from tests.support.hub import Hub, spot, unique, wait_until

OFFICER = "ZF03"
"""An officer of the Wansui squad (ZF01..ZF15), as the simulated town names them."""


def wansui_spot(hub: Hub) -> dict[str, float]:
    """A fresh report location (see :func:`spot`) that lies in a cell of the Wansui squad."""
    grid = Grid.load(hub.settings.grid_path)
    for _ in range(500):
        point = spot()
        cell = grid.locate(point["lat"], point["lon"])
        if cell is not None and cell.squad == "wansui":
            return point
    raise AssertionError("no unused test spot lies in the Wansui squad's area")


def orders_of(hub: Hub, desk: str, case_id: str) -> list[str]:
    """The report ids of the case's work orders the gateway shows desk ``desk`` from the beginning of its topic."""
    query = urlencode({"start": "beginning", "wait": "1"})
    answer = call_door(f"{hub.stack.url('patrol')}/v1/orders?{query}", hub.tokens.desks[desk])
    assert answer["department"] == desk
    return [order["value"] for order in answer["orders"] if case_id in order["value"]]


def test_an_enforcement_case_goes_to_its_squad_and_who_handled_it_cannot_verify_it(hub: Hub) -> None:
    case_id = unique("R-ZF")
    shed = report(case_id, reporter="GW-" + case_id[-6:], category="0101", **wansui_spot(hub))
    assert hub.post("/v1/reports", shed)[0] == 202
    settle(hub, case_id, 3)
    assert hub.scalar(f"SELECT squad FROM cases WHERE case_id = '{case_id}'") == "wansui"

    # The work order is on the squad's topic, and only there; the squad desk reads it through the gateway.
    wait_until(lambda: hub.work_orders("enforcement.wansui", case_id), what="the squad's work order")
    assert hub.work_orders("enforcement", case_id) == []
    assert hub.work_orders("enforcement.mengcheng", case_id) == []
    assert wait_until(lambda: orders_of(hub, "enforcement.wansui", case_id), what="the order through the gateway")

    # Another squad's desk may not move it; the squad of its area assigns an officer, who handles it.
    status, answer = hub.post(
        "/v1/updates",
        update(case_id, "in_handling", "2026-11-25T09:00:00+08:00", "ZF20"),
        token=hub.tokens.desks["enforcement.mengcheng"],
    )
    assert (status, answer["error"]) == (403, "forbidden") and "squad wansui's area" in answer["reason"], answer
    handled_photo, verified_photo = photo_ref(hub), photo_ref(hub)
    wansui = hub.tokens.desks["enforcement.wansui"]
    for step in [
        update(case_id, "in_handling", "2026-11-25T09:00:00+08:00", OFFICER),
        update(case_id, "handled", "2026-11-25T10:00:00+08:00", OFFICER, photo_ref=handled_photo),
    ]:
        assert hub.post("/v1/updates", step, token=wansui)[0] == 202
    settle(hub, case_id, 5)
    assert hub.sql(f"SELECT status, handled_by FROM cases WHERE case_id = '{case_id}'") == [["handled", [OFFICER]]]

    # 巡办分离: the officer, out on patrol with a phone, cannot verify the case he handled.
    phone = hub.book.add(unique(f"phone-{OFFICER}"), "device", worker=OFFICER)
    own = update(case_id, "verified", "2026-11-25T10:30:00+08:00", OFFICER, photo_ref=verified_photo)
    status, answer = hub.post("/v1/updates", own, token=phone)
    assert (status, answer["error"]) == (409, "same_hands"), answer
    assert "巡办分离" in answer["reason"] and f"{OFFICER} handled it" in answer["reason"]
    verified = update(case_id, "verified", "2026-11-25T10:30:00+08:00", shed["reporter_id"], photo_ref=verified_photo)
    assert hub.post("/v1/updates", verified)[0] == 202
    settle(hub, case_id, 6)
    steps = hub.sql(
        f"SELECT action, actor, actor_role FROM case_transitions WHERE case_id = '{case_id}' AND seq > 3 ORDER BY seq"
    )
    assert steps == [
        ["start", OFFICER, "desk"],
        ["handle", OFFICER, "desk"],
        ["verify", shed["reporter_id"], "grid_worker"],
    ]
