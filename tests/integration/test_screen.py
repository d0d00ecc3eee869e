"""The command centre's screen: served by the hub, behind a viewer's token, with the numbers `gridhub kpi` prints."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridhub.screen.server import ASSETS
from schemas.grid import Grid
from streams.routing import load_rules
from tests.integration.test_case_lifecycle import known_to_gateway
from tests.support.files import picture, write_csv
from tests.support.hub import Hub, post_json, report, spot, unique, wait_until
from tests.support.identities import FULL_ID, FULL_MOBILE, mobile, resident_id
from warehouse.reader import query

pytestmark = pytest.mark.integration


def get(url: str, token: str | None = None) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read().decode()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(body) if "json" in kind else body, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def screen(hub: Hub) -> str:
    return hub.stack.url("screen")


def test_the_page_and_its_assets_come_from_the_hub_and_name_no_other_host(hub: Hub) -> None:
    for name in ("", *ASSETS):
        status, body, headers = get(f"{screen(hub)}/{name}")
        assert status == 200, name
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", body), f"{name or 'index.html'} names another host"
    assert "孟河镇联动指挥中心" in get(f"{screen(hub)}/")[1]


VIEWER_PATHS = [
    "/api/me", "/api/grid", "/api/cases", "/api/cases/R-1", "/api/cells/X", "/api/tracks", "/api/search?q=x",
    "/api/kpi", "/api/kpi/trend", "/api/kpi/patrol", "/api/kpi/approvals", "/api/feed",
]  # fmt: skip


@pytest.mark.parametrize("path", VIEWER_PATHS)
def test_the_data_needs_a_viewers_token(hub: Hub, path: str) -> None:
    assert get(f"{screen(hub)}{path}")[0] == 401
    assert get(f"{screen(hub)}{path}", "ghb_forged")[0] == 401
    status, answer, _ = get(f"{screen(hub)}{path}", hub.tokens.phones["GW001"])
    assert status == 403 and "this needs the role" in answer["reason"]


def test_a_login_keeps_the_token_in_an_http_only_cookie(hub: Hub) -> None:
    data = urllib.parse.urlencode({"token": hub.tokens.analyst}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{screen(hub)}/login", data=data), timeout=30) as response:
        cookie = response.headers["Set-Cookie"]
        assert json.loads(response.read()) == {"name": "analyst", "role": "analyst"}
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    request = urllib.request.Request(f"{screen(hub)}/api/me", headers={"Cookie": cookie.split(";")[0]})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["masked"] is True
    bad = urllib.parse.urlencode({"token": "ghb_forged"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{screen(hub)}/login", data=bad), timeout=30)
    assert refused.value.code == 401


def test_the_map_has_every_grid_cell_and_the_roster_only_for_the_commander(hub: Hub) -> None:
    cells = Grid.load(hub.settings.grid_path).cells
    for token, roster in ((hub.tokens.commander, True), (hub.tokens.analyst, False)):
        status, grid, _ = get(f"{screen(hub)}/api/grid", token)
        assert status == 200
        assert {feature["properties"]["code"] for feature in grid["features"]} == set(cells)
        assert any(feature["properties"]["workers"] for feature in grid["features"]) is roster


def assert_panel_equals_cli(hub: Hub, path: str, options: list[str]) -> None:
    """The screen's panel equals ``gridhub kpi`` read just before and just after it.

    The worker's clock escalates overdue cases at its own ticks, so the figures may move between
    two reads; a comparison counts only when the command line read the same figures on both
    sides of the panel, and is tried again (a few times) when a tick fell in between.
    """
    for _ in range(5):
        before = hub.cli("kpi", *options, "-o", "json", token=hub.tokens.analyst)
        assert before.returncode == 0, before.stderr
        status, panel, _ = get(f"{screen(hub)}{path}", hub.tokens.analyst)
        assert status == 200, panel
        after = hub.cli("kpi", *options, "-o", "json", token=hub.tokens.analyst)
        assert after.returncode == 0, after.stderr
        if json.loads(before.stdout) == json.loads(after.stdout):
            assert as_dicts(panel) == json.loads(before.stdout), path
            return
    raise AssertionError(f"{path}: the figures moved during every one of 5 comparisons")


def test_every_kpi_panel_equals_gridhub_kpi(hub: Hub) -> None:
    case_id = unique("R-SCREEN")
    assert (
        hub.post(
            "/v1/reports",
            report(
                case_id,
                category="0102",
                description="暴露垃圾",
                reported_at="2026-11-25T09:00:00+08:00",
                reporter_id="GW001",
                **spot(),
            ),
        )[0]
        == 202
    )
    wait_until(lambda: hub.scalar(f"SELECT count(*) FROM cases WHERE case_id = '{case_id}'"), what="the case")
    day, month = "2026-11-25", "2026-11"
    panels = {
        f"/api/kpi?by={by}&{period}": ["--by", by, *option]
        for by in ("squad", "department", "grid", "worker")
        for period, option in ((f"date={day}", ["--date", day]), (f"month={month}", ["--month", month]), ("", []))
    }
    panels |= {
        "/api/kpi": [], f"/api/kpi?date={day}": ["--date", day], f"/api/kpi?month={month}": ["--month", month],
        f"/api/kpi/trend?end={day}": ["--trend", "30", "--date", day],
        f"/api/kpi/patrol?date={day}": ["--patrol", "--by", "squad", "--date", day],
        "/api/kpi/patrol": ["--patrol", "--by", "squad"],
        f"/api/kpi/approvals?date={day}": ["--approvals", "--date", day],
        f"/api/kpi/approvals?month={month}": ["--approvals", "--month", month],
    }  # fmt: skip
    for path, options in panels.items():
        assert_panel_equals_cli(hub, path, options)
    for refused in ("/api/kpi?by=galaxy", "/api/kpi?date=25.11.2026", "/api/kpi?date=2026-11-25&month=2026-11"):
        assert get(f"{screen(hub)}{refused}", hub.tokens.analyst)[0] == 400, refused


def test_open_cases_are_on_the_screen_masked_for_an_analyst_and_whole_for_the_commander(hub: Hub) -> None:
    case_id, phone, subject = unique("R-SCREEN"), mobile(), resident_id()
    body = report(
        case_id, category="0102", description=f"堆放垃圾，联系{phone}", reported_at="2026-11-25T09:00:00+08:00",
        reporter_id="GW002", subject_id_number=subject, **spot(),
    )  # fmt: skip
    assert hub.post("/v1/reports", body)[0] == 202
    wait_until(lambda: case_field(hub, case_id, "status") == "dispatched", what="case")
    status, analyst, _ = get(f"{screen(hub)}/api/cases", hub.tokens.analyst)
    assert status == 200
    shown = [dict(zip(analyst["columns"], row, strict=True)) for row in analyst["rows"]]
    assert case_id in {case["case_id"] for case in shown}
    text = json.dumps(analyst, ensure_ascii=False)
    assert not FULL_ID.search(text) and not FULL_MOBILE.search(text)
    assert "GW002" not in text
    commander = get(f"{screen(hub)}/api/cases", hub.tokens.commander)[1]
    assert "GW002" in json.dumps(commander)


def post(url: str, token: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return post_json(url, body, token=token)


def as_dicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]


@contextmanager
def feed(hub: Hub, token: str) -> Iterator[Callable[[Callable[[dict[str, Any]], bool], float], list[dict[str, Any]]]]:
    """The screen's live feed as ``token``'s viewer sees it: read items until one matches, or fail."""
    request = urllib.request.Request(f"{screen(hub)}/api/feed", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")

        def until(found: Callable[[dict[str, Any]], bool], timeout_s: float = 30) -> list[dict[str, Any]]:
            """Items up to the first that ``found`` accepts; a heartbeat is offered to it as ``{"alive": True}``."""
            items, deadline = [], time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                line = stream.readline().decode()
                assert line, f"the feed ended; it had sent {items}"
                if line.startswith(": alive") and found({"alive": True}):
                    return items
                if line.startswith("data: "):
                    items.append(json.loads(line.removeprefix("data: ")))
                    if found(items[-1]):
                        return items
            raise AssertionError(f"no such item in {timeout_s} s; the feed sent {items}")

        yield until


def new_case(hub: Hub, *, reporter: str = "GW001", description: str = "暴露垃圾", **extra: Any) -> str:
    case_id = unique("R-SCREEN")
    body = report(
        case_id, category="0102", description=description, reported_at="2026-11-25T09:00:00+08:00",
        reporter_id=reporter, **extra,
    )  # fmt: skip
    assert hub.post("/v1/reports", body)[0] == 202
    return case_id


def case_field(hub: Hub, case_id: str, name: str) -> Any:
    return hub.scalar(f"SELECT {name} FROM cases WHERE case_id = '{case_id}'")


def test_a_new_report_reaches_the_live_feed_with_nothing_personal_in_it(hub: Hub) -> None:
    with feed(hub, hub.tokens.analyst) as until:
        case_id = new_case(hub, reporter="GW003", subject_id_number=resident_id(), description="请勿外传")

        def both_seen(_item: dict[str, Any]) -> bool:
            return {"report", "dispatch"} <= {item["kind"] for item in seen if item.get("case_id") == case_id}

        seen: list[dict[str, Any]] = []
        items = until(lambda item: seen.append(item) or both_seen(item))
    mine = {item["kind"]: item for item in items if item.get("case_id") == case_id}
    assert mine["report"]["report_id"] == case_id and mine["report"]["grid_code"]
    assert mine["report"]["lat"] and mine["report"]["lon"] and mine["dispatch"]["status"] == "dispatched"
    text = json.dumps(list(mine.values()), ensure_ascii=False)
    assert "GW003" not in text and "请勿外传" not in text and not FULL_ID.search(text), text


def test_the_feed_ends_when_the_viewers_token_is_revoked(hub: Hub) -> None:
    name = unique("wall")
    token = hub.book.add(name, "analyst")
    with feed(hub, token) as until:
        until(lambda item: item.get("alive", False))  # the stream is alive: it ends below because of the revoke
        assert hub.book.revoke(name)
        started = time.monotonic()
        with pytest.raises(AssertionError, match="the feed ended"):
            until(lambda _item: False, 60)
        assert time.monotonic() - started < 30
    assert get(f"{screen(hub)}/api/me", token)[0] == 401


def test_a_case_drills_down_to_its_reports_steps_and_what_it_concerns(hub: Hub) -> None:
    subject, phone = resident_id(), mobile()
    case_id = new_case(hub, reporter="GW004", subject_id_number=subject, description=f"占道经营，联系{phone}")
    wait_until(lambda: case_field(hub, case_id, "seq") == 3, what="the case dispatched")
    for token, whole in ((hub.tokens.commander, True), (hub.tokens.analyst, False)):
        status, answer, _ = get(f"{screen(hub)}/api/cases/{case_id}", token)
        assert status == 200
        assert answer["case"]["case_id"] == case_id
        assert [report["event_id"] for report in as_dicts(answer["reports"])] == [case_id]
        steps = [step["to_status"] for step in as_dicts(answer["transitions"])]
        assert steps == ["reported", "accepted", "dispatched"]
        text = json.dumps(answer, ensure_ascii=False)
        assert (subject in text, phone in text, "GW004" in text) == (whole, whole, whole)
        if not whole:
            assert not FULL_ID.search(text) and not FULL_MOBILE.search(text)
    assert get(f"{screen(hub)}/api/cases/R-NO-SUCH-CASE", hub.tokens.analyst)[0] == 404
    hostile = urllib.parse.quote("x' OR 1=1 --")
    status, refused, _ = get(f"{screen(hub)}/api/cases/{hostile}", hub.tokens.analyst)
    assert status == 400 and refused["error"] == "bad_case_id"


def test_a_grid_cell_drills_down_to_its_cases_counts_and_roster(hub: Hub) -> None:
    case_id = new_case(hub)
    code = wait_until(lambda: hub.scalar(f"SELECT grid_code FROM cases WHERE case_id = '{case_id}'"), what="the case")
    cell = Grid.load(hub.settings.grid_path).cells[code]
    status, commander, _ = get(f"{screen(hub)}/api/cells/{code}", hub.tokens.commander)
    assert status == 200
    assert case_id in {row["case_id"] for row in as_dicts(commander["cases"])}
    assert set(commander["counts"]) == {"places", "people", "organisations", "objects"}
    places = hub.scalar(f"SELECT count(*) FROM places WHERE grid_code = '{code}'")
    assert commander["counts"]["places"] == places
    assert commander["cell"]["workers"] == list(cell.workers)
    analyst = get(f"{screen(hub)}/api/cells/{code}", hub.tokens.analyst)[1]
    assert analyst["cell"]["workers"] == [] and analyst["counts"] == commander["counts"]
    assert get(f"{screen(hub)}/api/cells/NO-SUCH-CELL", hub.tokens.analyst)[0] == 404


def test_patrol_tracks_of_the_last_hour_are_on_the_map_pseudonymous_for_an_analyst(hub: Hub) -> None:
    points = [{"at": f"2026-11-25T08:{minute:02d}:00+08:00", **spot()} for minute in range(0, 30, 5)]
    worker = "GW005"
    assert hub.post("/v1/tracks", {"worker_id": worker, "points": points})[0] == 202
    mine = f"SELECT count(*) FROM patrol_tracks WHERE worker_id = '{worker}'"
    wait_until(lambda: hub.scalar(mine) >= len(points), what="the track")
    newest = hub.scalar("SELECT CAST(max(recorded_at) AS VARCHAR) FROM patrol_tracks")
    commander = as_dicts(get(f"{screen(hub)}/api/tracks", hub.tokens.commander)[1])
    recent = hub.scalar(
        f"SELECT count(*) FROM patrol_tracks WHERE recorded_at >= TIMESTAMPTZ '{newest}' - INTERVAL 60 MINUTE"
    )
    assert len(commander) == recent
    analyst = get(f"{screen(hub)}/api/tracks", hub.tokens.analyst)[1]
    assert len(analyst["rows"]) == recent and worker not in json.dumps(analyst)


def test_the_commander_cancels_and_extends_from_the_screen_with_the_apis_rules(hub: Hub) -> None:
    case_id = new_case(hub)
    wait_until(lambda: case_field(hub, case_id, "status") == "dispatched", what="case")
    known_to_gateway(hub, case_id)  # the screen relays to the gateway, whose copy must hold the case to refuse
    actions = f"{screen(hub)}/api/cases/{case_id}/actions"
    assert post(actions, hub.tokens.analyst, {"action": "cancel"})[0] == 403
    assert post(actions, hub.tokens.commander, {"action": "shred"})[0] == 400

    def outcome(update_id: str) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            answer = get(f"{screen(hub)}/api/updates/{update_id}", hub.tokens.commander)[1]
            return None if answer["state"] == "pending" else answer

        return wait_until(settled, what=f"the outcome of {update_id}")

    status, refused = post(actions, hub.tokens.commander, {"action": "extend"})
    assert (status, refused["error"]) == (409, "deadline_required"), refused
    due = datetime.fromisoformat(str(case_field(hub, case_id, "due_at")))
    later = (due + timedelta(days=2)).isoformat()
    status, sent = post(actions, hub.tokens.commander, {"action": "extend", "due_at": later, "note": "等待材料"})
    assert status == 202 and outcome(sent["update_id"]) == {"state": "applied", "status": "extended"}
    status, sent = post(actions, hub.tokens.commander, {"action": "cancel"})
    assert status == 202 and outcome(sent["update_id"])["state"] == "applied"
    wait_until(lambda: case_field(hub, case_id, "status") == "cancelled", what="the cancel")
    steps = hub.sql(f"SELECT action, actor_role FROM case_transitions WHERE case_id = '{case_id}' ORDER BY seq")
    assert steps[-2:] == [["extend", "command_centre"], ["cancel", "command_centre"]]


def test_a_redispatch_from_the_screen_reaches_the_departments_work_order_topic(hub: Hub) -> None:
    case_id = new_case(hub)
    wait_until(lambda: case_field(hub, case_id, "status") == "dispatched", what="case")
    department = hub.scalar(f"SELECT department FROM cases WHERE case_id = '{case_id}'")
    decline = {"update_id": unique("U"), "event_id": case_id, "status": "returned", "at": "2026-11-25T10:00:00+08:00",
               "actor": f"desk-{department}", "note": "不属本部门"}  # fmt: skip
    assert hub.post("/v1/updates", decline)[0] == 202
    wait_until(lambda: case_field(hub, case_id, "status") == "returned", what="return")
    assert len(hub.work_orders(department, case_id)) == 1
    status, sent = post(f"{screen(hub)}/api/cases/{case_id}/actions", hub.tokens.commander, {"action": "redispatch"})
    assert status == 202, sent
    wait_until(lambda: len(hub.work_orders(department, case_id)) == 2, what="the second work order")


def test_the_search_box_gives_what_gridhub_show_gives_masked_by_role(hub: Hub, tmp_path: Path) -> None:
    person, phone = resident_id(), mobile()
    missing = get(f"{screen(hub)}/api/search?kind=person&q={person}", hub.tokens.commander)
    assert missing[0] == 404 and missing[1]["error"] == "not_found"
    assert get(f"{screen(hub)}/api/search?kind=galaxy&q=x", hub.tokens.commander)[0] == 400
    register = write_csv(
        tmp_path / "people.csv", ["姓名", "公民身份号码", "出生日期", "联系电话", "住址"],
        [["钱 多", person, "", phone, "孟河镇通江路9号"]],
    )  # fmt: skip
    assert hub.ingest(register, "civil-affairs", "person", "--wait").returncode == 0
    status, whole, _ = get(f"{screen(hub)}/api/search?kind=person&q={person}", hub.tokens.commander)
    assert status == 200, whole
    printed = hub.cli("show", "person", person, "-o", "json", token=hub.tokens.commander)
    assert printed.returncode == 0, printed.stderr
    assert whole == json.loads(printed.stdout)
    assert person in json.dumps(whole) and phone in json.dumps(whole)
    # A masked viewer finds a person by the pseudonym the masked views show, never by the resident ID.
    assert get(f"{screen(hub)}/api/search?kind=person&q={person}", hub.tokens.analyst)[0] == 404
    pseudonym = query(
        hub.as_caller(hub.tokens.analyst),
        f"SELECT person_key FROM people WHERE name = '钱*' AND phone = '{phone[:3]}****{phone[-4:]}'",
    )
    status, masked, _ = get(f"{screen(hub)}/api/search?kind=person&q={pseudonym['rows'][0][0]}", hub.tokens.analyst)
    text = json.dumps(masked, ensure_ascii=False)
    assert status == 200 and masked["lineage"] and not FULL_ID.search(text) and not FULL_MOBILE.search(text)


def test_a_redispatch_from_the_screen_may_send_a_case_to_another_department(hub: Hub) -> None:
    case_id = new_case(hub)
    wait_until(lambda: case_field(hub, case_id, "status") == "dispatched", what="the case")
    first = case_field(hub, case_id, "department")
    rules = load_rules(hub.settings.routing_rules)
    # A department whose orders all go to its own desk (not to squad desks), so its topic is the one to read.
    other = next(name for name in rules.departments if name != first and name not in rules.dispatch_by_squad)
    decline = {"update_id": unique("U"), "event_id": case_id, "status": "returned", "at": "2026-11-25T10:00:00+08:00",
               "actor": f"desk-{first}", "note": "不属本部门"}  # fmt: skip
    assert hub.post("/v1/updates", decline)[0] == 202
    wait_until(lambda: case_field(hub, case_id, "status") == "returned", what="the return")
    actions = f"{screen(hub)}/api/cases/{case_id}/actions"
    status, refused = post(actions, hub.tokens.commander, {"action": "redispatch", "department": "atlantis"})
    assert (status, refused["error"]) == (422, "unknown_department")
    status, sent = post(actions, hub.tokens.commander, {"action": "redispatch", "department": other, "note": "改派"})
    assert status == 202, sent
    wait_until(lambda: hub.work_orders(other, case_id), what="the work order of the other department")
    wait_until(lambda: case_field(hub, case_id, "department") == other, what="the case's new department")
    assert hub.scalar(f"SELECT department FROM event_updates WHERE update_id = '{sent['update_id']}'") == other
    start = {"update_id": unique("U"), "event_id": case_id, "status": "in_handling", "at": "2026-11-25T11:00:00+08:00",
             "actor": f"desk-{first}"}  # fmt: skip
    status, answer = hub.post("/v1/updates", start)
    assert status == 403 and other in answer["reason"], answer
    extend = {"action": "extend", "department": other, "due_at": "2027-01-01T00:00:00+08:00"}
    status, refused = post(actions, hub.tokens.commander, extend)
    assert (status, refused["error"]) == (409, "department_not_allowed"), refused


def test_a_cases_photos_are_shown_to_the_commander_through_the_gateways_own_rule(hub: Hub) -> None:
    photo = picture("JPEG", (200, 40, 40))
    case_id = unique("R-SCREEN")
    body = report(case_id, category="0102", description="暴露垃圾", reported_at="2026-11-25T09:00:00+08:00",
                  reporter_id="GW001")  # fmt: skip
    status, answer = hub.post_form("/v1/reports", "report", body, [photo])
    assert status == 202, answer
    (reference,) = answer["photos"]
    wait_until(lambda: case_field(hub, case_id, "status") == "dispatched", what="the case")
    shown = as_dicts(get(f"{screen(hub)}/api/cases/{case_id}", hub.tokens.commander)[1]["reports"])
    assert shown[0]["photo_refs"] == [reference]
    request = urllib.request.Request(
        f"{screen(hub)}/api/photos/{reference}", headers={"Authorization": f"Bearer {hub.tokens.commander}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read() == photo and response.headers["Content-Type"] == "image/jpeg"
    assert get(f"{screen(hub)}/api/photos/{reference}", hub.tokens.analyst)[0] == 403
    assert get(f"{screen(hub)}/api/photos/sha256:{'0' * 64}", hub.tokens.commander)[0] == 404
