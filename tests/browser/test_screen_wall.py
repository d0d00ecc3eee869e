"""The command centre's wall screen in a real browser, on the demo's day, as the town's staff use it.

Each test waits for what the page shows (Playwright's ``expect``), compares it with what the hub's
own doors answer (``gridhub kpi``, the dispatch topic) and saves a screenshot.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from foundation.access import TokenBook
from schemas.grid import Grid
from schemas.topics import dispatch_topic
from tests.browser.conftest import ServedDemo, login, save_screenshot
from tests.support.hub import ROOT, post_json, spot, topic_messages, unique, wait_until
from tests.support.identities import FULL_ID, FULL_MOBILE, mobile, resident_id
from tests.support.up import at_a_terminal

DAY, MONTH = "2026-11-25", "2026-11"


def phone_token(demo: ServedDemo, worker: str = "GW001") -> str:
    return TokenBook(demo.settings.tokens_file).add(unique(f"phone-{worker}"), "device", worker=worker)


def desk_token(demo: ServedDemo, department: str) -> str:
    return TokenBook(demo.settings.tokens_file).add(unique(f"desk-{department}"), "desk", department=department)


def screen_api(demo: ServedDemo, path: str, token: str) -> Any:
    base = demo.screen_url.split("?")[0].rstrip("/")
    request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def post_report(demo: ServedDemo, **extra: Any) -> str:
    """A new problem, reported now from a spot of its own, so it opens its own case."""
    report_id = unique("R-WALL")
    body = {
        "report_id": report_id, "category": "0102", "description": "暴露垃圾", "reporter_id": "GW001", **spot(),
        "reported_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), **extra,
    }  # fmt: skip
    status, answer = post_json(f"{demo.gateway_url}/v1/reports", body, token=phone_token(demo))
    assert status == 202, answer
    return report_id


def kpi_cli(demo: ServedDemo, *options: str) -> list[dict[str, Any]]:
    """What `gridhub kpi ... -o json` prints for the demo's warehouse, as the analyst."""
    env = {**os.environ, "GRIDHUB_TOKEN": demo.analyst_token, "NO_COLOR": "1"}
    printed = subprocess.run(
        at_a_terminal("kpi", *options, "-o", "json", "--data-dir", str(demo.data_dir)),
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    return list(json.loads(printed.stdout))


def shown_row(page: Page, table: str, key: str) -> dict[str, Any]:
    """The values a table row of the page holds (``data-value``: the JSON the page was given)."""
    cells = page.locator(f"#{table} tbody tr[data-key='{key}'] td[data-column]")
    return {
        cell.get_attribute("data-column"): json.loads(cell.get_attribute("data-value") or "null")
        for cell in cells.all()
    }


def shown_table(page: Page, table: str) -> list[dict[str, Any]]:
    rows = page.locator(f"#{table} tbody tr").all()
    return [
        {
            cell.get_attribute("data-column"): json.loads(cell.get_attribute("data-value") or "null")
            for cell in row.locator("td[data-column]").all()
        }
        for row in rows
    ]


def case_status(demo: ServedDemo, case_id: str) -> str | None:
    """The case's status in the warehouse, as the screen answers it; None while the warehouse has no such case."""
    try:
        return str(screen_api(demo, f"/api/cases/{case_id}", demo.commander_token)["case"]["status"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def work_orders(demo: ServedDemo, department: str, case_id: str) -> list[Any]:
    """The work orders of one case on its department's dispatch topic."""
    messages = topic_messages(demo.bootstrap, dispatch_topic(department))
    return [message for message in messages if message.json()["work_order"]["event_id"] == case_id]


def loaded(page: Page) -> None:
    expect(page.locator("body[data-refreshed]")).to_be_attached()


def test_the_commanders_wall_screen_of_the_demo_day(served_demo: ServedDemo, page: Page, screenshot: Callable) -> None:
    """The picture of the screen the README shows: the demo's day, taken first, before other tests add reports."""
    login(page, served_demo.screen_url, served_demo.commander_token)
    loaded(page)
    expect(page.locator("#feed li").first).to_be_visible()
    expect(page.locator("#map polyline.track").first).to_be_attached()
    screenshot()  # docs/screen.png is a copy of it


def test_the_map_draws_every_open_case_of_the_day(served_demo: ServedDemo, page: Page, screenshot: Callable) -> None:
    login(page, served_demo.screen_url, served_demo.analyst_token)
    loaded(page)
    open_cases = screen_api(served_demo, "/api/cases", served_demo.analyst_token)
    placed = [row for row in open_cases["rows"] if row[open_cases["columns"].index("lat")] is not None]
    expect(page.locator("#map circle.case")).to_have_count(len(placed))
    expect(page.locator("#cases tbody tr")).to_have_count(len(open_cases["rows"]))
    cells = Grid.load(served_demo.settings.grid_path).cells.values()
    basic = [cell for cell in cells if cell.kind == "basic"]
    expect(page.locator("#map text.community-label")).to_have_count(len({cell.community for cell in basic}))
    expect(page.locator("#squad-legend [data-squad]")).to_have_count(len({cell.squad for cell in cells if cell.squad}))
    for squad in {cell.squad for cell in basic}:
        in_squad = sum(1 for cell in cells if cell.squad == squad)
        expect(page.locator(f"#map path.cell[data-squad='{squad}']")).to_have_count(in_squad)
    screenshot()


def test_a_report_posted_over_http_appears_in_the_feed_and_on_the_map(
    served_demo: ServedDemo, page: Page, screenshot: Callable
) -> None:
    login(page, served_demo.screen_url, served_demo.analyst_token)
    loaded(page)
    report_id = post_report(served_demo)
    expect(page.locator(f"#feed li[data-kind='report'][data-case='{report_id}']")).to_be_visible(timeout=10_000)
    expect(page.locator(f"#map circle.case[data-case='{report_id}']")).to_be_attached(timeout=10_000)
    expect(page.locator(f"#feed li[data-kind='dispatch'][data-case='{report_id}']")).to_be_visible(timeout=10_000)
    screenshot()


def test_every_kpi_panel_equals_gridhub_kpi(served_demo: ServedDemo, page: Page, screenshot: Callable) -> None:
    login(page, served_demo.screen_url, served_demo.analyst_token)
    loaded(page)
    measures = ("cases_due", "closed", "closure_rate", "on_time_rate", "rework_rate", "median_hours_to_close")
    for key, options in (("day", ["--date", DAY]), ("month", ["--month", MONTH])):
        (printed,) = kpi_cli(served_demo, *options)
        shown = shown_row(page, "kpi-summary", key)
        assert {m: shown[m] for m in measures} == {m: printed[m] for m in measures}, key
    by_squad = kpi_cli(served_demo, "--by", "squad", "--date", DAY)
    assert shown_table(page, "kpi") == [{"squad": row["squad"], **{m: row[m] for m in measures}} for row in by_squad]
    page.locator("#grouping").select_option("department")
    page.locator("#grouping-period").select_option("month")
    expect(page.locator("#kpi th").first).to_have_text("部门")
    by_department = kpi_cli(served_demo, "--by", "department", "--month", MONTH)
    expect(page.locator("#kpi tbody tr")).to_have_count(len(by_department))
    assert shown_table(page, "kpi") == [
        {"department": row["department"], **{m: row[m] for m in measures}} for row in by_department
    ]
    assert shown_table(page, "patrol") == kpi_cli(served_demo, "--patrol", "--by", "squad", "--date", DAY)
    for shown, options in zip(shown_table(page, "approvals"), (["--date", DAY], ["--month", MONTH]), strict=True):
        (printed,) = kpi_cli(served_demo, "--approvals", *options)
        assert {name: value for name, value in shown.items() if name != "period"} == printed
    trend = kpi_cli(served_demo, "--trend", "30", "--date", DAY)
    expect(page.locator("#trends figure")).to_have_count(5)
    caption = page.locator("#trends figure[data-measure='cases_due'] figcaption")
    expect(caption).to_contain_text(f": {trend[-1]['cases_due']}")
    screenshot()


def test_an_analysts_screen_masks_what_a_commanders_shows_whole(
    served_demo: ServedDemo, page: Page, screenshot: Callable
) -> None:
    subject, phone = resident_id(), mobile()
    report_id = post_report(served_demo, subject_id_number=subject, description=f"占道经营，联系{phone}")
    wait_until(lambda: case_status(served_demo, report_id), what="the case in the warehouse")
    for token, whole in ((served_demo.analyst_token, False), (served_demo.commander_token, True)):
        login(page, served_demo.screen_url, token)
        loaded(page)
        page.locator(f"#cases tbody tr[data-key='{report_id}']").click()
        expect(page.locator(f"#detail-title[data-case='{report_id}']")).to_be_visible()
        text = page.locator("body").inner_text()
        assert (subject in text, phone in text) == (whole, whole)
        if not whole:
            assert not FULL_ID.search(text) and not FULL_MOBILE.search(text)
            save_screenshot(page, "analyst_case_masked")
        page.locator("#logout").click()
        expect(page.locator("#login")).to_be_visible()
    screenshot()


def test_a_redispatch_from_the_screen_reaches_the_departments_work_order_topic(
    served_demo: ServedDemo, page: Page, screenshot: Callable
) -> None:
    report_id = post_report(served_demo)
    wait_until(lambda: case_status(served_demo, report_id) == "dispatched", what="the case dispatched")
    department = screen_api(served_demo, f"/api/cases/{report_id}", served_demo.commander_token)["case"]["department"]
    decline = {"update_id": unique("U"), "event_id": report_id, "status": "returned", "actor": f"desk-{department}",
               "at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "note": "不属本部门"}  # fmt: skip
    desk = desk_token(served_demo, department)

    def declined() -> bool:
        status, answer = post_json(f"{served_demo.gateway_url}/v1/updates", decline, token=desk)
        assert status in (202, 503), answer  # 503: the gateway has not seen the case yet; a desk's app retries
        return status == 202

    wait_until(declined, what="the desk's return accepted")
    wait_until(lambda: case_status(served_demo, report_id) == "returned", what="the case returned")
    assert len(work_orders(served_demo, department, report_id)) == 1
    login(page, served_demo.screen_url, served_demo.commander_token)
    loaded(page)
    page.locator(f"#cases tbody tr[data-key='{report_id}']").click()
    page.locator("#act-redispatch").click()
    expect(page.locator("#act-result.applied")).to_be_visible()
    wait_until(lambda: len(work_orders(served_demo, department, report_id)) == 2, what="the second work order")
    screenshot()


def test_the_english_switch_relabels_the_screen_and_keeps_its_numbers(
    served_demo: ServedDemo, page: Page, screenshot: Callable
) -> None:
    login(page, served_demo.screen_url, served_demo.analyst_token)
    loaded(page)
    before = shown_row(page, "kpi-summary", "day")
    expect(page.locator("h1")).to_have_text("孟河镇联动指挥中心")
    page.locator("#language").click()
    expect(page.locator("h1")).to_have_text("Menghe linked command centre")
    expect(page.locator("#kpi-summary th").nth(2)).to_have_text("closed")
    expect(page.locator("#language")).to_have_text("中文")
    after = shown_row(page, "kpi-summary", "day")
    assert (after.pop("period"), before.pop("period")) == ("that day", "当日")
    assert after == before
    screenshot()


def test_a_laptop_shows_the_whole_screen_without_sideways_scrolling(
    served_demo: ServedDemo, page: Page, screenshot: Callable
) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, served_demo.screen_url, served_demo.analyst_token)
    loaded(page)
    for panel in ("#map-panel", "#kpi-panel", "#feed-panel", "#cases-panel", "#patrol-panel", "#approvals-panel"):
        expect(page.locator(panel)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot()
