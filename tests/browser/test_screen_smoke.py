"""The screen in a real browser, on the demo's day: a viewer logs in and sees the town; a wrong token does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from schemas.grid import Grid
from tests.browser.conftest import ServedDemo, login


def test_an_analyst_sees_every_grid_cell_and_the_open_cases_on_the_map(
    served_demo: ServedDemo, page: Page, screenshot: Callable[[], Path]
) -> None:
    cells = Grid.load(served_demo.settings.grid_path).cells
    login(page, served_demo.screen_url, served_demo.analyst_token)
    expect(page.locator("#map path.cell")).to_have_count(len(cells))
    expect(page.locator("#map circle.case").first).to_be_attached()
    screenshot()


def test_a_wrong_token_is_refused_and_shows_no_screen(
    served_demo: ServedDemo, page: Page, screenshot: Callable[[], Path]
) -> None:
    page.goto(served_demo.screen_url)
    page.locator("#token").fill("ghb_not-a-token")
    page.locator("#login [type=submit]").click()
    expect(page.locator("#login-error")).not_to_be_empty()
    expect(page.locator("#screen")).to_be_hidden()
    screenshot()
