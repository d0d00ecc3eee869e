"""Grid workers' reports over HTTP: into the warehouse, onto dispatch topics, bad input refused."""

from __future__ import annotations

from schemas.topics import CASE_COMMANDS, RAW_PATROL
from tests.support import hub as support
from tests.support.hub import Hub, unique, wait_until


def report(report_id: str, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "category": "0102",
        "description": "路边暴露垃圾，约两立方",
        "reported_at": "2026-11-25T09:15:00+08:00",
        "reporter_id": "GW017",
        "photos": ["sha256:" + "ab" * 32],
        **changes,
    }
    return support.report(report_id, **fields)


def event_row(hub: Hub, event_id: str) -> list[object] | None:
    rows = hub.sql(
        "SELECT category, category_name, department, status, reporter_id, photo_refs, source "
        f"FROM events WHERE event_id = '{event_id}'"
    )
    return rows[0] if rows else None


def test_report_lands_in_warehouse_and_on_its_department_topic(hub: Hub) -> None:
    event_id = unique("R")
    status, answer = hub.post("/v1/reports", report(event_id))
    assert status == 202
    assert answer["report_id"] == event_id

    row = wait_until(lambda: event_row(hub, event_id), what="event row")
    assert row == ["0102", "暴露垃圾", "sanitation", "dispatched", "GW017", ["sha256:" + "ab" * 32], "patrol"]
    # The agent sends the work order after the report's row: wait until the worker is done with the report.
    hub.worker_done(RAW_PATROL, CASE_COMMANDS)
    orders = hub.work_orders("sanitation", event_id)
    assert len(orders) == 1
    assert orders[0]["department"] == "sanitation"
    assert orders[0]["limit_hours"] == 8
    assert hub.work_orders("police", event_id) == []


def test_category_by_chinese_name_is_routed_like_its_code(hub: Hub) -> None:
    event_id = unique("R")
    assert hub.post("/v1/reports", report(event_id, category="机动车乱停放"))[0] == 202
    row = wait_until(lambda: event_row(hub, event_id), what="event row")
    assert row[0] == "0509"
    assert row[2] == "police"


def test_resent_report_creates_no_second_row_and_no_second_work_order(hub: Hub) -> None:
    event_id = unique("R")
    body = report(event_id)
    assert hub.post("/v1/reports", body)[0] == 202
    assert hub.post("/v1/reports", body)[0] == 202

    outcomes = wait_until(
        lambda: (
            (rows := hub.sql(f"SELECT outcome FROM intake WHERE source_record_id = '{event_id}' ORDER BY 1"))
            and len(rows) == 2
            and rows
        ),
        what="both intake rows",
    )
    assert outcomes == [["duplicate"], ["new"]]
    assert hub.scalar(f"SELECT count(*) FROM events WHERE event_id = '{event_id}'") == 1
    hub.worker_done(RAW_PATROL, CASE_COMMANDS)  # a second work order, had the resend made one, is out by now
    assert len(hub.work_orders("sanitation", event_id)) == 1


def test_changed_report_passes_as_update(hub: Hub) -> None:
    event_id = unique("R")
    assert hub.post("/v1/reports", report(event_id))[0] == 202
    wait_until(lambda: event_row(hub, event_id), what="first version")
    assert hub.post("/v1/reports", report(event_id, description="垃圾已堆到路中间"))[0] == 202
    wait_until(
        lambda: hub.scalar(f"SELECT description FROM events WHERE event_id = '{event_id}'") == "垃圾已堆到路中间",
        what="updated description",
    )
    assert hub.sql(f"SELECT outcome FROM intake WHERE source_record_id = '{event_id}' ORDER BY 1") == [
        ["new"],
        ["update"],
    ]


def test_gateway_refuses_bad_input_with_reasons_and_keeps_serving(hub: Hub) -> None:
    status, answer = hub.post("/v1/reports", b'{"report_id": "R-broken", "category": ')
    assert (status, answer["error"]) == (400, "bad_json")

    status, answer = hub.post("/v1/reports", b"[1, 2, 3]")
    assert (status, answer["error"]) == (400, "bad_json")
    assert "JSON object" in answer["reason"]

    status, answer = hub.post("/v1/reports", b"category=0102", content_type="application/x-www-form-urlencoded")
    assert (status, answer["error"]) == (415, "unsupported_media_type")

    status, answer = hub.post("/v1/reports", report(unique("R"), category="9999"))
    assert (status, answer["error"]) == (422, "unknown_category")
    assert "0102" in answer["reason"]

    status, answer = hub.post("/v1/reports", report(unique("R"), lat=132.5))
    assert (status, answer["error"]) == (422, "invalid_lat")

    body = report(unique("R"))
    del body["reported_at"]
    status, answer = hub.post("/v1/reports", body)
    assert (status, answer["error"]) == (422, "missing_reported_at")

    status, answer = hub.post(
        "/v1/updates", {"event_id": "R1", "status": "teleported", "at": "2026-11-25", "actor": "x"}
    )
    assert (status, answer["error"]) == (422, "invalid_status")

    status, answer = hub.post("/v1/reports", report(unique("R"), description="x" * 2_000_000))
    assert (status, answer["error"]) == (413, "too_large")

    event_id = unique("R")
    assert hub.post("/v1/reports", report(event_id))[0] == 202
    wait_until(lambda: event_row(hub, event_id), what="a report after the bad ones")


def test_report_is_placed_in_its_grid_cell_and_squad(hub: Hub) -> None:
    from schemas.grid import Grid, from_wgs84

    grid = Grid.load(hub.settings.grid_path)
    school = next(cell for cell in grid.cells.values() if cell.dedicated_to == "school")
    inside = school.polygon.representative_point()
    event_id = unique("R")
    assert hub.post("/v1/reports", report(event_id, lat=inside.y, lon=inside.x))[0] == 202
    row = wait_until(
        lambda: hub.sql(f"SELECT grid_code, squad, community FROM events WHERE event_id = '{event_id}'"),
        what="the placed event",
    )
    assert row == [[school.code, school.squad, school.community]]

    gcj_lat, gcj_lon = from_wgs84(inside.y, inside.x, "gcj02")
    shifted = unique("R")
    body = report(shifted, lat=gcj_lat, lon=gcj_lon, coord_system="gcj02")
    assert hub.post("/v1/reports", body)[0] == 202
    placed = wait_until(
        lambda: hub.sql(f"SELECT grid_code, lat, lon, coord_system FROM events WHERE event_id = '{shifted}'"),
        what="the GCJ-02 event",
    )
    assert placed[0][0] == school.code
    assert abs(placed[0][1] - inside.y) < 1e-6 and abs(placed[0][2] - inside.x) < 1e-6
    assert placed[0][3] == "wgs84"


def test_report_outside_the_town_is_refused_not_guessed(hub: Hub) -> None:
    status, answer = hub.post("/v1/reports", report(unique("R"), lat=31.5, lon=120.3))
    assert (status, answer["error"]) == (422, "outside_town")
    assert "outside the town's grid" in answer["reason"]
