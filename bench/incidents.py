"""Incidents: grid workers' reports over HTTP at a steady rate; how long until a desk and an analyst see them.

The urgent lane. Reports are sent on an open-loop schedule (report *i* leaves at
``start + i / rate`` whether or not earlier ones were answered), so a slow hub cannot
lower the offered load and hide its own latency; latency is counted from that scheduled
moment. Two clocks stop per report: when its work order arrives on ``dispatch.<department>``
(read with a plain Kafka consumer, as a desk reads it) and when its case first shows in the
warehouse's ``cases`` table (polled through the sink's SQL endpoint). Every report has its
own category-and-place pair, at least ~110 m from any other report of its category, so
none merges into another's case: each accepted report must end as one work order and one case.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.progress import Progress

from bench.hub import BenchError, BenchHub
from bench.probes import ProcessSampler
from bench.report import Result, percentiles
from bench.session import Session, expect
from foundation.kafka_security import aiokafka_options
from schemas import TOWN_TIMEZONE
from schemas.grid import Grid
from schemas.topics import dispatch_topic
from simulation.town import REPORT_BOX, VILLAGES, ReportedCategory, reported_categories
from streams.routing import load_rules
from warehouse.reader import query

RATE_PER_S = 200
DURATION_S = 60
DRAIN_S = 60
"""How long after the last report the benchmark waits for work orders and cases still missing."""
DISPATCH_P99_GOAL_MS = 250
WAREHOUSE_P99_GOAL_MS = 2000
POLL_S = 0.2
WATERMARK_MARGIN_S = 1.0
"""How far before the newest ``loaded_at`` seen the warehouse poll looks again."""
LATTICE_DEG = 0.0012
"""Spacing of report locations: ~133 m north-south, ~113 m east-west at Menghe, over the 50 m merge distance."""


def report_bodies(
    grid: Grid, categories: tuple[ReportedCategory, ...], count: int, prefix: str
) -> list[dict[str, Any]]:
    """``count`` valid report bodies, each with its own (category, location) pair inside the town grid."""
    box = REPORT_BOX
    needed = math.ceil(count / len(categories))
    points: list[tuple[float, float]] = []
    for row in range(int((box.lat_max - box.lat_min) / LATTICE_DEG)):
        for column in range(int((box.lon_max - box.lon_min) / LATTICE_DEG)):
            lat, lon = round(box.lat_min + row * LATTICE_DEG, 6), round(box.lon_min + column * LATTICE_DEG, 6)
            if len(points) < needed and grid.locate(lat, lon) is not None:
                points.append((lat, lon))
    if len(points) < needed:
        raise BenchError(f"the town grid has room for {len(points) * len(categories)} separate reports, not {count}")
    villages = list(VILLAGES)
    bodies = []
    for number in range(count):
        spec = categories[number % len(categories)]
        lat, lon = points[number // len(categories)]
        place = villages[number % len(villages)] + "村口"
        bodies.append(
            {
                "report_id": f"{prefix}{number:06d}",
                "category": spec.code,
                "description": spec.descriptions[number % len(spec.descriptions)].format(place=place),
                "lat": lat,
                "lon": lon,
                "reporter_id": f"GW{number % 146 + 1:03d}",
                "photos": [f"sha256:{uuid.uuid5(uuid.NAMESPACE_OID, str(number)).hex * 2}"],
            }
        )
    return bodies


@dataclass
class _Clocks:
    """When each report was due to be sent, how it was answered, and when it was seen downstream."""

    scheduled: dict[str, float] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    dispatched: dict[str, float] = field(default_factory=dict)
    visible: dict[str, float] = field(default_factory=dict)
    worst_send_lag_s: float = 0.0

    def accepted(self) -> set[str]:
        return {report for report, answer in self.answers.items() if answer == "202"}

    def latencies(self, seen: dict[str, float]) -> list[float]:
        return [seen[report] - self.scheduled[report] for report in self.accepted() if report in seen]


async def _watch_dispatch(hub: BenchHub, topics: list[str], prefix: str, clocks: _Clocks, stop: asyncio.Event) -> None:
    """Note the arrival of every work order of this run, as a desk's consumer receives it."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hub.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        **aiokafka_options(hub.settings),
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, number) for topic in topics for number in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while not stop.is_set():
            polled = await consumer.getmany(timeout_ms=100)
            arrived = time.monotonic()
            for messages in polled.values():
                for message in messages:
                    report = json.loads(message.value or b"{}").get("work_order", {}).get("event_id", "")
                    if report.startswith(prefix):
                        clocks.dispatched.setdefault(report, arrived)
    finally:
        await consumer.stop()


async def _watch_warehouse(hub: BenchHub, prefix: str, clocks: _Clocks, stop: asyncio.Event) -> None:
    """Poll the sink for cases of this run loaded since shortly before the newest one seen.

    The sink writes one batch at a time and stamps ``loaded_at`` while it reads the batch,
    after the previous batch committed, so a case not seen yet carries a later stamp than
    every case seen; the window reaches ``WATERMARK_MARGIN_S`` further back only against
    clock steps. A wider window made each answer repeat every case of the last seconds, 2,000
    rows five times a second at 200 reports/s, which the sink and this process paid for in
    CPU the hub needed. A case the window still misses is found by the final sweep: late,
    never lost.
    """
    since = "1970-01-01T00:00:00+00:00"
    while not stop.is_set():
        sql = (
            f"SELECT case_id, loaded_at FROM cases WHERE case_id LIKE '{prefix}%' "
            f"AND loaded_at >= TIMESTAMPTZ '{since}'"
        )
        rows = (await asyncio.to_thread(query, hub.settings, sql))["rows"]
        answered = time.monotonic()
        for case_id, _loaded in rows:
            clocks.visible.setdefault(case_id, answered)
        if rows:
            newest = max(datetime.fromisoformat(loaded) for _, loaded in rows)
            since = (newest - timedelta(seconds=WATERMARK_MARGIN_S)).isoformat()
        await asyncio.sleep(POLL_S)


async def _sweep_warehouse(hub: BenchHub, prefix: str, clocks: _Clocks) -> None:
    """Count every case of the run once more, so one the polling window missed is late, not lost."""
    rows = await asyncio.to_thread(query, hub.settings, f"SELECT case_id FROM cases WHERE case_id LIKE '{prefix}%'")
    now = time.monotonic()
    for (case_id,) in rows["rows"]:
        clocks.visible.setdefault(case_id, now)


async def _send_all(url: str, bodies: list[dict[str, Any]], rate: float, clocks: _Clocks, progress: Progress) -> None:
    """POST every report at its scheduled moment, without waiting for earlier answers."""
    task = progress.add_task("incidents: reports sent", total=len(bodies))
    connector = aiohttp.TCPConnector(limit=1000)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def post(body: dict[str, Any]) -> None:
            try:
                async with client.post(url, json=body) as response:
                    await response.read()
                    clocks.answers[body["report_id"]] = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                clocks.answers[body["report_id"]] = type(exc).__name__
            progress.advance(task)

        pending = set()
        start = time.monotonic() + 0.5
        for number, body in enumerate(bodies):
            due = start + number / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            clocks.worst_send_lag_s = max(clocks.worst_send_lag_s, time.monotonic() - due)
            body = {**body, "reported_at": datetime.now(TOWN_TIMEZONE).isoformat(timespec="seconds")}
            clocks.scheduled[body["report_id"]] = due
            sending = asyncio.create_task(post(body))
            pending.add(sending)
            sending.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)


async def _drive(hub: BenchHub, bodies: list[dict[str, Any]], prefix: str, session: Session) -> _Clocks:
    clocks = _Clocks()
    stop = asyncio.Event()
    topics = [dispatch_topic(unit) for unit in load_rules(hub.settings.routing_rules).desk_units()]
    watchers = [
        asyncio.create_task(_watch_dispatch(hub, topics, prefix, clocks, stop)),
        asyncio.create_task(_watch_warehouse(hub, prefix, clocks, stop)),
    ]
    try:
        with session.progress() as progress:
            await _send_all(f"{hub.stack.url('patrol')}/v1/reports", bodies, RATE_PER_S, clocks, progress)
            accepted = clocks.accepted()
            dispatched = progress.add_task("incidents: work orders seen", total=len(accepted))
            visible = progress.add_task("incidents: cases in the warehouse", total=len(accepted))
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline:
                progress.update(dispatched, completed=len(accepted & clocks.dispatched.keys()))
                progress.update(visible, completed=len(accepted & clocks.visible.keys()))
                if accepted <= clocks.dispatched.keys() and accepted <= clocks.visible.keys():
                    break
                for watcher in watchers:
                    if watcher.done():
                        watcher.result()
                await asyncio.sleep(0.25)
            await _sweep_warehouse(hub, prefix, clocks)
    finally:
        stop.set()
        await asyncio.gather(*watchers, return_exceptions=True)
    return clocks


def run(session: Session) -> None:
    """Send reports at 200/s for 60 s; record both latencies, errors and losses; check the warehouse."""
    hub = session.main_hub()
    prefix = f"BENCH-{uuid.uuid4().hex[:8]}-"
    categories = reported_categories(load_rules(hub.settings.routing_rules))
    bodies = report_bodies(Grid.load(hub.settings.grid_path), categories, RATE_PER_S * DURATION_S, prefix)
    with ProcessSampler(hub.processes()) as sampler:
        clocks = asyncio.run(_drive(hub, bodies, prefix, session))
    accepted = clocks.accepted()
    errors: dict[str, int] = {}
    for answer in clocks.answers.values():
        if answer != "202":
            errors[answer] = errors.get(answer, 0) + 1
    seconds = max(clocks.scheduled.values()) - min(clocks.scheduled.values()) if clocks.scheduled else 0.0
    common = {
        "offered_per_s": RATE_PER_S,
        "sent": len(clocks.answers),
        "accepted": len(accepted),
        "errors": errors,
        "worst_send_lag_ms": round(clocks.worst_send_lag_s * 1000, 1),
        "drain_limit_s": DRAIN_S,
    }
    for measure, seen, goal_ms in (
        ("request → dispatch topic", clocks.dispatched, DISPATCH_P99_GOAL_MS),
        ("request → warehouse case", clocks.visible, WAREHOUSE_P99_GOAL_MS),
    ):
        lost = len(accepted - seen.keys())
        latency = percentiles(clocks.latencies(seen))
        result = Result(
            "incidents",
            measure,
            len(accepted),
            seconds,
            goal=f"p99 ≤ {goal_ms:,} ms, no error, no loss",
            latency_ms=latency,
            lost=lost,
            processes=sampler.usage(),
            details=common,
        )
        result.met = not errors and not lost and latency.get("p99", math.inf) <= goal_ms
        session.record(result)
    _check_warehouse(hub, prefix, accepted, clocks)


def _check_warehouse(hub: BenchHub, prefix: str, accepted: set[str], clocks: _Clocks) -> None:
    """What the warehouse holds of the run must be right, even where the hub was too slow to finish.

    A report still queued after the drain limit is a missed goal (counted above), not an
    error; an unknown, merged or rejected report of the run, or a case that vanished, is.
    """
    cases = int(hub.scalar(f"SELECT count(*) FROM cases WHERE case_id LIKE '{prefix}%'") or 0)
    if accepted <= clocks.visible.keys():
        expect("incidents: cases of the run", cases, len(accepted))
    elif not len(clocks.visible) <= cases <= len(clocks.answers):
        raise BenchError(f"incidents: {cases} cases of the run in the warehouse, {len(clocks.visible)} seen before")
    expect("incidents: cases of no report sent", len(clocks.visible.keys() - clocks.answers.keys()), 0)
    expect(
        "incidents: cases of the run with more than one report",
        hub.scalar(f"SELECT count(*) FROM cases WHERE case_id LIKE '{prefix}%' AND report_count <> 1"),
        0,
    )
    expect(
        "incidents: rejects of the run's reports",
        hub.scalar(f"SELECT count(*) FROM rejects WHERE source_record_id LIKE '{prefix}%'"),
        0,
    )
