"""One open-loop load of reports on the patrol gateway, and the two clocks that stop for each report.

Every incidents measurement (the issue's 60 s at 200/s, each step of the latency curve) is
this one load at another rate, length and report-id prefix. Reports are sent on an open-loop
schedule (report *i* leaves at ``start + i / rate`` whether or not earlier ones were answered),
so a slow hub cannot lower the offered load and hide its own latency; latency is counted from
that scheduled moment. Two clocks stop per report: when its work order arrives on
``dispatch.<department>`` (read with a plain Kafka consumer, as a desk reads it) and when its
case first shows in the warehouse's ``cases`` table (polled through the sink's SQL endpoint).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from rich.progress import Progress

from bench.hub import BenchHub, consumer_at_ends, desk_topics
from bench.patrol_reports import sent_now
from bench.probes import ProcessSampler, ProcessUsage
from bench.report import percentiles
from bench.session import Session
from warehouse.reader import query

POLL_S = 0.05
"""How often the warehouse is asked for new cases: fine enough for a 500 ms goal (see :func:`_watch_warehouse`)."""
WATERMARK_MARGIN_S = 1.0
"""How far before the newest ``loaded_at`` seen the warehouse poll looks again."""
START_DELAY_S = 0.5
"""Between building the schedule and its first report, so the first ones are not late already."""


@dataclass(frozen=True)
class Goals:
    """The p99 latencies a load must stay within (with no error and no loss) to meet its goal."""

    dispatch_p99_ms: int
    warehouse_p99_ms: int


@dataclass(frozen=True)
class Load:
    """One open-loop load: its offered rate, how long it is offered, how long stragglers are awaited."""

    rate_per_s: float
    duration_s: float
    drain_s: float
    """How long after the last report the load waits for work orders and cases still missing."""
    goals: Goals | None = None

    @property
    def reports(self) -> int:
        """Reports the load sends."""
        return max(1, round(self.rate_per_s * self.duration_s))


@dataclass(frozen=True)
class LoadFigures:
    """What one load came to: answers, losses and both latencies (percentiles in ms)."""

    rate_per_s: float
    sent: int
    accepted: int
    errors: dict[str, int]
    """Answers other than 202 (status code or exception name) and how many of each."""
    lost_dispatch: int
    lost_warehouse: int
    dispatch_ms: dict[str, float]
    warehouse_ms: dict[str, float]
    seconds: float
    """From the first report's scheduled moment to the last's."""
    worst_send_lag_ms: float

    @property
    def error_count(self) -> int:
        """Reports answered with anything but 202."""
        return sum(self.errors.values())

    @property
    def lost(self) -> int:
        """The larger loss of the two clocks: accepted reports without a work order, or without a case, in time."""
        return max(self.lost_dispatch, self.lost_warehouse)

    def dispatch_p99_ms(self) -> float:
        """p99 to the dispatch topic; infinite when no work order arrived at all."""
        return self.dispatch_ms.get("p99", math.inf)


@dataclass
class Clocks:
    """When each report was due to be sent, how it was answered, and when it was seen downstream."""

    scheduled: dict[str, float] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    dispatched: dict[str, float] = field(default_factory=dict)
    visible: dict[str, float] = field(default_factory=dict)
    worst_send_lag_s: float = 0.0

    def accepted(self) -> set[str]:
        """Reports answered 202."""
        return {report for report, answer in self.answers.items() if answer == "202"}

    def latencies(self, seen: dict[str, float]) -> list[float]:
        """Seconds from each accepted report's scheduled moment to when it was ``seen``."""
        return [seen[report] - self.scheduled[report] for report in self.accepted() if report in seen]

    def figures(self, rate_per_s: float) -> LoadFigures:
        """The load's answers, losses and latencies."""
        accepted = self.accepted()
        errors: dict[str, int] = {}
        for answer in self.answers.values():
            if answer != "202":
                errors[answer] = errors.get(answer, 0) + 1
        moments = self.scheduled.values()
        return LoadFigures(
            rate_per_s=rate_per_s,
            sent=len(self.answers),
            accepted=len(accepted),
            errors=errors,
            lost_dispatch=len(accepted - self.dispatched.keys()),
            lost_warehouse=len(accepted - self.visible.keys()),
            dispatch_ms=percentiles(self.latencies(self.dispatched)),
            warehouse_ms=percentiles(self.latencies(self.visible)),
            seconds=max(moments) - min(moments) if moments else 0.0,
            worst_send_lag_ms=round(self.worst_send_lag_s * 1000, 1),
        )


async def _watch_dispatch(consumer: AIOKafkaConsumer, prefix: str, clocks: Clocks, stop: asyncio.Event) -> None:
    """Note the arrival of every work order of this load, as a desk's consumer receives it."""
    while not stop.is_set():
        polled = await consumer.getmany(timeout_ms=100)
        arrived = time.monotonic()
        for messages in polled.values():
            for message in messages:
                report = json.loads(message.value or b"{}").get("work_order", {}).get("event_id", "")
                if report.startswith(prefix):
                    clocks.dispatched.setdefault(report, arrived)


async def _watch_warehouse(hub: BenchHub, prefix: str, clocks: Clocks, stop: asyncio.Event) -> None:
    """Poll the sink every ``POLL_S`` for cases of this load loaded since shortly before the newest one seen.

    The poll is as fine as 50 ms because a case's latency can only be known to within one poll
    interval, and the goal at 20 reports/s is 500 ms. That is affordable because each answer is
    small: the sink writes one batch at a time and stamps ``loaded_at`` while it reads the batch,
    after the previous batch committed, so a case not seen yet carries a later stamp than every
    case seen; the window reaches ``WATERMARK_MARGIN_S`` further back only against clock steps.
    A wider window made each answer repeat every case of the last seconds (2,000 rows five times
    a second at 200 reports/s), which the sink and this process paid for in CPU the hub needed.
    A case the window still misses is found by the final sweep: late, never lost. The values go
    as parameters, so the statement's text stays the same and the sink checks it only once.
    """
    since = "1970-01-01T00:00:00+00:00"
    sql = "SELECT case_id, loaded_at FROM cases WHERE case_id LIKE ? AND loaded_at >= CAST(? AS TIMESTAMPTZ)"
    while not stop.is_set():
        rows = (await asyncio.to_thread(query, hub.settings, sql, [f"{prefix}%", since]))["rows"]
        answered = time.monotonic()
        for case_id, _loaded in rows:
            clocks.visible.setdefault(case_id, answered)
        if rows:
            newest = max(datetime.fromisoformat(loaded) for _, loaded in rows)
            since = (newest - timedelta(seconds=WATERMARK_MARGIN_S)).isoformat()
        await asyncio.sleep(POLL_S)


async def _sweep_warehouse(hub: BenchHub, prefix: str, clocks: Clocks) -> None:
    """Count every case of the load once more, so one the polling window missed is late, not lost."""
    sql = "SELECT case_id FROM cases WHERE case_id LIKE ?"
    rows = await asyncio.to_thread(query, hub.settings, sql, [f"{prefix}%"])
    now = time.monotonic()
    for (case_id,) in rows["rows"]:
        clocks.visible.setdefault(case_id, now)


async def _send_all(
    hub: BenchHub, bodies: list[dict[str, Any]], rate: float, clocks: Clocks, progress: Progress, label: str
) -> None:
    """POST every report at its scheduled moment, without waiting for earlier answers."""
    task = progress.add_task(f"{label}: reports sent", total=len(bodies))
    url = f"{hub.stack.url('patrol')}/v1/reports"
    connector = aiohttp.TCPConnector(limit=1000)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=hub.door_headers()) as client:

        async def post(body: dict[str, Any]) -> None:
            try:
                async with client.post(url, json=body) as response:
                    await response.read()
                    clocks.answers[body["report_id"]] = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                clocks.answers[body["report_id"]] = type(exc).__name__
            progress.advance(task)

        pending = set()
        start = time.monotonic() + START_DELAY_S
        for number, body in enumerate(bodies):
            due = start + number / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            clocks.worst_send_lag_s = max(clocks.worst_send_lag_s, time.monotonic() - due)
            body = sent_now(body)
            clocks.scheduled[body["report_id"]] = due
            sending = asyncio.create_task(post(body))
            pending.add(sending)
            sending.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)


async def _drive(
    hub: BenchHub, bodies: list[dict[str, Any]], load: Load, prefix: str, session: Session, label: str
) -> Clocks:
    clocks = Clocks()
    stop = asyncio.Event()
    # Placed at the ends, the consumer spares each load from reading the work orders of the loads before it.
    async with consumer_at_ends(hub, desk_topics(hub.settings)) as desks:
        watchers = [
            asyncio.create_task(_watch_dispatch(desks, prefix, clocks, stop)),
            asyncio.create_task(_watch_warehouse(hub, prefix, clocks, stop)),
        ]
        try:
            with session.progress() as progress:
                await _send_all(hub, bodies, load.rate_per_s, clocks, progress, label)
                await _drain(clocks, load.drain_s, watchers, progress, label)
                await _sweep_warehouse(hub, prefix, clocks)
        finally:
            stop.set()
            await asyncio.gather(*watchers, return_exceptions=True)
    return clocks


async def _drain(
    clocks: Clocks, drain_s: float, watchers: list[asyncio.Task[None]], progress: Progress, label: str
) -> None:
    """Wait until every accepted report has its work order and its case, or ``drain_s`` has passed."""
    accepted = clocks.accepted()
    dispatched = progress.add_task(f"{label}: work orders seen", total=len(accepted))
    visible = progress.add_task(f"{label}: cases in the warehouse", total=len(accepted))
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        progress.update(dispatched, completed=len(accepted & clocks.dispatched.keys()))
        progress.update(visible, completed=len(accepted & clocks.visible.keys()))
        if accepted <= clocks.dispatched.keys() and accepted <= clocks.visible.keys():
            return
        for watcher in watchers:
            if watcher.done():
                watcher.result()
        await asyncio.sleep(0.25)


def run_load(
    session: Session, hub: BenchHub, bodies: list[dict[str, Any]], load: Load, prefix: str, label: str
) -> tuple[Clocks, dict[str, ProcessUsage]]:
    """Offer ``bodies`` (report ids starting with ``prefix``) at the load's rate; sample every process meanwhile."""
    with ProcessSampler(hub.processes()) as sampler:
        clocks = asyncio.run(_drive(hub, bodies, load, prefix, session, label))
    return clocks, sampler.usage()
