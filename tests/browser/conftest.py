"""Browser tests: headless Chromium, driven by Playwright, against `gridhub demo --serve`.

One demo hub per session, started as an operator starts it, fed the simulated day and kept
running; the tests log in to its screen as the town's staff. The browser is Debian's
``chromium`` (``make test`` installs it), or the one ``GRIDHUB_CHROMIUM`` names; Playwright never
downloads one. A missing browser fails these tests, naming the fix: it never skips them.

Nothing here sleeps: the fixture waits for the demo to print its screen's address, and the
tests wait for what the page shows (Playwright's ``expect``).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from foundation.settings import Settings
from simulation.demo import served_line
from tests.support.hub import ROOT
from tests.support.up import at_a_terminal

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("GRIDHUB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling out (updates, sync, field trials), which this
    # machine's closed network refuses, slowly.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1920, "height": 1080}
SCREENSHOTS = HERE / "screenshots"
DEMO_READY_TIMEOUT_S = 300
"""The demo feeds a whole day before it serves (30-60 s here); generous for a loaded machine."""
DEMO_STOP_TIMEOUT_S = 180
"""Ctrl-C drains (at most GRIDHUB_DRAIN_TIMEOUT_S, 120 s by default), then stops every service."""
PAGE_TIMEOUT_MS = 30_000

expect.set_options(timeout=PAGE_TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/browser drives the browser against real processes."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class ServedDemo:
    """The running demo hub, as `gridhub demo --serve` announced it."""

    screen_url: str
    """The screen's address, opening on the simulated day (``...?date=2026-11-25``)."""
    gateway_url: str
    """The patrol gateway (``POST {gateway_url}/v1/reports``)."""
    bootstrap: str
    """Kafka's bootstrap address (the embedded broker)."""
    data_dir: Path
    """The demo's own folder (``DATA_DIR/demo``): its warehouse, token book, token files and logs."""
    commander_token: str = field(repr=False)
    analyst_token: str = field(repr=False)

    @property
    def settings(self) -> Settings:
        """Settings that find what the demo runs with (its folder, its grid)."""
        return Settings(data_dir=self.data_dir)


class Output:
    """A process's output, read line by line as it comes (so the process never blocks on a full pipe)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.fresh: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name="demo-output", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self.fresh.put(line)
        self.fresh.put(None)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def next_line(self, deadline: float) -> str | None:
        """The next line printed before ``deadline``; None once the output has ended; raises queue.Empty past it."""
        return self.fresh.get(timeout=max(0.0, deadline - time.monotonic()))


def _wait_until_served(output: Output, timeout_s: float) -> dict[str, str]:
    """Read the demo's output until it prints the screen's address; return its ``  name: value`` lines."""
    deadline = time.monotonic() + timeout_s
    serving = False
    served: dict[str, str] = {}
    while "screen" not in served:
        try:
            line = output.next_line(deadline)
        except queue.Empty:
            pytest.fail(
                f"`gridhub demo --serve` printed no screen address within {timeout_s:.0f}s; it printed:\n{output.text}",
                pytrace=False,
            )
        if line is None:
            code = output.process.wait()
            pytest.fail(
                f"`gridhub demo --serve` exited with {code} before it served; it printed:\n{output.text}",
                pytrace=False,
            )
        if "gridhub demo --serve" in line:
            serving = True
        elif serving and (pair := served_line(line)):
            served[pair[0]] = pair[1]
    return served


def _stop(output: Output, timeout_s: float) -> str | None:
    """Ctrl-C the demo and wait for it to end; kill it past ``timeout_s``. Returns what went wrong, if anything."""
    process = output.process
    problem = None
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            problem = f"did not stop within {timeout_s:.0f}s of Ctrl-C and was killed"
    output.reader.join(timeout=30)
    if problem is None and process.returncode != 0:
        problem = f"exited with {process.returncode}"
    elif problem is None and "Traceback (most recent call last)" in output.text:
        problem = "printed a traceback"
    elif problem is None and "gridhub demo stopped cleanly." not in output.text:
        problem = "did not stop cleanly"
    return problem


def _demo_env() -> dict[str, str]:
    """An operator's environment, with free ports, no per-token throttling and plain, unbuffered output."""
    env = {name: value for name, value in os.environ.items() if name not in ("FORCE_COLOR", "GRIDHUB_TOKEN")}
    return {
        **env,
        "GRIDHUB_SCREEN_PORT": "0",
        "GRIDHUB_SINK_BATCH_WAIT_MS": "100",
        "GRIDHUB_RATE_LIMIT": "100000/second",  # the page polls every 5 s; tests share the town's few tokens
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
        "NO_COLOR": "1",
        "TERM": "dumb",
    }


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium the tests drive; fails (never skips) when it is not installed."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `make test`, which installs Debian's chromium "
            "(apt-get install chromium), or point GRIDHUB_CHROMIUM at a Chromium executable",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="package")
def served_demo(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[ServedDemo]:
    """`gridhub demo --serve` on a folder of its own, running until the browser tests end, then Ctrl-C'd.

    Asks for ``chromium`` first so that a missing browser fails at once, not after the demo's day.
    """
    data_dir = tmp_path_factory.mktemp("served-demo")
    process = subprocess.Popen(
        at_a_terminal("demo", "--serve", "--data-dir", str(data_dir)),
        env=_demo_env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # a Ctrl-C at the terminal reaches pytest, whose teardown stops the demo once
    )
    output = Output(process)
    try:
        served = _wait_until_served(output, DEMO_READY_TIMEOUT_S)
        demo = ServedDemo(
            screen_url=served["screen"],
            gateway_url=served["patrol gateway"],
            bootstrap=served["kafka bootstrap"],
            data_dir=Path(served["commander token"]).parent,
            commander_token=Path(served["commander token"]).read_text().strip(),
            analyst_token=Path(served["analyst token"]).read_text().strip(),
        )
    except BaseException:
        _stop(output, DEMO_STOP_TIMEOUT_S)
        raise
    yield demo
    problem = _stop(output, DEMO_STOP_TIMEOUT_S)
    if problem:
        pytest.fail(f"`gridhub demo --serve` {problem}; it printed:\n{output.text}", pytrace=False)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    """Headless Chromium, for one test module.

    Never for the whole session: Playwright's sync API keeps an event loop running in the main
    thread while it is open, and every later test that calls ``asyncio.run`` would then fail.
    """
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies from another test) and its page, at the wall screen's 1920x1080."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def login(page: Page, url: str, token: str) -> None:
    """Open ``url``, fill the login form with ``token`` and wait until the screen shows, in place of the form."""
    page.goto(url)
    page.locator("#token").fill(token)
    page.locator("#login [type=submit]").click()
    expect(page.locator("#screen")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()


def save_screenshot(page: Page, name: str) -> Path:
    """Save what the page shows to tests/browser/screenshots/<name>.png (git ignores the folder)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest) -> Callable[[], Path]:
    """Save the page's screenshot under the test's name: ``screenshot()``."""
    return lambda: save_screenshot(page, request.node.name)
