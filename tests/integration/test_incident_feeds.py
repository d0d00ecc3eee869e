"""Department incident feeds into the command centre, through the export doors of a real hub.

Environment alarms, police incidents, land-use violations and 12345 complaints come in as each
platform exports them (its own Chinese headers, its own map datum), read with the packaged
mappings of their sources, and must become events placed in their grid cell, with cases routed
by the rules in data, merged into an open case when they repeat one, held for verification on
site when they are public complaints, and refused with reasons when they are wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.grid import CoordinateSystem, from_wgs84
from schemas.topics import RAW_EXPORTS, RAW_PATROL
from simulation.feeds import COORDINATES, ENVIRONMENT, FEED_HEADERS, HOTLINE, LAND, POLICE
from tests.support.files import write_csv
from tests.support.hub import Hub, report, spot, unique, wait_until

AT = "2026-11-25 09:00:00"


def located(source: str, point: dict[str, float]) -> tuple[str, str]:
    """(经度, 纬度) of a WGS84 point as the source's platform writes it, in its own datum."""
    system: CoordinateSystem = COORDINATES[source]
    lat, lon = from_wgs84(point["lat"], point["lon"], system)
    return f"{lon:.6f}", f"{lat:.6f}"


def alarm(event_id: str, point: dict[str, float], **cells: str) -> list[str]:
    lon, lat = located(ENVIRONMENT, point)
    row = dict(
        zip(
            FEED_HEADERS[ENVIRONMENT],
            [event_id, "SZ02", "通江河水质自动站", "氨氮", "2.6", "mg/L", "1.5", AT, lon, lat],
            strict=True,
        )
    )
    return list({**row, **cells}.values())


def incident(event_id: str, category: str, point: dict[str, float], **cells: str) -> list[str]:
    lon, lat = located(POLICE, point)
    row = dict(
        zip(
            FEED_HEADERS[POLICE],
            [event_id, category, "两户村民因宅基地发生争执，需网格员跟进", AT, "孟城村村口", lon, lat],
            strict=True,
        )
    )
    return list({**row, **cells}.values())


def complaint(event_id: str, category: str, point: dict[str, float], at: str = AT, **cells: str) -> list[str]:
    lon, lat = located(HOTLINE, point)
    row = dict(
        zip(
            FEED_HEADERS[HOTLINE],
            [event_id, category, "市民来电反映：路边垃圾多日无人清运", at, "孟河镇", lon, lat],
            strict=True,
        )
    )
    return list({**row, **cells}.values())


def violation(event_id: str, point: dict[str, float]) -> list[str]:
    lon, lat = located(LAND, point)
    return [event_id, "", "孟河镇南兴村第3村民小组", "未经批准占用耕地建房", "320", AT, "", lon, lat]


def ingest(hub: Hub, tmp_path: Path, source: str, rows: list[list[str]]) -> None:
    """``gridhub ingest FILE --source SOURCE --entity event --wait``, as the platform's data clerk runs it."""
    path = write_csv(tmp_path / f"{unique(source)}.csv", FEED_HEADERS[source], rows)
    result = hub.ingest(path, source, "event", "--wait")
    assert result.returncode == 0, result.stderr
    assert f"published {len(rows)} records" in result.stdout


def event_of(hub: Hub, event_id: str) -> dict[str, Any]:
    """The warehouse's event row, once its case is there too."""
    columns = ["source", "category", "department", "grid_code", "squad", "coord_system", "case_id", "description"]
    row = wait_until(
        lambda: hub.sql(
            f"SELECT {', '.join('e.' + name for name in columns)}, c.status FROM events e "
            f"JOIN cases c ON c.case_id = e.case_id WHERE e.event_id = '{event_id}'"
        ),
        what=f"event {event_id} and its case",
    )[0]
    return dict(zip([*columns, "status"], row, strict=True))


def dispatched(hub: Hub, case_id: str) -> bool:
    return hub.scalar(f"SELECT status FROM cases WHERE case_id = '{case_id}'") == "dispatched"


def test_each_feed_lands_placed_in_its_cell_with_a_case_routed_to_its_department(hub: Hub, tmp_path: Path) -> None:
    station, police, dispute, parcel = (unique(prefix).upper() for prefix in ("HJ", "JQ", "JQ", "TB"))
    ingest(hub, tmp_path, ENVIRONMENT, [alarm(station, spot())])
    ingest(hub, tmp_path, POLICE, [incident(police, "", spot()), incident(dispute, "矛盾纠纷排查", spot())])
    dropped = hub.settings.watch_dir / LAND / "event" / "violations.csv"
    dropped.parent.mkdir(parents=True, exist_ok=True)
    write_csv(dropped.with_suffix(".part"), FEED_HEADERS[LAND], [violation(parcel, spot())]).rename(dropped)

    expected = {
        station: (ENVIRONMENT, "0603", "environment"),
        police: (POLICE, "0704", "police"),
        dispute: (POLICE, "0701", "justice"),
        parcel: (LAND, "0601", "land"),
    }
    for event_id, (source, category, department) in expected.items():
        wait_until(lambda event_id=event_id: dispatched(hub, event_id), what=f"{event_id} dispatched")
        event = event_of(hub, event_id)
        assert (event["source"], event["category"], event["department"]) == (source, category, department)
        assert event["grid_code"] and event["squad"] and event["coord_system"] == "wgs84"
        assert event["case_id"] == event_id
        wait_until(
            lambda department=department, event_id=event_id: hub.work_orders(department, event_id),
            what=f"the work order of {event_id}",
        )
    description = event_of(hub, station)["description"]
    assert all(part in description for part in ("通江河水质自动站", "SZ02", "氨氮", "2.6", "1.5"))
    assert "南兴村第3村民小组未经批准占用耕地建房" in event_of(hub, parcel)["description"]


def test_a_feed_row_near_an_open_case_joins_it(hub: Hub, tmp_path: Path) -> None:
    first, repeat = unique("R"), unique("GD").upper()
    original = report(
        first, category="0102", description="路边垃圾堆放", reported_at="2026-11-25T09:00:00+08:00", reporter_id="GW031"
    )
    assert hub.post("/v1/reports", original)[0] == 202
    wait_until(lambda: dispatched(hub, first), what=f"{first} dispatched")
    close_by = {"lat": original["lat"] + 0.00005, "lon": original["lon"] + 0.00003}
    ingest(hub, tmp_path, HOTLINE, [complaint(repeat, "暴露垃圾", close_by, at="2026-11-25 09:25:00")])

    wait_until(lambda: hub.scalar(f"SELECT report_count FROM cases WHERE case_id = '{first}'") == 2, what="merge")
    assert event_of(hub, repeat)["case_id"] == first
    hub.settled()
    assert hub.scalar(f"SELECT count(*) FROM cases WHERE case_id = '{repeat}'") == 0
    assert [order["work_order"]["event_id"] for order in hub.work_orders("sanitation", first)] == [first]


def test_a_hotline_case_waits_for_a_grid_worker_to_verify_it_on_site(hub: Hub, tmp_path: Path) -> None:
    complaint_id = unique("GD").upper()
    ingest(hub, tmp_path, HOTLINE, [complaint(complaint_id, "暴露垃圾", spot())])
    assert event_of(hub, complaint_id)["status"] == "reported"
    hub.settled()
    assert hub.scalar(f"SELECT status FROM cases WHERE case_id = '{complaint_id}'") == "reported"
    assert hub.work_orders("sanitation", complaint_id) == []

    verified = {
        "update_id": unique("U"),
        "event_id": complaint_id,
        "status": "accepted",
        "at": "2026-11-25T10:00:00+08:00",
        "actor": "GW031",
        "note": "现场核实属实",
    }
    status, answer = hub.post("/v1/updates", verified)
    assert status == 202, answer

    wait_until(lambda: dispatched(hub, complaint_id), what=f"{complaint_id} dispatched after verification")
    transitions = (
        f"SELECT action, actor, actor_role FROM case_transitions WHERE case_id = '{complaint_id}' ORDER BY seq"
    )
    steps = wait_until(lambda: len(rows := hub.sql(transitions)) == 3 and rows, what="the verification's transitions")
    assert steps == [
        ["report", HOTLINE, "grid_worker"],
        ["accept", "GW031", "grid_worker"],
        ["dispatch", "system", "system"],
    ]
    wait_until(lambda: hub.work_orders("sanitation", complaint_id), what="the verified complaint's work order")


def test_bad_feed_rows_are_rejected_with_reasons_and_the_rest_lands(hub: Hub, tmp_path: Path) -> None:
    good, unknown, outside, untimed = (unique(prefix).upper() for prefix in ("JQ", "JQ", "HJ", "GD"))
    ingest(hub, tmp_path, POLICE, [incident(good, "0704", spot()), incident(unknown, "9998", spot())])
    ingest(hub, tmp_path, ENVIRONMENT, [alarm(outside, {"lat": 31.7812, "lon": 119.9736})])
    ingest(hub, tmp_path, HOTLINE, [complaint(untimed, "暴露垃圾", spot(), at="")])

    def rejects() -> dict[str, list[str]]:
        rows = hub.sql(
            "SELECT source_record_id, source, stage, reason_code, reason FROM rejects "
            f"WHERE source_record_id IN ('{unknown}', '{outside}', '{untimed}')"
        )
        return {row[0]: row[1:] for row in rows} if len(rows) == 3 else {}

    refused = wait_until(rejects, what="the three bad rows' rejects")
    assert refused[unknown][:3] == [POLICE, "route", "unknown_category"]
    assert "'9998' is not in the routing table" in refused[unknown][3]
    assert refused[outside][:3] == [ENVIRONMENT, "route", "outside_town"]
    assert "lies outside the town's grid" in refused[outside][3]
    assert refused[untimed][:3] == [HOTLINE, "validate", "missing_reported_at"]
    assert event_of(hub, good)["department"] == "police"
    hub.worker_done(RAW_EXPORTS, RAW_PATROL)
    assert hub.scalar(f"SELECT count(*) FROM events WHERE event_id IN ('{unknown}', '{outside}', '{untimed}')") == 0


def test_an_event_export_without_a_column_its_template_needs_is_refused_whole(hub: Hub, tmp_path: Path) -> None:
    headers = [header for header in FEED_HEADERS[ENVIRONMENT] if header != "标准限值"]
    path = write_csv(
        tmp_path / "alarms.csv", headers, [["HJ-X", "SZ02", "站", "氨氮", "2", "mg/L", AT, "119.86", "31.99"]]
    )
    result = hub.ingest(path, ENVIRONMENT, "event")
    assert result.returncode == 2
    assert "lacks column(s) 标准限值 that the mapping composes description from" in result.stderr
