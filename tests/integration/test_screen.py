"""The command centre's screen: served by the hub, behind a viewer's token, with the numbers `gridhub kpi` prints."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from gridhub.screen.server import ASSETS
from schemas.grid import Grid
from tests.support.hub import Hub, report, spot, unique, wait_until
from tests.support.identities import FULL_ID, FULL_MOBILE, mobile, resident_id

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


@pytest.mark.parametrize("path", ["/api/me", "/api/grid", "/api/cases", "/api/kpi"])
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
    for by in ("", "squad", "department", "grid", "worker"):
        options = ["--by", by] if by else []
        printed = hub.cli("kpi", *options, "-o", "json", token=hub.tokens.analyst)
        assert printed.returncode == 0, printed.stderr
        status, panel, _ = get(f"{screen(hub)}/api/kpi{'?by=' + by if by else ''}", hub.tokens.analyst)
        assert status == 200
        assert [dict(zip(panel["columns"], row, strict=True)) for row in panel["rows"]] == json.loads(printed.stdout), (
            by
        )
    assert get(f"{screen(hub)}/api/kpi?by=galaxy", hub.tokens.analyst)[0] == 400


def test_open_cases_are_on_the_screen_masked_for_an_analyst_and_whole_for_the_commander(hub: Hub) -> None:
    case_id, phone, subject = unique("R-SCREEN"), mobile(), resident_id()
    body = report(
        case_id, category="0102", description=f"堆放垃圾，联系{phone}", reported_at="2026-11-25T09:00:00+08:00",
        reporter_id="GW002", subject_id_number=subject, **spot(),
    )  # fmt: skip
    assert hub.post("/v1/reports", body)[0] == 202
    wait_until(lambda: hub.scalar(f"SELECT status FROM cases WHERE case_id = '{case_id}'") == "dispatched", what="case")
    status, analyst, _ = get(f"{screen(hub)}/api/cases", hub.tokens.analyst)
    assert status == 200
    shown = [dict(zip(analyst["columns"], row, strict=True)) for row in analyst["rows"]]
    assert case_id in {case["case_id"] for case in shown}
    text = json.dumps(analyst, ensure_ascii=False)
    assert not FULL_ID.search(text) and not FULL_MOBILE.search(text)
    assert "GW002" not in text
    commander = get(f"{screen(hub)}/api/cases", hub.tokens.commander)[1]
    assert "GW002" in json.dumps(commander)
