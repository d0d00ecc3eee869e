"""One report's path through the idle hub, hop by hop, so a latency figure can be split into where it went.

An end-to-end p99 says how long a report takes, not which hop takes it. Here one report is
sent to the idle hub and found again on every topic it crosses, by its report id in each
message's payload: the gateway's raw record on ``raw.patrol``, the integrate agent's command
on ``cases.commands``, the case agent's case on ``canonical.case`` and its work order on
``dispatch.<unit>``, and finally the case in the warehouse. A message's time is its Kafka
timestamp (CreateTime, stamped by the producer that sent it, in ms since the epoch); the
request's is the wall clock (``time.time()``) just before it was sent, and the warehouse's the
wall clock of the first poll (every ``POLL_S``) that saw the case, so all are on one clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from rich.table import Table

from bench.hub import BenchError, BenchHub, consumer_at_ends, desk_topics
from bench.patrol_reports import sent_now
from schemas.topics import CASE_COMMANDS, DISPATCH_PREFIX, RAW_PATROL, canonical_topic
from warehouse.reader import query

POLL_S = 0.01
TIMEOUT_S = 30.0
"""How long the idle hub is given to take the report all the way to the warehouse."""
REQUEST = "request sent"
WAREHOUSE = "case in the warehouse"
CASE_TOPIC = canonical_topic("case")
CREATE_TIME = 0
"""Kafka's timestamp type of a time the producer set (1 would be the broker's append time)."""


@dataclass(frozen=True)
class Hop:
    """One place the report shows up: the step that put it there and the step that caused that one."""

    name: str
    after: str | None
    """The hop this one follows from (its parent on the report's path)."""
    topic: str
    """Where it is seen: a topic, or a prefix of topics (``dispatch.``), or the warehouse's table."""
    report_id_at: tuple[str, ...] = ()
    """Where the report id sits in the message's JSON payload."""


PATH = (
    Hop(REQUEST, None, "POST /v1/reports"),
    Hop("gateway → raw topic", REQUEST, RAW_PATROL, ("payload", "event_id")),
    Hop("integrate agent → case command", "gateway → raw topic", CASE_COMMANDS, ("record", "event_id")),
    Hop("case agent → case", "integrate agent → case command", CASE_TOPIC, ("record", "case_id")),
    Hop("case agent → work order", "integrate agent → case command", DISPATCH_PREFIX, ("work_order", "event_id")),
    Hop(WAREHOUSE, "case agent → case", "cases"),
)
"""The report's path, each hop after the one whose message caused it."""


@dataclass(frozen=True)
class Sighting:
    """When (wall clock, seconds) and where (the exact topic) a hop of the report was seen."""

    hop: str
    topic: str
    at_s: float
    clock: str
    """Whose clock the time is: the bench's, or the producer's (Kafka CreateTime)."""


@dataclass(frozen=True)
class TraceRow:
    """One line of the trace table."""

    hop: str
    topic: str
    since_request_ms: float | None
    hop_ms: float | None
    """Since the hop it follows from; None if either was not seen."""
    clock: str | None


def report_id_in(document: Any, path: tuple[str, ...]) -> str | None:
    """The string at ``path`` in a decoded message, or None where the message has no such field."""
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document if isinstance(document, str) else None


def hop_of(topic: str) -> Hop | None:
    """The Kafka hop a message of ``topic`` belongs to (dispatch topics by their prefix)."""
    for hop in PATH:
        a_desk = hop.topic == DISPATCH_PREFIX and topic.startswith(DISPATCH_PREFIX)
        if hop.report_id_at and (topic == hop.topic or a_desk):
            return hop
    return None


def trace_rows(sightings: list[Sighting], path: tuple[Hop, ...] = PATH) -> list[TraceRow]:
    """Every hop of ``path``, in the order it was seen (unseen ones last, in path order), timed from the request.

    Two hops with one parent (the case and the work order both follow the command) are
    siblings, so each hop is timed from its parent, not from the line above it.
    """
    seen = {sighting.hop: sighting for sighting in sightings}
    request = seen.get(path[0].name)
    position = {hop.name: number for number, hop in enumerate(path)}

    def order(hop: Hop) -> tuple[int, float, int]:
        sighting = seen.get(hop.name)
        return (0, sighting.at_s, position[hop.name]) if sighting else (1, 0.0, position[hop.name])

    rows = []
    for hop in sorted(path, key=order):
        sighting, parent = seen.get(hop.name), seen.get(hop.after or "")
        rows.append(
            TraceRow(
                hop=hop.name,
                topic=sighting.topic if sighting else hop.topic,
                since_request_ms=_ms(sighting, request),
                hop_ms=_ms(sighting, parent),
                clock=sighting.clock if sighting else None,
            )
        )
    return rows


def _ms(later: Sighting | None, earlier: Sighting | None) -> float | None:
    return None if later is None or earlier is None else round((later.at_s - earlier.at_s) * 1000, 1)


def hops_seen(rows: list[TraceRow]) -> int:
    """Hops after the request that were seen."""
    return sum(1 for row in rows if row.hop != REQUEST and row.since_request_ms is not None)


def trace_table(rows: list[TraceRow]) -> Table:
    """The trace as printed: hop, topic, ms since the request, ms of this hop."""
    table = Table(title=f"one report, hop by hop ({hops_seen(rows)} hops)", title_justify="left")
    table.add_column("hop")
    table.add_column("topic")
    table.add_column("ms since request", justify="right")
    table.add_column("ms of this hop", justify="right")
    for row in rows:
        seen = row.since_request_ms is not None
        table.add_row(
            row.hop, row.topic, _cell(row.since_request_ms, "not seen"), _cell(row.hop_ms, "-" if seen else "")
        )
    return table


def _cell(ms: float | None, missing: str) -> str:
    return missing if ms is None else f"{ms:,.1f}"


def trace_json(rows: list[TraceRow]) -> dict[str, Any]:
    """The trace for results.json."""
    return {"hops": hops_seen(rows), "rows": [asdict(row) for row in rows]}


async def _watch_topics(consumer: AIOKafkaConsumer, report_id: str, sightings: list[Sighting], deadline: float) -> None:
    """Note the producer's timestamp of the first message of each Kafka hop that carries the report."""
    wanted = {hop.name for hop in PATH if hop.report_id_at}
    while wanted and time.monotonic() < deadline:
        for messages in (await consumer.getmany(timeout_ms=100)).values():
            for message in messages:
                hop = hop_of(message.topic)
                if hop is None or hop.name not in wanted:
                    continue
                if report_id_in(json.loads(message.value or b"{}"), hop.report_id_at) == report_id:
                    wanted.discard(hop.name)
                    clock = "Kafka CreateTime" if message.timestamp_type == CREATE_TIME else "Kafka LogAppendTime"
                    sightings.append(Sighting(hop.name, message.topic, message.timestamp / 1000, clock))


async def _watch_warehouse(hub: BenchHub, report_id: str, sightings: list[Sighting], deadline: float) -> None:
    """Note the wall clock of the first poll that finds the report's case in the warehouse."""
    sql = f"SELECT count(*) FROM cases WHERE case_id = '{report_id}'"
    while time.monotonic() < deadline:
        if (await asyncio.to_thread(query, hub.settings, sql))["rows"][0][0]:
            sightings.append(Sighting(WAREHOUSE, "cases", time.time(), "bench wall clock"))
            return
        await asyncio.sleep(POLL_S)


async def _post(hub: BenchHub, body: dict[str, Any]) -> None:
    url = f"{hub.stack.url('patrol')}/v1/reports"
    async with (
        aiohttp.ClientSession(headers=hub.door_headers()) as client,
        client.post(url, json=sent_now(body)) as response,
    ):
        text = await response.text()
        if response.status != 202:
            raise BenchError(f"the idle hub answered the traced report with {response.status}: {text[:200]}")


async def _trace(hub: BenchHub, body: dict[str, Any]) -> list[Sighting]:
    topics = [RAW_PATROL, CASE_COMMANDS, CASE_TOPIC, *desk_topics(hub.settings)]
    async with consumer_at_ends(hub, topics) as consumer:
        sightings = [Sighting(REQUEST, PATH[0].topic, time.time(), "bench wall clock")]
        await _post(hub, body)
        # The consumer already stands at the topics' ends, so nothing the report causes is missed by starting now.
        deadline = time.monotonic() + TIMEOUT_S
        await asyncio.gather(
            _watch_topics(consumer, body["report_id"], sightings, deadline),
            _watch_warehouse(hub, body["report_id"], sightings, deadline),
        )
        return sightings


def trace_report(hub: BenchHub, body: dict[str, Any]) -> list[TraceRow]:
    """Send one report to the (idle) hub and follow it to the warehouse; hops not seen within ``TIMEOUT_S`` are None."""
    return trace_rows(asyncio.run(_trace(hub, body)))
